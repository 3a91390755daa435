//! `TokenModel`: the one Python class over every tokforge model ([`crate::TokenModel`]: BPE or
//! LiB), immutable and thread-safe. Encoding releases the GIL; `encode_batch` builds the Python
//! lists while worker threads still encode; lists of ids share one Python int per id, written
//! straight into the list's item array; a text's ids are encoded into a buffer kept per thread
//! and copied once into the list or array ([`encoded`]).
//! Capabilities of one family (merges, units) are `None` on the other, or raise `InputError`.

use crate::batch_texts::BatchTexts;
use crate::bpe::{Bpe, Priority};
use crate::cancel::{self, Cancel};
use crate::formats::detect::{self, LoadOptions, Loaded};
use crate::formats::tiktoken;
use crate::lib_model::{self as lm, Rule};
use crate::model::{Caller, ModelKind, Split, TokenModel};
use crate::pretokenize::{Preset, Pretokenizer};
use crate::scratch_ids::ScratchIds;
use crate::special::SpecialMatcher;
use numpy::{IntoPyArray, PyArray1};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::convert::{ids_to_u32, named_ids, str_utf8, Int};
use super::errors::InputError;

/// A tokenizer model: byte-level BPE or LiB, behind one set of methods.
#[pyclass(frozen, name = "TokenModel", module = "tokforge._core")]
pub struct PyTokenModel {
    inner: Arc<dyn TokenModel>,
    matcher_cache: super::convert::MatcherCache,
    /// one Python int per id, made on first use: lists of ids are then built by reference
    /// instead of allocating an int per token (measured: the batch encoder's serial part)
    ints: OnceLock<Vec<Py<PyAny>>>,
}

impl PyTokenModel {
    pub(crate) fn new(model: impl TokenModel + 'static) -> Self {
        Self {
            inner: Arc::new(model),
            matcher_cache: Default::default(),
            ints: OnceLock::new(),
        }
    }

    /// The BPE model, or an `InputError` saying that `what` needs one.
    pub(crate) fn bpe(&self, what: &str) -> PyResult<Arc<Bpe>> {
        self.inner
            .clone()
            .into_bpe()
            .ok_or_else(|| wrong_kind(what, ModelKind::Bpe, self.inner.kind()))
    }

    /// The LiB model, or an `InputError` saying that `what` needs one.
    fn lib(&self, what: &str) -> PyResult<&lm::LibModel> {
        self.inner
            .as_lib()
            .ok_or_else(|| wrong_kind(what, ModelKind::Lib, self.inner.kind()))
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
        // Written item by item into a list of the final size: measured 13 % faster on the
        // list path than `PyList::new` over an iterator of bound references (cl100k, 26 MB).
        // Fresh ints (`PyLong_FromUnsignedLong`) per token were slower still than sharing.
        let n = ffi::Py_ssize_t::try_from(ids.len())
            .map_err(|_| InputError::new_err("too many ids for a Python list"))?;
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= ints.len()) {
            return Err(InputError::new_err(format!(
                "id {bad} is outside the vocabulary"
            )));
        }
        // SAFETY: `PyList_New` returns a new list of `n` NULL slots (or NULL with an exception
        // set), tracked by the cycle collector; each slot `k < n` is then set exactly once to a
        // new reference (the shared int, incremented), either straight into the list's item
        // array (`list_items`: CPython's layout, verified on a real list) or through
        // `PyList_SetItem`, which steals it; every id was checked to index `ints`; the full
        // list is untracked once (legal for a tracked object). The GIL is held (`py`).
        unsafe {
            let list = ffi::PyList_New(n);
            if list.is_null() {
                return Err(PyErr::fetch(py));
            }
            match list_items(py, list) {
                Some(items) => {
                    for (k, &i) in ids.iter().enumerate() {
                        // the shared ints are spread over a few MiB: start loading the count
                        // of the int `LIST_AHEAD` items on (checked ids, like every `i`)
                        if let Some(&j) = ids.get(k + LIST_AHEAD) {
                            prefetch_write(ints[j as usize].as_ptr());
                        }
                        let o = ints[i as usize].as_ptr();
                        if i > SMALL_INT_MAX {
                            // an int made for this model, never immortal: its count is the
                            // first field of the object (what `Py_INCREF` does, without a call)
                            *o.cast::<ffi::Py_ssize_t>() += 1;
                        } else {
                            // CPython's shared small ints (immortal from 3.12)
                            ffi::Py_IncRef(o);
                        }
                        *items.add(k) = o;
                    }
                }
                None => {
                    for (k, &i) in ids.iter().enumerate() {
                        let o = ints[i as usize].as_ptr();
                        ffi::Py_IncRef(o);
                        ffi::PyList_SetItem(list, k as ffi::Py_ssize_t, o);
                    }
                }
            }
            // A list of ints cannot be part of a reference cycle, so the cycle collector need
            // not see it: each of its passes would otherwise visit every id of every list the
            // caller keeps (measured: 17 % of a list pass over 26.5 MB that keeps its lists,
            // o200k), as CPython spares tuples of atomic objects. Should the caller later put
            // the list into a cycle of its own, the collector will not free that cycle.
            ffi::PyObject_GC_UnTrack(list.cast());
            Ok(Bound::from_owned_ptr(py, list).cast_into_unchecked())
        }
    }

    /// The pool of a batch on `num_threads` threads, the pool threads that encode and the
    /// longest text (in bytes, exclusive) the calling thread encodes itself. Where the model
    /// lets the calling thread encode (BPE), it is one of the `n` threads, for texts short
    /// enough to leave Ctrl-C unchecked while it encodes one, and the pool has `n - 1` threads:
    /// a pool thread with no part in the batch woke with it and spun on the cores the others
    /// needed (docs/bpe.md §13.5, twentieth round). On one thread the pool (of one) encodes
    /// only the longer texts, while the calling thread waits. Other models: the pool of `n`
    /// encodes and the calling thread takes care of the results.
    fn batch_crew(&self, num_threads: Option<Int>) -> PyResult<BatchCrew> {
        let n = super::threads_wanted(num_threads)?;
        let (workers, own) = if self.inner.calling_thread_encodes() {
            (n - 1, super::INTERRUPTIBLE_BYTES)
        } else {
            (n, 0)
        };
        // one thread: the pool encodes only the texts too long for this one
        Ok(BatchCrew {
            pool: super::pool_of(workers.max(1))?,
            workers,
            own,
        })
    }

    /// The special-token matcher for `ids` (the argument `what`) that refuses the text of the
    /// specials `refused` (ids), cached for the last sets asked for.
    fn matcher(
        &self,
        ids: &[Int],
        what: &str,
        refused: &[Int],
    ) -> PyResult<Option<Arc<SpecialMatcher>>> {
        let n = self.inner.vocab_size();
        let mut key = ids_to_u32(ids, what, n)?;
        let split = key.len();
        if !refused.is_empty() {
            // (no id is u32::MAX: ids are below the vocabulary's size)
            key.push(u32::MAX);
            key.extend(ids_to_u32(refused, "refused", n)?);
        }
        self.matcher_cache.get(&key, |key| {
            let refused = key.get(split + 1..).unwrap_or_default();
            self.inner.special_rules(&key[..split], refused)
        })
    }
}

