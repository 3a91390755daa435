//! Bindings of [`crate::dynamic`]: convert arguments (numpy arrays, names, the token source),
//! release the GIL, wrap the result. Every check of the arguments' values is the core's
//! ([`dynamic::merge_input`]). The Python class `tokforge.dynamic.MergeResult` owns the API and
//! the docstrings.

use super::errors::InputError;
use super::model::PyTokenModel;
use crate::dynamic::{self, BatchInput, Boundaries, KeepLast, MergeOptions, Ragged, TokenSource};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::sync::Arc;

/// An id -> bytes table for vocabularies that tokforge cannot load as a tokenizer.
#[pyclass(frozen, name = "TokenTable", module = "tokforge._core")]
pub struct PyTokenTable {
    inner: Arc<dynamic::TokenTable>,
}

#[pymethods]
impl PyTokenTable {
    /// `tokens[id]` = bytes of `id` (`None` for a hole); `special_ids` never merge.
    #[new]
    #[pyo3(signature = (tokens, special_ids=Vec::new()))]
    fn new(tokens: Vec<Option<Vec<u8>>>, special_ids: Vec<i64>) -> PyResult<Self> {
        Ok(Self {
            inner: Arc::new(dynamic::TokenTable::new(tokens, &special_ids)?),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

/// A token source given from Python: a tokforge model or a [`PyTokenTable`].
#[derive(Clone)]
enum Source {
    Model(Arc<crate::bpe::Bpe>),
    Table(Arc<dynamic::TokenTable>),
}

impl Source {
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(m) = obj.cast::<PyTokenModel>() {
            return Ok(Source::Model(m.get().bpe("dynamic merging")?));
        }
        if let Ok(t) = obj.cast::<PyTokenTable>() {
            return Ok(Source::Table(t.get().inner.clone()));
        }
        Err(InputError::new_err(format!(
            "dynamic merging needs a byte-level BPE tokenizer or a token_table(...), got {}",
            obj.get_type().name()?
        )))
    }

    fn get(&self) -> &dyn TokenSource {
        match self {
            Source::Model(m) => m.as_ref(),
            Source::Table(t) => t.as_ref(),
        }
    }
}

/// Per-sequence values from Python: `(flat int64 values, int64 count of values per sequence)`.
type PyRagged<'py> = (PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i64>);

fn ragged<'a>(r: &'a PyRagged<'_>) -> PyResult<Ragged<'a>> {
    Ok(Ragged {
        values: r.0.as_slice()?,
        lengths: r.1.as_slice()?,
    })
}

/// `word_boundaries`: a mode name, or word-start flags as [`PyRagged`].
#[derive(FromPyObject)]
pub enum PyBoundaries<'py> {
    Mode(String),
    Starts(PyRagged<'py>),
}

/// `keep_last`: one count for every sequence, or one per sequence.
#[derive(FromPyObject)]
pub enum PyKeepLast<'py> {
    Each(i64),
    PerSequence(PyReadonlyArray1<'py, i64>),
}

/// Merge a flat batch; see `tokforge.dynamic.merge_batch` (which converts its arguments into
/// these). Checks and merging are [`dynamic::merge_input`]'s, with the GIL released.
#[pyfunction]
#[pyo3(signature = (ids, offsets, *, word_boundaries=None, word_ids=None, keep_last=None,
                    max_merges=None, min_count=2, target_reduction=None, relative_to="input",
                    target_length=None, per_sample=false, max_unit_constituents=None,
                    identity="ids", tokens=None, num_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn merge_batch<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    word_boundaries: Option<PyBoundaries<'py>>,
    word_ids: Option<PyRagged<'py>>,
    keep_last: Option<PyKeepLast<'py>>,
    max_merges: Option<i64>,
    min_count: i64,
    target_reduction: Option<f64>,
    relative_to: &str,
    target_length: Option<i64>,
    per_sample: bool,
    max_unit_constituents: Option<i64>,
    identity: &str,
    tokens: Option<Bound<'py, PyAny>>,
    num_threads: Option<super::convert::Int>,
) -> PyResult<PyMergeResult> {
    let source = tokens.as_ref().map(Source::from_py).transpose()?;
    let pool = super::pool(num_threads)?;
    let input = BatchInput {
        ids: ids.as_slice()?,
        offsets: offsets.as_slice()?,
        boundaries: match &word_boundaries {
            None => Boundaries::Mode("word"),
            Some(PyBoundaries::Mode(m)) => Boundaries::Mode(m),
            Some(PyBoundaries::Starts(r)) => Boundaries::Starts(ragged(r)?),
        },
        word_ids: word_ids.as_ref().map(ragged).transpose()?,
        keep_last: match &keep_last {
            None => KeepLast::Each(0),
            Some(PyKeepLast::Each(k)) => KeepLast::Each(*k),
            Some(PyKeepLast::PerSequence(ks)) => KeepLast::PerSequence(ks.as_slice()?),
        },
    };
    let opts = MergeOptions {
        max_merges,
        min_count,
        target_reduction,
        relative_to,
        target_length,
        per_sample,
        max_unit_constituents,
        identity,
    };
    let tokens = source.as_ref().map(Source::get);
    let inner = super::interruptible(py, &pool, || dynamic::merge_input(&input, &opts, tokens))?;
    Ok(PyMergeResult { inner })
}

/// Output of [`merge_batch`]: immutable; each array getter returns a new numpy array.
#[pyclass(frozen, name = "MergeResult", module = "tokforge._core")]
pub struct PyMergeResult {
    inner: dynamic::MergeResult,
}

/// Ids and unit indices as `int32` (every one is a base id < 2**31, checked, or an index
/// below the batch size).
fn int32<'py>(py: Python<'py>, v: &[u32]) -> Bound<'py, PyArray1<i32>> {
    PyArray1::from_vec(py, v.iter().map(|&x| x as i32).collect())
}

