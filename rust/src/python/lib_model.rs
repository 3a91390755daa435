//! Bindings of [`crate::lib_model`]: `LibModel` (the same encoding methods as `BpeModel`, so
//! `tokforge.Tokenizer` drives either), `train_lib`, and the raw learner `lib_learn` /
//! `lib_apply` used by the golden tests and the benchmark. Training and encoding release the GIL.

use super::errors::{InputError, TokforgeError};
use crate::lib_model::{self as lm, LearnConfig, Learner, Rule, Segmenter, TrainOptions};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[pyclass(frozen, module = "tokforge._core")]
pub struct LibModel {
    inner: Arc<lm::LibModel>,
    matcher_cache: super::convert::MatcherCache,
}

fn not_bpe(what: &str) -> PyErr {
    TokforgeError::new_err(format!(
        "{what} exists only for BPE tokenizers; this is a LiB tokenizer (units chosen by \
         larger-first segmentation with comparison, not merges). Save it with Tokenizer.save(), \
         which writes tokforge's LiB JSON."
    ))
}

impl LibModel {
    fn wrap(m: lm::LibModel) -> Self {
        LibModel {
            inner: Arc::new(m),
            matcher_cache: Default::default(),
        }
    }

    fn matcher(&self, ids: &[u32]) -> PyResult<Option<Arc<lm::SpecialMatcher>>> {
        self.matcher_cache
            .get(ids, |ids| self.inner.special_matcher(ids))
    }
}

