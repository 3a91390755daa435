//! `count_pieces`: stream files or a Python iterator of strings into a piece-count table (GIL
//! released while counting); `train_from_counts`: learn merges from one (GIL released).

use super::convert::Int;
use super::counts::PyPieceCounts;
use super::errors::InputError;
use super::model::PyTokenModel;
use crate::bpe::count::{Documents, Limit, PieceCounts, Utf8Policy};
use crate::bpe::train::{train, validate, TieOrder, TrainConfig};
use crate::pretokenize::Pretokenizer;
use crate::progress::Progress;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Strings pulled from a Python iterator per batch (as rustbpe), unless the batch reaches
/// [`BATCH_BYTES`] first.
const BATCH_DOCS: usize = 8192;
const BATCH_BYTES: usize = 32 << 20;

/// Adapts an optional Python callable `(stage, done, total) -> bool | None` to [`Progress`].
/// An exception in the callback stops the work and is re-raised.
pub(crate) struct PyProgress {
    cb: Option<Py<PyAny>>,
    error: Mutex<Option<PyErr>>,
}

impl Progress for PyProgress {
    fn report(&self, stage: &str, done: u64, total: u64) -> bool {
        let Some(cb) = &self.cb else { return true };
        Python::attach(|py| match cb.call1(py, (stage, done, total)) {
            Ok(r) => !r.bind(py).is(&*pyo3::types::PyBool::new(py, false)),
            Err(e) => {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(e);
                }
                false
            }
        })
    }
}

/// Shifts per-file byte counts into one count over all files.
struct Offset<'a> {
    inner: &'a dyn Progress,
    base: u64,
    total: u64,
}

impl Progress for Offset<'_> {
    fn report(&self, stage: &str, done: u64, _total: u64) -> bool {
        self.inner.report(stage, self.base + done, self.total)
    }
}

impl PyProgress {
    pub(crate) fn new(cb: Option<Py<PyAny>>) -> Self {
        Self {
            cb,
            error: Mutex::new(None),
        }
    }

    pub(crate) fn take_error(&self) -> Option<PyErr> {
        self.error.lock().ok().and_then(|mut s| s.take())
    }
}

