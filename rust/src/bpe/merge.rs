//! The merge loop of the uncached path ([`Bpe::encode_piece`]): start from a piece's byte
//! tokens and repeatedly apply the adjacent merge of lowest priority, leftmost on ties (HF
//! `BPE::merge_word`; tiktoken's `byte_pair_merge` when priority is the rank of the
//! concatenation). Pair priorities come from [`super::pairs::PairTable`] (docs/bpe.md §13.3).
//!
//! Two loops, by piece length (docs/bpe.md §13.5, twelfth round):
//! - up to [`LIST_MAX`] bytes, a scan for the lowest priority over a doubly linked list kept on
//!   the stack (`u8` links, no allocation): a merge unlinks one node in O(1) (no shifting of
//!   the tail) and refreshes the two pairs around the merged token, whose priority-table lines
//!   are requested as soon as the merge is chosen, before the list surgery. O(n^2) on small n,
//!   no allocation; the pieces the piece table misses (at most 15 bytes) take an array of 16.
//!   On x86_64 with SSE4.1 the priorities of the scan live in SSE registers as 16-bit lanes
//!   (`lanes`: `phminposuw` finds the lowest; issue 15, sixteenth round): for every list of a
//!   model whose priorities fit 16 bits (gpt2; then up to `lanes::LIST_MAX` bytes, not the
//!   heap), for the lists of 17..=32 bytes of the others.
//! - longer pieces: a binary min-heap of packed `priority << 32 | position` entries over the
//!   same linked list (arrays reused from call to call on each thread), with lazy deletion: an
//!   entry is current when the pair at its position still has its priority (`rank[pos]`), so a
//!   stale entry costs one compare and no table probe. O(n log n): `"a" * 100000` stays fast,
//!   and a huge piece can be cancelled ([`crate::cancel`]).
//!
//! Invariants: `rank[i]` is the priority of the pair starting at live position `i` (`NONE` for
//! the last live position and for removed ones); live positions keep their order, so "leftmost"
//! is "lowest position" in both loops; every live pair with a priority has an entry
//! `(rank[i], i)` in the heap.

use super::pairs::{PairTable, NONE};
use super::Bpe;
use std::cell::RefCell;

/// Pieces of more than this many bytes use the heap. At 100 (tiktoken's switch) and 64 the
/// scan's O(n^2) shows on the 16..=100-byte letter runs of CJK and Cyrillic text; measured in
/// docs/bpe.md §13.5 (twelfth round).
pub(super) const LIST_MAX: usize = 32;

/// The linked-list scan's capacity for the pieces the piece table misses (at most 15 bytes).
const SHORT_CAP: usize = 16;

/// The heap loop's arrays, one set per thread, kept between calls.
#[derive(Default)]
struct Scratch {
    sym: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    rank: Vec<u32>,
    heap: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Positions of the heap loop are `u32`; [`END`] is "no neighbour".
const END: u32 = u32::MAX;

impl Bpe {
    /// Append the ids of one piece to `out` (uncached: see [`Bpe::piece_encoder`]).
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
        if piece.len() > LIST_MAX {
            self.merge_heap(piece, out);
        } else if !piece.is_empty() {
            self.merge_linear(piece, out);
        }
    }

