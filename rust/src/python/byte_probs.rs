//! Bindings of [`crate::byte_probs`]: numpy rows in, numpy distributions out, GIL released for
//! every per-vocabulary loop. The LM calls and the API live in `tokforge.byte_probs`
//! (`ByteLM`). Each class wraps the core type of the same Python name: `CoverIndex`,
//! `StartPlan`, `LMRow` ([`LmRow`]) and `CoverState`.

use crate::byte_probs::{CoverIndex, CoverState, LmRow, Mode, RowLayout, Rule, StartPlan};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

use super::convert::{ids_to_u32, Int};
use super::errors::InputError;
use super::model::PyTokenModel;

/// Trie, validity rows and mode for one tokenizer + LM vocabulary.
#[pyclass(frozen, name = "CoverIndex", module = "tokforge._core")]
pub struct PyCoverIndex {
    inner: Arc<CoverIndex>,
}

/// Stems of a prompt, from `CoverIndex.plan`.
#[pyclass(frozen, name = "StartPlan", module = "tokforge._core")]
pub struct PyStartPlan {
    inner: StartPlan,
}

/// One LM row, masked and cumulated in trie order.
#[pyclass(frozen, name = "LMRow", module = "tokforge._core")]
pub struct PyLmRow {
    inner: Arc<LmRow>,
}

/// Cover set of a byte prefix (immutable; `advance` returns a new one).
#[pyclass(frozen, name = "CoverState", module = "tokforge._core")]
pub struct PyCoverState {
    inner: CoverState,
}

#[pymethods]
impl PyStartPlan {
    #[getter]
    fn stems(&self) -> Vec<Vec<u32>> {
        self.inner.stems.iter().map(|(s, _)| s.clone()).collect()
    }
    #[getter]
    fn common(&self) -> usize {
        self.inner.common
    }
    #[getter]
    fn star(&self) -> Vec<u32> {
        self.inner.star.clone()
    }
}

#[pymethods]
impl PyLmRow {
    #[getter]
    fn z(&self) -> f64 {
        self.inner.z()
    }
    #[getter]
    fn eos(&self) -> f64 {
        self.inner.eos()
    }
}

#[pymethods]
impl PyCoverState {
    /// Empty-overhang covers (context included), largest weight first; their LM rows are what
    /// `next_byte_probs` / `advance` take, in this order.
    #[getter]
    fn stars(&self) -> Vec<Vec<u32>> {
        self.inner.stars().map(|(s, _)| s.to_vec()).collect()
    }
    /// Normalised weights of the stars.
    #[getter]
    fn star_weights(&self) -> Vec<f64> {
        self.inner.stars().map(|(_, w)| w).collect()
    }
    #[getter]
    fn log_q(&self) -> f64 {
        self.inner.log_q()
    }
    #[getter]
    fn n_bytes(&self) -> usize {
        self.inner.n_bytes()
    }
    #[getter]
    fn n_groups(&self) -> usize {
        self.inner.n_groups()
    }
}

fn layout(trie_order: bool) -> RowLayout {
    if trie_order {
        RowLayout::Trie
    } else {
        RowLayout::Ids
    }
}

