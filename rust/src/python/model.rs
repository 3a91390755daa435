//! `BpeModel`: an immutable, thread-safe handle on a [`Bpe`] for Python.

use crate::bpe::encode::SpecialMatcher;
use crate::bpe::{Bpe, Priority};
use crate::formats::{hf_json, tiktoken};
use crate::pretokenize::{Preset, Pretokenizer};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use super::errors::InputError;

#[pyclass(frozen, module = "tokforge._core")]
pub struct BpeModel {
    pub(crate) inner: Arc<Bpe>,
    matcher_cache: super::convert::MatcherCache,
    /// one Python int per id, made on first use: lists of ids are then built by reference
    /// instead of allocating an int per token (measured: the batch encoder's serial part)
    ints: std::sync::OnceLock<Vec<Py<PyAny>>>,
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
        Ok(Self::wrap(bpe))
    }

    /// Load from `tokenizer.json` text.
    #[staticmethod]
    fn from_json_str(text: &str) -> PyResult<Self> {
        Ok(Self::wrap(hf_json::from_str(text, "<string>")?))
    }

    /// The model as `tokenizer.json` text.
    fn to_json(&self) -> PyResult<String> {
        Ok(hf_json::to_string(&self.inner)?)
    }

    /// `.tiktoken` text: regular tokens with rank = id. Special tokens are not part of the format.
    fn to_tiktoken(&self) -> String {
        tiktoken::to_string(&self.inner.regular_tokens())
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
        let t =
            super::convert::token_of(id, self.inner.vocab_size(), |i| self.inner.token_bytes(i))?;
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

    /// Whether merge priority is the merge-list order (`"merges"`, HF) or the rank of the
    /// concatenation (`"ranks"`, tiktoken).
    #[getter]
    fn priority(&self) -> &'static str {
        match self.inner.priority() {
            Priority::MergeOrder => "merges",
            Priority::Rank => "ranks",
        }
    }

    /// Length in characters of the longest prefix of `text` whose pieces cannot depend on what
    /// follows it (0 if none): lets a stream be encoded in chunks with the ids of the whole.
    fn stream_cut(&self, text: &str) -> usize {
        match self.inner.pretokenizer().last_safe_cut(text) {
            Some(b) => text[..b].chars().count(),
            None => 0,
        }
    }

    /// Ids of `text`; special-token text is encoded as ordinary text.
    fn encode_ordinary<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyList>> {
        let bpe = &self.inner;
        let ids = py.detach(|| bpe.encode_ordinary(text))?;
        self.id_list(py, &ids)
    }

    /// Ids of `text`; the special tokens in `allowed` (ids) are recognised in the text.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        allowed: Vec<u32>,
    ) -> PyResult<Bound<'py, PyList>> {
        let m = self.matcher(&allowed)?;
        let bpe = &self.inner;
        let ids = py.detach(|| bpe.encode(text, m.as_deref()))?;
        self.id_list(py, &ids)
    }

    /// First occurrence of one of the special tokens `ids` in `text`: `(char_start, id)`.
    fn find_special(&self, text: &str, ids: Vec<u32>) -> PyResult<Option<(usize, u32)>> {
        let m = self.matcher(&ids)?;
        Ok(m.and_then(|m| m.find(text, 0))
            .map(|(s, _, id)| (text[..s].chars().count(), id)))
    }

    /// Ids with the byte span `[start, end)` of each token in the UTF-8 text.
    fn encode_with_spans(
        &self,
        py: Python<'_>,
        text: &str,
        allowed: Vec<u32>,
    ) -> PyResult<(Vec<u32>, Vec<(usize, usize)>)> {
        let m = self.matcher(&allowed)?;
        let bpe = &self.inner;
        let (ids, spans) = py.detach(|| bpe.encode_with_spans(text, m.as_deref()))?;
        Ok((ids, spans.into_iter().map(|s| (s.start, s.end)).collect()))
    }

    /// Encode many texts in parallel: one list of ids per text. Worker threads encode while this
    /// thread (holding the GIL only for that) turns finished texts into Python lists, so list
    /// building overlaps encoding instead of following it.
    #[pyo3(signature = (texts, allowed, num_threads=None))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        allowed: Vec<u32>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let m = self.matcher(&allowed)?;
        let pool = super::pool(num_threads)?;
        let n = texts.len();
        let texts = Arc::new(texts);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, crate::Result<Vec<u32>>)>();
        {
            let (bpe, texts, m) = (self.inner.clone(), texts.clone(), m.clone());
            pool.spawn(move || {
                (0..n).into_par_iter().for_each_with(tx, |tx, i| {
                    // a closed receiver means the caller already failed: nothing to report to
                    let _ = tx.send((i, bpe.encode(&texts[i], m.as_deref())));
                });
            });
        }
        let rx = Mutex::new(rx); // so that waiting can happen with the GIL released
        let stopped = || super::errors::TokforgeError::new_err("encoding workers stopped");
        let mut lists: Vec<Option<Bound<'py, PyList>>> = (0..n).map(|_| None).collect();
        let mut done = 0;
        while done < n {
            // wait (GIL released) for at least one text, then take every text already finished
            let ready = py.detach(|| -> Option<Vec<(usize, crate::Result<Vec<u32>>)>> {
                let rx = rx.lock().ok()?;
                let mut got = vec![rx.recv().ok()?];
                got.extend(rx.try_iter());
                Some(got)
            });
            for (i, ids) in ready.ok_or_else(stopped)? {
                lists[i] = Some(self.id_list(py, &ids?)?);
                done += 1;
            }
        }
        PyList::new(py, lists.into_iter().flatten())
    }

    /// Encode many texts in parallel into one flat `uint32` array plus `int64` offsets
    /// (`ids[offsets[i]:offsets[i+1]]` belong to text `i`): no Python object per token.
    #[pyo3(signature = (texts, allowed, num_threads=None))]
    fn encode_batch_numpy<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        allowed: Vec<u32>,
        num_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>)> {
        let m = self.matcher(&allowed)?;
        let pool = super::pool(num_threads)?;
        let bpe = &self.inner;
        let (flat, offsets) = py.detach(|| -> crate::Result<(Vec<u32>, Vec<i64>)> {
            let parts = pool.install(|| {
                texts
                    .par_iter()
                    .map(|t| bpe.encode(t, m.as_deref()))
                    .collect::<crate::Result<Vec<_>>>()
            })?;
            Ok(super::convert::flatten(parts))
        })?;
        Ok((flat.into_pyarray(py), offsets.into_pyarray(py)))
    }

    /// Bytes of a sequence of ids.
    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Vec<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let v = super::convert::ids_to_u32(&ids, self.inner.vocab_size())?;
        let bpe = &self.inner;
        let bytes = py.detach(|| bpe.decode_bytes(&v))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Load a tiktoken rank file; `special_tokens` maps text to id.
    #[staticmethod]
    fn from_tiktoken_file(
        py: Python<'_>,
        path: PathBuf,
        pattern: &str,
        special_tokens: Vec<(String, u32)>,
    ) -> PyResult<Self> {
        let name = path.display().to_string();
        let pretok = Pretokenizer::new(pattern)?;
        let bpe = py.detach(|| -> crate::Result<Bpe> {
            let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
            let ranks = tiktoken::parse(&text, &name)?;
            Bpe::from_ranks(ranks, special_tokens, pretok)
        })?;
        Ok(Self::wrap(bpe))
    }

    /// A tiktoken-style model from `(bytes, rank)` pairs.
    #[staticmethod]
    fn from_ranks(
        ranks: Vec<(Vec<u8>, u32)>,
        pattern: &str,
        special_tokens: Vec<(String, u32)>,
    ) -> PyResult<Self> {
        let pretok = Pretokenizer::new(pattern)?;
        Ok(Self::wrap(Bpe::from_ranks(ranks, special_tokens, pretok)?))
    }
}