    /// The merge loop for a piece of 1..=[`LIST_MAX`] bytes (a linked list on the stack).
    pub(super) fn merge_linear(&self, piece: &[u8], out: &mut Vec<u32>) {
        debug_assert!(!piece.is_empty() && piece.len() <= LIST_MAX);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sse4.1") {
            let (p, b) = (&self.pairs, &self.byte_ids);
            // SAFETY: SSE4.1 was detected on this CPU; `WIDE` is false only when every
            // priority is below `u16::MAX`; the piece fits the list (`LIST_MAX` = 32).
            unsafe {
                match (p.narrow(), piece.len() <= SHORT_CAP) {
                    (true, true) => lanes::merge_list::<2, 16, false>(p, b, piece, out),
                    (true, false) => lanes::merge_list::<4, 32, false>(p, b, piece, out),
                    // wide priorities in a short piece: as fast on the scalar scan, whose
                    // branch predicts well over a few entries (docs/bpe.md §13.5)
                    (false, true) => merge_list::<SHORT_CAP>(p, b, piece, out),
                    (false, false) => lanes::merge_list::<4, 32, true>(p, b, piece, out),
                }
            }
            return;
        }
        if piece.len() <= SHORT_CAP {
            merge_list::<SHORT_CAP>(&self.pairs, &self.byte_ids, piece, out);
        } else {
            merge_list::<LIST_MAX>(&self.pairs, &self.byte_ids, piece, out);
        }
    }

    /// The merge loop for a piece of any length (a heap); stops early, appending nothing, when
    /// the thread's [`crate::cancel`] handle is set.
    pub(super) fn merge_heap(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() < 2 {
            out.extend(piece.iter().map(|&b| self.byte_ids[b as usize]));
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if piece.len() <= lanes::LIST_MAX
            && self.pairs.narrow()
            && std::arch::is_x86_feature_detected!("sse4.1")
        {
            // SAFETY: SSE4.1 was detected on this CPU; every priority is below `u16::MAX`;
            // the piece fits the list.
            unsafe { lanes::merge_list::<8, 64, false>(&self.pairs, &self.byte_ids, piece, out) };
            return;
        }
        if piece.len() >= END as usize {
            // positions would not fit the packed entries (a piece of 4 GiB)
            merge_heap_wide(&self.pairs, &self.byte_ids, piece, out);
            return;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => merge_heap_in(&self.pairs, &self.byte_ids, piece, out, &mut s),
            Err(_) => merge_heap_in(
                &self.pairs,
                &self.byte_ids,
                piece,
                out,
                &mut Scratch::default(),
            ),
        });
    }
}

/// The scan over a linked list of at most `CAP` (< 256) nodes: `next[i]` is the next live
/// position (`n` past the end), `prev[i]` the one before (`u8::MAX` before the start).
#[inline(always)]
fn merge_list<const CAP: usize>(
    pairs: &PairTable,
    byte_ids: &[u32; 256],
    piece: &[u8],
    out: &mut Vec<u32>,
) {
    let n = piece.len();
    debug_assert!((1..=CAP).contains(&n) && CAP < u8::MAX as usize);
    let mut sym = [0u32; CAP];
    let mut rank = [NONE; CAP];
    let mut next = [0u8; CAP];
    let mut prev = [0u8; CAP];
    for (i, (s, &b)) in sym.iter_mut().zip(piece).enumerate() {
        *s = byte_ids[b as usize];
        next[i] = (i + 1) as u8;
        prev[i] = (i as u8).wrapping_sub(1);
    }
    // the first probes are independent: issue all their loads, then read them
    for w in sym[..n].windows(2) {
        pairs.prefetch(w[0], w[1]);
    }
    for i in 0..n - 1 {
        rank[i] = pairs.prio(sym[i], sym[i + 1]);
    }
    let live = n.saturating_sub(1);
    loop {
        let mut best = NONE;
        let mut at = 0;
        for (i, &r) in rank[..live].iter().enumerate() {
            if r < best {
                best = r;
                at = i;
            }
        }
        if best == NONE {
            break;
        }
        let merged = pairs.result(best);
        let (left, dead, right) = splice(pairs, &mut sym, &mut next, &mut prev, n, at, merged);
        rank[dead] = NONE;
        rank[at] = if right < n {
            pairs.prio(merged, sym[right])
        } else {
            NONE
        };
        if left < n {
            rank[left] = pairs.prio(sym[left], merged);
        }
    }
    let mut i = 0;
    while i < n {
        out.push(sym[i]);
        i = next[i] as usize;
    }
}

/// A merge in a list scan's linked list: the pair at `at` becomes `merged` and the node after
/// it leaves the list. Both pairs the merge makes are known before the list changes, so their
/// priorities' loads start first. Returns `(left, dead, right)`: the node before `at`, the one
/// removed and the one now after `at` (`>= n`: none).
#[inline(always)]
fn splice<const CAP: usize>(
    pairs: &PairTable,
    sym: &mut [u32; CAP],
    next: &mut [u8; CAP],
    prev: &mut [u8; CAP],
    n: usize,
    at: usize,
    merged: u32,
) -> (usize, usize, usize) {
    let dead = next[at] as usize;
    let right = next[dead] as usize;
    let left = prev[at] as usize;
    if right < n {
        pairs.prefetch(merged, sym[right]);
        prev[right] = at as u8;
    }
    if left < n {
        pairs.prefetch(sym[left], merged);
    }
    sym[at] = merged;
    next[at] = right as u8;
    (left, dead, right)
}

