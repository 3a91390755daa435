//! # Data-mixture inference: replay a merge list on category samples
//!
//! Hayase, Liu, Choi, Oh and Smith (2024), "Data Mixture Inference: What do BPE Tokenizers Reveal
//! about their Training Data?" (NeurIPS 2024), section 3; the design note is
//! `docs/mixture_inference.md`. BPE training is deterministic: merge `t` is the pair with the
//! highest count after merges `1..t-1`. If the training data mixes categories (languages, code),
//! the count of every pair is a weighted sum of per-category counts, so each merge gives linear
//! inequalities on the unknown weights. This module computes the per-category counts those
//! inequalities need; `tokforge.mixture` solves the linear program.
//!
//! Pipeline:
//! - [`MergeList`]: the ordered merges as a symbol space (the 256 bytes, then one symbol per merged
//!   byte string), checked to be in BPE order (every part formed before it is used). A split list
//!   (one entry per way to split a token, as tiktoken-style rank models and converters write it)
//!   is reduced to the one merge per token that BPE would make ([`MergeList::from_split_list`]).
//! - [`replay`]: per category, count the pre-tokenized pieces ([`crate::bpe::count`]), then apply
//!   the merges in order exactly like the trainer (pair counts and a pair -> words index, as in
//!   [`crate::bpe::train`]), recording for every step the count of the merged pair, the top-k
//!   competitors and the signed change of every pair whose count changed.
//! - [`Counts`]: all categories with one pair interner; [`Counts::count`] gives any pair's count
//!   before any step by binary search (lazy access), [`separate`] finds the LP rows the current
//!   solution violates.
//!
//! Complexity per category: pre-tokenization O(bytes); replay O(total symbols of the unique
//! pieces + sum over steps of the occurrences merged), like training (each merge touches only the
//! words that hold its pair), plus O(k log H) per step for the top-k competitors (H = heap size).
//! Memory: 8 bytes per recorded change plus 8 for the by-pair index, O(T k) for the competitors.
//!
//! Invariants: a category is replayed by one thread, in a canonical order (pieces sorted by
//! bytes), and pair ids are the ranks of the sorted pair keys, so every array is identical for any
//! thread count; counts before step `t` = snapshot 0 plus the changes of steps `< t`; after a
//! merge its pair has count 0 in that category (until a duplicate merge re-forms it).

pub mod replay;
pub mod separate;

use crate::error::{Error, Result};
use rustc_hash::FxHashMap;

pub use replay::{replay, Sample};

#[inline]
pub(crate) fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// How to read a list of merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOrder {
    /// the list is a trainer's log: use it as is
    List,
    /// the list has every split of every token, sorted by token (rank files, converters):
    /// keep, per token, the split BPE makes with the lower-ranked tokens
    Ranks,
    /// [`MergeOrder::Ranks`] when [`is_split_list`] says so, else [`MergeOrder::List`]
    Auto,
}

impl MergeOrder {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "list" => Ok(Self::List),
            "ranks" => Ok(Self::Ranks),
            "auto" => Ok(Self::Auto),
            _ => Err(Error::Input(format!(
                "merge_order={s:?} is not one of \"auto\", \"list\", \"ranks\""
            ))),
        }
    }
}

/// Whether two neighbouring merges produce the same byte string: the mark of a split list (a
/// trainer makes each token once, or, when a string is reachable twice, at distant steps).
pub fn is_split_list(pairs: &[(Vec<u8>, Vec<u8>)]) -> bool {
    pairs.windows(2).any(|w| {
        let (a, b) = (&w[0], &w[1]);
        a.0.len() + a.1.len() == b.0.len() + b.1.len()
            && a.0.iter().chain(&a.1).eq(b.0.iter().chain(&b.1))
    })
}

