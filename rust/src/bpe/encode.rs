//! Encoding with a [`Bpe`] model: split out allowed special tokens, pre-tokenize, BPE each piece.
//!
//! Per piece: if `ignore_merges` and the piece is a token, emit it (tiktoken, Llama-3). Otherwise
//! start from single bytes and repeatedly apply the adjacent merge of lowest priority, leftmost on
//! ties (HF `BPE::merge_word`; tiktoken's `byte_pair_merge` when priority is the rank of the
//! concatenation). Short pieces use tiktoken's linear scan (O(n^2) on tiny n, cache friendly);
//! pieces over [`HEAP_THRESHOLD`] bytes use a heap with a linked list, O(n log n), so
//! `"a" * 100000` stays fast.
//!
//! Special tokens: a leftmost-longest Aho-Corasick automaton over the allowed special texts
//! splits the text; the parts between matches are encoded as ordinary text (tiktoken's
//! `allowed_special`). Checking for disallowed specials is [`SpecialMatcher::find`].

use super::{pair_key, Bpe};
use crate::error::{Error, Result};
pub use crate::special::SpecialMatcher;
use rustc_hash::FxHashMap;
use std::cell::RefCell;

/// Pieces longer than this many bytes use the heap (tiktoken switches at 100 as well).
const HEAP_THRESHOLD: usize = 100;
/// Pieces up to this length that need merging are remembered per thread (most repeat).
const CACHE_MAX_PIECE: usize = 48;
/// Entries per thread before the cache is cleared: 32k pieces, ~2 MB; bounded memory.
const CACHE_CAP: usize = 1 << 15;

thread_local! {
    /// (model serial, piece -> ids) for the merge path; cleared when another model uses the thread
    static PIECE_CACHE: RefCell<(u64, FxHashMap<Box<[u8]>, Box<[u32]>>)> =
        RefCell::new((u64::MAX, FxHashMap::default()));
}

