//! The cumulative row of docs/byte_probs.md §6: `cum[k] = Σ_{j<k} e^{lp[perm[j]]}` in trie
//! order, positions outside the validity mask counting 0. This is the `O(|V|)` part of every
//! prepared LM row, paid by every mode.
//!
//! Without a mask (`fast`) the row is dense, one entry per position. With one (`exact`,
//! `mask`; a bitset in trie order, bit `k` for position `k`, as [`Ranks`]) it is sparse: one
//! entry per valid position, `cum[r]` the sum of the first `r` valid terms, and position `k`
//! maps to entry `Ranks::rank(k)` (docs/byte_probs.md §13, fourteenth round: at cl100k `exact`
//! about a fifth of the positions are masked, so a fifth of the writes and of the allocation
//! go; in id order, a wholly masked word reads neither its row entries nor its `perm` entries).
//!
//! Blocks of [`BLOCK`] positions: gather the block's (valid) log-probabilities, take their `exp`
//! in one vectorized pass ([`super::exp`]), then add them to the running sum in trie order,
//! by groups of four positions: the partial sums `e0`, `e0+e1`, ... of a group do not wait for
//! the running sum, which then takes one dependent add per group instead of one per term
//! (cl100k, `fast`: 0.32 → 0.26 ms per row by CPU time). That changes the rounding, not the
//! error bound: any order of adding `k` non-negative terms is within `(k−1)·2^-53` of their
//! exact sum (relative), plus the `exp`'s 1.5 ulp per term (module [`super::exp`]); and `cum`
//! stays non-decreasing, so every range mass is `>= 0`. The sparse row groups by the same
//! positions, leaving out the masked terms (which added +0.0): its entries are bit for bit the
//! dense masked row's at the valid positions. The whole kernel is compiled twice, for AVX2 and
//! for the baseline, and picked once per row at run time; both give the same bits.
//! Rows come in one of two layouts ([`RowLayout`]): in id order (as most LMs give them: the ids
//! are random in the row, so the block's log-probabilities are gathered and the next block's
//! prefetched), or already in trie order (an LM that permuted its output layer once, §9): then
//! the block is a contiguous slice of the row, read in sequence, as are the mask words. Both
//! layouts run the same `exp`s and additions in the same order, so they give the same bits.
//! Cost: one gather (id order) or one sequential read (trie order) per valid position, at most
//! `|V|/4` vector `exp`s (AVX2), `|V|/4` dependent adds; no allocation beyond `cum`'s, whose
//! entries are each written once (no zero fill first).

use super::exp::exp_block;
use super::ranks::Ranks;

/// Positions per block: the loop overhead per block (five short loops, their exits mispredicted)
/// against L1 room for the block's buffers (6 KB). Cachegrind, cl100k `fast`, per byte: 64 →
/// 256 took 4.00 M → 3.57 M instructions and 7.2 k → 2.5 k mispredicted branches.
const BLOCK: usize = 256;

/// Mask words per block.
const WORDS: usize = BLOCK / 64;

/// Where the log-probability of the token at trie position `k` sits in an LM row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLayout {
    /// `row[perm[k]]`: the row is indexed by token id
    Ids,
    /// `row[k]`: the row is already in trie order (its first `|perm|` entries)
    Trie,
}

/// Fill `cum` (cleared first) with the prefix sums of `e^{lp(k)}`, `lp(k)` the
/// log-probability of the token `perm[k]` read from `row` as `layout` says: `|perm| + 1` of them
/// without a mask, else one per position whose bit is set in `mask` plus the leading 0 (the
/// mask's positions must be `|perm|`); returns the total (`cum`'s last entry).
/// `row` must hold every position `layout` reads (else this panics: an internal invariant of
/// `CoverIndex`, which checks the row's length).
pub fn cumulate(
    perm: &[u32],
    row: &[f64],
    layout: RowLayout,
    mask: Option<&Ranks>,
    cum: &mut Vec<f64>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected on this CPU.
        return unsafe { cumulate_avx2(perm, row, layout, mask, cum) };
    }
    cumulate_with(perm, row, layout, mask, cum)
}

/// [`cumulate`] compiled for AVX2 (four `exp` lanes).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn cumulate_avx2(
    perm: &[u32],
    row: &[f64],
    layout: RowLayout,
    mask: Option<&Ranks>,
    cum: &mut Vec<f64>,
) -> f64 {
    cumulate_with(perm, row, layout, mask, cum)
}