/// An ordered merge list over a symbol space: symbols `0..256` are the bytes (symbol = byte
/// value), each later symbol a merged byte string; a string reached by two merges keeps one
/// symbol (as HF's trainer keeps its first id).
#[derive(Debug, Clone)]
pub struct MergeList {
    sym_bytes: Vec<Vec<u8>>,
    /// (left, right, result) symbols of each merge, in order
    merges: Vec<(u32, u32, u32)>,
    /// merges removed when a split list was reduced (0 for a trainer's list)
    pub dropped: usize,
}

impl MergeList {
    /// Check a trainer's merge list: both parts of merge `t` must be bytes or results of merges
    /// before `t`.
    pub fn new(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Self> {
        let mut sym_bytes: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut sym_of: FxHashMap<Vec<u8>, u32> = sym_bytes
            .iter()
            .enumerate()
            .map(|(i, b)| (b.clone(), i as u32))
            .collect();
        let mut merges = Vec::with_capacity(pairs.len());
        for (t, (l, r)) in pairs.iter().enumerate() {
            let part = |s: &[u8], side: &str| -> Result<u32> {
                if s.is_empty() {
                    return Err(Error::Input(format!(
                        "merge #{t}: the {side} part is empty"
                    )));
                }
                sym_of.get(s).copied().ok_or_else(|| {
                    Error::Input(format!(
                        "merge #{t} ({:?}, {:?}) is not in BPE order: its {side} part {:?} is \
                         neither a byte nor made by an earlier merge",
                        String::from_utf8_lossy(l),
                        String::from_utf8_lossy(r),
                        String::from_utf8_lossy(s)
                    ))
                })
            };
            let (a, b) = (part(l, "left")?, part(r, "right")?);
            let mut joined = l.clone();
            joined.extend_from_slice(r);
            let next = sym_bytes.len() as u32;
            let c = *sym_of.entry(joined.clone()).or_insert(next);
            if c == next {
                sym_bytes.push(joined);
            }
            merges.push((a, b, c));
        }
        if sym_bytes.len() > u32::MAX as usize / 2 {
            return Err(Error::Input("too many merges".into()));
        }
        Ok(Self {
            sym_bytes,
            merges,
            dropped: 0,
        })
    }

    /// Reduce a split list to one merge per token. Tokens are ranked by where their first split
    /// appears; each token's bytes are BPE-encoded with the lower-ranked tokens (lowest rank
    /// first, as tiktoken encodes), which must leave exactly two parts: that is its merge.
    /// Cost O(sum of L^2) hash lookups over tokens of length L.
    pub fn from_split_list(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Self> {
        let mut rank: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        let mut order: Vec<Vec<u8>> = Vec::new();
        for (l, r) in pairs {
            let mut joined = l.clone();
            joined.extend_from_slice(r);
            if joined.len() < 2 {
                return Err(Error::Input("a merge joins fewer than two bytes".into()));
            }
            if !rank.contains_key(&joined) {
                rank.insert(joined.clone(), order.len());
                order.push(joined);
            }
        }
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(order.len());
        for (own, tok) in order.iter().enumerate() {
            let parts = bpe_parts(tok, &rank, own);
            if parts.len() != 2 {
                return Err(Error::Input(format!(
                    "token {:?} (rank {own} of the merged tokens) does not split into two \
                     lower-ranked tokens under BPE (it gives {} parts): the list is not a BPE \
                     rank order",
                    String::from_utf8_lossy(tok),
                    parts.len()
                )));
            }
            let k = parts[1].0;
            out.push((tok[..k].to_vec(), tok[k..].to_vec()));
        }
        let mut list = Self::new(&out)?;
        list.dropped = pairs.len() - out.len();
        Ok(list)
    }

    /// The list read as `order` says.
    pub fn with_order(pairs: &[(Vec<u8>, Vec<u8>)], order: MergeOrder) -> Result<Self> {
        match order {
            MergeOrder::List => Self::new(pairs),
            MergeOrder::Ranks => Self::from_split_list(pairs),
            MergeOrder::Auto if is_split_list(pairs) => Self::from_split_list(pairs),
            MergeOrder::Auto => Self::new(pairs),
        }
    }

    pub fn len(&self) -> usize {
        self.merges.len()
    }
    pub fn is_empty(&self) -> bool {
        self.merges.is_empty()
    }
    /// Keep the first `n` merges.
    pub fn truncate(&mut self, n: usize) {
        self.merges.truncate(n);
    }
    /// (left, right, result) symbols of merge `t`.
    pub fn merge(&self, t: usize) -> (u32, u32, u32) {
        self.merges[t]
    }
    pub fn merges(&self) -> &[(u32, u32, u32)] {
        &self.merges
    }
    /// Bytes of a symbol.
    pub fn symbol_bytes(&self, s: u32) -> &[u8] {
        self.sym_bytes.get(s as usize).map_or(&[], |b| b.as_slice())
    }
    /// The merges as byte pairs.
    pub fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.merges
            .iter()
            .map(|&(a, b, _)| (self.symbol_bytes(a).to_vec(), self.symbol_bytes(b).to_vec()))
            .collect()
    }
}

/// BPE-encode `tok` with the tokens ranked below `own` (lowest rank merges first); returns the
/// parts as `(start, end)` byte ranges.
fn bpe_parts(tok: &[u8], rank: &FxHashMap<Vec<u8>, usize>, own: usize) -> Vec<(usize, usize)> {
    let mut parts: Vec<(usize, usize)> = (0..tok.len()).map(|i| (i, i + 1)).collect();
    loop {
        let mut best: Option<(usize, usize)> = None; // (rank, position)
        for i in 0..parts.len().saturating_sub(1) {
            let s = &tok[parts[i].0..parts[i + 1].1];
            if let Some(&r) = rank.get(s) {
                if r < own && best.is_none_or(|(br, _)| r < br) {
                    best = Some((r, i));
                }
            }
        }
        let Some((_, i)) = best else { return parts };
        parts[i].1 = parts[i + 1].1;
        parts.remove(i + 1);
    }
}

/// One category's replay with interned pair ids.
#[derive(Debug)]
pub struct Transcript {
    /// `N_i`: sum of all adjacent-pair counts before any merge
    pub pairs_total: u64,
    /// `B_i`: bytes of the sample
    pub bytes: u64,
    /// pair counts before step 0, sorted by pair id
    pub snap_pair: Vec<u32>,
    pub snap_count: Vec<u32>,
    /// count of merge `t`'s pair before step `t`
    pub chosen: Vec<u32>,
    /// changes of step `t` are `d_*[step_off[t]..step_off[t + 1]]`, sorted by pair id
    pub step_off: Vec<u64>,
    pub d_pair: Vec<u32>,
    pub d_diff: Vec<i32>,
    /// indices into `d_*` sorted by (pair, step), with the count after each change
    pub by_pair: Vec<u32>,
    pub by_pair_count: Vec<u32>,
    /// the `k` pairs with the highest count before step `t` other than merge `t`'s pair:
    /// `top_pair[t * k..(t + 1) * k]` in descending count (ties: smaller pair key first);
    /// count 0 pads a step with fewer competitors
    pub top_pair: Vec<u32>,
    pub top_count: Vec<u32>,
}

impl Transcript {
    /// Count of `pair` before step `t` (`t` = number of merges applied).
    pub fn count(&self, t: usize, pair: u32) -> u32 {
        let lo = self
            .by_pair
            .partition_point(|&j| self.d_pair[j as usize] < pair);
        let hi = lo + self.by_pair[lo..].partition_point(|&j| self.d_pair[j as usize] == pair);
        let limit = self.step_off[t.min(self.step_off.len() - 1)];
        let k = self.by_pair[lo..hi].partition_point(|&j| (j as u64) < limit);
        if k > 0 {
            return self.by_pair_count[lo + k - 1];
        }
        match self.snap_pair.binary_search(&pair) {
            Ok(i) => self.snap_count[i],
            Err(_) => 0,
        }
    }