impl BpeModel {
    pub(crate) fn wrap(bpe: Bpe) -> Self {
        Self {
            inner: Arc::new(bpe),
            matcher_cache: Default::default(),
            ints: std::sync::OnceLock::new(),
        }
    }

    /// A Python list of ids, sharing one int object per id.
    fn id_list<'py>(&self, py: Python<'py>, ids: &[u32]) -> PyResult<Bound<'py, PyList>> {
        let ints = self.ints.get_or_init(|| {
            (0..self.inner.vocab_size() as u32)
                .map(|i| match i.into_pyobject(py) {
                    Ok(o) => o.into_any().unbind(),
                    Err(never) => match never {},
                })
                .collect()
        });
        PyList::new(py, ids.iter().map(|&i| ints[i as usize].bind(py)))
    }

    /// The special-token matcher for `ids`, cached for the last set asked for.
    fn matcher(&self, ids: &[u32]) -> PyResult<Option<Arc<SpecialMatcher>>> {
        self.matcher_cache
            .get(ids, |ids| self.inner.special_matcher(ids))
    }
}

/// Split `text` into pre-tokenization pieces with a preset name or a regex.
#[pyfunction]
pub fn pretokenize(py: Python<'_>, pattern: &str, text: &str) -> PyResult<Vec<String>> {
    let p = Pretokenizer::new(pattern)?;
    let pieces = py.detach(|| {
        p.pieces(text)
            .map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>())
    })?;
    Ok(pieces)
}

/// `pattern` (a preset name or a regex) spelled for HF `tokenizers`' Oniguruma engine so that it
/// gives the same pieces there.
#[pyfunction]
pub fn hf_pattern(pattern: &str) -> PyResult<String> {
    Ok(Pretokenizer::new(pattern)?.hf_pattern())
}

/// Bytes a GPT-2 byte-level spelling stands for (as in HF `tokenizer.json` vocabularies), or
/// `None` if a character is outside that alphabet.
#[pyfunction]
pub fn byte_level_decode<'py>(py: Python<'py>, text: &str) -> Option<Bound<'py, PyBytes>> {
    crate::byte_level::decode_str(text).map(|v| PyBytes::new(py, &v))
}

/// The exact regex of a preset (`gpt2`, `cl100k`, `o200k`).
#[pyfunction]
pub fn preset_pattern(name: &str) -> PyResult<&'static str> {
    Preset::from_name(name).map(Preset::pattern).ok_or_else(|| {
        InputError::new_err(format!(
            "unknown preset {name:?}; expected gpt2, cl100k or o200k"
        ))
    })
}
