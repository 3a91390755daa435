//! Conversions shared by the native tokenizer classes (`TokenModel`).

use super::errors::VocabError;
use crate::special::SpecialMatcher;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

/// Python ids (any int) as `u32`, or a `VocabError` naming the first bad position.
pub fn ids_to_u32(ids: &[i64], vocab_size: usize) -> PyResult<Vec<u32>> {
    ids.iter()
        .enumerate()
        .map(|(k, &id)| {
            u32::try_from(id).map_err(|_| {
                VocabError::new_err(format!(
                    "ids[{k}] = {id} is outside the vocabulary of {vocab_size}"
                ))
            })
        })
        .collect()
}

/// What `lookup` gives for a Python id, or a `VocabError` if the id is negative, too large or
/// unknown.
pub fn token_of<T>(
    id: i64,
    vocab_size: usize,
    lookup: impl FnOnce(u32) -> Option<T>,
) -> PyResult<T> {
    u32::try_from(id).ok().and_then(lookup).ok_or_else(|| {
        VocabError::new_err(format!("id {id} is outside the vocabulary of {vocab_size}"))
    })
}

/// Per-text id lists as one flat array plus offsets (`ids[off[i]..off[i+1]]` is text `i`).
pub fn flatten(parts: Vec<Vec<u32>>) -> (Vec<u32>, Vec<i64>) {
    let mut offsets = Vec::with_capacity(parts.len() + 1);
    offsets.push(0i64);
    let mut flat = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for p in parts {
        flat.extend_from_slice(&p);
        offsets.push(flat.len() as i64);
    }
    (flat, offsets)
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