#[inline(always)]
fn cumulate_with(
    perm: &[u32],
    row: &[f64],
    layout: RowLayout,
    mask: Option<&Ranks>,
    cum: &mut Vec<f64>,
) -> f64 {
    match (layout, mask) {
        (RowLayout::Ids, None) => blocks::<true>(perm, row, cum),
        (RowLayout::Ids, Some(ranks)) => sparse::<true>(perm, row, ranks, cum),
        (RowLayout::Trie, None) => blocks::<false>(perm, row, cum),
        (RowLayout::Trie, Some(ranks)) => sparse::<false>(perm, row, ranks, cum),
    }
}

/// Start loading the cache line at `p` (a hint: no effect on memory, any address).
#[inline(always)]
fn prefetch(p: *const f64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint neither reads nor writes memory, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Add the `m` terms `es[..m]` (`m <= 4`) of one group of four positions to the running sum
/// `acc` and write the `m` cumulative entries: the group's partial sums first, then the running
/// sum plus each (the dense kernel's grouping, which a masked position, adding +0.0, does not
/// change: the same bits). `single`: the positions past the last whole group of the row, added
/// one at a time as the dense kernel does there.
#[inline(always)]
fn add_group(acc: &mut f64, es: &[f64], out: &mut [std::mem::MaybeUninit<f64>], single: bool) {
    debug_assert_eq!(es.len(), out.len());
    if single {
        for (c, &e) in out.iter_mut().zip(es) {
            *acc += e;
            c.write(*acc);
        }
        return;
    }
    // the first partial sum is the term itself
    let mut s = es[0];
    out[0].write(*acc + s);
    for j in 1..es.len() {
        s += es[j];
        out[j].write(*acc + s);
    }
    *acc += s;
}

/// `xs` (64 long) as an array, so that the loops over it index without bounds checks.
#[inline(always)]
fn array_64<T>(xs: &[T]) -> &[T; 64] {
    match xs.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a slice of 64"),
    }
}

/// [`array_64`] for a mutable slice.
#[inline(always)]
fn array_64_mut<T>(xs: &mut [T]) -> &mut [T; 64] {
    match xs.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a slice of 64"),
    }
}