#[pymethods]
impl LibModel {
    /// Load tokforge's LiB JSON from a file.
    #[staticmethod]
    fn from_json_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let name = path.display().to_string();
        let m = py.detach(|| -> crate::Result<lm::LibModel> {
            let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
            crate::formats::lib_json::from_str(&text, &name)
        })?;
        Ok(Self::wrap(m))
    }

    /// Load tokforge's LiB JSON from text.
    #[staticmethod]
    fn from_json_str(text: &str) -> PyResult<Self> {
        Ok(Self::wrap(crate::formats::lib_json::from_str(
            text, "<string>",
        )?))
    }

    /// A model from units in priority order (ids follow specials and the 256 byte tokens).
    #[staticmethod]
    #[pyo3(signature = (units, special_tokens=Vec::new(), segmenter="lib"))]
    fn from_units(
        units: Vec<String>,
        special_tokens: Vec<String>,
        segmenter: &str,
    ) -> PyResult<Self> {
        let rule = Rule::parse(segmenter)?;
        let units = units.into_iter().map(String::into_bytes).collect();
        Ok(Self::wrap(lm::LibModel::new(
            units,
            special_tokens,
            rule,
            serde_json::Value::Null,
        )?))
    }

    /// The model as tokforge's LiB JSON.
    fn to_json(&self) -> PyResult<String> {
        Ok(crate::formats::lib_json::to_string(&self.inner)?)
    }

    fn to_tiktoken(&self) -> PyResult<String> {
        Err(not_bpe("a .tiktoken rank file"))
    }

    #[getter]
    fn merges(&self) -> PyResult<Vec<(u32, u32)>> {
        Err(not_bpe("a merge list"))
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    /// Pieces LiB segments independently: lines and newlines.
    #[getter]
    fn pattern(&self) -> &'static str {
        "[^\\n]+|\\n"
    }

    #[getter]
    fn pattern_name(&self) -> &'static str {
        "lib"
    }

    /// The "no-supra" pre-tokenizer (preset name or regex), or `None`.
    #[getter]
    fn pretokenize(&self) -> Option<String> {
        self.inner.pretokenizer().map(|p| match p.preset() {
            Some(pr) => pr.name().to_string(),
            None => p.pattern().to_string(),
        })
    }

    /// `"lib"`, `"reference"` or `"greedy"`.
    #[getter]
    fn segmenter(&self) -> &'static str {
        self.inner.rule().name()
    }

    /// The same units with another segmentation rule.
    fn with_segmenter(&self, segmenter: &str) -> PyResult<Self> {
        Ok(Self::wrap(self.inner.with_rule(Rule::parse(segmenter)?)?))
    }

    /// Units in id order (ids start after the special and byte tokens).
    #[getter]
    fn units(&self) -> Vec<String> {
        self.inner
            .units()
            .iter()
            .map(|u| String::from_utf8_lossy(u).into_owned())
            .collect()
    }

    /// The training settings stored with the model, as JSON text.
    #[getter]
    fn training(&self) -> String {
        self.inner.training().to_string()
    }

    #[getter]
    fn special_tokens(&self) -> Vec<(String, u32)> {
        self.inner.specials().to_vec()
    }

    fn token_bytes<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyBytes>> {
        let t =
            super::convert::token_of(id, self.inner.vocab_size(), |i| self.inner.token_bytes(i))?;
        Ok(PyBytes::new(py, &t))
    }

    /// Id of a unit (bytes or str), of a special token (str), or of a byte token (one byte).
    fn token_id(&self, token: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        if let Ok(b) = token.cast::<PyBytes>() {
            return Ok(self.inner.id_of(b.as_bytes()));
        }
        if let Ok(s) = token.extract::<String>() {
            if let Some((_, id)) = self.inner.specials().iter().find(|(t, _)| *t == s) {
                return Ok(Some(*id));
            }
            return Ok(self.inner.id_of(s.as_bytes()));
        }
        Err(InputError::new_err("token must be bytes or str"))
    }

    fn is_special(&self, id: u32) -> bool {
        self.inner.is_special(id)
    }

    /// Characters up to and including the last newline: lines are segmented independently, so
    /// a stream can be cut there.
    fn stream_cut(&self, text: &str) -> usize {
        match text.rfind('\n') {
            Some(b) => text[..=b].chars().count(),
            None => 0,
        }
    }

    fn encode_ordinary(&self, py: Python<'_>, text: &str) -> PyResult<Vec<u32>> {
        let m = &self.inner;
        Ok(py.detach(|| m.encode_ordinary(text))?)
    }

    fn encode(&self, py: Python<'_>, text: &str, allowed: Vec<u32>) -> PyResult<Vec<u32>> {
        let mm = self.matcher(&allowed)?;
        let m = &self.inner;
        Ok(py.detach(|| m.encode(text, mm.as_deref()))?)
    }

    fn find_special(&self, text: &str, ids: Vec<u32>) -> PyResult<Option<(usize, u32)>> {
        let m = self.matcher(&ids)?;
        Ok(m.and_then(|m| m.find(text, 0))
            .map(|(s, _, id)| (text[..s].chars().count(), id)))
    }

    fn encode_with_spans(
        &self,
        py: Python<'_>,
        text: &str,
        allowed: Vec<u32>,
    ) -> PyResult<(Vec<u32>, Vec<(usize, usize)>)> {
        let mm = self.matcher(&allowed)?;
        let m = &self.inner;
        Ok(py.detach(|| m.encode_with_spans(text, mm.as_deref()))?)
    }

    #[pyo3(signature = (texts, allowed, num_threads=None))]
    fn encode_batch(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        allowed: Vec<u32>,
        num_threads: Option<usize>,
    ) -> PyResult<Vec<Vec<u32>>> {
        let mm = self.matcher(&allowed)?;
        let pool = super::pool(num_threads)?;
        let m = &self.inner;
        Ok(py.detach(|| pool.install(|| m.encode_batch(&texts, mm.as_deref())))?)
    }

    #[pyo3(signature = (texts, allowed, num_threads=None))]
    fn encode_batch_numpy<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        allowed: Vec<u32>,
        num_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>)> {
        let mm = self.matcher(&allowed)?;
        let pool = super::pool(num_threads)?;
        let m = &self.inner;
        let (flat, offsets) = py.detach(|| -> crate::Result<(Vec<u32>, Vec<i64>)> {
            let parts = pool.install(|| m.encode_batch(&texts, mm.as_deref()))?;
            Ok(super::convert::flatten(parts))
        })?;
        Ok((flat.into_pyarray(py), offsets.into_pyarray(py)))
    }

    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Vec<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let v = super::convert::ids_to_u32(&ids, self.inner.vocab_size())?;
        let m = &self.inner;
        let bytes = py.detach(|| m.decode_bytes(&v))?;
        Ok(PyBytes::new(py, &bytes))
    }
}

