//! The pair-priority table of the merge loop (docs/bpe.md §13.3): `(left, right) -> priority`
//! of the merge of two adjacent tokens, asked O(n) times per merged piece.
//!
//! Two levels: a dense grid for pairs of low ids (both `< 2^DENSE_BITS`: the byte tokens and the
//! first merges, which are the symbols of most lookups, hits and misses alike) answered by one
//! load, and an open-addressing table (linear probing, load <= 1/2) for the rest, whose slot
//! holds key and priority in one `u64` (21 bits each for left, right and priority) when every
//! id and priority is below 2^21, as in every real vocabulary (cl100k: 233 k pairs, 4 MiB),
//! else in a 16-byte slot. A merge's result id is its priority when priority is the rank
//! (tiktoken: the rank of the concatenation), else `merged[priority]` (merge-list order), so
//! the scan compares `u32`s only and reads the id once per applied merge.
//!
//! Pairs outside the grid are first checked against a blocked Bloom filter (two bits of one
//! `u64` per pair, about one byte per pair: 256 KiB for cl100k, L2-resident where the slots are
//! not): nearly three in four of the pairs the merge loop asks for there do not merge, and the
//! filter answers those (all but ~5 %) without a probe into the slots.
//!
//! Invariants: [`NONE`] is no merge; every pair of the model's merge table is found with the
//! priority of its first occurrence in the merge list; every pair outside the grid has both of
//! its filter bits set. Memory: `4^DENSE_BITS * 4` bytes + about 33 bytes per merge.

/// No merge for this pair.
pub const NONE: u32 = u32::MAX;
/// Ids below `2^DENSE_BITS` use the grid: 2^20 cells of 4 bytes = 4 MiB. 10 bits (ids < 1024)
/// cover the byte tokens and the first ~770 merges of the OpenAI vocabularies; 11 bits (16 MiB)
/// measured no faster on the benchmark's misses, 9 bits ~4 % slower.
const DENSE_BITS: u32 = 10;
const EMPTY: u64 = u64::MAX;
const LANE: u32 = 21;
const LANE_MASK: u64 = (1 << LANE) - 1;

#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    key: u64,
    prio: u32,
}