/// The list scan with the priorities in SSE registers: eight 16-bit lanes per register, the
/// lowest (leftmost on ties) taken by SSE4.1's `phminposuw` (the minimum of eight lanes and
/// its index in one instruction) per register, so the scan has no branch on the data, where
/// the scalar scan's branch on "lower than the lowest so far" goes either way at random. A
/// merge rewrites its three lanes (the merged pair's, the removed node's and the left
/// neighbour's) by a compare of the lane index and a blend, in registers: with the lanes in an
/// array, each scan's wide load would wait on the narrow stores before it (no store
/// forwarding). A priority of `u16::MAX - 1` or more has the lane [`CLAMPED`], [`NONE`] the
/// lane `u16::MAX`; a model whose priorities all fit below `u16::MAX`
/// ([`PairTable::narrow`], gpt2) never has a clamped lane, others (`WIDE`) keep the exact
/// priorities in an array too and, when the lowest lane is clamped, scan that instead.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::super::pairs::{PairTable, NONE};
    use std::arch::x86_64::*;

    /// Pieces of up to this many bytes take the scan when priorities are narrow (the heap
    /// above): with no branch per entry the scan costs less per merge than the heap's sift up
    /// to here.
    pub(super) const LIST_MAX: usize = 64;

    /// The lane of [`NONE`].
    const NONE16: u32 = u16::MAX as u32;
    /// The lane of every priority of at least this value.
    const CLAMPED: u32 = NONE16 - 1;

    /// A priority's lane: itself below [`CLAMPED`], [`NONE16`] for [`NONE`], else [`CLAMPED`].
    #[inline(always)]
    fn clamp(r: u32) -> u16 {
        r.min(CLAMPED) as u16 | u16::from(r == NONE)
    }

    /// `W` registers of eight lanes: a piece of at most `CAP = 8 * W` (< 256) bytes. `WIDE`:
    /// priorities may be clamped (keep the exact ones).
    ///
    /// # Safety
    /// The CPU must support SSE4.1; `1 <= piece.len() <= CAP = 8 * W`; without `WIDE`, every
    /// priority is below `u16::MAX` (`pairs.narrow()`).
    #[target_feature(enable = "sse4.1")]
    pub(super) unsafe fn merge_list<const W: usize, const CAP: usize, const WIDE: bool>(
        pairs: &PairTable,
        byte_ids: &[u32; 256],
        piece: &[u8],
        out: &mut Vec<u32>,
    ) {
        let n = piece.len();
        debug_assert!((1..=CAP).contains(&n) && 8 * W == CAP && CAP < 256);
        debug_assert!(WIDE || pairs.narrow());
        let n = n.min(CAP);
        let mut sym = [0u32; CAP];
        let mut next = [0u8; CAP];
        let mut prev = [0u8; CAP];
        for (i, (s, &b)) in sym.iter_mut().zip(&piece[..n]).enumerate() {
            *s = byte_ids[b as usize];
            next[i] = (i + 1) as u8;
            prev[i] = (i as u8).wrapping_sub(1);
        }
        for w in sym[..n].windows(2) {
            pairs.prefetch(w[0], w[1]);
        }
        // the exact priorities, for the scans of clamped lanes (not kept when no priority
        // is clamped)
        let mut exact = [NONE; CAP];
        let mut first = [u16::MAX; CAP];
        for i in 0..n - 1 {
            let r = pairs.prio(sym[i], sym[i + 1]);
            if WIDE {
                exact[i] = r;
            }
            first[i] = clamp(r);
        }
        let mut rank = [_mm_setzero_si128(); W];
        let mut lanes = [_mm_setzero_si128(); W];
        for (k, (r, l)) in rank.iter_mut().zip(lanes.iter_mut()).enumerate() {
            // SAFETY: `8 * k + 8 <= 8 * W <= CAP`: inside `first`.
            *r = unsafe { _mm_loadu_si128(first.as_ptr().add(8 * k).cast()) };
            let b = (8 * k) as i16;
            *l = _mm_setr_epi16(b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7);
        }
        // priority `pos` (< n) set to `v`: its exact entry and its lane
        let set = |rank: &mut [__m128i; W], exact: &mut [u32; CAP], pos: usize, v: u32| {
            if WIDE {
                exact[pos] = v;
            }
            let (p, v) = (_mm_set1_epi16(pos as i16), _mm_set1_epi16(clamp(v) as i16));
            for (r, l) in rank.iter_mut().zip(&lanes) {
                *r = _mm_blendv_epi8(*r, v, _mm_cmpeq_epi16(p, *l));
            }
        };
        loop {
            // per register `index << 16 | value`, turned to `value << 16 | index`: the
            // smallest key is the lowest priority, then the leftmost position
            let mut key = u32::MAX;
            for (k, r) in rank.iter().enumerate() {
                let m = _mm_cvtsi128_si32(_mm_minpos_epu16(*r)) as u32;
                key = key.min(m.rotate_left(16) + 8 * k as u32);
            }
            let (best, at) = match key >> 16 {
                NONE16 => break,
                // every live priority is CLAMPED or more: the lowest exact one, leftmost
                CLAMPED if WIDE => {
                    let (mut best, mut at) = (NONE, 0);
                    for (i, &r) in exact[..n].iter().enumerate() {
                        if r < best {
                            (best, at) = (r, i);
                        }
                    }
                    (best, at)
                }
                best => (best, (key & 0xffff) as usize),
            };
            let merged = pairs.result(best);
            let (left, dead, right) =
                super::splice(pairs, &mut sym, &mut next, &mut prev, n, at, merged);
            set(&mut rank, &mut exact, dead, NONE);
            let r = if right < n {
                pairs.prio(merged, sym[right])
            } else {
                NONE
            };
            set(&mut rank, &mut exact, at, r);
            if left < n {
                set(&mut rank, &mut exact, left, pairs.prio(sym[left], merged));
            }
        }
        let mut i = 0;
        while i < n {
            out.push(sym[i]);
            i = next[i] as usize;
        }
    }
}