/// The threads of a batch ([`PyTokenModel::batch_crew`]): its pool, kept alive for the call.
struct BatchCrew {
    pool: Arc<rayon::ThreadPool>,
    workers: usize,
    own: usize,
}

impl BatchCrew {
    fn split(&self) -> Split<'_> {
        Split {
            pool: &self.pool,
            workers: self.workers,
            own: self.own,
            alone_below: ALONE_BELOW,
        }
    }
}

/// A batch of fewer bytes than this is encoded by the calling thread alone ([`Split`]). A pool
/// thread asleep since the last call starts about 20 us after it is woken, and the calling
/// thread waits for it at the end: with 100 us between calls (cl100k, warm, 8 texts a call),
/// two threads took 51.7 / 32.3 / 32.6 / 47.5 us a call of 4 / 8 / 16 / 32 KiB against
/// 8.5 / 15.1 / 30.8 / 58.4 us on one thread (docs/bpe.md §13.5, twenty-second round).
const ALONE_BELOW: usize = 16 << 10;

/// Items of a list ahead of the one written whose int `id_list` prefetches.
const LIST_AHEAD: usize = 16;

/// Start loading the object at `o` into the cache (a hint: no effect on memory).
#[inline(always)]
fn prefetch_write(o: *mut ffi::PyObject) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint neither reads nor writes memory, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(o.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = o;
}

/// The largest of CPython's shared small ints (`-5..=256`, immortal from 3.12); the ints above
/// it that `id_list` shares are made by this module.
const SMALL_INT_MAX: u32 = 256;

/// Where a `PyListObject` keeps its item pointer, when this interpreter lays lists out as
/// CPython does (`PyObject_VAR_HEAD`: count, type, size; then `PyObject **ob_item`): checked
/// once on a real list, `None` (so `PyList_SetItem` per item) when the check fails (a debug
/// build with extra header fields, another implementation). Writing the items straight into
/// the array skips two C-API calls per token (`Py_IncRef`, `PyList_SetItem`), which the
/// stable ABI otherwise needs; fastokens builds its lists the same way.
fn list_items_offset(py: Python<'_>) -> Option<usize> {
    static OFFSET: OnceLock<Option<usize>> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        let off = 3 * std::mem::size_of::<usize>();
        // SAFETY: C-API calls on objects made here, with the GIL held (`py`); the read at
        // `off` stays inside the list object (at least a `PyVarObject` and its item pointer on
        // every CPython), and the item array is read only when that pointer is not NULL.
        unsafe {
            let _ = py;
            let probe = ffi::PyLong_FromLong(123_456_789);
            let list = ffi::PyList_New(1);
            if probe.is_null() || list.is_null() {
                ffi::PyErr_Clear();
                for o in [probe, list] {
                    if !o.is_null() {
                        ffi::Py_DecRef(o);
                    }
                }
                return None;
            }
            // steals `probe`, on failure too
            if ffi::PyList_SetItem(list, 0, probe) != 0 {
                ffi::PyErr_Clear();
                ffi::Py_DecRef(list);
                return None;
            }
            let items = *list
                .cast::<u8>()
                .add(off)
                .cast::<*const *mut ffi::PyObject>();
            let ok = !items.is_null() && *items == probe;
            ffi::Py_DecRef(list);
            ok.then_some(off)
        }
    })
}