pub struct PairTable {
    dense: Vec<u32>,
    /// packed slots (`l << 42 | r << 21 | prio`, [`EMPTY`] when free), when everything fits
    packed: Vec<u64>,
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`
    shift: u32,
    /// a blocked Bloom filter of the pairs outside the grid: two bits of one word per pair
    /// ([`filter_bits`]), 8 bits a pair; a query whose bits are not both set is no merge
    filter: Vec<u64>,
    /// `64 - log2(filter.len())`
    filter_shift: u32,
    /// result id by priority (merge-list order); empty when priority is the result id
    merged: Vec<u32>,
    /// every priority is below `u16::MAX`, so a merge loop may keep them as `u16` with
    /// `u16::MAX` for [`NONE`] (vocabularies of fewer than 65,535 merges, such as gpt2's)
    narrow: bool,
}

impl std::fmt::Debug for PairTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PairTable({} slots)", self.slots.len())
    }
}

#[inline]
fn key(l: u32, r: u32) -> u64 {
    ((l as u64) << 32) | r as u64
}

#[inline]
fn hash(k: u64) -> u64 {
    (k ^ (k >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The filter word of a pair's hash: its top bits (the slot index's first bits too, which only
/// makes pairs of one home slot share a word).
#[inline(always)]
fn filter_word(h: u64, filter_shift: u32) -> usize {
    // a filter of one word has shift 64: `checked_shr` gives word 0
    h.checked_shr(filter_shift).unwrap_or(0) as usize
}

/// The two bits of a pair in its filter word, from hash bits below the ones the indices use.
#[inline(always)]
fn filter_bits(h: u64) -> u64 {
    (1u64 << ((h >> 20) & 63)) | (1u64 << ((h >> 26) & 63))
}

impl PairTable {
    /// `pairs` are `(left, right, priority, result)`, each pair once. `prio_is_result`: the
    /// priority of every pair is its result id (rank models), so no result table is kept.
    pub fn new(pairs: &[(u32, u32, u32, u32)], prio_is_result: bool) -> Self {
        let side = 1usize << DENSE_BITS;
        let mut dense = vec![NONE; side * side];
        let n = (pairs.len() * 2).next_power_of_two().max(16);
        let fits = pairs
            .iter()
            .all(|&(l, r, p, _)| ((l | r | p) as u64) < LANE_MASK);
        let mut packed = if fits { vec![EMPTY; n] } else { Vec::new() };
        let mut slots = if fits {
            Vec::new()
        } else {
            vec![
                Slot {
                    key: EMPTY,
                    prio: NONE
                };
                n
            ]
        };
        let shift = 64 - n.trailing_zeros();
        let sparse = pairs
            .iter()
            .filter(|&&(l, r, _, _)| (l | r) >> DENSE_BITS != 0)
            .count();
        // 8 bits a pair (a power of two, at least one word): about 5 % false positives
        let words = (sparse * 8 / 64).next_power_of_two().max(1);
        let mut filter = vec![0u64; words];
        let filter_shift = 64 - words.trailing_zeros();
        let mut merged = Vec::new();
        if !prio_is_result {
            let top = pairs.iter().map(|p| p.2 as usize + 1).max().unwrap_or(0);
            merged = vec![0; top];
        }
        for &(l, r, prio, res) in pairs {
            debug_assert!(!prio_is_result || prio == res);
            if let Some(m) = merged.get_mut(prio as usize) {
                *m = res;
            }
            let k = key(l, r);
            let h = hash(k);
            if (l | r) >> DENSE_BITS == 0 {
                dense[((l as usize) << DENSE_BITS) | r as usize] = prio;
            } else {
                filter[filter_word(h, filter_shift)] |= filter_bits(h);
            }
            let mut i = (h >> shift) as usize;
            if fits {
                while packed[i] != EMPTY {
                    i = (i + 1) & (n - 1);
                }
                packed[i] = ((l as u64) << (2 * LANE)) | ((r as u64) << LANE) | prio as u64;
                continue;
            }
            while slots[i].key != EMPTY {
                i = (i + 1) & (n - 1);
            }
            slots[i] = Slot { key: k, prio };
        }
        let narrow = pairs.iter().all(|p| p.2 < u32::from(u16::MAX));
        Self {
            dense,
            packed,
            slots,
            shift,
            filter,
            filter_shift,
            merged,
            narrow,
        }
    }

    /// Every priority is below `u16::MAX` (see the field).
    #[inline]
    pub fn narrow(&self) -> bool {
        self.narrow
    }

    /// Start loading the cell or slot [`PairTable::prio`] reads first for `(l, r)`, so that the
    /// probes of a piece's pairs overlap instead of following each other.
    #[inline(always)]
    pub fn prefetch(&self, l: u32, r: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let p: *const i8 = if (l | r) >> DENSE_BITS == 0 {
                self.dense
                    .as_ptr()
                    .wrapping_add(((l as usize) << DENSE_BITS) | r as usize)
                    .cast()
            } else {
                let h = hash(key(l, r));
                let w = self
                    .filter
                    .as_ptr()
                    .wrapping_add(filter_word(h, self.filter_shift));
                // SAFETY: as below; the word is inside the filter (its index is below its length
                // by the shift).
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(w.cast())
                };
                let i = (h >> self.shift) as usize;
                if self.packed.is_empty() {
                    self.slots.as_ptr().wrapping_add(i).cast()
                } else {
                    self.packed.as_ptr().wrapping_add(i).cast()
                }
            };
            // SAFETY: a prefetch hint never faults and changes no memory; the address is
            // inside one of the table's arrays (`i` is below its length by the shift).
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (l, r);
    }

    /// Priority of merging `l` and `r`, or [`NONE`].
    #[inline]
    pub fn prio(&self, l: u32, r: u32) -> u32 {
        if (l | r) >> DENSE_BITS == 0 {
            return self.dense[((l as usize) << DENSE_BITS) | r as usize];
        }
        let k = key(l, r);
        let h = hash(k);
        // most pairs asked for outside the grid do not merge (cl100k: 73 % on the benchmark
        // sample's misses): the filter, a 64th of the slots' size, answers them without a
        // probe into the slots
        let bits = filter_bits(h);
        if self.filter[filter_word(h, self.filter_shift)] & bits != bits {
            return NONE;
        }
        let mut i = (h >> self.shift) as usize;
        if !self.packed.is_empty() {
            // ids at or above 2^21 - 1 are in no pair of a packed table (all ones is EMPTY)
            let want = ((l as u64) << LANE) | r as u64;
            if (l | r) as u64 >= LANE_MASK {
                return NONE;
            }
            let mask = self.packed.len() - 1;
            loop {
                let s = self.packed[i];
                if s >> LANE == want {
                    return (s & LANE_MASK) as u32;
                }
                if s == EMPTY {
                    return NONE;
                }
                i = (i + 1) & mask;
            }
        }
        let mask = self.slots.len() - 1;
        loop {
            let s = self.slots[i];
            if s.key == k {
                return s.prio;
            }
            if s.key == EMPTY {
                return NONE;
            }
            i = (i + 1) & mask;
        }
    }

    /// The token a merge of priority `prio` (not [`NONE`]) makes.
    #[inline]
    pub fn result(&self, prio: u32) -> u32 {
        if self.merged.is_empty() {
            prio
        } else {
            self.merged.get(prio as usize).copied().unwrap_or(prio)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_pair_dense_and_sparse_and_nothing_else() {
        let pairs: Vec<(u32, u32, u32, u32)> = (0..3000u32)
            .map(|i| (i % 1500, (i * 7) % 2048 + (i & 1) * 5000, i, 10_000 + i))
            .collect();
        for prio_is_result in [false, true] {
            let ps: Vec<_> = pairs
                .iter()
                .map(|&(l, r, p, res)| (l, r, p, if prio_is_result { p } else { res }))
                .collect();
            let t = PairTable::new(&ps, prio_is_result);
            for &(l, r, p, res) in &ps {
                assert_eq!(t.prio(l, r), p);
                assert_eq!(t.result(p), res);
            }
            assert_eq!(t.prio(1499, 1499), NONE);
            assert_eq!(t.prio(7, 90_000), NONE);
            assert_eq!(t.prio(7, 5_000_000), NONE);
            assert!(!t.packed.is_empty());
        }
        // the filter: every pair passes it; few absent ones do
        let t = PairTable::new(&pairs, false);
        let (mut asked, mut passed) = (0, 0);
        for l in 1024..1400u32 {
            for r in 3000..3100u32 {
                if t.prio(l, r) == NONE {
                    asked += 1;
                    let h = hash(key(l, r));
                    let bits = filter_bits(h);
                    passed += usize::from(t.filter[filter_word(h, t.filter_shift)] & bits == bits);
                }
            }
        }
        assert!(asked > 30_000 && passed * 10 < asked, "{passed} of {asked}");
        // ids beyond 21 bits: the wide slots (and a filter of one word)
        let wide = PairTable::new(
            &[(3_000_000, 5, 9, 9), (5, 3_000_000, 4_000_000, 4_000_000)],
            true,
        );
        assert!(wide.packed.is_empty());
        assert_eq!(wide.filter.len(), 1);
        assert_eq!(wide.prio(3_000_000, 5), 9);
        assert_eq!(wide.prio(5, 3_000_000), 4_000_000);
        assert_eq!(wide.prio(5, 5), NONE);
    }
}