/// The heap loop over the thread's [`Scratch`] (`piece.len() < END`).
fn merge_heap_in(
    pairs: &PairTable,
    byte_ids: &[u32; 256],
    piece: &[u8],
    out: &mut Vec<u32>,
    s: &mut Scratch,
) {
    const AHEAD: usize = 8;
    let n = piece.len();
    debug_assert!(n > 1 && n < END as usize);
    let Scratch {
        sym,
        next,
        prev,
        rank,
        heap,
    } = s;
    sym.clear();
    sym.extend(piece.iter().map(|&b| byte_ids[b as usize]));
    next.clear();
    next.extend(1..n as u32);
    next.push(END);
    prev.clear();
    prev.push(END);
    prev.extend(0..n as u32 - 1);
    rank.clear();
    rank.resize(n, NONE);
    heap.clear();
    for i in 0..n - 1 {
        if i + AHEAD + 1 < n {
            pairs.prefetch(sym[i + AHEAD], sym[i + AHEAD + 1]);
        }
        let r = pairs.prio(sym[i], sym[i + 1]);
        rank[i] = r;
        if r != NONE {
            heap.push(entry(r, i as u32));
        }
    }
    let mut h = MinHeap::from_vec(std::mem::take(heap));
    let mut steps = 0u32;
    let mut cancelled = false;
    while let Some(e) = h.pop() {
        steps = steps.wrapping_add(1);
        // a piece of millions of bytes (one long word) takes seconds: let it be cancelled
        if steps.is_multiple_of(1 << 16) && crate::cancel::is_set() {
            cancelled = true;
            break;
        }
        let (r, at) = ((e >> 32) as u32, e as u32 as usize);
        // stale: the pair at `at` was merged away or changed since this entry was pushed
        if rank[at] != r {
            continue;
        }
        let merged = pairs.result(r);
        let dead = next[at] as usize;
        let right = next[dead];
        let left = prev[at];
        if right != END {
            pairs.prefetch(merged, sym[right as usize]);
        }
        if left != END {
            pairs.prefetch(sym[left as usize], merged);
        }
        sym[at] = merged;
        next[at] = right;
        rank[dead] = NONE;
        next[dead] = END;
        rank[at] = NONE;
        if right != END {
            prev[right as usize] = at as u32;
            let rr = pairs.prio(merged, sym[right as usize]);
            rank[at] = rr;
            if rr != NONE {
                h.push(entry(rr, at as u32));
            }
        }
        if left != END {
            let rl = pairs.prio(sym[left as usize], merged);
            rank[left as usize] = rl;
            if rl != NONE {
                h.push(entry(rl, left));
            }
        }
    }
    *heap = h.into_vec();
    if cancelled {
        return;
    }
    let mut i = 0;
    while i != END as usize {
        out.push(sym[i]);
        i = next[i] as usize;
    }
}