/// The item array of `list` (see [`list_items_offset`]).
///
/// # Safety
/// `list` is a live list object, the GIL is held.
unsafe fn list_items(py: Python<'_>, list: *mut ffi::PyObject) -> Option<*mut *mut ffi::PyObject> {
    let off = list_items_offset(py)?;
    // SAFETY: `off` was checked to hold the item pointer of a list on this interpreter.
    let items = unsafe { *list.cast::<u8>().add(off).cast::<*mut *mut ffi::PyObject>() };
    (!items.is_null()).then_some(items)
}

/// The one message for a capability asked of another model family.
fn wrong_kind(what: &str, needed: ModelKind, actual: ModelKind) -> PyErr {
    InputError::new_err(match (needed, actual) {
        (ModelKind::Bpe, ModelKind::Lib) => format!(
            "{what} exists only for BPE tokenizers, and this is a LiB tokenizer (units chosen by \
             larger-first segmentation, not merges); Tokenizer.save() writes it as tokforge's \
             LiB JSON"
        ),
        (ModelKind::Bpe, _) => format!(
            "{what} exists only for byte-level BPE tokenizers, and this is a SentencePiece-style \
             BPE tokenizer (kind 'sentencepiece': merges over the characters of normalized text, \
             not bytes; docs/bpe.md §11)"
        ),
        (_, ModelKind::SentencePiece) => format!(
            "{what} exists only for LiB tokenizers, and this is a SentencePiece-style BPE \
             tokenizer (Tokenizer.kind tells them apart)"
        ),
        _ => format!(
            "{what} exists only for LiB tokenizers, and this is a BPE tokenizer (Tokenizer.kind \
             tells them apart)"
        ),
    })
}

impl From<Loaded> for PyTokenModel {
    fn from(l: Loaded) -> Self {
        match l {
            Loaded::Bpe(b) => Self::new(b),
            Loaded::Lib(m) => Self::new(m),
            Loaded::SentencePiece(m) => Self::new(m),
        }
    }
}

#[pymethods]
impl PyTokenModel {
    // ---- constructors -------------------------------------------------------------------
    /// Load a tokenizer file of any format tokforge reads, detected from its content: HF
    /// `tokenizer.json`, a `.tiktoken` rank file, Mistral tekken JSON (BPE) or tokforge's LiB
    /// JSON. `pattern` and `special_tokens` (`(text, id)`) are for rank files, which carry
    /// neither (OpenAI's own files, named `gpt2`, `r50k_base`, `cl100k_base`, `o200k_base`, get
    /// OpenAI's); given for another format they are an `InputError`.
    #[staticmethod]
    #[pyo3(signature = (path, pattern=None, special_tokens=None))]
    fn from_file(
        py: Python<'_>,
        path: PathBuf,
        pattern: Option<String>,
        special_tokens: Option<Vec<(String, Int)>>,
    ) -> PyResult<Self> {
        let opts = LoadOptions {
            pattern,
            special_tokens: special_tokens
                .map(|s| named_ids(s, "special_tokens"))
                .transpose()?,
        };
        Ok(py.detach(|| detect::load_file(&path, &opts))?.into())
    }

    /// Load the tokenizer of a llama.cpp GGUF file (its metadata only, never the tensors).
    #[staticmethod]
    fn from_gguf(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let m = py.detach(|| crate::formats::gguf::load_file(&path))?;
        Ok(detect::Loaded::from(m.0).into())
    }

    /// Load a SentencePiece `.model` file of type BPE (no `sentencepiece` needed).
    #[staticmethod]
    fn from_sentencepiece(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let name = path.display().to_string();
        let m = py.detach(|| -> crate::Result<_> {
            let data = std::fs::read(&path).map_err(|e| crate::Error::io(&path, e))?;
            crate::formats::sp_model::from_bytes(&data, &name)
        })?;
        Ok(Self::new(m))
    }

    /// Load from JSON text: HF `tokenizer.json`, Mistral tekken JSON or tokforge's LiB JSON.
    #[staticmethod]
    fn from_json_str(py: Python<'_>, text: &str) -> PyResult<Self> {
        Ok(py
            .detach(|| detect::load_str(text, "<string>", &LoadOptions::default()))?
            .into())
    }