/// Where each token of an encoding came from, in bytes of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Bpe {
    #[inline]
    fn pair(&self, l: u32, r: u32) -> Option<(u32, u32)> {
        self.pairs.get(&pair_key(l, r)).copied()
    }

    /// A matcher for the special tokens with the given ids (`None` if the list is empty).
    pub fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids {
            if !self.is_special(id) {
                return Err(Error::Vocab(format!("id {id} is not a special token")));
            }
            tokens.push((self.tokens[id as usize].clone(), id));
        }
        SpecialMatcher::new(tokens)
    }

    /// Append the ids of one piece to `out`.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() == 1 {
            out.push(self.byte_ids[piece[0] as usize]);
            return;
        }
        if self.ignore_merges {
            if let Some(id) = self.id_of(piece) {
                out.push(id);
                return;
            }
        }
        if piece.len() > HEAP_THRESHOLD {
            self.merge_heap(piece, out);
        } else if piece.len() > CACHE_MAX_PIECE {
            self.merge_linear(piece, out);
        } else {
            PIECE_CACHE.with(|c| {
                let mut c = c.borrow_mut();
                if c.0 != self.serial {
                    c.0 = self.serial;
                    c.1.clear();
                }
                if let Some(ids) = c.1.get(piece) {
                    out.extend_from_slice(ids);
                    return;
                }
                let start = out.len();
                self.merge_linear(piece, out);
                if c.1.len() >= CACHE_CAP {
                    c.1.clear();
                }
                c.1.insert(piece.into(), out[start..].into());
            });
        }
    }

    /// tiktoken's linear scan on fixed-size stack arrays (no allocation): `syms[i]` are the
    /// current tokens, `ranks[i]` the (priority, merged id) of joining `syms[i]` and `syms[i+1]`.
    fn merge_linear(&self, piece: &[u8], out: &mut Vec<u32>) {
        debug_assert!(piece.len() <= HEAP_THRESHOLD);
        const NONE: (u32, u32) = (u32::MAX, 0);
        let mut syms = [0u32; HEAP_THRESHOLD];
        let mut ranks = [NONE; HEAP_THRESHOLD];
        let mut n = piece.len();
        for (i, &b) in piece.iter().enumerate() {
            syms[i] = self.byte_ids[b as usize];
        }
        for i in 0..n - 1 {
            ranks[i] = self.pair(syms[i], syms[i + 1]).unwrap_or(NONE);
        }
        ranks[n - 1] = NONE;
        loop {
            let mut best = u32::MAX;
            let mut at = usize::MAX;
            for (i, &(r, _)) in ranks[..n - 1].iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if at == usize::MAX {
                break;
            }
            syms[at] = ranks[at].1;
            syms.copy_within(at + 2..n, at + 1);
            ranks.copy_within(at + 2..n, at + 1);
            n -= 1;
            ranks[at] = if at + 1 < n {
                self.pair(syms[at], syms[at + 1]).unwrap_or(NONE)
            } else {
                NONE
            };
            if at > 0 {
                ranks[at - 1] = self.pair(syms[at - 1], syms[at]).unwrap_or(NONE);
            }
            if n == 1 {
                break;
            }
        }
        out.extend_from_slice(&syms[..n]);
    }

    fn merge_heap(&self, piece: &[u8], out: &mut Vec<u32>) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let n = piece.len();
        let mut sym: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        for i in 0..n - 1 {
            if let Some((r, _)) = self.pair(sym[i], sym[i + 1]) {
                heap.push(Reverse((r, i, sym[i], sym[i + 1])));
            }
        }
        let mut steps = 0u32;
        while let Some(Reverse((r, i, l, rt))) = heap.pop() {
            steps = steps.wrapping_add(1);
            // a piece of millions of bytes (one long word) takes seconds: let it be cancelled
            if steps % (1 << 16) == 0 && crate::cancel::is_set() {
                return;
            }
            let j = next[i];
            // stale: a side was merged away or changed since this entry was pushed
            if !alive[i] || j >= n || sym[i] != l || sym[j] != rt {
                continue;
            }
            let Some((r2, new)) = self.pair(l, rt) else {
                continue;
            };
            if r2 != r {
                continue;
            }
            sym[i] = new;
            alive[j] = false;
            next[i] = next[j];
            if next[j] < n {
                prev[next[j]] = i;
            }
            let p = prev[i];
            if p < n {
                if let Some((rp, _)) = self.pair(sym[p], new) {
                    heap.push(Reverse((rp, p, sym[p], new)));
                }
            }
            let q = next[i];
            if q < n {
                if let Some((rq, _)) = self.pair(new, sym[q]) {
                    heap.push(Reverse((rq, i, new, sym[q])));
                }
            }
        }
        let mut i = 0;
        while i < n {
            out.push(sym[i]);
            i = next[i];
        }
    }

    /// Encode ordinary text (no special-token handling), appending to `out`. Stops with
    /// [`crate::Error::Interrupted`] when the thread's [`crate::cancel`] handle is set.
    pub fn encode_ordinary_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        self.pretokenizer
            .for_each_piece(text, |p| self.encode_piece(p.as_bytes(), out))?;
        // a long piece stops early when cancelled (see `encode_piece`): its ids are not kept
        crate::cancel::check()
    }

    /// Ids of `text`, treating special-token text as ordinary text.
    pub fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3);
        self.encode_ordinary_into(text, &mut out)?;
        Ok(out)
    }

    /// Ids of `text`; occurrences of the specials in `allowed` become their ids.
    pub fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>> {
        let Some(m) = allowed else {
            return self.encode_ordinary(text);
        };
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut pos = 0;
        while let Some((s, e, id)) = m.find(text, pos) {
            self.encode_ordinary_into(&text[pos..s], &mut out)?;
            out.push(id);
            pos = e;
        }
        self.encode_ordinary_into(&text[pos..], &mut out)?;
        Ok(out)
    }

    /// Like [`Bpe::encode`], with the byte span of every token. A token that is part of a piece
    /// gets the span of its bytes in the input.
    pub fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<Span>)> {
        let mut ids = Vec::new();
        let mut spans = Vec::new();
        let emit =
            |part: &str, base: usize, ids: &mut Vec<u32>, spans: &mut Vec<Span>| -> Result<()> {
                let mut off = base;
                self.pretokenizer.for_each_piece(part, |p| {
                    let before = ids.len();
                    self.encode_piece(p.as_bytes(), ids);
                    let mut s = off;
                    for &id in &ids[before..] {
                        let len = self.tokens[id as usize].len();
                        spans.push(Span {
                            start: s,
                            end: s + len,
                        });
                        s += len;
                    }
                    off += p.len();
                })
            };
        let mut pos = 0;
        if let Some(m) = allowed {
            while let Some((s, e, id)) = m.find(text, pos) {
                emit(&text[pos..s], pos, &mut ids, &mut spans)?;
                ids.push(id);
                spans.push(Span { start: s, end: e });
                pos = e;
            }
        }
        emit(&text[pos..], pos, &mut ids, &mut spans)?;
        crate::cancel::check()?;
        Ok((ids, spans))
    }

    /// Concatenated bytes of `ids` (special tokens give their text); `Err` names the first id
    /// that is unknown or unused.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (k, &id) in ids.iter().enumerate() {
            let t = self.token_bytes(id).ok_or_else(|| {
                Error::Vocab(format!(
                    "ids[{k}] = {id} is outside the vocabulary of {} (or an unused id)",
                    self.vocab_size()
                ))
            })?;
            out.extend_from_slice(t);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::count::PieceCounts;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::pretokenize::Pretokenizer;
    use crate::progress::Silent;

    fn small() -> Bpe {
        let p = Pretokenizer::new("gpt2").unwrap();
        let mut c = PieceCounts::new();
        let doc = "aaaaaaaa abababab banana bandana ".repeat(50);
        c.add_docs(&p, &[doc.as_str()]).unwrap();
        let cfg = TrainConfig {
            vocab_size: 300,
            min_frequency: 0,
            special_tokens: vec!["<|eot|>".into()],
            tie_order: TieOrder::Hf,
        };
        train(c, p, &cfg, &Silent).unwrap().bpe
    }

    #[test]
    fn heap_and_linear_agree_and_round_trip() {
        let bpe = small();
        for piece in [
            "a".repeat(100),
            "ab".repeat(49),
            "banana".repeat(16),
            "bandana".repeat(3),
        ] {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            bpe.merge_linear(piece.as_bytes(), &mut x);
            bpe.merge_heap(piece.as_bytes(), &mut y);
            assert_eq!(x, y);
            assert_eq!(bpe.decode_bytes(&x).unwrap(), piece.as_bytes());
        }
        for piece in ["a".repeat(1001), "banana".repeat(300)] {
            let mut y = Vec::new();
            bpe.merge_heap(piece.as_bytes(), &mut y);
            assert_eq!(bpe.decode_bytes(&y).unwrap(), piece.as_bytes());
        }
    }

    #[test]
    fn specials_split_only_when_allowed() {
        let bpe = small();
        let text = "banana<|eot|>bandana";
        let m = bpe.special_matcher(&[0]).unwrap();
        let ids = bpe.encode(text, m.as_ref()).unwrap();
        assert!(ids.contains(&0));
        let plain = bpe.encode(text, None).unwrap();
        assert!(!plain.contains(&0));
        assert_eq!(bpe.decode_bytes(&ids).unwrap(), text.as_bytes());
        let (ids2, spans) = bpe.encode_with_spans(text, m.as_ref()).unwrap();
        assert_eq!(ids2, ids);
        let k = ids.iter().position(|&i| i == 0).unwrap();
        assert_eq!(spans[k], Span { start: 6, end: 13 });
        assert_eq!(spans.last().unwrap().end, text.len());
        assert!(bpe.special_matcher(&[5]).is_err());
    }

    /// TV4 of docs/bpe.md §6: toy ranks a=0 b=1 c=2 ab=3 cb=4 ac=5 bb=6 cbb=7 acbb=8 (plus the
    /// other bytes after them), whole string one piece.
    #[test]
    fn tv4_rank_semantics() {
        let mut ranks: Vec<(Vec<u8>, u32)> = ["a", "b", "c", "ab", "cb", "ac", "bb", "cbb", "acbb"]
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_bytes().to_vec(), i as u32))
            .collect();
        let mut next = 9;
        for b in 0..=255u8 {
            if !b"abc".contains(&b) {
                ranks.push((vec![b], next));
                next += 1;
            }
        }
        let bpe = Bpe::from_ranks(ranks, vec![], Pretokenizer::new(r"[\s\S]+").unwrap()).unwrap();
        let enc = |s: &str| bpe.encode_ordinary(s).unwrap();
        assert_eq!(enc("abacb"), vec![3, 0, 4]);
        assert_eq!(enc("abacbb"), vec![3, 8]);
        assert_eq!(enc("bbb"), vec![6, 1]);
        assert_eq!(enc("aaa"), vec![0, 0, 0]);
    }
}