#[inline(always)]
fn entry(rank: u32, at: u32) -> u64 {
    ((rank as u64) << 32) | at as u64
}

/// A binary min-heap of `u64` (std's `BinaryHeap` is a max-heap: `Reverse` wrappers aside, its
/// sift-down with a hole is what this does, on plain integers).
struct MinHeap(Vec<u64>);

impl MinHeap {
    fn from_vec(mut v: Vec<u64>) -> Self {
        for i in (0..v.len() / 2).rev() {
            sift_down(&mut v, i);
        }
        MinHeap(v)
    }

    #[inline]
    fn push(&mut self, x: u64) {
        let v = &mut self.0;
        let mut i = v.len();
        v.push(x);
        while i > 0 {
            let p = (i - 1) / 2;
            if v[p] <= x {
                break;
            }
            v[i] = v[p];
            i = p;
        }
        v[i] = x;
    }

    #[inline]
    fn pop(&mut self) -> Option<u64> {
        let v = &mut self.0;
        let last = v.pop()?;
        if v.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut v[0], last);
        sift_down(v, 0);
        Some(top)
    }

    fn into_vec(self) -> Vec<u64> {
        self.0
    }
}

#[inline]
fn sift_down(v: &mut [u64], mut i: usize) {
    let n = v.len();
    let x = v[i];
    loop {
        let c = 2 * i + 1;
        if c >= n {
            break;
        }
        // the smaller child without a branch (which one is a coin toss)
        let right = v.get(c + 1).copied().unwrap_or(u64::MAX);
        let c = c + usize::from(right < v[c]);
        if x <= v[c] {
            break;
        }
        v[i] = v[c];
        i = c;
    }
    v[i] = x;
}