    /// A tiktoken-style BPE model from `(bytes, rank)` pairs.
    #[staticmethod]
    fn from_ranks(
        py: Python<'_>,
        ranks: Vec<(Vec<u8>, Int)>,
        pattern: &str,
        special_tokens: Vec<(String, Int)>,
    ) -> PyResult<Self> {
        let ranks = ranks
            .into_iter()
            .enumerate()
            .map(|(k, (t, r))| {
                let what = format_args!("ranks[{k}] (rank of {:?})", String::from_utf8_lossy(&t));
                let r = r.new_id(what)?;
                Ok((t, r))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let special_tokens = named_ids(special_tokens, "special_tokens")?;
        let pretok = Pretokenizer::new(pattern)?;
        let bpe = py.detach(|| Bpe::from_ranks(ranks, special_tokens, pretok))?;
        Ok(Self::new(bpe))
    }

    /// A LiB model from units in priority order (ids follow specials and the 256 byte tokens).
    #[staticmethod]
    #[pyo3(signature = (units, special_tokens=Vec::new(), segmenter="lib"))]
    fn from_units(
        units: Vec<String>,
        special_tokens: Vec<String>,
        segmenter: &str,
    ) -> PyResult<Self> {
        let rule = Rule::parse(segmenter)?;
        let units = units.into_iter().map(String::into_bytes).collect();
        Ok(Self::new(lm::LibModel::new(
            units,
            special_tokens,
            rule,
            serde_json::Value::Null,
        )?))
    }

    // ---- files --------------------------------------------------------------------------
    /// The model in its own format: HF `tokenizer.json` text (BPE) or tokforge's LiB JSON.
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        let m = &self.inner;
        Ok(py.detach(|| m.to_json())?)
    }

    /// `.tiktoken` text: regular tokens with rank = id (BPE only). Special tokens are not part
    /// of the format.
    fn to_tiktoken(&self) -> PyResult<String> {
        let bpe = self.bpe("a .tiktoken rank file")?;
        Ok(tiktoken::to_string(&bpe.regular_tokens()))
    }

    // ---- description --------------------------------------------------------------------
    /// `"bpe"`, `"lib"` or `"sentencepiece"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind().name()
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    /// The regex whose pieces are encoded independently (LiB: lines and newlines).
    #[getter]
    fn pattern(&self) -> &str {
        self.inner.pattern()
    }

    /// Short name of `pattern`: a preset name, `"custom"` or `"lib"`.
    #[getter]
    fn pattern_name(&self) -> &str {
        self.inner.pattern_name()
    }

    /// The pre-tokenizer applied before the model, as a preset name or regex: BPE's, or LiB's
    /// "no-supra" mode; `None` for LiB without it.
    #[getter]
    fn pretokenize(&self) -> Option<String> {
        self.inner.pretokenizer().map(|p| match p.preset() {
            Some(pr) => pr.name().to_string(),
            None => p.pattern().to_string(),
        })
    }

    /// `[(text, id)]` of the special tokens, by id.
    #[getter]
    fn special_tokens(&self) -> Vec<(String, u32)> {
        self.inner.specials().to_vec()
    }

    /// BPE: the merges as `(left_id, right_id)` in priority order; LiB: `None`.
    #[getter]
    fn merges(&self) -> Option<Vec<(u32, u32)>> {
        self.inner.merges().map(<[_]>::to_vec)
    }

    /// BPE: whether a piece that is a token is emitted whole before merging; LiB: `None`.
    #[getter]
    fn ignore_merges(&self) -> Option<bool> {
        self.inner.as_bpe().map(Bpe::ignore_merges)
    }

    /// BPE: whether merge priority is the merge-list order (`"merges"`, HF) or the rank of the
    /// concatenation (`"ranks"`, tiktoken); LiB: `None`.
    #[getter]
    fn priority(&self) -> Option<&'static str> {
        self.inner.as_bpe().map(|b| match b.priority() {
            Priority::MergeOrder => "merges",
            Priority::Rank => "ranks",
        })
    }

    /// LiB: units in id order (ids start after the special and byte tokens); BPE: `None`.
    #[getter]
    fn units(&self) -> Option<Vec<String>> {
        self.inner.as_lib().map(|m| {
            m.units()
                .iter()
                .map(|u| String::from_utf8_lossy(u).into_owned())
                .collect()
        })
    }

