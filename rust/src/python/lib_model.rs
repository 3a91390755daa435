//! Bindings of [`crate::lib_model`] beyond the model itself (a LiB model is a
//! `tokforge._core.TokenModel`, see `model.rs`): `train_lib` and its typed summary, the raw
//! learner `lib_learn` / `lib_apply` used by the golden tests and the benchmark, and the
//! multiword test. Training releases the GIL.

use super::convert::Int;
use super::errors::InputError;
use super::model::PyTokenModel;
use crate::lib_model::{self as lm, LearnConfig, Learner, Rule, Segmenter, TrainOptions};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyList, PyString};
use rayon::prelude::*;
use std::sync::Mutex;

/// What a LiB training run did (returned by `train_lib` with the model).
#[pyclass(frozen, get_all, module = "tokforge._core")]
pub struct LibTrainSummary {
    /// Articles read.
    steps: u64,
    /// Training sentences (lines) read.
    sentences: usize,
    /// Size of the lexicon at the end, probation included.
    lexicon_size: usize,
    /// Units on probation at the end.
    probation_size: usize,
    /// Units after the clean-up (before cutting to the vocabulary size).
    clean_size: usize,
    /// Units kept in the model.
    units: usize,
    /// Kept units the model never emits on the training sentences.
    unused_on_train: usize,
    /// Share of kept units with whitespace inside (multiword units).
    multiword_share: f64,
}

