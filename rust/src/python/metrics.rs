//! Bindings of [`crate::metrics`]: borrow the text and the numpy tables, release the GIL, return
//! the counts as a dict. `tokforge.metrics.corpus` owns the API and the docstrings.

use crate::metrics;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

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
) -> PyResult<Bound<'py, PyDict>> {
    let text = text.as_bytes();
    let ids = ids.as_slice()?;
    let lengths = lengths.as_slice()?;
    let flags = flags.as_slice()?;
    let c = py.detach(|| {
        let doc_lens = metrics::doc_byte_lens(text, &doc_chars)?;
        metrics::stream_counts(text, &doc_lens, ids, lengths, flags)
    })?;
    let d = PyDict::new(py);
    d.set_item("words", c.words)?;
    d.set_item("continued_words", c.continued_words)?;
    d.set_item("chars", c.chars)?;
    d.set_item("split_chars", c.split_chars)?;
    d.set_item("partial_tokens", c.partial_tokens)?;
    d.set_item("byte_fallback_tokens", c.byte_fallback_tokens)?;
    d.set_item("line_tokens", c.line_tokens.into_pyarray(py))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(stream_counts, m)?)
}