    /// LiB: the segmentation rule, `"lib"`, `"reference"` or `"greedy"`; BPE: `None`.
    #[getter]
    fn segmenter(&self) -> Option<&'static str> {
        self.inner.as_lib().map(|m| m.rule().name())
    }

    /// LiB: the training settings stored with the model, as JSON text; BPE: `None`.
    #[getter]
    fn training(&self) -> Option<String> {
        self.inner.as_lib().map(|m| m.training().to_string())
    }

    /// The same LiB units with another segmentation rule (LiB only).
    fn with_segmenter(&self, segmenter: &str) -> PyResult<Self> {
        let m = self.lib("with_segmenter")?;
        Ok(Self::new(m.with_rule(Rule::parse(segmenter)?)?))
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenModel(kind='{}', vocab_size={}, pattern='{}')",
            self.kind(),
            self.vocab_size(),
            self.pattern_name()
        )
    }

    // ---- vocabulary ---------------------------------------------------------------------
    /// Bytes of token `id` (a special token's text).
    fn token_bytes<'py>(&self, py: Python<'py>, id: Int) -> PyResult<Bound<'py, PyBytes>> {
        let t =
            super::convert::token_of(&id, self.inner.vocab_size(), |i| self.inner.token_bytes(i))?;
        Ok(PyBytes::new(py, t))
    }

    /// Id of a regular token given by its bytes, or of a special token given by its text
    /// (a str that is not a special token is looked up by its UTF-8 bytes).
    fn token_id(&self, token: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        if let Ok(b) = token.cast::<PyBytes>() {
            return Ok(self.inner.id_of(b.as_bytes()));
        }
        if let Ok(s) = token.extract::<String>() {
            return Ok(self
                .inner
                .special_id(&s)
                .or_else(|| self.inner.id_of(s.as_bytes())));
        }
        Err(InputError::new_err("token must be bytes or str"))
    }

    /// Whether `id` is a special token (`False` for any int that is not an id).
    fn is_special(&self, id: Int) -> bool {
        id.id("id", 0).is_ok_and(|i| self.inner.is_special(i))
    }

    // ---- encoding -----------------------------------------------------------------------
    /// Length in characters of the longest prefix of `text` whose ids cannot depend on what
    /// follows it (0 if none): lets a stream be encoded in chunks with the ids of the whole.
    fn stream_cut(&self, text: &str) -> usize {
        text[..self.inner.stream_cut(text)].chars().count()
    }

    /// Ids of `text`; special-token text is encoded as ordinary text.
    fn encode_ordinary<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyList>> {
        let text = str_utf8(text)?;
        let m = &self.inner;
        encoded(
            py,
            text,
            |ids| m.encode_into(text, None, ids),
            |ids| self.id_list(py, &ids),
        )
    }

    /// Ids of `text`; the special tokens in `allowed` (ids) are recognised in the text, and the
    /// text of those in `refused` is an `InputError` (tiktoken's `disallowed_special`).
    #[pyo3(signature = (text, allowed, refused=Vec::new()))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
        allowed: Vec<Int>,
        refused: Vec<Int>,
    ) -> PyResult<Bound<'py, PyList>> {
        let text = str_utf8(text)?;
        let sm = self.matcher(&allowed, "allowed", &refused)?;
        let m = &self.inner;
        encoded(
            py,
            text,
            |ids| m.encode_into(text, sm.as_deref(), ids),
            |ids| self.id_list(py, &ids),
        )
    }

    /// First occurrence of one of the special tokens `ids` in `text`: `(char_start, id)`.
    fn find_special(
        &self,
        text: &Bound<'_, PyString>,
        ids: Vec<Int>,
    ) -> PyResult<Option<(usize, u32)>> {
        let text = str_utf8(text)?;
        let m = self.matcher(&ids, "ids", &[])?;
        Ok(m.and_then(|m| m.find(text, 0))
            .map(|(s, _, id)| (text[..s].chars().count(), id)))
    }

    /// Ids with the byte span `[start, end)` of each token in the UTF-8 text (specials as in
    /// `encode`).
    #[pyo3(signature = (text, allowed, refused=Vec::new()))]
    fn encode_with_spans(
        &self,
        py: Python<'_>,
        text: &str,
        allowed: Vec<Int>,
        refused: Vec<Int>,
    ) -> PyResult<(Vec<u32>, Vec<(usize, usize)>)> {
        let sm = self.matcher(&allowed, "allowed", &refused)?;
        let m = &self.inner;
        long_call(py, text, || m.encode_with_spans(text, sm.as_deref()))
    }

    /// Ids of `text` as a `uint32` array (see [`ids_array`]); specials as in `encode`.
    #[pyo3(signature = (text, allowed, refused=Vec::new()))]
    fn encode_numpy<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
        allowed: Vec<Int>,
        refused: Vec<Int>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let text = str_utf8(text)?;
        let sm = self.matcher(&allowed, "allowed", &refused)?;
        let m = &self.inner;
        encoded(
            py,
            text,
            |ids| m.encode_into(text, sm.as_deref(), ids),
            |ids| Ok(ids_array(py, ids)),
        )
    }

    /// Ids of `text` as a `uint32` array, special-token text encoded as plain text.
    fn encode_ordinary_numpy<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let text = str_utf8(text)?;
        let m = &self.inner;
        encoded(
            py,
            text,
            |ids| m.encode_into(text, None, ids),
            |ids| Ok(ids_array(py, ids)),
        )
    }

    /// The piece table of the encoder (docs/bpe.md §13), summed over its per-thread tables:
    /// `{"tables", "entries", "seed", "slots", "bytes", "limit"}`; `None` for a model without one.
    fn cache_info(&self) -> Option<std::collections::BTreeMap<&'static str, usize>> {
        self.inner.piece_cache().map(|c| {
            let i = c.info();
            std::collections::BTreeMap::from([
                ("tables", i.tables),
                ("entries", i.entries),
                ("seed", i.seed),
                ("slots", i.slots),
                ("bytes", i.bytes),
                ("limit", i.limit),
            ])
        })
    }

    /// Most pieces one table of the encoder may hold (default 786432, about 32 MiB per encoding
    /// thread). Changes memory and speed, never ids.
    fn set_cache_limit(&self, entries: Int) -> PyResult<()> {
        let n = entries.size("entries", 0, 1 << 28)?;
        let c = self.inner.piece_cache().ok_or_else(|| {
            InputError::new_err(format!(
                "set_cache_limit: this {} model has no piece table",
                self.inner.kind().name()
            ))
        })?;
        c.set_limit(n);
        Ok(())
    }

    /// Encode many texts in parallel: one list of ids per text. This thread turns finished
    /// texts into Python lists (holding the GIL only for that) and, with two threads or more,
    /// is one of the encoding threads: between its own texts it builds the lists of the
    /// others', so list building overlaps encoding and no core waits. The threads read each
    /// str's own UTF-8 buffer (as `encode_numpy` does): no copy of the texts per call; this
    /// thread first makes that buffer for the strs that have none yet ([`StrFeed`]) while the
    /// others encode those done. Ctrl-C (or an error) stops the threads at their next check; no
    /// partial result is returned.
    /// Specials as in `encode`: each thread checks the texts it takes, and the first error
    /// found names its text (with several threads, not always the first text that holds one).
    #[pyo3(signature = (texts, allowed, num_threads=None, refused=Vec::new()))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        allowed: Vec<Int>,
        num_threads: Option<Int>,
        refused: Vec<Int>,
    ) -> PyResult<Bound<'py, PyList>> {
        let sm = self.matcher(&allowed, "allowed", &refused)?;
        let crew = self.batch_crew(num_threads)?;
        let split = crew.split();
        // `texts` holds the strs, and the threads are done before it is dropped (the call
        // below returns only after them)
        let coming = StrFeed::coming(&texts)?;
        let stop = Cancel::new();
        let (tx, rx) = std::sync::mpsc::channel::<(usize, crate::Result<Vec<u32>>)>();
        let mut lists = ListBuilder {
            model: self,
            rx,
            lists: (0..texts.len()).map(|_| None).collect(),
            done: 0,
            error: None,
            stop: &stop,
            feed: StrFeed {
                strs: &texts,
                texts: &coming,
            },
        };
        let (m, refs, sm) = (&self.inner, &coming, sm.as_deref());
        let sink = move |i, ids| {
            // the receiver lives until the batch has ended
            let _ = tx.send((i, ids));
        };
        py.detach(|| {
            cancel::scope(&stop, || {
                m.encode_each_here(split, refs, sm, &sink, &mut lists)
            })
        });
        if lists.error.is_none() {
            // a batch that stopped on a text's error may have left it unread
            lists.between(false);
        }
        if let Some(e) = lists.error {
            return Err(e);
        }
        let lists = lists
            .lists
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| super::errors::TokforgeError::new_err("encoding workers stopped"))?;
        PyList::new(py, lists)
    }

    /// Encode many texts in parallel into one flat `uint32` array plus `int64` offsets
    /// (`ids[offsets[i]:offsets[i+1]]` belong to text `i`): no Python object per token. With two
    /// threads or more this thread is one of the encoding threads (for the texts short enough
    /// to leave Ctrl-C unchecked while it encodes one); it checks for Ctrl-C between them and
    /// while it waits for the others. It first makes the UTF-8 form of the strs that have none
    /// yet ([`StrFeed`]) while the others encode those done. No partial result is returned.
    /// Specials as in `encode_batch`.
    #[pyo3(signature = (texts, allowed, num_threads=None, refused=Vec::new()))]
    fn encode_batch_numpy<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        allowed: Vec<Int>,
        num_threads: Option<Int>,
        refused: Vec<Int>,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>)> {
        let sm = self.matcher(&allowed, "allowed", &refused)?;
        let crew = self.batch_crew(num_threads)?;
        let split = crew.split();
        // each str's own UTF-8 buffer (cached in the str, as `encode_numpy` reads it), not a
        // copy per call: `texts` holds the strs, so the slices outlive the work
        let coming = StrFeed::coming(&texts)?;
        let stop = Cancel::new();
        let mut checks = SignalChecks {
            stop: &stop,
            last: std::time::Instant::now(),
            // waiting only for the pool: it unparks this thread when it is done
            wait: if crew.own == 0 {
                super::POLL
            } else {
                WAIT_STEP
            },
            error: None,
            feed: StrFeed {
                strs: &texts,
                texts: &coming,
            },
        };
        let (m, refs, sm) = (&self.inner, &coming, sm.as_deref());
        // the flat array: a freed one's memory when one fits (its pages are mapped already)
        let out = py.detach(|| {
            cancel::scope(&stop, || {
                m.encode_batch_flat_here(
                    split,
                    refs,
                    sm,
                    &mut super::output_pool::take,
                    &mut checks,
                )
            })
        });
        if let Some(e) = checks.error {
            return Err(e);
        }
        let (flat, offsets) = out?;
        Ok((
            super::output_pool::into_numpy(py, flat)?,
            offsets.into_pyarray(py),
        ))
    }

    /// Bytes of a sequence of ids.
    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Vec<Int>) -> PyResult<Bound<'py, PyBytes>> {
        let v = ids_to_u32(&ids, "ids", self.inner.vocab_size())?;
        let m = &self.inner;
        let bytes = py.detach(|| m.decode_bytes(&v))?;
        Ok(PyBytes::new(py, &bytes))
    }
}