fn as_i32(v: Vec<u32>) -> Vec<i32> {
    // every value is a base id (< 2**31, checked) or an index below the batch size
    v.into_iter().map(|x| x as i32).collect()
}

/// Offsets as `int64` (below the batch size).
fn int64<'py>(py: Python<'py>, v: &[usize]) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_vec(py, v.iter().map(|&x| x as i64).collect())
}

#[pymethods]
impl PyMergeResult {
    /// `int32[N']` batch-local unit index of each output position.
    #[getter]
    fn unit_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        int32(py, &self.inner.unit_ids)
    }

    /// `int64[B+1]` offsets of the sequences in `unit_ids`.
    #[getter]
    fn seq_offsets<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        int64(py, &self.inner.seq_offsets)
    }

    /// `int32[N', 2]` `[start, end)` of each output position in its sequence's base ids.
    #[getter]
    fn spans<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i32>>> {
        let s = &self.inner.spans;
        let flat: Vec<i32> = s.iter().flat_map(|x| [x[0] as i32, x[1] as i32]).collect();
        PyArray1::from_vec(py, flat).reshape([s.len(), 2])
    }

    /// `int32[N']` word id of each output position (`-1` = never merged).
    #[getter]
    fn word_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        PyArray1::from_slice(py, &self.inner.word_ids)
    }

    /// `int32[U]` key (index into `key_offsets`) of each unit.
    #[getter]
    fn unit_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        int32(py, &self.inner.unit_key)
    }

    /// `int64[U+1]` offsets of each unit's base ids in `unit_constituents`.
    #[getter]
    fn unit_offsets<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        int64(py, &self.inner.unit_offsets)
    }

    /// `int32[...]` base ids of each unit (of its first appearance).
    #[getter]
    fn unit_constituents<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        int32(py, &self.inner.unit_constituents)
    }

    /// `int32[U]` the base id of a single-token unit, else -1.
    #[getter]
    fn unit_base_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        PyArray1::from_slice(py, &self.inner.unit_base_id)
    }

    /// `int64[K+1]` offsets of each key's base ids in `key_constituents`.
    #[getter]
    fn key_offsets<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        int64(py, &self.inner.key_offsets)
    }

    /// `int32[...]` base ids of each key (of its first creation).
    #[getter]
    fn key_constituents<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        int32(py, &self.inner.key_constituents)
    }

    /// Bytes of each key, or `None` when no token bytes were given.
    #[getter]
    fn key_bytes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.inner
            .key_bytes
            .as_ref()
            .map(|kb| PyList::new(py, kb.iter().map(|b| PyBytes::new(py, b))))
            .transpose()
    }

    /// `int64[M, 6]` the merge log: left key, right key, new key, count, applied, sample
    /// (-1 unless `per_sample`).
    #[getter]
    fn merge_log<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let m = &self.inner.merges;
        let flat: Vec<i64> = m
            .iter()
            .flat_map(|s| {
                [
                    i64::from(s.left),
                    i64::from(s.right),
                    i64::from(s.new),
                    i64::from(s.count),
                    i64::from(s.applied),
                    s.sample.map_or(-1, i64::from),
                ]
            })
            .collect();
        PyArray1::from_vec(py, flat).reshape([m.len(), 6])
    }

    #[getter]
    fn num_merges(&self) -> usize {
        self.inner.num_merges()
    }

    #[getter]
    fn len_initial(&self) -> usize {
        self.inner.len_initial
    }

    #[getter]
    fn len_final(&self) -> usize {
        self.inner.len_final
    }

    #[getter]
    fn len_word_level(&self) -> usize {
        self.inner.len_word_level
    }

    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "MergeResult(sequences={}, merges={}, length {} -> {})",
            r.seq_offsets.len().saturating_sub(1),
            r.merges.len(),
            r.len_initial,
            r.len_final
        )
    }
}

/// Encode each byte string with the model's merges only (no pre-tokenizer): the reference's
/// surface form of a unit (zett `get_surface_form_matrix`). Returns `(flat ids, offsets)`.
#[pyfunction]
pub fn retokenize<'py>(
    py: Python<'py>,
    model: PyRef<'py, PyTokenModel>,
    units: Vec<Vec<u8>>,
) -> PyResult<(Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<i64>>)> {
    let bpe = model.bpe("retokenize")?;
    let (flat, offsets) = py.detach(|| {
        let mut flat = Vec::new();
        let mut offsets = vec![0i64];
        let mut enc = bpe.piece_encoder();
        for u in &units {
            enc.encode(u, &mut flat);
            offsets.push(flat.len() as i64);
        }
        (flat, offsets)
    });
    Ok((
        PyArray1::from_vec(py, as_i32(flat)),
        PyArray1::from_vec(py, offsets),
    ))
}

/// Add this module's classes, functions and constants to `tokforge._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenTable>()?;
    m.add_class::<PyMergeResult>()?;
    m.add_function(wrap_pyfunction!(merge_batch, m)?)?;
    m.add_function(wrap_pyfunction!(retokenize, m)?)?;
    let patterns = PyDict::new(m.py());
    for (mode, pattern) in dynamic::BOUNDARY_PATTERNS {
        patterns.set_item(mode, pattern)?;
    }
    m.add("BOUNDARY_PATTERNS", patterns)?;
    Ok(())
}
