//! The byte-level BPE model: an id-indexed vocabulary of byte strings, the merge table, special
//! tokens and the pre-tokenizer that goes with them.
//!
//! Two views of merge priority exist in the wild (docs/bpe.md §1 and §5.3):
//! - [`Priority::MergeOrder`] (HF `tokenizer.json`, tokforge training): a pair `(l, r)` may merge
//!   if it is in the merge list; its priority is its position there.
//! - [`Priority::Rank`] (tiktoken rank files): any adjacent pair whose concatenation is a token may
//!   merge; its priority is that token's rank (= id). The merge table then holds every split
//!   `(l, r)` of every token, which is also what HF needs to reproduce it (TikTokenConverter).
//!
//! Invariants (checked by [`Bpe::new`]):
//! - every one of the 256 single bytes is a token, so every string can be encoded;
//! - ids are `0..n`; an id may be unused (a "hole", empty bytes: tiktoken's cl100k has ids with
//!   no token between its ranks and its special tokens), never produced and never decoded;
//! - a byte string has at most one regular id; special tokens are distinct and non-empty;
//! - each merge `(l, r)` names two regular tokens and `bytes(l) + bytes(r)` is a token.

mod batch;
pub mod count;
pub mod encode;
pub mod inspect;
mod long_table;
mod merge;
pub mod pairs;
pub mod piece_table;
pub mod train;

use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
pub(crate) use batch::concat;
#[cfg(test)]
pub(crate) use batch::Crew;
use rustc_hash::FxHashMap;

/// How merge priority is defined; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    MergeOrder,
    Rank,
}

/// A byte-level BPE tokenizer model.
#[derive(Debug)]
pub struct Bpe {
    /// bytes of each id; for a special token, its text; empty for an unused id
    tokens: Vec<Vec<u8>>,
    is_special: Vec<bool>,
    /// regular byte string -> id
    ids: FxHashMap<Vec<u8>, u32>,
    /// (special text, id) in id order
    specials: Vec<(String, u32)>,
    merges: Vec<(u32, u32)>,
    pretokenizer: Pretokenizer,
    priority: Priority,
    /// look a whole piece up before merging (tiktoken; HF `ignore_merges`)
    ignore_merges: bool,
    /// (left, right) -> priority and merged id; the first occurrence in `merges` wins
    pairs: pairs::PairTable,
    /// id of each single byte
    byte_ids: [u32; 256],
    /// ids of short pieces, kept across calls (docs/bpe.md §13)
    cache: piece_table::PieceCache,
}

/// Most ids a vocabulary may leave unused (holes) beyond its tokens. Ids are allocated densely,
/// so a file or caller naming id 4e9 must be refused rather than allocated. OpenAI's files leave
/// at most 20 (cl100k: 100256 ranks, special tokens up to 100276), but tiktoken users place
/// special tokens freely (e.g. id 200000 over cl100k's ranks). 2^20 holes cost ~25 MB of empty
/// slots: generous, and still bounded.
pub const MAX_UNUSED_IDS: usize = 1 << 20;