/// Owned buffers of at most this many ids are copied into numpy's own memory ([`ids_array`]).
const COPY_IDS: usize = 1024;

/// `ids` as a `uint32` array. Borrowed ids (a thread's buffer, [`encoded`]) and a short owned
/// buffer are copied into an array numpy allocates: one object from numpy's allocator, cheaper
/// than wrapping a buffer in an owner object and an array (which was a fifth of a short text's
/// call). A longer owned buffer is wrapped without a copy.
fn ids_array<'py>(py: Python<'py>, ids: Cow<'_, [u32]>) -> Bound<'py, PyArray1<u32>> {
    match ids {
        Cow::Owned(v) if v.len() > COPY_IDS => v.into_pyarray(py),
        ids => PyArray1::from_slice(py, &ids),
    }
}

/// `then` of the ids `encode` appends to an empty buffer. A text shorter than
/// [`super::INTERRUPTIBLE_BYTES`] is encoded on this thread into its scratch buffer
/// ([`ScratchIds`], kept for its next call): the ids are then copied once into what the
/// caller keeps, of their exact size. A fresh buffer per call, grown as the ids came, was
/// copied at each growth and touched fresh pages each time (a cold pass over the 26 MB bench
/// sample: 20,500 page faults -> 18,000; a warm one 1,800 -> 150 and 1.1x faster, gpt2). A
/// longer text is encoded on a worker ([`long_call`]) into a buffer of its own, handed over
/// owned.
fn encoded<R>(
    py: Python<'_>,
    text: &str,
    encode: impl FnOnce(&mut Vec<u32>) -> crate::Result<()> + Send,
    then: impl FnOnce(Cow<'_, [u32]>) -> PyResult<R>,
) -> PyResult<R> {
    if text.len() >= super::INTERRUPTIBLE_BYTES {
        let ids = long_call(py, text, || {
            let mut ids = Vec::with_capacity(text.len() / 3);
            encode(&mut ids).map(|()| ids)
        })?;
        return then(Cow::Owned(ids));
    }
    let mut ids = ScratchIds::default();
    let done = py.detach(|| encode(&mut ids));
    done.map_err(PyErr::from)
        .and_then(|()| then(Cow::Borrowed(&ids)))
}

/// `work` on `text`: on the calling thread for short texts, else on a worker while this thread
/// polls for Ctrl-C ([`super::interruptible`]).
fn long_call<T: Send>(
    py: Python<'_>,
    text: &str,
    work: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    if text.len() < super::INTERRUPTIBLE_BYTES {
        return Ok(py.detach(work)?);
    }
    super::interruptible(py, &*super::pool(None)?, work)
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

/// Pre-tokenizer preset and special tokens of one of OpenAI's rank files, by file stem
/// (`gpt2`, `r50k_base`, `cl100k_base`, `o200k_base`), as `(preset, [(text, id)])`; `None`
/// for other stems. The one table `.tiktoken` loading and `tokforge.tiktoken` use.
#[pyfunction]
pub fn tiktoken_preset(stem: &str) -> Option<(&'static str, Vec<(String, u32)>)> {
    crate::formats::tiktoken::preset_for_stem(stem)
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

/// Whether a batch's calling thread goes on after `r`: on an error (Ctrl-C, a list it could
/// not build) the batch is stopped and the first error kept.
fn go_on(r: PyResult<()>, stop: &Cancel, error: &mut Option<PyErr>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            stop.set();
            error.get_or_insert(e);
            false
        }
    }
}

/// How long the calling thread of `encode_batch_numpy` parks at a time while it waits for a
/// text of 1 MiB or more to be taken by a worker (it takes the shorter texts after it).
const WAIT_STEP: std::time::Duration = std::time::Duration::from_micros(200);

/// The calling thread's part in `encode_batch_numpy`, between the texts it encodes and while
/// it waits (parked, woken when every text's ids are written): Ctrl-C is checked every
/// [`super::POLL`].
struct SignalChecks<'a> {
    stop: &'a Cancel,
    last: std::time::Instant,
    wait: std::time::Duration,
    error: Option<PyErr>,
    feed: StrFeed<'a>,
}

