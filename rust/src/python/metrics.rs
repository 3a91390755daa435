//! Bindings of [`crate::metrics`]: borrow the text and the numpy tables, release the GIL, return
//! the counts as a frozen [`PyStreamCounts`]. `tokforge.metrics.corpus` owns the API and the
//! docstrings.

use crate::metrics::{self, StreamCounts};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// What one pass over a corpus and its ids counted (see `crate::metrics::StreamCounts`).
#[pyclass(frozen, name = "StreamCounts", module = "tokforge._core")]
pub struct PyStreamCounts {
    inner: StreamCounts,
}

#[pymethods]
impl PyStreamCounts {
    /// Whitespace-separated words.
    #[getter]
    fn words(&self) -> u64 {
        self.inner.words
    }
    /// Words split into more than one token.
    #[getter]
    fn continued_words(&self) -> u64 {
        self.inner.continued_words
    }
    /// Characters (code points).
    #[getter]
    fn chars(&self) -> u64 {
        self.inner.chars
    }
    /// Characters whose bytes are spread over more than one token.
    #[getter]
    fn split_chars(&self) -> u64 {
        self.inner.split_chars
    }
    /// Tokens that are not a whole number of characters.
    #[getter]
    fn partial_tokens(&self) -> u64 {
        self.inner.partial_tokens
    }
    /// Single non-ASCII byte tokens (byte fallback).
    #[getter]
    fn byte_fallback_tokens(&self) -> u64 {
        self.inner.byte_fallback_tokens
    }
    /// Tokens of each non-empty line, in order (a fresh `uint32` array).
    #[getter]
    fn line_tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_slice(py, &self.inner.line_tokens)
    }
}

/// One pass over `text` (documents concatenated, UTF-8; `doc_chars` their lengths in code
/// points) and the ids of its encoding: words, continued words, characters, split characters,
/// partial / byte-fallback tokens and tokens per non-empty line.
#[pyfunction]
pub fn stream_counts<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyBytes>,
    doc_chars: Vec<usize>,
    ids: PyReadonlyArray1<'py, u32>,
    lengths: PyReadonlyArray1<'py, u32>,
    flags: PyReadonlyArray1<'py, u8>,
) -> PyResult<PyStreamCounts> {
    let text = text.as_bytes();
    let ids = ids.as_slice()?;
    let lengths = lengths.as_slice()?;
    let flags = flags.as_slice()?;
    let inner = py.detach(|| {
        let doc_lens = metrics::doc_byte_lens(text, &doc_chars)?;
        metrics::stream_counts(text, &doc_lens, ids, lengths, flags)
    })?;
    Ok(PyStreamCounts { inner })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStreamCounts>()?;
    m.add_function(wrap_pyfunction!(stream_counts, m)?)
}