#[inline]
pub(crate) fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
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
        Self::build(
            tokens,
            specials,
            merges,
            pretokenizer,
            ignore_merges,
            Priority::MergeOrder,
        )
    }

    /// A tiktoken-style model from `(bytes, rank)` pairs: id = rank, whole pieces looked up first,
    /// and any split of a token into two tokens may merge, with the token's rank as priority.
    /// The merge list is every such split sorted by (rank(l+r), rank(l), rank(r)), as
    /// transformers' TikTokenConverter writes it.
    pub fn from_ranks(
        ranks: Vec<(Vec<u8>, u32)>,
        specials: Vec<(String, u32)>,
        pretokenizer: Pretokenizer,
    ) -> Result<Self> {
        let n = ranks
            .iter()
            .map(|(_, r)| *r as usize + 1)
            .chain(specials.iter().map(|(_, id)| *id as usize + 1))
            .max()
            .unwrap_or(0);
        let entries = ranks.len() + specials.len();
        if n > entries + MAX_UNUSED_IDS {
            return Err(Error::Vocab(format!(
                "ids go up to {} for {entries} tokens: more than {MAX_UNUSED_IDS} ids would be \
                 unused (ranks must be roughly 0..n)",
                n - 1
            )));
        }
        let mut tokens = vec![Vec::new(); n];
        for (t, r) in ranks {
            if t.is_empty() {
                return Err(Error::Vocab(format!("rank {r} is the empty byte string")));
            }
            tokens[r as usize] = t;
        }
        for (text, id) in &specials {
            if !tokens[*id as usize].is_empty() {
                return Err(Error::Vocab(format!(
                    "special token {text:?} has id {id}, which is already the rank of a regular token"
                )));
            }
            tokens[*id as usize] = text.as_bytes().to_vec();
        }
        let special_ids: rustc_hash::FxHashSet<u32> = specials.iter().map(|(_, id)| *id).collect();
        let index: FxHashMap<&[u8], u32> = tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| !t.is_empty() && !special_ids.contains(&(*i as u32)))
            .map(|(i, t)| (t.as_slice(), i as u32))
            .collect();
        let mut splits: Vec<(u32, u32, u32)> = Vec::new();
        for (&t, &id) in &index {
            for k in 1..t.len() {
                if let (Some(&l), Some(&r)) = (index.get(&t[..k]), index.get(&t[k..])) {
                    splits.push((id, l, r));
                }
            }
        }
        splits.sort_unstable();
        let merges = splits.into_iter().map(|(_, l, r)| (l, r)).collect();
        Self::build(tokens, specials, merges, pretokenizer, true, Priority::Rank)
    }

    fn build(
        tokens: Vec<Vec<u8>>,
        specials: Vec<(String, u32)>,
        merges: Vec<(u32, u32)>,
        pretokenizer: Pretokenizer,
        ignore_merges: bool,
        priority: Priority,
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
                return Err(Error::Vocab(format!(
                    "special token {text:?} appears twice"
                )));
            }
            if is_special[i] {
                return Err(Error::Vocab(format!("two special tokens have id {id}")));
            }
            is_special[i] = true;
        }
        let mut ids = FxHashMap::default();
        ids.reserve(n);
        for (i, t) in tokens.iter().enumerate() {
            if is_special[i] || t.is_empty() {
                continue;
            }
            if let Some(prev) = ids.insert(t.clone(), i as u32) {
                return Err(Error::Vocab(format!(
                    "token {:?} has two ids, {prev} and {i}",
                    String::from_utf8_lossy(t)
                )));
            }
        }
        let mut byte_ids = [0u32; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = *ids.get(&[b as u8][..]).ok_or_else(|| {
                Error::Vocab(format!(
                    "byte 0x{b:02x} is not a token: a byte-level vocabulary needs all 256 bytes"
                ))
            })?;
        }
        let mut pairs: FxHashMap<u64, (u32, u32)> = FxHashMap::default();
        pairs.reserve(merges.len());
        for (k, &(l, r)) in merges.iter().enumerate() {
            let regular = |t: u32| {
                (t as usize) < n && !is_special[t as usize] && !tokens[t as usize].is_empty()
            };
            if !regular(l) || !regular(r) {
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
            let prio = match priority {
                Priority::MergeOrder => k as u32,
                Priority::Rank => id,
            };
            pairs.entry(pair_key(l, r)).or_insert((prio, id));
        }
        let table: Vec<(u32, u32, u32, u32)> = pairs
            .iter()
            .map(|(&k, &(prio, id))| ((k >> 32) as u32, k as u32, prio, id))
            .collect();
        let pairs = pairs::PairTable::new(&table, priority == Priority::Rank);
        let mut specials = specials;
        specials.sort_by_key(|(_, id)| *id);
        Ok(Self {
            tokens,
            is_special,
            ids,
            specials,
            merges,
            pretokenizer,
            priority,
            ignore_merges,
            pairs,
            byte_ids,
            cache: Default::default(),
        })
    }

    /// Number of ids (one more than the largest id, holes included).
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
    /// Bytes of an id (a special token's text); `None` for an unknown or unused id.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens
            .get(id as usize)
            .filter(|t| !t.is_empty())
            .map(|t| t.as_slice())
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
    pub fn priority(&self) -> Priority {
        self.priority
    }
    /// Whether a piece that is itself a token is emitted whole before any merging.
    pub fn ignore_merges(&self) -> bool {
        self.ignore_merges
    }
    /// The piece table of the encoder: its size ([`piece_table::PieceCache::info`]) and bound.
    pub fn piece_cache(&self) -> &piece_table::PieceCache {
        &self.cache
    }
    /// Regular tokens as `(bytes, id)`, for rank-file export (ids are the ranks).
    pub fn regular_tokens(&self) -> Vec<(Vec<u8>, u32)> {
        self.tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| !t.is_empty() && !self.is_special[*i])
            .map(|(i, t)| (t.clone(), i as u32))
            .collect()
    }
}

/// A small deterministic generator (xorshift64) for the tests of the piece tables, so they need
/// no dependency; `seed` 0 is taken as 1.
#[cfg(test)]
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
