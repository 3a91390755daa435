//! The byte-level BPE model: an id-indexed vocabulary of byte strings, the ordered merge list,
//! special tokens and the pre-tokenizer that goes with them.
//!
//! Invariants (checked by [`Bpe::new`]):
//! - every one of the 256 single bytes is a token, so every string can be encoded;
//! - ids are `0..n` without gaps; a byte string has at most one non-special id;
//! - each merge `(l, r)` names two existing non-special tokens and `bytes(l) + bytes(r)` is a
//!   token; merges are kept in priority order (HF view); the token's id need not follow it;
//! - special tokens are distinct, non-empty and have ids of their own.

pub mod count;
pub mod encode;
pub mod train;

use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use rustc_hash::FxHashMap;

/// A byte-level BPE tokenizer model.
#[derive(Debug, Clone)]
pub struct Bpe {
    /// bytes of each id; for a special token, its text
    tokens: Vec<Vec<u8>>,
    is_special: Vec<bool>,
    /// non-special byte string -> id
    ids: FxHashMap<Vec<u8>, u32>,
    /// (special text, id) in id order
    specials: Vec<(String, u32)>,
    merges: Vec<(u32, u32)>,
    pretokenizer: Pretokenizer,
    /// look a whole piece up before merging (tiktoken; HF `ignore_merges`)
    ignore_merges: bool,
    /// (left, right) -> (priority, merged id), first occurrence in `merges` wins
    pairs: FxHashMap<u64, (u32, u32)>,
    /// id of each single byte
    byte_ids: [u32; 256],
}

impl Bpe {
    /// Build and validate a model. `specials` name ids inside `tokens`.
    pub fn new(
        tokens: Vec<Vec<u8>>,
        specials: Vec<(String, u32)>,
        merges: Vec<(u32, u32)>,
        pretokenizer: Pretokenizer,
        ignore_merges: bool,
    ) -> Result<Self> {
        let n = tokens.len();
        if n > u32::MAX as usize {
            return Err(Error::Vocab("more than 2^32 tokens".into()));
        }
        let mut is_special = vec![false; n];
        let mut seen_special = FxHashMap::default();
        for (text, id) in &specials {
            let i = *id as usize;
            if i >= n {
                return Err(Error::Vocab(format!(
                    "special token {text:?} has id {id}, outside the vocabulary of {n}"
                )));
            }
            if text.is_empty() {
                return Err(Error::Vocab("a special token is the empty string".into()));
            }
            if seen_special.insert(text.clone(), *id).is_some() {
                return Err(Error::Vocab(format!("special token {text:?} appears twice")));
            }
            is_special[i] = true;
        }
        let mut ids = FxHashMap::default();
        ids.reserve(n);
        for (i, t) in tokens.iter().enumerate() {
            if is_special[i] {
                continue;
            }
            if t.is_empty() {
                return Err(Error::Vocab(format!("token id {i} is the empty byte string")));
            }
            if let Some(prev) = ids.insert(t.clone(), i as u32) {
                return Err(Error::Vocab(format!(
                    "token {:?} has two ids, {prev} and {i}",
                    String::from_utf8_lossy(t)
                )));
            }
        }
        for b in 0..=255u8 {
            if !ids.contains_key(&[b][..]) {
                return Err(Error::Vocab(format!(
                    "byte 0x{b:02x} is not a token: a byte-level vocabulary needs all 256 bytes"
                )));
            }
        }
        let mut pairs = FxHashMap::default();
        pairs.reserve(merges.len());
        for (k, &(l, r)) in merges.iter().enumerate() {
            let ok = |t: u32| (t as usize) < n && !is_special[t as usize];
            if !ok(l) || !ok(r) {
                return Err(Error::Vocab(format!(
                    "merge #{k} ({l}, {r}) names an id that is not a regular token"
                )));
            }
            let mut joined = tokens[l as usize].clone();
            joined.extend_from_slice(&tokens[r as usize]);
            let Some(&id) = ids.get(&joined) else {
                return Err(Error::Vocab(format!(
                    "merge #{k} gives {:?}, which is not in the vocabulary",
                    String::from_utf8_lossy(&joined)
                )));
            };
            pairs
                .entry(((l as u64) << 32) | r as u64)
                .or_insert((k as u32, id));
        }
        let mut byte_ids = [0u32; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = ids.get(&[b as u8][..]).copied().unwrap_or_default();
        }
        let mut specials = specials;
        specials.sort_by_key(|(_, id)| *id);
        Ok(Self {
            tokens,
            is_special,
            ids,
            specials,
            merges,
            pretokenizer,
            ignore_merges,
            pairs,
            byte_ids,
        })
    }

    /// Whether a piece that is itself a token is emitted whole before any merging.
    pub fn ignore_merges(&self) -> bool {
        self.ignore_merges
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(|t| t.as_slice())
    }
    pub fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }
    pub fn is_special(&self, id: u32) -> bool {
        self.is_special.get(id as usize).copied().unwrap_or(false)
    }
    /// Id of a regular (non-special) token.
    pub fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes).copied()
    }
    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }
    pub fn merges(&self) -> &[(u32, u32)] {
        &self.merges
    }
    pub fn pretokenizer(&self) -> &Pretokenizer {
        &self.pretokenizer
    }
}
