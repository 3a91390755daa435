//! `BpeModel`: an immutable, thread-safe handle on a [`Bpe`] for Python.

use crate::bpe::Bpe;
use crate::formats::{hf_json, tiktoken};
use crate::pretokenize::{Preset, Pretokenizer};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use std::sync::Arc;

use super::errors::{InputError, VocabError};

#[pyclass(frozen, module = "tokforge._core")]
pub struct BpeModel {
    pub(crate) inner: Arc<Bpe>,
}

#[pymethods]
impl BpeModel {
    /// Load an HF `tokenizer.json`.
    #[staticmethod]
    fn from_json_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let name = path.display().to_string();
        let bpe = py.detach(|| -> crate::Result<Bpe> {
            let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
            hf_json::from_str(&text, &name)
        })?;
        Ok(Self { inner: Arc::new(bpe) })
    }

    /// Load from `tokenizer.json` text.
    #[staticmethod]
    fn from_json_str(text: &str) -> PyResult<Self> {
        Ok(Self { inner: Arc::new(hf_json::from_str(text, "<string>")?) })
    }

    /// The model as `tokenizer.json` text.
    fn to_json(&self) -> PyResult<String> {
        Ok(hf_json::to_string(&self.inner)?)
    }

    /// `.tiktoken` text: regular tokens with rank = id. Special tokens are not part of the format.
    fn to_tiktoken(&self) -> String {
        let ranks: Vec<(Vec<u8>, u32)> = self
            .inner
            .tokens()
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.inner.is_special(*i as u32))
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        tiktoken::to_string(&ranks)
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    #[getter]
    fn pattern(&self) -> &str {
        self.inner.pretokenizer().pattern()
    }

    #[getter]
    fn pattern_name(&self) -> &str {
        self.inner.pretokenizer().name()
    }

    /// `[(text, id)]` of the special tokens, by id.
    #[getter]
    fn special_tokens(&self) -> Vec<(String, u32)> {
        self.inner.specials().to_vec()
    }

    /// The merges as `(left_id, right_id)`, in priority order.
    #[getter]
    fn merges(&self) -> Vec<(u32, u32)> {
        self.inner.merges().to_vec()
    }

    /// Bytes of token `id`.
    fn token_bytes<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyBytes>> {
        let t = u32::try_from(id)
            .ok()
            .and_then(|i| self.inner.token_bytes(i))
            .ok_or_else(|| VocabError::new_err(format!("id {id} is outside the vocabulary of {}", self.inner.vocab_size())))?;
        Ok(PyBytes::new(py, t))
    }

    /// Id of a regular token given by its bytes, or of a special token given by its text.
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

    #[getter]
    fn ignore_merges(&self) -> bool {
        self.inner.ignore_merges()
    }

    /// Ids of `text`; special-token text is encoded as ordinary text.
    fn encode_ordinary(&self, py: Python<'_>, text: &str) -> PyResult<Vec<u32>> {
        let bpe = &self.inner;
        Ok(py.detach(|| bpe.encode_ordinary(text))?)
    }

    /// Bytes of a sequence of ids.
    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Vec<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.inner.vocab_size();
        let mut v = Vec::with_capacity(ids.len());
        for (k, &id) in ids.iter().enumerate() {
            match u32::try_from(id) {
                Ok(i) if (i as usize) < n => v.push(i),
                _ => return Err(VocabError::new_err(format!("ids[{k}] = {id} is outside the vocabulary of {n}"))),
            }
        }
        let bytes = self.inner.decode_bytes(&v).unwrap_or_default();
        Ok(PyBytes::new(py, &bytes))
    }
}

/// Split `text` into pre-tokenization pieces with a preset name or a regex.
#[pyfunction]
pub fn pretokenize(py: Python<'_>, pattern: &str, text: &str) -> PyResult<Vec<String>> {
    let p = Pretokenizer::new(pattern)?;
    let pieces = py.detach(|| p.pieces(text).map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>()))?;
    Ok(pieces)
}

/// The exact regex of a preset (`gpt2`, `cl100k`, `o200k`).
#[pyfunction]
pub fn preset_pattern(name: &str) -> PyResult<&'static str> {
    Preset::from_name(name)
        .map(Preset::pattern)
        .ok_or_else(|| InputError::new_err(format!("unknown preset {name:?}; expected gpt2, cl100k or o200k")))
}