/// Count the pieces of files and/or an iterator of strings (GIL released while counting).
#[pyfunction]
#[pyo3(signature = (*, files=None, texts=None, pattern="cl100k".to_string(), documents="file".to_string(),
                    errors="strict".to_string(), max_pieces=None, prune=false, progress=None, num_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn count_pieces(
    py: Python<'_>,
    files: Option<Vec<PathBuf>>,
    texts: Option<Bound<'_, PyAny>>,
    pattern: String,
    documents: String,
    errors: String,
    max_pieces: Option<Int>,
    prune: bool,
    progress: Option<Py<PyAny>>,
    num_threads: Option<Int>,
) -> PyResult<PyPieceCounts> {
    let policy = Utf8Policy::parse(&errors)?;
    let pretok = Pretokenizer::new(&pattern)?;
    let limit = limit(max_pieces, prune)?;
    let mut counts = PieceCounts::with_options(Documents::parse(&documents)?, limit)?;
    let pool = super::pool(num_threads)?;
    let prog = Arc::new(PyProgress::new(progress));
    let fail = |e: crate::Error, prog: &PyProgress| -> PyErr {
        prog.take_error().unwrap_or_else(|| e.into())
    };

    let files = files.unwrap_or_default();
    // one "count" bar over all files: bytes read so far of the bytes of all files
    let grand_total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut done_before = 0u64;
    for f in &files {
        let offset = Offset {
            inner: &*prog,
            base: done_before,
            total: grand_total,
        };
        super::interruptible(py, &pool, || {
            counts
                .add_file(&pretok, f, policy, &offset)
                .map_err(|e| fail(e, &prog))
        })?;
        done_before = counts.bytes;
    }
    if let Some(texts) = texts {
        if texts.is_instance_of::<PyString>() {
            return Err(InputError::new_err(
                "texts must be an iterable of str, not a single str (wrap it in a list)",
            ));
        }
        let mut it = texts.try_iter()?;
        let mut index = 0usize;
        loop {
            let mut batch: Vec<String> = Vec::new();
            let mut bytes = 0usize;
            for item in it.by_ref() {
                let item = item?;
                let s = item.cast::<PyString>().map_err(|_| {
                    InputError::new_err(format!(
                        "texts[{index}] is {}, not str",
                        item.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })?;
                let s = match s.to_cow() {
                    Ok(s) => s.to_string(),
                    Err(_) if policy != Utf8Policy::Strict => s.to_string_lossy().into_owned(),
                    Err(_) => {
                        return Err(InputError::new_err(format!(
                            "texts[{index}] contains a lone surrogate, which is not valid UTF-8 (pass errors=\"replace\")"
                        )))
                    }
                };
                index += 1;
                bytes += s.len();
                batch.push(s);
                if batch.len() >= BATCH_DOCS || bytes >= BATCH_BYTES {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            py.check_signals()?; // a C-level iterator (a list) runs no signal handler itself
            super::interruptible(py, &pool, || counts.add_docs(&pretok, &batch))?;
            if !prog.report("count", counts.bytes, 0) {
                return Err(prog.take_error().unwrap_or_else(|| {
                    super::errors::StoppedError::new_err("stopped by the progress callback")
                }));
            }
        }
    }
    Ok(PyPieceCounts::new(pretok, counts))
}

/// The memory bound from the Python arguments (`max_pieces=None`: unbounded).
pub(crate) fn limit(max_pieces: Option<Int>, prune: bool) -> PyResult<Option<Limit>> {
    match max_pieces {
        None if prune => Err(InputError::new_err(
            "prune=True needs max_pieces=N: pruning happens only past that many unique pieces",
        )),
        None => Ok(None),
        Some(n) => Ok(Some(Limit {
            max_pieces: n.size("max_pieces", 1, usize::MAX)?,
            prune,
        })),
    }
}

/// The training settings, checked (the one place: `Tokenizer.train` checks them before it reads
/// the corpus, `train_from_counts` again).
fn config(
    vocab_size: Int,
    min_frequency: Int,
    special_tokens: Vec<String>,
    tie_order: &str,
) -> PyResult<TrainConfig> {
    let cfg = TrainConfig {
        // the upper bound of vocab_size is the core's (`validate`), which says why
        vocab_size: vocab_size.size("vocab_size", 0, usize::MAX)?,
        min_frequency: min_frequency.within("min_frequency", 0, i64::MAX)? as u64,
        special_tokens,
        tie_order: TieOrder::parse(tie_order)?,
    };
    validate(&cfg)?;
    Ok(cfg)
}

/// Check training settings without training (raises what `train_from_counts` would).
#[pyfunction]
#[pyo3(signature = (*, vocab_size, min_frequency=Int::from(0), special_tokens=Vec::new(), tie_order="hf".to_string()))]
pub fn check_train_settings(
    vocab_size: Int,
    min_frequency: Int,
    special_tokens: Vec<String>,
    tie_order: String,
) -> PyResult<()> {
    config(vocab_size, min_frequency, special_tokens, &tie_order).map(|_| ())
}

/// Learn BPE merges from a piece-count table. Returns the model and the count of each merge.
#[pyfunction]
#[pyo3(signature = (counts, *, vocab_size, min_frequency=Int::from(0), special_tokens=Vec::new(),
                    tie_order="hf".to_string(), progress=None, num_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn train_from_counts(
    py: Python<'_>,
    counts: PyRef<'_, PyPieceCounts>,
    vocab_size: Int,
    min_frequency: Int,
    special_tokens: Vec<String>,
    tie_order: String,
    progress: Option<Py<PyAny>>,
    num_threads: Option<Int>,
) -> PyResult<(PyTokenModel, Vec<u64>)> {
    let cfg = config(vocab_size, min_frequency, special_tokens, &tie_order)?;
    let pool = super::pool(num_threads)?;
    let prog = PyProgress::new(progress);
    let (pretok, table) = counts.parts();
    let pretok = pretok.clone();
    let trained = super::interruptible(py, &pool, || {
        train(table, pretok, &cfg, &prog).map_err(|e| prog.take_error().unwrap_or_else(|| e.into()))
    })?;
    let counts = trained.log.iter().map(|m| m.count).collect();
    Ok((PyTokenModel::new(trained.bpe), counts))
}
