//! Conversions shared by the native tokenizer classes (`BpeModel`, `LibModel`).

use super::errors::VocabError;
use pyo3::prelude::*;

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