impl Caller for SignalChecks<'_> {
    fn between(&mut self, wait: bool) -> bool {
        if wait {
            std::thread::park_timeout(self.wait);
        }
        if self.last.elapsed() < super::POLL {
            return true;
        }
        self.last = std::time::Instant::now();
        go_on(
            Python::attach(|py| py.check_signals()),
            self.stop,
            &mut self.error,
        )
    }

    /// It takes care of no text: done only once it has stopped the batch.
    fn done(&self) -> bool {
        self.error.is_some()
    }

    fn feed(&mut self) -> bool {
        self.feed.run(self.stop, &mut self.error)
    }
}

/// `encode_batch`'s calling thread taking care of finished texts: each becomes a Python list.
struct ListBuilder<'a> {
    model: &'a PyTokenModel,
    rx: std::sync::mpsc::Receiver<(usize, crate::Result<Vec<u32>>)>,
    lists: Vec<Option<Py<PyList>>>,
    done: usize,
    error: Option<PyErr>,
    stop: &'a Cancel,
    feed: StrFeed<'a>,
}

impl Caller for ListBuilder<'_> {
    fn between(&mut self, wait: bool) -> bool {
        let mut got: Vec<_> = self.rx.try_iter().collect();
        if got.is_empty() {
            if !wait {
                return true;
            }
            // a timeout (the sender lives until the batch ends): Ctrl-C is checked below
            if let Ok(first) = self.rx.recv_timeout(super::POLL) {
                got.push(first);
                got.extend(self.rx.try_iter());
            }
        }
        let built = Python::attach(|py| -> PyResult<()> {
            for (i, ids) in got {
                let list = self.model.id_list(py, &ids?)?;
                if let Some(slot) = self.lists.get_mut(i) {
                    *slot = Some(list.unbind());
                    self.done += 1;
                }
            }
            // results may stream in without a pause: check for Ctrl-C on every round
            py.check_signals()
        });
        go_on(built, self.stop, &mut self.error)
    }

    fn done(&self) -> bool {
        self.done == self.lists.len() || self.error.is_some()
    }

    fn feed(&mut self) -> bool {
        self.feed.run(self.stop, &mut self.error)
    }
}