/// The masked kernel: one cumulative entry per set bit of `ranks` (plus the leading 0), i.e.
/// `cum[r]` = the sum of the first `r` valid terms in trie order; `GATHER` as in [`blocks`].
/// Per block of [`BLOCK`] positions: the valid log-probabilities are packed into `xs` (a whole
/// valid word as one copy or 64 gathers, a partly valid word bit by bit, a zero word not at
/// all: neither its row entries nor, in id order, its `perm` entries are read), one `exp` pass
/// over the packed block, then the sums by groups of four positions exactly as [`blocks`] forms
/// them (a masked position adds +0.0 there, which changes no bit), so every entry is bit for
/// bit the dense row's entry at the same valid position.
#[inline(always)]
fn sparse<const GATHER: bool>(
    perm: &[u32],
    logprobs: &[f64],
    ranks: &Ranks,
    cum: &mut Vec<f64>,
) -> f64 {
    let n = perm.len();
    debug_assert_eq!(ranks.positions(), n);
    let words = ranks.words();
    let total = ranks.count();
    // positions from here on are added one at a time (the dense kernel's remainder)
    let grouped = n / 4 * 4;
    let sorted = if GATHER { &[][..] } else { &logprobs[..n] };
    let mut xs = [0.0f64; BLOCK];
    let mut es = [0.0f64; BLOCK];
    let mut acc = 0.0f64;
    cum.clear();
    cum.reserve_exact(total + 1);
    let out = &mut cum.spare_capacity_mut()[..total + 1];
    out[0].write(acc);
    // next entry of `out` to write
    let mut r = 1;
    for (b, ws) in words.chunks(WORDS).enumerate() {
        if GATHER {
            // start loading the next block's valid log-probabilities (random in the row)
            let next = words.get((b + 1) * WORDS..).unwrap_or(&[]);
            for (i, &w) in next.iter().take(WORDS).enumerate() {
                let base = ((b + 1) * WORDS + i) * 64;
                if w == u64::MAX {
                    // a whole valid word: a fixed-length loop (no exit to mispredict)
                    for &id in array_64(&perm[base..base + 64]) {
                        prefetch(logprobs.as_ptr().wrapping_add(id as usize));
                    }
                    continue;
                }
                let mut m = w;
                while m != 0 {
                    let k = base + m.trailing_zeros() as usize;
                    m &= m - 1;
                    prefetch(logprobs.as_ptr().wrapping_add(perm[k] as usize));
                }
            }
        }
        let mut got = 0;
        for (i, &w) in ws.iter().enumerate() {
            let base = (b * WORDS + i) * 64;
            if w == u64::MAX {
                // a whole valid word (no bit is set past the row: the word is inside it)
                let xs = array_64_mut(&mut xs[got..got + 64]);
                if GATHER {
                    let ids = array_64(&perm[base..base + 64]);
                    for j in 0..64 {
                        xs[j] = logprobs[ids[j] as usize];
                    }
                } else {
                    xs.copy_from_slice(&sorted[base..base + 64]);
                }
                got += 64;
            } else {
                let mut m = w;
                while m != 0 {
                    let k = base + m.trailing_zeros() as usize;
                    m &= m - 1;
                    xs[got] = if GATHER {
                        logprobs[perm[k] as usize]
                    } else {
                        sorted[k]
                    };
                    got += 1;
                }
            }
        }
        if got == 0 {
            // validity is uniform over long trie ranges (tokens sharing first bytes): in
            // cl100k exact rows, 23 % of 64-position blocks were wholly masked
            continue;
        }
        // the packed terms' `exp`s (past `got`, earlier inputs: harmless)
        exp_block(&xs, &mut es);
        let mut e = 0;
        for (i, &w) in ws.iter().enumerate() {
            let base = (b * WORDS + i) * 64;
            if w == u64::MAX {
                debug_assert!(base + 64 <= grouped);
                // 16 whole groups: the dense kernel's sums (fixed-length arrays and plain
                // indices: a no-LTO build left the iterator adapters as calls here)
                let c = array_64_mut(&mut out[r..r + 64]);
                let t = array_64(&es[e..e + 64]);
                for g in (0..64).step_by(4) {
                    let p1 = t[g] + t[g + 1];
                    let p2 = p1 + t[g + 2];
                    let p3 = p2 + t[g + 3];
                    c[g].write(acc + t[g]);
                    c[g + 1].write(acc + p1);
                    c[g + 2].write(acc + p2);
                    acc += p3;
                    c[g + 3].write(acc);
                }
                r += 64;
                e += 64;
            } else if w != 0 {
                for q in 0..16 {
                    let m = ((w >> (4 * q)) & 15).count_ones() as usize;
                    if m == 0 {
                        continue;
                    }
                    let single = base + 4 * q >= grouped;
                    add_group(&mut acc, &es[e..e + m], &mut out[r..r + m], single);
                    r += m;
                    e += m;
                }
            }
            debug_assert!(e <= got);
        }
    }
    // every valid position wrote its entry: `r` counts them, `total` is their number
    assert_eq!(r, total + 1, "a cumulative row left entries unwritten");
    // SAFETY: `reserve_exact(total + 1)` made room, and the first `total + 1` spare slots are
    // initialised: slot 0 before the loop, then slots `1..r` in order, one per set bit (each
    // `write` above covers `out[r..r + m]` and advances `r` by `m`), and `r == total + 1`
    unsafe { cum.set_len(total + 1) };
    acc
}

