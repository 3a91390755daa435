//! `train_bpe`: stream files or a Python iterator of strings into piece counts (GIL released
//! while counting), then learn merges (GIL released).

use super::convert::Int;
use super::errors::InputError;
use super::model::PyTokenModel;
use crate::bpe::count::{PieceCounts, Utf8Policy};
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

/// Train a byte-level BPE model. Returns the model and the count of each merge.
#[pyfunction]
#[pyo3(signature = (*, files=None, texts=None, vocab_size, min_frequency=Int::from(0), special_tokens=Vec::new(),
                    pattern="cl100k".to_string(), tie_order="hf".to_string(), errors="strict".to_string(),
                    progress=None, num_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn train_bpe(
    py: Python<'_>,
    files: Option<Vec<PathBuf>>,
    texts: Option<Bound<'_, PyAny>>,
    vocab_size: Int,
    min_frequency: Int,
    special_tokens: Vec<String>,
    pattern: String,
    tie_order: String,
    errors: String,
    progress: Option<Py<PyAny>>,
    num_threads: Option<Int>,
) -> PyResult<(PyTokenModel, Vec<u64>)> {
    let cfg = TrainConfig {
        // the upper bound of vocab_size is the core's (`validate`), which says why
        vocab_size: vocab_size.size("vocab_size", 0, usize::MAX)?,
        min_frequency: min_frequency.within("min_frequency", 0, i64::MAX)? as u64,
        special_tokens,
        tie_order: TieOrder::parse(&tie_order)?,
    };
    validate(&cfg)?;
    let policy = Utf8Policy::parse(&errors)?;
    let pretok = Pretokenizer::new(&pattern)?;
    let pool = super::pool(num_threads)?;
    let prog = Arc::new(PyProgress {
        cb: progress,
        error: Mutex::new(None),
    });
    let fail = |e: crate::Error, prog: &PyProgress| -> PyErr {
        prog.take_error().unwrap_or_else(|| e.into())
    };

    let mut counts = PieceCounts::new();
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
    let trained = super::interruptible(py, &pool, || {
        train(counts, pretok, &cfg, &*prog).map_err(|e| fail(e, &prog))
    })?;
    let counts = trained.log.iter().map(|m| m.count).collect();
    Ok((PyTokenModel::new(trained.bpe), counts))
}
