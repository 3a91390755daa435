//! Conversions shared by the bindings: Python ints checked against the ranges the core needs
//! ([`Int`]: one place, so every size, count and id names the argument and the value instead of
//! pyo3's bare `OverflowError`), ids and the special-token matcher cache.

use super::errors::{InputError, VocabError};
use crate::special::SpecialMatcher;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

/// A Python int as given: its value when it fits `i64`, else its decimal text. Range checks
/// ([`Int::within`], [`Int::id`]) then raise a tokforge error naming the argument and the value.
/// Non-int arguments stay a `TypeError` naming the argument (pyo3's).
#[derive(Debug, Clone)]
pub struct Int(std::result::Result<i64, Box<str>>);

impl<'a, 'py> FromPyObject<'a, 'py> for Int {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<i64>() {
            Ok(v) => Ok(Int(Ok(v))),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                Ok(Int(Err(obj.str()?.to_string().into_boxed_str())))
            }
            Err(e) => Err(e),
        }
    }
}

impl Display for Int {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(v) => write!(f, "{v}"),
            Err(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Int {
    fn from(v: i64) -> Self {
        Int(Ok(v))
    }
}

impl Int {
    /// The value if `lo <= value <= hi`, else an `InputError` "`name`=value is ...".
    pub fn within(&self, name: &str, lo: i64, hi: i64) -> PyResult<i64> {
        match self.0 {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(InputError::new_err(format!(
                "{name}={self} is out of range: expected {lo} <= {name} <= {hi}"
            ))),
        }
    }

    /// Whether the value is below `lo` (a huge value is below when negative).
    pub fn below(&self, lo: i64) -> bool {
        match &self.0 {
            Ok(v) => *v < lo,
            Err(s) => s.starts_with('-'),
        }
    }

    /// The value as a `usize` in `lo..=hi` (see [`Int::within`]).
    pub fn size(&self, name: &str, lo: usize, hi: usize) -> PyResult<usize> {
        let v = self.within(name, to_i64(lo), to_i64(hi))?;
        Ok(usize::try_from(v).unwrap_or(usize::MAX))
    }

    /// A token id (`0..2^32`): a `VocabError` naming `what` (e.g. `ids[3]`) otherwise.
    pub fn id(&self, what: impl Display, vocab_size: usize) -> PyResult<u32> {
        self.0
            .as_ref()
            .ok()
            .and_then(|&v| u32::try_from(v).ok())
            .ok_or_else(|| {
                VocabError::new_err(format!(
                    "{what} = {self} is outside the vocabulary of {vocab_size}"
                ))
            })
    }

    /// A token id or rank in a table being built (`0..2^32`): an `InputError` naming `what`.
    pub fn new_id(&self, what: impl Display) -> PyResult<u32> {
        self.0
            .as_ref()
            .ok()
            .and_then(|&v| u32::try_from(v).ok())
            .ok_or_else(|| {
                InputError::new_err(format!(
                    "{what} = {self} is not a token id (ids are 0 <= id < 2**32)"
                ))
            })
    }
}

fn to_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Python ids as `u32`, or a `VocabError` naming the first bad position (`what[k]`).
pub fn ids_to_u32(ids: &[Int], what: &str, vocab_size: usize) -> PyResult<Vec<u32>> {
    ids.iter()
        .enumerate()
        .map(|(k, id)| id.id(format_args!("{what}[{k}]"), vocab_size))
        .collect()
}

/// `(text, id)` pairs with ids checked (`InputError` naming `what[text]`).
pub fn named_ids(pairs: Vec<(String, Int)>, what: &str) -> PyResult<Vec<(String, u32)>> {
    pairs
        .into_iter()
        .map(|(t, id)| {
            let id = id.new_id(format_args!("{what}[{t:?}]"))?;
            Ok((t, id))
        })
        .collect()
}

/// What `lookup` gives for a Python id, or a `VocabError` if the id is negative, too large or
/// unknown.
pub fn token_of<T>(
    id: &Int,
    vocab_size: usize,
    lookup: impl FnOnce(u32) -> Option<T>,
) -> PyResult<T> {
    id.id(format_args!("id"), vocab_size)
        .ok()
        .and_then(lookup)
        .ok_or_else(|| {
            VocabError::new_err(format!("id {id} is outside the vocabulary of {vocab_size}"))
        })
}

/// The special-token matcher of the last id set asked for, so repeated calls with the same
/// `allowed_special` do not rebuild the automaton.
#[derive(Default)]
pub struct MatcherCache(Mutex<Option<(Vec<u32>, Arc<SpecialMatcher>)>>);

impl MatcherCache {
    /// The matcher for `ids` (`None` if empty), built by `build` on a miss.
    pub fn get(
        &self,
        ids: &[u32],
        build: impl FnOnce(&[u32]) -> crate::Result<Option<SpecialMatcher>>,
    ) -> PyResult<Option<Arc<SpecialMatcher>>> {
        if ids.is_empty() {
            return Ok(None);
        }
        if let Ok(cache) = self.0.lock() {
            if let Some((k, m)) = cache.as_ref() {
                if k == ids {
                    return Ok(Some(m.clone()));
                }
            }
        }
        let m = build(ids)?.map(Arc::new);
        if let (Some(m), Ok(mut cache)) = (&m, self.0.lock()) {
            *cache = Some((ids.to_vec(), m.clone()));
        }
        Ok(m)
    }
}

// `PyUnicode_AsUTF8AndSize` is in every CPython 3 (and in the stable ABI from 3.10); pyo3
// declares it only for non-abi3 or >= 3.10 builds, so it is declared here for the abi3-py39 one.
extern "C" {
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut pyo3::ffi::PyObject,
        size: *mut pyo3::ffi::Py_ssize_t,
    ) -> *const std::os::raw::c_char;
}

/// The UTF-8 text of a Python str without a copy: CPython's own UTF-8 form of the object (the
/// characters themselves for an ASCII str; made once and kept with the str otherwise), where
/// the abi3-py39 `&str` conversion makes a new bytes object per call (measured: about 10 % of a
/// repeated single-text encode). A str with lone surrogates raises `UnicodeEncodeError`, as
/// with `&str`.
pub fn str_utf8<'a>(s: &'a Bound<'_, pyo3::types::PyString>) -> PyResult<&'a str> {
    let mut n: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str (the borrow keeps it alive for 'a); the call returns a pointer
    // to a buffer owned by that str, valid while it lives, or NULL with an exception set.
    let p = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut n) };
    if p.is_null() {
        return Err(PyErr::fetch(s.py()));
    }
    let len = usize::try_from(n).unwrap_or(0);
    // SAFETY: `p` points to `len` initialized bytes owned by the str (see above); strs are
    // immutable, so nothing writes them while the slice lives. CPython made them with its
    // UTF-8 encoder (lone surrogates fail above), so they are valid UTF-8: checking again cost
    // 5 % of a repeated encode of multilingual text.
    Ok(unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p.cast::<u8>(), len)) })
}
