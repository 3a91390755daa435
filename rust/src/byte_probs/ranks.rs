//! Ranks over a bitset of trie positions: how many set bits lie before position `k`, in
//! `O(1)` (docs/byte_probs.md §13, fourteenth round). A masked [`super::LmRow`] keeps one
//! cumulative entry per valid position only; its range sums map positions to entries by rank.
//!
//! Layout: the bitset's words (bit `k % 64` of word `k / 64` for position `k`) with one zero word
//! appended, and per word the number of set bits in the words before it (`u32`). At cl100k:
//! 12.5 KB of words and 6.3 KB of counts, against 0.8 MB for a dense cumulative row.
//! Invariant: no bit is set at or past `positions` (so the ranks of the last word end at
//! [`Ranks::count`]).

/// The ranks of the set bits of one trie-order bitset over `positions` positions.
#[derive(Debug, Clone)]
pub struct Ranks {
    /// the bitset, `positions.div_ceil(64) + 1` words (the last one 0: the rank of
    /// `k = positions` reads it when `positions` is a multiple of 64)
    words: Vec<u64>,
    /// `before[w]` = set bits in `words[..w]`, one entry per word
    before: Vec<u32>,
    positions: usize,
    count: usize,
}

impl Ranks {
    /// The ranks of `bits` over `positions` positions (bits at or past `positions` are dropped,
    /// missing words read as 0). `O(positions / 64)`; `bits` is reused as the word store.
    pub fn new(mut bits: Vec<u64>, positions: usize) -> Self {
        let n_words = positions.div_ceil(64);
        bits.resize(n_words + 1, 0);
        bits[n_words] = 0;
        if !positions.is_multiple_of(64) {
            bits[n_words - 1] &= (1u64 << (positions % 64)) - 1;
        }
        let mut before = Vec::with_capacity(bits.len());
        let mut count = 0u32;
        for &w in &bits {
            before.push(count);
            count += w.count_ones();
        }
        Self {
            words: bits,
            before,
            positions,
            count: count as usize,
        }
    }

    /// Set bits at positions `< k`, for `k <= positions`.
    #[inline]
    pub fn rank(&self, k: usize) -> usize {
        debug_assert!(k <= self.positions);
        let (w, b) = (k / 64, k % 64);
        let low = (1u64 << b) - 1;
        self.before[w] as usize + (self.words[w] & low).count_ones() as usize
    }

    /// The bitset, `positions.div_ceil(64)` words (no bit set at or past `positions`).
    #[inline]
    pub fn words(&self) -> &[u64] {
        &self.words[..self.words.len() - 1]
    }

    /// Set bits in all.
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// The number of positions the bitset covers.
    #[inline]
    pub fn positions(&self) -> usize {
        self.positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_the_set_bits_before_each_position() {
        for positions in [0usize, 1, 63, 64, 65, 128, 200] {
            let words = positions.div_ceil(64);
            let pattern = |w: usize| 0x9e37_79b9_7f4a_7c15u64.rotate_left(w as u32 * 7) | 1;
            // bits past the end (dropped), the words exactly, a missing last word (read as 0)
            for n_words in [words + 1, words, words.saturating_sub(1)] {
                let bits: Vec<u64> = (0..n_words).map(pattern).collect();
                let set = |k: usize| {
                    k < positions && bits.get(k / 64).is_some_and(|w| (w >> (k % 64)) & 1 == 1)
                };
                let r = Ranks::new(bits.clone(), positions);
                let mut want = 0;
                for k in 0..=positions {
                    assert_eq!(r.rank(k), want, "positions {positions}, k {k}");
                    want += usize::from(set(k));
                }
                assert_eq!(r.count(), want);
                assert_eq!(r.words().len(), words);
                assert_eq!(r.positions(), positions);
            }
        }
    }
}