/// The heap loop with `usize` positions and tuple entries, for a piece too long for the packed
/// entries (4 GiB or more); the reference the tests hold the other loops to.
fn merge_heap_wide(pairs: &PairTable, byte_ids: &[u32; 256], piece: &[u8], out: &mut Vec<u32>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = piece.len();
    let mut sym: Vec<u32> = piece.iter().map(|&b| byte_ids[b as usize]).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut next: Vec<usize> = (1..=n).collect();
    let mut alive = vec![true; n];
    let mut heap = BinaryHeap::new();
    for i in 0..n.saturating_sub(1) {
        let r = pairs.prio(sym[i], sym[i + 1]);
        if r != NONE {
            heap.push(Reverse((r, i, sym[i], sym[i + 1])));
        }
    }
    let mut steps = 0u32;
    while let Some(Reverse((r, i, l, rt))) = heap.pop() {
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(1 << 16) && crate::cancel::is_set() {
            return;
        }
        let j = next[i];
        // stale: a side was merged away or changed since this entry was pushed
        if !alive[i] || j >= n || sym[i] != l || sym[j] != rt {
            continue;
        }
        if pairs.prio(l, rt) != r {
            continue;
        }
        let new = pairs.result(r);
        sym[i] = new;
        alive[j] = false;
        next[i] = next[j];
        if next[j] < n {
            prev[next[j]] = i;
        }
        let p = prev[i];
        if p < n {
            let rp = pairs.prio(sym[p], new);
            if rp != NONE {
                heap.push(Reverse((rp, p, sym[p], new)));
            }
        }
        let q = next[i];
        if q < n {
            let rq = pairs.prio(new, sym[q]);
            if rq != NONE {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::count::PieceCounts;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::pretokenize::Pretokenizer;
    use crate::progress::Silent;

    /// tiktoken's scan with shifting arrays, as the merge loop was before the linked list: the
    /// reference for pieces of any length.
    fn reference_scan(bpe: &Bpe, piece: &[u8]) -> Vec<u32> {
        let pairs = &bpe.pairs;
        let mut syms: Vec<u32> = piece.iter().map(|&b| bpe.byte_ids[b as usize]).collect();
        let mut ranks: Vec<u32> = syms.windows(2).map(|w| pairs.prio(w[0], w[1])).collect();
        ranks.push(NONE);
        while syms.len() > 1 {
            let (mut best, mut at) = (NONE, 0);
            for (i, &r) in ranks[..syms.len() - 1].iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if best == NONE {
                break;
            }
            syms[at] = pairs.result(best);
            syms.remove(at + 1);
            ranks.remove(at + 1);
            ranks[at] = match syms.get(at + 1) {
                Some(&r) => pairs.prio(syms[at], r),
                None => NONE,
            };
            if at > 0 {
                ranks[at - 1] = pairs.prio(syms[at - 1], syms[at]);
            }
        }
        syms
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*, fixed seed: deterministic
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A merge-list model trained on random words over `alphabet`, and the rank model with the
    /// same tokens (tiktoken's view: any split of a token may merge, priority its rank).
    fn models(alphabet: &[u8], vocab_size: usize, seed: u64) -> [Bpe; 2] {
        let mut rng = Rng(seed);
        let mut doc = Vec::new();
        for _ in 0..4000 {
            doc.push(b' ');
            // words repeat parts, so long merges exist ("abab", "aaaa")
            let len = 1 + rng.below(12);
            let unit = 1 + rng.below(3);
            let w: Vec<u8> = (0..unit)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            doc.extend(w.iter().cycle().take(len));
        }
        let doc = String::from_utf8_lossy(&doc).into_owned();
        let p = Pretokenizer::new("gpt2").unwrap();
        let mut c = PieceCounts::new();
        c.add_docs(&p, &[doc.as_str()]).unwrap();
        let cfg = TrainConfig {
            vocab_size,
            min_frequency: 0,
            special_tokens: vec![],
            tie_order: TieOrder::Hf,
        };
        let merge_list = train(c, p.clone(), &cfg, &Silent).unwrap().bpe;
        let rank = Bpe::from_ranks(merge_list.regular_tokens(), vec![], p).unwrap();
        [merge_list, rank]
    }

    fn random_piece(rng: &mut Rng, alphabet: &[u8], len: usize) -> Vec<u8> {
        match rng.below(3) {
            // repeated units: the same pair many times ("aaaa", "abab")
            0 => {
                let unit: Vec<u8> = (0..1 + rng.below(3))
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
                unit.iter().cycle().take(len).copied().collect()
            }
            // any byte now and then, inside the alphabet otherwise
            1 => (0..len)
                .map(|_| {
                    if rng.below(16) == 0 {
                        rng.below(256) as u8
                    } else {
                        alphabet[rng.below(alphabet.len())]
                    }
                })
                .collect(),
            _ => (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect(),
        }
    }

    /// `rank` (a rank model) with 70,000 tokens that never merge placed after its first `keep`
    /// ranks, so that the priorities of its later merges are above `u16::MAX` (as cl100k's
    /// and o200k's are) and its earlier ones below. The fillers are seven bytes of
    /// `0xF8..=0xFF`, of which no part longer than a byte is a token.
    fn widened(rank: &Bpe, keep: u32) -> Bpe {
        const FILL: u32 = 70_000;
        let mut ranks: Vec<(Vec<u8>, u32)> = rank
            .regular_tokens()
            .into_iter()
            .map(|(t, r)| (t, if r < keep { r } else { r + FILL }))
            .collect();
        for i in 0..FILL {
            let t = (0..7).map(|k| 0xF8 + ((i >> (3 * k)) & 7) as u8).collect();
            ranks.push((t, keep + i));
        }
        Bpe::from_ranks(ranks, vec![], Pretokenizer::new("gpt2").unwrap()).unwrap()
    }

    #[test]
    fn list_and_heap_loops_equal_the_reference_scan() {
        let small: Vec<u8> = b"ab".to_vec();
        let mid: Vec<u8> = b"abcde ".to_vec();
        let large: Vec<u8> = (b'!'..=b'~').chain([0xC3, 0xA9, 0xD0, 0xB0]).collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut merged = 0usize;
        for (k, alphabet) in [small, mid, large].iter().enumerate() {
            let [list, rank] = models(alphabet, 256 + 300 + 200 * k, 7 + k as u64);
            // priorities past 16 bits from the middle of the merges on, and for all of them
            let half = (256 + rank.vocab_size() as u32) / 2;
            let wide = [widened(&rank, half), widened(&rank, 256)];
            assert!(list.pairs.narrow() && rank.pairs.narrow());
            assert!(!wide[0].pairs.narrow() && !wide[1].pairs.narrow());
            for bpe in [list, rank].into_iter().chain(wide) {
                for _ in 0..1500 {
                    let len = 1 + rng.below(300);
                    let piece = random_piece(&mut rng, alphabet, len);
                    let want = reference_scan(&bpe, &piece);
                    merged += piece.len() - want.len();
                    let mut wide = Vec::new();
                    merge_heap_wide(&bpe.pairs, &bpe.byte_ids, &piece, &mut wide);
                    assert_eq!(wide, want, "{piece:?}");
                    let mut heap = Vec::new();
                    bpe.merge_heap(&piece, &mut heap);
                    assert_eq!(heap, want, "{piece:?}");
                    if piece.len() <= LIST_MAX {
                        let mut list = Vec::new();
                        bpe.merge_linear(&piece, &mut list);
                        assert_eq!(list, want, "{piece:?}");
                    }
                    let mut any = Vec::new();
                    bpe.encode_piece(&piece, &mut any);
                    assert_eq!(bpe.decode_bytes(&any).unwrap(), piece);
                }
            }
        }
        // the pieces were merged, not left as bytes
        assert!(merged > 100_000, "{merged}");
    }

    #[test]
    fn every_length_around_the_switch_and_the_short_array() {
        let [bpe, rank] = models(b"ab", 400, 3);
        for model in [&bpe, &rank] {
            for len in 1..=2 * LIST_MAX + 2 {
                for unit in [&b"a"[..], b"ab", b"aab", b"ba"] {
                    let piece: Vec<u8> = unit.iter().cycle().take(len).copied().collect();
                    let want = reference_scan(model, &piece);
                    let mut got = Vec::new();
                    model.encode_piece(&piece, &mut got);
                    if model.ignore_merges && model.id_of(&piece).is_some() {
                        assert_eq!(got.len(), 1);
                    } else {
                        assert_eq!(got, want, "{len} {unit:?}");
                    }
                    let mut heap = Vec::new();
                    model.merge_heap(&piece, &mut heap);
                    assert_eq!(heap, want);
                }
            }
        }
    }

    #[test]
    fn heap_scratch_is_reused_and_long_pieces_round_trip() {
        let [bpe, _] = models(b"abc", 500, 5);
        for piece in ["a".repeat(100_000), "abc".repeat(3000), "ab".repeat(49)] {
            let mut x = Vec::new();
            bpe.merge_heap(piece.as_bytes(), &mut x);
            assert_eq!(bpe.decode_bytes(&x).unwrap(), piece.as_bytes());
            let mut y = Vec::new();
            merge_heap_wide(&bpe.pairs, &bpe.byte_ids, piece.as_bytes(), &mut y);
            assert_eq!(x, y);
        }
        SCRATCH.with(|s| assert!(s.borrow().heap.capacity() > 0));
    }

    #[test]
    fn a_cancelled_heap_appends_nothing_and_the_next_call_is_whole() {
        let [bpe, _] = models(b"ab", 400, 9);
        let piece = "ab".repeat(100_000);
        let cancel = crate::cancel::Cancel::new();
        cancel.set();
        let mut out = vec![7];
        crate::cancel::scope(&cancel, || bpe.merge_heap(piece.as_bytes(), &mut out));
        assert_eq!(out, [7]);
        // the thread's scratch is left usable
        out.clear();
        bpe.merge_heap(piece.as_bytes(), &mut out);
        assert_eq!(bpe.decode_bytes(&out).unwrap(), piece.as_bytes());
    }

    #[test]
    fn min_heap_pops_in_order() {
        let mut rng = Rng(42);
        let v: Vec<u64> = (0..1000).map(|_| rng.next() % 500).collect();
        let mut h = MinHeap::from_vec(v[..600].to_vec());
        for &x in &v[600..] {
            h.push(x);
        }
        let mut got = Vec::new();
        while let Some(x) = h.pop() {
            got.push(x);
        }
        let mut want = v;
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