#[pymethods]
impl LibTrainSummary {
    fn __repr__(&self) -> String {
        format!(
            "LibTrainSummary(steps={}, sentences={}, lexicon_size={}, probation_size={}, \
             clean_size={}, units={}, unused_on_train={}, multiword_share={})",
            self.steps,
            self.sentences,
            self.lexicon_size,
            self.probation_size,
            self.clean_size,
            self.units,
            self.unused_on_train,
            self.multiword_share
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn learn_config(
    in_rate: f64,
    out_rate: f64,
    life: Int,
    update_rate: f64,
    max_chunk_len: Option<Int>,
    inspect_context: bool,
    article_len: Int,
    seed: Int,
    protect_chars: bool,
) -> PyResult<LearnConfig> {
    let pos = |name: &str, v: &Int| v.size(name, 1, usize::MAX);
    let cfg = LearnConfig {
        in_rate,
        out_rate,
        life: u32::try_from(pos("life", &life)?).map_err(|_| {
            InputError::new_err(format!(
                "life={life} is out of range: expected 1 <= life <= {}",
                u32::MAX
            ))
        })?,
        update_rate,
        max_chunk_len: max_chunk_len
            .map(|m| pos("max_chunk_len", &m))
            .transpose()?,
        inspect_context,
        article_len: pos("article_len", &article_len)?,
        // CPython seeds with |n|
        seed: seed.within("seed", -i64::MAX, i64::MAX)?.unsigned_abs(),
        protect_chars,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Train a LiB tokenizer on sentences (lines without `\n`). `progress(step, steps,
/// lexicon_size, probation_size, tokens_per_byte)` is called about 200 times; return `False` or
/// raise to stop. Returns the model and a [`LibTrainSummary`].
#[pyfunction]
#[pyo3(signature = (*, sentences, steps, vocab_size=None, special_tokens=Vec::new(), in_rate=0.25,
                    out_rate=0.0001, life=Int::from(10), update_rate=0.1, max_chunk_len=Some(Int::from(16)),
                    inspect_context=true, article_len=Int::from(200), seed=Int::from(0), protect_chars=true,
                    segmenter="lib".to_string(), pretokenize=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn train_lib(
    py: Python<'_>,
    sentences: Vec<String>,
    steps: Int,
    vocab_size: Option<Int>,
    special_tokens: Vec<String>,
    in_rate: f64,
    out_rate: f64,
    life: Int,
    update_rate: f64,
    max_chunk_len: Option<Int>,
    inspect_context: bool,
    article_len: Int,
    seed: Int,
    protect_chars: bool,
    segmenter: String,
    pretokenize: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(PyTokenModel, LibTrainSummary)> {
    let steps = steps.within("steps", 0, i64::MAX)? as u64;
    // ids are u32: a larger vocabulary cannot exist
    let vocab_size = vocab_size
        .map(|v| v.size("vocab_size", 0, u32::MAX as usize))
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
    // the training result is kept as is (an error may stand for one the callback raised)
    let result = super::interruptible(py, &*super::pool(None)?, || {
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
        Ok::<_, PyErr>(lm::train(&sentences, &opts, &mut cb))
    })?;
    let (model, s) = match result {
        Ok(x) => x,
        Err(e) => {
            if let Some(pe) = error.lock().ok().and_then(|mut s| s.take()) {
                return Err(pe);
            }
            return Err(e.into());
        }
    };
    let summary = LibTrainSummary {
        steps: s.steps,
        sentences: s.sentences,
        lexicon_size: s.lexicon,
        probation_size: s.probation,
        clean_size: s.clean,
        units: s.kept,
        unused_on_train: s.unused_on_train,
        multiword_share: s.multiword_share,
    };
    Ok((PyTokenModel::new(model), summary))
}

/// The raw learner (docs/lib.md §3): run `steps` articles and return `(L, P, clean L)` as
/// lists of str. With `protect_chars=False` this is the v2023 reference's state exactly.
/// `sentences` is a list of str, or one str holding them joined by `\n` (one conversion of the
/// text instead of one per line: thousands of short lines of code cost ~0.3 ms to convert);
/// with a str, `lines` (if given) is the number of lines it must split into (a line holding
/// `\n` is refused here, where the text is split anyway, instead of by a second scan in Python).
#[pyfunction]
#[pyo3(signature = (*, sentences, steps, in_rate=0.25, out_rate=0.0001, life=Int::from(10),
                    update_rate=0.1, max_chunk_len=None, inspect_context=true, article_len=Int::from(500),
                    seed=Int::from(0), protect_chars=false, pretokenize=None, lines=None))]
#[allow(clippy::too_many_arguments)]
pub fn lib_learn<'py>(
    py: Python<'py>,
    sentences: &Bound<'py, PyAny>,
    steps: Int,
    in_rate: f64,
    out_rate: f64,
    life: Int,
    update_rate: f64,
    max_chunk_len: Option<Int>,
    inspect_context: bool,
    article_len: Int,
    seed: Int,
    protect_chars: bool,
    pretokenize: Option<String>,
    lines: Option<usize>,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>)> {
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
    let steps = steps.within("steps", 0, i64::MAX)?;
    // a str is borrowed as UTF-8 (no copy into a String: the joined text of a code corpus is
    // ~100 KB, and its conversion is most of the call's fixed cost)
    let (text, list): (Option<PyBackedStr>, Vec<String>) = match sentences.extract() {
        Ok(t) => (Some(t), Vec::new()),
        Err(_) => (None, sentences.extract()?),
    };
    let sentences: Vec<&str> = match &text {
        Some(t) => t.split('\n').collect(),
        None => list.iter().map(String::as_str).collect(),
    };
    let split_inside = match (&text, lines) {
        (Some(_), Some(n)) => sentences.len() != n,
        _ => list.iter().any(|s| s.contains('\n')),
    };
    if split_inside {
        return Err(InputError::new_err("sentences must not contain '\\n'"));
    }
    // bytes the learner will read: an article is `article_len` lines (at most all of them)
    let per_line = sentences.iter().map(|s| s.len()).sum::<usize>() / sentences.len().max(1);
    let reads = usize::try_from(steps)
        .unwrap_or(usize::MAX)
        .saturating_mul(cfg.article_len.min(sentences.len()))
        .saturating_mul(per_line.max(1));
    let work = || -> crate::Result<_> {
        let mut learner = Learner::new(cfg)?.with_pretokenizer(pretok);
        for _ in 0..steps {
            crate::cancel::check()?;
            learner.learn(&sentences)?;
        }
        Ok(learner)
    };
    // a short run (the learner reads tens of MB/s: under a POLL interval) runs here with the
    // GIL released; handing it to a worker and waking this thread again cost ~0.1 ms of CPU
    // time per call, 1 % of a 10 ms run on a code corpus
    let learner = if reads < super::INTERRUPTIBLE_BYTES {
        py.detach(work)?
    } else {
        super::interruptible(py, &*super::pool(None)?, work)?
    };
    // str objects straight from the learner's text arena (no Vec<u8> and String per unit),
    // one per unit of `L`: the clean list and the probation units still in `L` share them
    let lex = learner.lexicon();
    let text = |n: u32| PyString::new(py, &String::from_utf8_lossy(lex.text(n)));
    let units: Vec<Bound<'py, PyString>> = lex.order().iter().map(|&n| text(n)).collect();
    let p = PyList::new(
        py,
        learner.probation_nodes().map(|n| match lex.rank(n) {
            Some(r) => units[r as usize].clone(),
            None => text(n),
        }),
    )?;
    let c = PyList::new(
        py,
        lex.order()
            .iter()
            .zip(&units)
            .filter(|&(&n, _)| learner.is_clean(n))
            .map(|(_, s)| s.clone()),
    )?;
    let l = PyList::new(py, units)?;
    Ok((l, p, c))
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

/// Whether `unit` has whitespace strictly inside (a multiword unit); whitespace is Unicode
/// `White_Space`, as Rust's `char::is_whitespace` (U+001C..U+001F are not whitespace).
#[pyfunction]
pub fn is_multiword(unit: &str) -> bool {
    lm::is_multiword(unit.as_bytes())
}

/// Share of `units` that are multiword (see `is_multiword`); 0.0 for none.
#[pyfunction]
pub fn multiword_share(units: Vec<String>) -> f64 {
    lm::multiword_share(&units)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LibTrainSummary>()?;
    m.add_function(wrap_pyfunction!(train_lib, m)?)?;
    m.add_function(wrap_pyfunction!(lib_learn, m)?)?;
    m.add_function(wrap_pyfunction!(lib_apply, m)?)?;
    m.add_function(wrap_pyfunction!(is_multiword, m)?)?;
    m.add_function(wrap_pyfunction!(multiword_share, m)?)?;
    Ok(())
}