#[allow(clippy::too_many_arguments)]
fn learn_config(
    in_rate: f64,
    out_rate: f64,
    life: i64,
    update_rate: f64,
    max_chunk_len: Option<i64>,
    inspect_context: bool,
    article_len: i64,
    seed: i64,
    protect_chars: bool,
) -> PyResult<LearnConfig> {
    let pos = |name: &str, v: i64| -> PyResult<usize> {
        usize::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| {
            InputError::new_err(format!("{name} must be a positive integer, got {v}"))
        })
    };
    let cfg = LearnConfig {
        in_rate,
        out_rate,
        life: u32::try_from(pos("life", life)?)
            .map_err(|_| InputError::new_err("life is too large"))?,
        update_rate,
        max_chunk_len: max_chunk_len.map(|m| pos("max_chunk_len", m)).transpose()?,
        inspect_context,
        article_len: pos("article_len", article_len)?,
        // CPython seeds with |n|
        seed: seed.unsigned_abs(),
        protect_chars,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Train a LiB tokenizer on sentences (lines without `\n`). `progress(step, steps,
/// lexicon_size, probation_size, tokens_per_byte)` is called about 200 times; return `False` or
/// raise to stop. Returns the model and a summary dict.
#[pyfunction]
#[pyo3(signature = (*, sentences, steps, vocab_size=None, special_tokens=Vec::new(), in_rate=0.25,
                    out_rate=0.0001, life=10, update_rate=0.1, max_chunk_len=Some(16),
                    inspect_context=true, article_len=200, seed=0, protect_chars=true,
                    segmenter="lib".to_string(), pretokenize=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn train_lib<'py>(
    py: Python<'py>,
    sentences: Vec<String>,
    steps: i64,
    vocab_size: Option<i64>,
    special_tokens: Vec<String>,
    in_rate: f64,
    out_rate: f64,
    life: i64,
    update_rate: f64,
    max_chunk_len: Option<i64>,
    inspect_context: bool,
    article_len: i64,
    seed: i64,
    protect_chars: bool,
    segmenter: String,
    pretokenize: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(LibModel, Bound<'py, PyDict>)> {
    let steps = u64::try_from(steps)
        .map_err(|_| InputError::new_err(format!("steps must be >= 0, got {steps}")))?;
    let vocab_size = vocab_size
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| InputError::new_err(format!("vocab_size must be positive, got {v}")))
        })
        .transpose()?;
    let opts = TrainOptions {
        learn: learn_config(
            in_rate,
            out_rate,
            life,
            update_rate,
            max_chunk_len,
            inspect_context,
            article_len,
            seed,
            protect_chars,
        )?,
        steps,
        vocab_size,
        special_tokens,
        rule: Rule::parse(&segmenter)?,
        pretokenize,
    };
    let error: Mutex<Option<PyErr>> = Mutex::new(None);
    let result = py.detach(|| {
        let mut cb = |r: &lm::StepReport| -> bool {
            let Some(cb) = &progress else { return true };
            Python::attach(|py| {
                match cb.call1(
                    py,
                    (r.step, r.steps, r.lexicon, r.probation, r.tokens_per_byte),
                ) {
                    Ok(v) => !v.bind(py).is(&*pyo3::types::PyBool::new(py, false)),
                    Err(e) => {
                        if let Ok(mut slot) = error.lock() {
                            slot.get_or_insert(e);
                        }
                        false
                    }
                }
            })
        };
        lm::train(&sentences, &opts, &mut cb)
    });
    let (model, s) = match result {
        Ok(x) => x,
        Err(e) => {
            if let Some(pe) = error.lock().ok().and_then(|mut s| s.take()) {
                return Err(pe);
            }
            return Err(e.into());
        }
    };
    let d = PyDict::new(py);
    d.set_item("steps", s.steps)?;
    d.set_item("lexicon_size", s.lexicon)?;
    d.set_item("probation_size", s.probation)?;
    d.set_item("clean_size", s.clean)?;
    d.set_item("units", s.kept)?;
    d.set_item("unused_on_train", s.unused_on_train)?;
    d.set_item("multiword_share", s.multiword_share)?;
    Ok((LibModel::wrap(model), d))
}