/// The unmasked kernel; `GATHER`: the row is in id order ([`RowLayout::Ids`]), else in trie
/// order.
#[inline(always)]
fn blocks<const GATHER: bool>(perm: &[u32], logprobs: &[f64], cum: &mut Vec<f64>) -> f64 {
    // trie order: the row's first |perm| entries, one per position (the block slices below)
    let sorted = if GATHER {
        &[][..]
    } else {
        &logprobs[..perm.len()]
    };
    let mut xs = [0.0f64; BLOCK];
    let mut es = [0.0f64; BLOCK];
    let mut acc = 0.0f64;
    let n = perm.len() + 1;
    // written once, straight into the spare capacity: no zero fill of the whole row first
    // (cachegrind, cl100k exact: that pass over 0.8 MB cost 14 k D1 write misses per byte) and
    // no capacity check per entry
    cum.clear();
    cum.reserve_exact(n);
    let spare = &mut cum.spare_capacity_mut()[..n];
    let (head, out) = spare.split_at_mut(1);
    head[0].write(acc);
    // `out` and `perm` have the same length, so their chunks pair up exactly
    for (b, (ids, out)) in perm.chunks(BLOCK).zip(out.chunks_mut(BLOCK)).enumerate() {
        debug_assert_eq!(ids.len(), out.len());
        if GATHER {
            // the ids are random in the row (trie order is not id order): start loading the
            // next block's log-probabilities before this block needs them
            let ahead = perm.get((b + 1) * BLOCK..).unwrap_or(&[]);
            for &id in ahead.iter().take(BLOCK) {
                prefetch(logprobs.as_ptr().wrapping_add(id as usize));
            }
        }
        // a short last block leaves the previous block's inputs in the tail: harmless
        if GATHER {
            for (x, &id) in xs.iter_mut().zip(ids) {
                *x = logprobs[id as usize];
            }
        } else {
            xs[..ids.len()].copy_from_slice(&sorted[b * BLOCK..b * BLOCK + ids.len()]);
        }
        exp_block(&xs, &mut es);
        // the running sum in a register (inside `extend`'s closure it went through memory: a
        // store-to-load round trip per entry). Groups of four: the partial sums of a group
        // first, then the running sum once per group (a chain of |V|/4 dependent adds, not
        // |V|). `es` holds `BLOCK >= out.len()` entries, so the groups and the remainder write
        // every entry of `out`
        let done = out.len() / 4 * 4;
        let mut outs = out.chunks_exact_mut(4);
        let mut ins = es.chunks_exact(4);
        for (c, e) in (&mut outs).zip(&mut ins) {
            let p1 = e[0] + e[1];
            let p2 = p1 + e[2];
            let p3 = p2 + e[3];
            c[0].write(acc + e[0]);
            c[1].write(acc + p1);
            c[2].write(acc + p2);
            acc += p3;
            c[3].write(acc);
        }
        for (c, &e) in outs.into_remainder().iter_mut().zip(&es[done..]) {
            acc += e;
            c.write(acc);
        }
    }
    // SAFETY: `reserve_exact(n)` made room for `n` entries and the first `n` spare slots are all
    // initialised: slot 0 before the loop, and slots `1..n` (`out`, `n - 1 = perm.len()` long)
    // because every chunk of `out` meets its chunk of `perm` (same lengths, same `BLOCK`) and
    // the groups of four and the remainder, which `chunks_exact_mut` and `into_remainder` split
    // `out` into, each zipped with the `BLOCK`-long `es`, write the whole chunk
    unsafe { cum.set_len(n) };
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(bits: &[u64], i: u32) -> bool {
        bits.get(i as usize / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// A mask over ids re-indexed by position in `perm` (what `VocabTrie::bits_in_order` does).
    fn in_order(perm: &[u32], ids: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; perm.len().div_ceil(64)];
        for (k, &id) in perm.iter().enumerate() {
            if bit(ids, id) {
                out[k / 64] |= 1 << (k % 64);
            }
        }
        out
    }

    /// `cumulate` with the mask as a bitset (or none), its entries spread back over the
    /// positions (`dense[k]` = the entry of the valid positions before `k`).
    fn run(perm: &[u32], row: &[f64], layout: RowLayout, mask: Option<&[u64]>) -> Vec<f64> {
        let ranks = mask.map(|m| Ranks::new(m.to_vec(), perm.len()));
        let mut cum = Vec::new();
        let total = cumulate(perm, row, layout, ranks.as_ref(), &mut cum);
        assert_eq!(total.to_bits(), cum[cum.len() - 1].to_bits());
        let mut base = Vec::new();
        cumulate_with(perm, row, layout, ranks.as_ref(), &mut base);
        // the baseline build gives the same bits as the dispatched one
        assert!(cum
            .iter()
            .zip(&base)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        match &ranks {
            None => cum,
            Some(r) => {
                assert_eq!(cum.len(), r.count() + 1);
                (0..=perm.len()).map(|k| cum[r.rank(k)]).collect()
            }
        }
    }

    /// The dense kernel's sums, scalar: every position, +0.0 for a masked one, groups of four
    /// positions (partial sums, then the running sum), the last `len % 4` one at a time.
    fn dense_grouped(perm: &[u32], lp: &[f64], mask: Option<&[u64]>) -> Vec<f64> {
        let terms: Vec<f64> = perm
            .iter()
            .map(|&id| {
                if mask.is_none_or(|m| bit(m, id)) {
                    // the kernel's `exp`, one lane (lanes do not interact)
                    let mut e = [0.0];
                    exp_block(&[lp[id as usize]], &mut e);
                    e[0]
                } else {
                    0.0
                }
            })
            .collect();
        let mut out = vec![0.0];
        let mut acc = 0.0f64;
        let grouped = terms.len() / 4 * 4;
        for g in terms[..grouped].chunks_exact(4) {
            let mut p = g[0];
            out.push(acc + p);
            for &e in &g[1..] {
                p += e;
                out.push(acc + p);
            }
            acc += p;
        }
        for &e in &terms[grouped..] {
            acc += e;
            out.push(acc);
        }
        out
    }

    /// The exact prefix sums of libm's `exp` (Neumaier's compensated sum: within a few ulps of
    /// exact on these rows, far below the bound the kernel is held to).
    fn reference(perm: &[u32], lp: &[f64], mask: Option<&[u64]>) -> Vec<f64> {
        let (mut acc, mut comp) = (0.0f64, 0.0f64);
        let mut out = vec![0.0];
        for &id in perm {
            if mask.is_none_or(|m| bit(m, id)) {
                let x = lp[id as usize].exp();
                let t = acc + x;
                comp += if acc.abs() >= x.abs() {
                    (acc - t) + x
                } else {
                    (x - t) + acc
                };
                acc = t;
            }
            out.push(acc + comp);
        }
        out
    }

    /// A permutation of `0..n` and log-probabilities in `[-30, 0]` with a few `-inf`, from a
    /// fixed LCG.
    fn row(n: usize) -> (Vec<u32>, Vec<f64>) {
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            s >> 33
        };
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            perm.swap(i, next() as usize % (i + 1));
        }
        let lp = (0..n)
            .map(|i| {
                if i % 97 == 5 {
                    f64::NEG_INFINITY
                } else {
                    -30.0 * (next() % 1_000_000) as f64 / 1e6
                }
            })
            .collect();
        (perm, lp)
    }

    #[test]
    fn matches_the_scalar_loop_to_the_exp_error() {
        for n in [0, 1, 63, 64, 65, 1000, 4099] {
            let (perm, lp) = row(n);
            let mut mask = vec![0u64; n.div_ceil(64)];
            for i in (0..n as u32).filter(|i| i % 3 != 1) {
                mask[i as usize / 64] |= 1 << (i % 64);
            }
            // sparse: most blocks wholly masked (the skipped path)
            let mut sparse = vec![0u64; n.div_ceil(64)];
            for i in (0..n as u32).filter(|i| i % 701 == 3) {
                sparse[i as usize / 64] |= 1 << (i % 64);
            }
            for m in [None, Some(mask.as_slice()), Some(sparse.as_slice())] {
                let want = reference(&perm, &lp, m);
                let ordered = m.map(|m| in_order(&perm, m));
                let m = ordered.as_deref();
                let got = run(&perm, &lp, RowLayout::Ids, m);
                assert_eq!(got.len(), n + 1);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    // k non-negative terms, each within 1.5 ulp, added in any order: within
                    // (k-1)·2^-53 + 1.5·2^-52 (relative) of the exact sum
                    let bound = (k as f64 * 1.12e-16 + 3.4e-16) * w;
                    assert!((g - w).abs() <= bound, "{k}: {g} vs {w}");
                }
                // non-decreasing: every range mass is >= 0
                assert!(got.windows(2).all(|p| p[0] <= p[1]));
            }
        }
    }

    /// A row handed over in trie order (`sorted[k] = lp[perm[k]]`, then the ids outside the
    /// trie, as `CoverIndex::token_order` lays it out) gives the same bits as the gather.
    #[test]
    fn trie_layout_gives_the_gathers_bits() {
        for n in [0, 1, 63, 255, 256, 257, 1000, 4099] {
            let (perm, lp) = row(n);
            // the trie indexes all but the last few ids (specials, EOS)
            let indexed = &perm[..n - n.min(3)];
            let mut sorted: Vec<f64> = indexed.iter().map(|&id| lp[id as usize]).collect();
            sorted.extend(perm[indexed.len()..].iter().map(|&id| lp[id as usize]));
            let mut mask = vec![0u64; n.div_ceil(64)];
            for i in (0..n as u32).filter(|i| i % 5 != 2 && i % 301 > 40) {
                mask[i as usize / 64] |= 1 << (i % 64);
            }
            for m in [None, Some(mask.as_slice())] {
                // the reference: the ids' bits looked up one by one (the kernel before the mask
                // came in trie order)
                let want = reference(indexed, &lp, m);
                let ordered = m.map(|m| in_order(indexed, m));
                let m = ordered.as_deref();
                let a = run(indexed, &lp, RowLayout::Ids, m);
                let b = run(indexed, &sorted, RowLayout::Trie, m);
                assert_eq!(a.len(), indexed.len() + 1);
                assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
                assert!(a.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-12 * w));
            }
        }
    }

    #[test]
    fn masked_ids_are_never_read_into_the_sum() {
        let perm = [2u32, 0, 1, 3];
        let lp = [0.0, f64::NAN, f64::INFINITY, -1.0];
        // ids 0 and 3 valid: positions 1 and 3
        let mask = Ranks::new(vec![0b1010u64], 4);
        let mut cum = vec![7.0; 3];
        let total = cumulate(&perm, &lp, RowLayout::Ids, Some(&mask), &mut cum);
        // one entry per valid position
        assert_eq!(cum, vec![0.0, 1.0, 1.0 + (-1.0f64).exp()]);
        assert_eq!(total, cum[2]);
        // the same row in trie order
        let sorted = [f64::INFINITY, 0.0, f64::NAN, -1.0];
        let total = cumulate(&perm, &sorted, RowLayout::Trie, Some(&mask), &mut cum);
        assert_eq!(cum, vec![0.0, 1.0, 1.0 + (-1.0f64).exp()]);
        assert_eq!(total, cum[2]);
    }

    /// The sparse row holds, bit for bit, the dense kernel's entries at the valid positions
    /// (the masked terms were +0.0 there): masks with whole valid words, whole masked words,
    /// partial words and groups, rows whose length is not a multiple of four or 64.
    #[test]
    fn the_sparse_row_has_the_dense_rows_bits() {
        for n in [1usize, 3, 63, 64, 65, 255, 257, 1000, 4098, 4099] {
            let (perm, lp) = row(n);
            let masks: [&dyn Fn(u32) -> bool; 5] = [
                &|_| true,
                &|i| i % 3 != 1,
                &|i| i % 701 == 3,
                // runs: whole words valid and whole words masked
                &|i| (i / 100) % 3 != 0 && i % 17 != 4,
                &|i| i % 4 == 3 || i + 2 >= n as u32,
            ];
            for keep in masks {
                let mut by_id = vec![0u64; n.div_ceil(64)];
                for i in (0..n as u32).filter(|&i| keep(i)) {
                    by_id[i as usize / 64] |= 1 << (i % 64);
                }
                let want = dense_grouped(&perm, &lp, Some(&by_id));
                let ordered = in_order(&perm, &by_id);
                let sorted: Vec<f64> = perm.iter().map(|&id| lp[id as usize]).collect();
                for (layout, r) in [(RowLayout::Ids, &lp), (RowLayout::Trie, &sorted)] {
                    let got = run(&perm, r, layout, Some(&ordered));
                    assert_eq!(got.len(), want.len());
                    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g.to_bits(), w.to_bits(), "n {n}, {layout:?}, {k}");
                    }
                }
            }
            // and the unmasked row, the dense kernel itself
            let got = run(&perm, &lp, RowLayout::Ids, None);
            let want = dense_grouped(&perm, &lp, None);
            assert!(got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits()));
        }
    }

    #[test]
    fn a_reused_row_is_rewritten_whole() {
        // `cum` is written into its spare capacity: a longer or shorter old row must leave no
        // entry behind and no entry unwritten
        let (perm, lp) = row(700);
        let mut fresh = Vec::new();
        cumulate(&perm, &lp, RowLayout::Ids, None, &mut fresh);
        for old_len in [0, 3, 701, 2000] {
            let mut cum = vec![f64::NAN; old_len];
            cumulate(&perm, &lp, RowLayout::Ids, None, &mut cum);
            assert_eq!(cum.len(), 701);
            assert!(cum
                .iter()
                .zip(&fresh)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
