//! Encoding with a [`Bpe`] model: pre-tokenize, then BPE each piece.
//!
//! Per piece: if `ignore_merges` and the piece is a token, emit it (tiktoken, Llama-3). Otherwise
//! start from single bytes and repeatedly apply the merge of lowest priority among adjacent
//! pairs, leftmost on ties (HF `BPE::merge_word`, and tiktoken's rule for rank files converted as
//! in spec 5.3(a)). Short pieces use tiktoken's linear scan (O(n^2) on tiny n, cache friendly);
//! long pieces a heap over pair positions with a linked list, O(n log n), so `"a" * 100000` is
//! fast.

use super::Bpe;

/// Pieces longer than this many bytes use the heap (tiktoken switches at 100 as well).
const HEAP_THRESHOLD: usize = 100;

impl Bpe {
    #[inline]
    fn pair(&self, l: u32, r: u32) -> Option<(u32, u32)> {
        self.pairs.get(&(((l as u64) << 32) | r as u64)).copied()
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
        if piece.len() <= HEAP_THRESHOLD {
            self.merge_linear(piece, out);
        } else {
            self.merge_heap(piece, out);
        }
    }

    fn merge_linear(&self, piece: &[u8], out: &mut Vec<u32>) {
        let mut syms: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        let rank = |s: &[u32], i: usize| -> (u32, u32) {
            if i + 1 < s.len() {
                self.pair(s[i], s[i + 1]).unwrap_or((u32::MAX, 0))
            } else {
                (u32::MAX, 0)
            }
        };
        let mut ranks: Vec<(u32, u32)> = (0..syms.len()).map(|i| rank(&syms, i)).collect();
        loop {
            let mut best = u32::MAX;
            let mut at = usize::MAX;
            for (i, &(r, _)) in ranks.iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if at == usize::MAX {
                break;
            }
            syms[at] = ranks[at].1;
            syms.remove(at + 1);
            ranks.remove(at + 1);
            ranks[at] = rank(&syms, at);
            if at > 0 {
                ranks[at - 1] = rank(&syms, at - 1);
            }
        }
        out.extend_from_slice(&syms);
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
        while let Some(Reverse((r, i, l, rt))) = heap.pop() {
            let j = next[i];
            // stale: a side was merged away or changed since this entry was pushed
            if !alive[i] || j >= n || sym[i] != l || sym[j] != rt {
                continue;
            }
            let Some((r2, new)) = self.pair(l, rt) else { continue };
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

    /// Ids of `text`, treating special-token text as ordinary text.
    pub fn encode_ordinary(&self, text: &str) -> crate::Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3);
        self.pretokenizer
            .for_each_piece(text, |p| self.encode_piece(p.as_bytes(), &mut out))?;
        Ok(out)
    }

    /// Concatenated bytes of `ids` (special tokens give their text); `None` for an unknown id.
    pub fn decode_bytes(&self, ids: &[u32]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id)?);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::bpe::count::PieceCounts;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::pretokenize::Pretokenizer;
    use crate::progress::Silent;

    #[test]
    fn heap_and_linear_agree_and_round_trip() {
        let p = Pretokenizer::new("gpt2").unwrap();
        let mut c = PieceCounts::new();
        let doc = "aaaaaaaa abababab banana bandana ".repeat(50);
        c.add_docs(&p, &[doc.as_str()]).unwrap();
        let cfg = TrainConfig { vocab_size: 300, min_frequency: 0, special_tokens: vec![], tie_order: TieOrder::Hf };
        let bpe = train(c, p, &cfg, &Silent).unwrap().bpe;
        for piece in ["a".repeat(150), "ab".repeat(77), "banana".repeat(30)] {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            bpe.merge_linear(piece.as_bytes(), &mut x);
            bpe.merge_heap(piece.as_bytes(), &mut y);
            assert_eq!(x, y);
            assert_eq!(bpe.decode_bytes(&x).unwrap(), piece.as_bytes());
        }
        let ids = bpe.encode_ordinary(&doc).unwrap();
        assert_eq!(bpe.decode_bytes(&ids).unwrap(), doc.as_bytes());
        assert!(ids.len() < doc.len() / 3);
    }
}