/// The strs of a batch made to arrive as UTF-8 text ([`Caller::feed`]). CPython makes the
/// UTF-8 form of a str with non-ASCII characters on its first use (and keeps it with the str),
/// under the interpreter's lock: one str after another on the calling thread, while the
/// pool's threads encode the texts made (for new text this was a serial third of the batch).
struct StrFeed<'a> {
    strs: &'a [Bound<'a, PyString>],
    texts: &'a BatchTexts<'a>,
}

// SAFETY: a batch's feed runs on the thread that started the batch, the one that holds `strs`
// (it crosses `py.detach`, never a thread), and reads the strs only with the interpreter's lock
// held (`Python::attach`).
unsafe impl Send for StrFeed<'_> {}

/// Strs between two checks for Ctrl-C in a feed (at most [`super::POLL`] apart).
const FEED_CHECK: usize = 64;

impl<'a> StrFeed<'a> {
    /// The texts of `strs`, none arrived yet (their characters counted).
    fn coming(strs: &[Bound<'_, PyString>]) -> PyResult<BatchTexts<'a>> {
        let mut chars = 0usize;
        for s in strs {
            chars = chars.saturating_add(s.len()?);
        }
        Ok(BatchTexts::coming(strs.len(), chars))
    }

    /// Every str made to arrive, Ctrl-C checked every [`super::POLL`]. On an error (a str with
    /// a lone surrogate, Ctrl-C) the batch is stopped and the first error kept.
    fn run(&self, stop: &Cancel, error: &mut Option<PyErr>) -> bool {
        Python::attach(|py| {
            let mut last = std::time::Instant::now();
            for (i, s) in self.strs.iter().enumerate() {
                match str_utf8(s) {
                    Ok(t) => self.texts.arrive(t),
                    Err(e) => return go_on(Err(e), stop, error),
                }
                if i % FEED_CHECK == FEED_CHECK - 1 && last.elapsed() >= super::POLL {
                    last = std::time::Instant::now();
                    if !go_on(py.check_signals(), stop, error) {
                        return false;
                    }
                }
            }
            true
        })
    }
}