fn arcs(rows: &[PyRef<'_, PyLmRow>]) -> Vec<Arc<LmRow>> {
    rows.iter().map(|r| r.inner.clone()).collect()
}

#[pymethods]
impl PyCoverIndex {
    /// `validity`: `"pair"` (exact BPE local rule; prefix-closed tokenizers) or `"pieces"`
    /// (regex pre-tokenizers: settled prefix + open tail, docs/byte_probs.md §15).
    #[new]
    #[pyo3(signature = (model, vocab_size, eos_id, mode = "exact", validity = "pair", row_cache = Int::from(1024)))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: PyRef<'_, PyTokenModel>,
        vocab_size: Int,
        eos_id: Int,
        mode: &str,
        validity: &str,
        row_cache: Int,
    ) -> PyResult<Self> {
        let vocab_size = vocab_size.size("vocab_size", 0, u32::MAX as usize)?;
        let eos_id = eos_id.new_id("eos_id")?;
        let row_cache = row_cache.size("row_cache", 0, usize::MAX)?;
        let mode = Mode::parse(mode)?;
        let rule = Rule::parse(validity)?;
        let bpe = model.bpe("byte probabilities")?;
        let inner =
            py.detach(|| CoverIndex::new(bpe, vocab_size, eos_id, mode, rule, row_cache))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    #[getter]
    fn validity(&self) -> &'static str {
        self.inner.validity().rule().name()
    }

    #[getter]
    fn lmax(&self) -> usize {
        self.inner.trie().lmax()
    }
    #[getter]
    fn n_tokens(&self) -> usize {
        self.inner.trie().len()
    }
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode().name()
    }
    #[getter]
    fn cached_rows(&self) -> usize {
        self.inner.validity().cached_rows()
    }
    /// The token order of rows passed with `trie_order=True`: a permutation of
    /// `range(vocab_size)`, the tokenizer's tokens in trie order, then the other ids ascending.
    #[getter]
    fn token_order<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.token_order().into_pyarray(py)
    }

    /// Canonical ids of arbitrary bytes.
    fn encode(&self, py: Python<'_>, data: &[u8]) -> PyResult<Vec<u32>> {
        let m = self.inner.clone();
        let data = data.to_vec();
        Ok(py.detach(move || m.bpe().encode_bytes(&data))?)
    }

    /// Validity of a token sequence: local BPE rule, or the full re-encode check.
    #[pyo3(signature = (ids, full = false))]
    fn is_valid(&self, py: Python<'_>, ids: Vec<Int>, full: bool) -> PyResult<bool> {
        let ids = ids_to_u32(&ids, "ids", self.inner.trie().len())?;
        let m = self.inner.clone();
        Ok(py.detach(move || {
            if full {
                m.validity().is_valid_full(&ids)
            } else {
                m.validity().is_valid_local(&ids)
            }
        })?)
    }

    /// Stems of `prompt`.
    fn plan(&self, py: Python<'_>, prompt: &[u8]) -> PyResult<PyStartPlan> {
        let m = self.inner.clone();
        let prompt = prompt.to_vec();
        let inner = py.detach(move || m.plan(&prompt))?;
        Ok(PyStartPlan { inner })
    }

    /// State of the plan's prompt; `rows[i]` = LM rows of stem `i` from `plan.common` on, in
    /// id order, or in `token_order` with `trie_order=True`.
    #[pyo3(signature = (plan, context, rows, trie_order = false))]
    fn start(
        &self,
        py: Python<'_>,
        plan: PyRef<'_, PyStartPlan>,
        context: Vec<Int>,
        rows: Vec<PyReadonlyArray2<'_, f64>>,
        trie_order: bool,
    ) -> PyResult<PyCoverState> {
        let context = ids_to_u32(&context, "context", self.inner.trie().len())?;
        let mut slices: Vec<&[f64]> = Vec::with_capacity(rows.len());
        for r in &rows {
            slices.push(
                r.as_slice().map_err(|_| {
                    InputError::new_err("LM rows must be C-contiguous float64 arrays")
                })?,
            );
        }
        let m = &self.inner;
        let p = &plan.inner;
        let inner = py.detach(|| m.start_in(&context, p, &slices, layout(trie_order)))?;
        Ok(PyCoverState { inner })
    }

    /// Prepare one LM row (log-probabilities, in id order, or in `token_order` with
    /// `trie_order=True`) that follows the token sequence `stem` (its last 8 tokens are
    /// enough).
    #[pyo3(signature = (logprobs, stem, trie_order = false))]
    fn prepare(
        &self,
        py: Python<'_>,
        logprobs: PyReadonlyArray1<'_, f64>,
        stem: Vec<u32>,
        trie_order: bool,
    ) -> PyResult<PyLmRow> {
        let lp = logprobs
            .as_slice()
            .map_err(|_| InputError::new_err("an LM row must be a contiguous float64 array"))?;
        let m = &self.inner;
        let row = py.detach(|| m.prepare_in(lp, layout(trie_order), &stem))?;
        Ok(PyLmRow {
            inner: Arc::new(row),
        })
    }

    /// Mode-adjusted probability of token `id` in a prepared row.
    fn token_prob(&self, row: PyRef<'_, PyLmRow>, id: u32) -> f64 {
        self.inner.token_prob(&row.inner, id)
    }

    /// `(probs[257], total)`: normalised next-byte distribution and the raw mass; `rows[i]` is
    /// the prepared row after `state.stars[i]`.
    fn next_byte_probs<'py>(
        &self,
        py: Python<'py>,
        state: PyRef<'py, PyCoverState>,
        rows: Vec<PyRef<'py, PyLmRow>>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
        let (d, total) = self.inner.dist(&state.inner, &arcs(&rows))?;
        Ok((d.to_vec().into_pyarray(py), total))
    }

    /// State after byte `b`; `rows` as in `next_byte_probs`.
    fn advance(
        &self,
        py: Python<'_>,
        state: PyRef<'_, PyCoverState>,
        rows: Vec<PyRef<'_, PyLmRow>>,
        b: u8,
    ) -> PyResult<PyCoverState> {
        let m = &self.inner;
        let st = &state.inner;
        let r = arcs(&rows);
        let inner = py.detach(|| m.advance(st, &r, b))?;
        Ok(PyCoverState { inner })
    }

    /// `[(ids after the context, overhang, probability)]`, `τ*` first.
    fn covers<'py>(
        &self,
        py: Python<'py>,
        state: PyRef<'py, PyCoverState>,
        ctx_len: usize,
    ) -> PyResult<Vec<(Vec<u32>, Bound<'py, PyBytes>, f64)>> {
        Ok(self
            .inner
            .covers(&state.inner, ctx_len)?
            .into_iter()
            .map(|(ids, over, p)| (ids, PyBytes::new(py, &over), p))
            .collect())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCoverIndex>()?;
    m.add_class::<PyStartPlan>()?;
    m.add_class::<PyLmRow>()?;
    m.add_class::<PyCoverState>()?;
    Ok(())
}