    /// Number of recorded changes.
    pub fn num_changes(&self) -> usize {
        self.d_pair.len()
    }

    /// Heap bytes held.
    pub fn memory(&self) -> usize {
        4 * (self.snap_pair.len()
            + self.snap_count.len()
            + self.chosen.len()
            + self.d_pair.len()
            + self.d_diff.len()
            + self.by_pair.len()
            + self.by_pair_count.len()
            + self.top_pair.len()
            + self.top_count.len())
            + 8 * self.step_off.len()
    }
}

/// All categories' transcripts over one pair interner.
#[derive(Debug)]
pub struct Counts {
    pub merges: MergeList,
    pub names: Vec<String>,
    pub cats: Vec<Transcript>,
    /// pair id -> (left symbol, right symbol) key, sorted ascending
    pub pair_keys: Vec<u64>,
    /// pair id of each merge
    pub merge_pair: Vec<u32>,
    pub top_k: usize,
}

impl Counts {
    pub fn num_steps(&self) -> usize {
        self.merges.len()
    }
    pub fn num_pairs(&self) -> usize {
        self.pair_keys.len()
    }
    /// Pair id of the symbols `(a, b)`, if any category or merge has it.
    pub fn pair_id(&self, a: u32, b: u32) -> Option<u32> {
        self.pair_keys
            .binary_search(&pair_key(a, b))
            .ok()
            .map(|i| i as u32)
    }
    /// Bytes of the two parts of a pair.
    pub fn pair_bytes(&self, p: u32) -> Option<(&[u8], &[u8])> {
        let k = *self.pair_keys.get(p as usize)?;
        Some((
            self.merges.symbol_bytes((k >> 32) as u32),
            self.merges.symbol_bytes(k as u32),
        ))
    }
    /// Count of pair `p` in category `i` before step `t`.
    pub fn count(&self, i: usize, t: usize, p: u32) -> u32 {
        self.cats[i].count(t, p)
    }
    /// Steps whose merge has count 0 in every category (no constraint comes from them).
    pub fn missing(&self) -> Vec<usize> {
        (0..self.num_steps())
            .filter(|&t| self.cats.iter().all(|c| c.chosen[t] == 0))
            .collect()
    }
    pub fn memory(&self) -> usize {
        self.cats.iter().map(Transcript::memory).sum::<usize>() + 8 * self.pair_keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn merges_out_of_order_are_errors() {
        let e = MergeList::new(&bp(&[("ab", "c"), ("a", "b")])).unwrap_err();
        assert!(e.to_string().contains("not in BPE order"), "{e}");
        assert!(MergeList::new(&bp(&[("", "c")])).is_err());
        assert_eq!(
            MergeList::new(&bp(&[("a", "b"), ("ab", "c")]))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn split_list_reduces_to_the_bpe_merge_of_each_token() {
        // tokens by rank: "bc" < "ab" < "abc": BPE on "abc" makes "bc" first -> (a, bc)
        let split = bp(&[("b", "c"), ("a", "b"), ("a", "bc"), ("ab", "c")]);
        assert!(is_split_list(&split));
        let m = MergeList::with_order(&split, MergeOrder::Auto).unwrap();
        assert_eq!(m.pairs(), bp(&[("b", "c"), ("a", "b"), ("a", "bc")]));
        assert_eq!(m.dropped, 1);
        let trained = bp(&[("a", "b"), ("ab", "c"), ("b", "c")]);
        assert!(!is_split_list(&trained));
        assert_eq!(
            MergeList::with_order(&trained, MergeOrder::Auto)
                .unwrap()
                .pairs(),
            trained
        );
    }

    #[test]
    fn a_token_bpe_cannot_reach_is_an_error() {
        // "abc" ranked before both "ab" and "bc": BPE leaves three bytes
        let e = MergeList::from_split_list(&bp(&[("a", "bc"), ("a", "b"), ("b", "c")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"abc\"") && e.contains("3 parts"), "{e}");
    }
}