/// The raw learner (spec section 3): run `steps` articles and return `(L, P, clean L)` as
/// lists of str. With `protect_chars=False` this is the v2023 reference's state exactly.
#[pyfunction]
#[pyo3(signature = (*, sentences, steps, in_rate=0.25, out_rate=0.0001, life=10,
                    update_rate=0.1, max_chunk_len=None, inspect_context=true, article_len=500,
                    seed=0, protect_chars=false, pretokenize=None))]
#[allow(clippy::too_many_arguments)]
pub fn lib_learn(
    py: Python<'_>,
    sentences: Vec<String>,
    steps: i64,
    in_rate: f64,
    out_rate: f64,
    life: i64,
    update_rate: f64,
    max_chunk_len: Option<i64>,
    inspect_context: bool,
    article_len: i64,
    seed: i64,
    protect_chars: bool,
    pretokenize: Option<String>,
) -> PyResult<(Vec<String>, Vec<String>, Vec<String>)> {
    let pretok = pretokenize
        .as_deref()
        .map(crate::pretokenize::Pretokenizer::new)
        .transpose()?;
    let cfg = learn_config(
        in_rate,
        out_rate,
        life,
        update_rate,
        max_chunk_len,
        inspect_context,
        article_len,
        seed,
        protect_chars,
    )?;
    if steps < 0 {
        return Err(InputError::new_err("steps must be >= 0"));
    }
    if sentences.iter().any(|s| s.contains('\n')) {
        return Err(InputError::new_err("sentences must not contain '\\n'"));
    }
    let to_s = |v: Vec<Vec<u8>>| -> Vec<String> {
        v.into_iter()
            .map(|u| String::from_utf8_lossy(&u).into_owned())
            .collect()
    };
    let (l, p, c) = py.detach(|| -> crate::Result<_> {
        let mut learner = Learner::new(cfg)?.with_pretokenizer(pretok);
        for _ in 0..steps {
            learner.learn(&sentences)?;
        }
        Ok((
            learner.lexicon().units(),
            learner.probation(),
            learner.clean_units(),
        ))
    })?;
    Ok((to_s(l), to_s(p), to_s(c)))
}

/// Segment each of `sentences` with `units` (priority order) by the rule `segmenter`
/// (`"reference"` = v2023 `apply`, `"lib"`, `"greedy"`); pieces as str, in parallel.
#[pyfunction]
#[pyo3(signature = (units, sentences, *, segmenter="reference"))]
pub fn lib_apply(
    py: Python<'_>,
    units: Vec<String>,
    sentences: Vec<String>,
    segmenter: &str,
) -> PyResult<Vec<Vec<String>>> {
    let seg = Segmenter::new(&units, Rule::parse(segmenter)?)?;
    Ok(py.detach(|| {
        sentences
            .par_iter()
            .map(|s| {
                seg.segment(s.as_bytes())
                    .into_iter()
                    .map(|p| s[p.start..p.end].to_string())
                    .collect()
            })
            .collect()
    }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LibModel>()?;
    m.add_function(wrap_pyfunction!(train_lib, m)?)?;
    m.add_function(wrap_pyfunction!(lib_learn, m)?)?;
    m.add_function(wrap_pyfunction!(lib_apply, m)?)?;
    Ok(())
}
