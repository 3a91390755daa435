//! The pair row of a last token `u` (docs/byte_probs.md §15.10): the tokens `v`
//! of a set for which the merge-only BPE of `bytes(u) + bytes(v)` is `[u, v]`, found from the
//! merges that break a pair instead of one walk per `v`.
//!
//! The pair walk (`Validity::pair_valid`) consumes the right spine of `u` (`a_0 = u`,
//! `a_{i+1}` the right part of `a_i`) and the left spine of `v` (`b_0 = v`, `b_{j+1}` the left
//! part of `b_j`) in decreasing priority of the merges that built them (a tie goes to `v`'s),
//! and fails at a state `(a_i, b_j)` when the merge `(a_i, b_j)` has a priority below the
//! last consumed merge's (`+ 1` when that was `v`'s). With monotone merges both spines'
//! priorities strictly decrease, so the state `(a_i, b_j)` is reached iff the smaller of the
//! last consumed keys, those of `a_{i-1}` and `b_{j-1}`, is above the larger of `a_i`'s and
//! `b_j`'s: whether `v` fails there depends on `a_{i-1}`, `a_i`, `b_j` and `c = b_{j-1}`
//! alone, never on the rest of `v`. So for each spine level `i` and each merge `(a_i, b)` of
//! priority `p`, the `v` that fail there are `b` itself (`j = 0`) or every token whose left
//! spine passes through a left child `c` of `b` that meets the conditions (a *bad root*; the
//! children are sorted by priority, and the conditions are bounds on it, so only the bad ones
//! and one more are looked at). A member `v` is then valid iff it has no merge with `u`, is
//! not bad itself and no token of its left spine is a bad root.
//!
//! Cost: per row, the merges of the spine tokens plus the bad roots found, plus the smaller of
//! (a) one short walk up the left spine per candidate member and (b) the bad roots' subtrees in
//! the forest of left parts, each a contiguous range of its pre-order (precomputed once per
//! vocabulary), cleared from the candidates; `|V|`-bit scratch sets. At cl100k a letter row has
//! about 30,000 candidates and about 7,000 tokens under its bad roots.
//! Invariants: the tables are monotone (checked once per vocabulary by the caller), `split`
//! holds `(left, right, priority)` per token and `NO_ID` parts for leaves.

use super::validity::bit;

/// No token: the parts of a leaf in `split`.
pub(crate) const NO_ID: u32 = u32::MAX;

/// Each token's left children: the tokens whose last merge has it as the left part, sorted
/// by that merge's priority, highest first.
#[derive(Debug, Default)]
pub(crate) struct LeftKids {
    at: Vec<u32>,
    kids: Vec<u32>,
    /// the priority of each entry of `kids`' last merge (read in sequence with `kids`, instead
    /// of one look-up in `split` per child)
    kid_prio: Vec<u32>,
    /// each token's left part (`NO_ID` for leaves): the walks up the left spines read this
    /// instead of `split` (a third of its size)
    parent: Vec<u32>,
    /// the tokens in a pre-order of the forest of left parts (`order`), each token's position
    /// in it (`pre`) and the size of its subtree (`size`): the tokens whose left spine passes
    /// through `c` are `order[pre[c]..pre[c] + size[c]]`
    order: Vec<u32>,
    pre: Vec<u32>,
    size: Vec<u32>,
}

impl LeftKids {
    pub(crate) fn new(split: &[(u32, u32, u32)]) -> LeftKids {
        let n = split.len();
        let mut at = vec![0u32; n + 1];
        for &(l, _, _) in split {
            if let Some(c) = at.get_mut((l as usize).wrapping_add(1)) {
                *c += 1;
            }
        }
        for i in 1..at.len() {
            at[i] += at[i - 1];
        }
        let mut fill = at.clone();
        let mut kids = vec![0u32; at.last().map_or(0, |&x| x as usize)];
        for (c, &(l, _, _)) in split.iter().enumerate() {
            if let Some(f) = fill.get_mut(l as usize) {
                kids[*f as usize] = c as u32;
                *f += 1;
            }
        }
        for b in 0..n {
            let (lo, hi) = (at[b] as usize, at[b + 1] as usize);
            kids[lo..hi].sort_unstable_by_key(|&c| std::cmp::Reverse(split[c as usize].2));
        }
        let kid_prio: Vec<u32> = kids.iter().map(|&c| split[c as usize].2).collect();
        let parent: Vec<u32> = split.iter().map(|&(l, _, _)| l).collect();
        // pre-order of the forest (a left part is a proper prefix of its token, so there is
        // no cycle); roots are the tokens without a left part in range
        let (mut order, mut pre) = (Vec::with_capacity(n), vec![0u32; n]);
        let mut stack: Vec<u32> = Vec::new();
        for (r, &l) in parent.iter().enumerate() {
            if (l as usize) < n {
                continue;
            }
            stack.push(r as u32);
            while let Some(x) = stack.pop() {
                pre[x as usize] = order.len() as u32;
                order.push(x);
                let (lo, hi) = (at[x as usize] as usize, at[x as usize + 1] as usize);
                stack.extend_from_slice(&kids[lo..hi]);
            }
        }
        debug_assert_eq!(order.len(), n);
        // children follow their parent in `order`: sizes in one backward pass
        let mut size = vec![0u32; n];
        for &x in order.iter().rev() {
            size[x as usize] += 1;
            if let Some(&l) = parent.get(x as usize) {
                if let Some(s) = size.get(l as usize).copied() {
                    size[l as usize] = s + size[x as usize];
                }
            }
        }
        LeftKids {
            at,
            kids,
            kid_prio,
            parent,
            order,
            pre,
            size,
        }
    }

    /// The left children of `b` and the priorities of their last merges.
    fn of(&self, b: u32) -> (&[u32], &[u32]) {
        let lo = self.at.get(b as usize).map_or(0, |&x| x as usize);
        let hi = self.at.get(b as usize + 1).map_or(0, |&x| x as usize);
        match (self.kids.get(lo..hi), self.kid_prio.get(lo..hi)) {
            (Some(k), Some(p)) => (k, p),
            _ => (&[], &[]),
        }
    }
}

/// Ordering key of a token's last merge in the walk: twice its priority, plus one on `v`'s
/// side (ties go to `v`'s merge); leaves are below every merge.
#[inline]
fn key(split: &[(u32, u32, u32)], x: u32, v_side: bool) -> i64 {
    match split.get(x as usize) {
        Some(&(l, _, p)) if l != NO_ID => 2 * i64::from(p) + i64::from(v_side),
        _ => -2 + i64::from(v_side),
    }
}

#[inline]
fn set(bits: &mut [u64], id: u32) {
    if let Some(w) = bits.get_mut(id as usize / 64) {
        *w |= 1 << (id % 64);
    }
}

/// How a pair row removes the candidates with a bad root on their left spine (`Walk` and
/// `Descend` force one way, for the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum How {
    /// whichever looks at fewer tokens: the roots' subtrees or the candidates
    Auto,
    /// one walk up the left spine per candidate
    Walk,
    /// clear the roots' subtrees (ranges of the pre-order)
    Descend,
}

/// The members `v` (`members & reach`) with the merge-only BPE of `bytes(u) + bytes(v)` equal
/// to `[u, v]`, as a bitset of `members.len()` words. `partners(a)` are the merges `(a, r)` as
/// `(r, priority)`. `how` chooses how the bad roots' descendants are removed ([`How::Auto`];
/// the tests force each way: the answer is the same).
pub(crate) fn pair_row<'a>(
    split: &[(u32, u32, u32)],
    partners: impl Fn(u32) -> &'a [(u32, u32)],
    kids: &LeftKids,
    u: u32,
    members: &[u64],
    reach: &[u64],
    how: How,
) -> Vec<u64> {
    let words = members.len();
    let mut spine = vec![u];
    while let Some(&a) = spine.last() {
        match split.get(a as usize) {
            Some(&(l, r, _)) if l != NO_ID => spine.push(r),
            _ => break,
        }
    }
    // `bad_self`: members that fail as `b_0`; `bad_root`: tokens whose left-spine descendants
    // (and themselves) fail; `with_u`: the right partners of `u`, which merge with it at once
    let (mut bad_self, mut bad_root, mut with_u) =
        (vec![0u64; words], vec![0u64; words], vec![0u64; words]);
    for &(r, _) in partners(u) {
        set(&mut with_u, r);
    }
    for (i, &a) in spine.iter().enumerate() {
        let ka = key(split, a, false);
        // the key and priority of `a_{i-1}` (none before `u`: above everything)
        let (k_prev, p_prev) = match i.checked_sub(1).and_then(|h| spine.get(h)) {
            Some(&prev) => (key(split, prev, false), split[prev as usize].2),
            None => (i64::MAX, u32::MAX),
        };
        for &(b, p) in partners(a) {
            let lo = ka.max(key(split, b, true));
            if k_prev <= lo {
                // `a_{i-1}` is consumed after `a_i` or `b`: the state is never reached
                continue;
            }
            // `j = 0` (`b = v`, reached right after `a_{i-1}`: the limit is its priority)
            if i > 0 && p < p_prev {
                set(&mut bad_self, b);
            }
            // `j > 0`: `c = b_{j-1}`, a left child of `b`, consumed before `a_i` and `b`
            // (a child `c` of `b` has a last merge, so its key on `v`'s side is `2 prio + 1`)
            let (cs, prios) = kids.of(b);
            let kc = |pc: u32| 2 * i64::from(pc) + 1;
            debug_assert!(cs
                .iter()
                .zip(prios)
                .all(|(&c, &pc)| key(split, c, true) == kc(pc)));
            // children consumed before `a_{i-1}`: then the limit is `a_{i-1}`'s priority, the
            // same for all of them (all bad or none)
            let above = prios.partition_point(|&pc| kc(pc) > k_prev);
            if p < p_prev {
                for &c in &cs[..above] {
                    set(&mut bad_root, c);
                }
            }
            // the others (the limit is `c`'s priority + 1), while `c` is still above `lo`
            for (&c, &pc) in cs[above..].iter().zip(&prios[above..]) {
                if kc(pc) <= lo || pc < p {
                    break;
                }
                set(&mut bad_root, c);
            }
        }
    }
    let mut out = vec![0u64; words];
    let mut candidates = 0usize;
    for (w, o) in out.iter_mut().enumerate() {
        *o = members[w] & reach.get(w).copied().unwrap_or(0) & !with_u[w] & !bad_self[w];
        candidates += o.count_ones() as usize;
    }
    let down = match how {
        How::Auto => descendants_within(kids, &bad_root, candidates),
        How::Walk => None,
        How::Descend => descendants_within(kids, &bad_root, usize::MAX),
    };
    if let Some(dead) = down {
        // every candidate is valid unless a bad root is on its left spine: clear the
        // descendants of the bad roots (a contiguous range of `order` each)
        for p in super::id_words::ids_of(&dead) {
            if let Some(&v) = kids.order.get(p as usize) {
                if let Some(o) = out.get_mut(v as usize / 64) {
                    *o &= !(1 << (v % 64));
                }
            }
        }
        return out;
    }
    // one walk up the left spine per candidate; `out` doubles as the memo: a member found
    // valid has no bad root on its left spine, and a member found invalid has one (it becomes
    // a bad root itself, for the members above it)
    let cand = std::mem::replace(&mut out, vec![0u64; words]);
    for (w, &c) in cand.iter().enumerate() {
        let mut rest = c;
        while rest != 0 {
            let k = rest.trailing_zeros();
            rest &= rest - 1;
            let v = (w * 64) as u32 + k;
            let mut x = v;
            let ok = loop {
                if bit(&bad_root, x) {
                    break false;
                }
                match kids.parent.get(x as usize) {
                    Some(&l) if l != NO_ID => x = l,
                    _ => break true,
                }
                if bit(&out, x) {
                    break true;
                }
            };
            out[w] |= u64::from(ok) << k;
            bad_root[w] |= u64::from(!ok) << k;
        }
    }
    out
}

/// The positions in `kids.order` of the tokens whose left spine passes through a token of
/// `roots` (a bitset by id), as a bitset by position, when the roots' subtrees hold at most
/// `budget` tokens (counted with repeats); `None` (the walk is cheaper) otherwise.
fn descendants_within(kids: &LeftKids, roots: &[u64], budget: usize) -> Option<Vec<u64>> {
    let mut dead = vec![0u64; kids.order.len().div_ceil(64)];
    let mut total = 0usize;
    for c in super::id_words::ids_of(roots) {
        let (Some(&lo), Some(&len)) = (kids.pre.get(c as usize), kids.size.get(c as usize)) else {
            continue;
        };
        total += len as usize;
        if total > budget {
            return None;
        }
        fill(&mut dead, lo as usize, lo as usize + len as usize);
    }
    Some(dead)
}

/// Sets bits `lo..hi` of `bits` (bits past its end are ignored).
fn fill(bits: &mut [u64], lo: usize, hi: usize) {
    let hi = hi.min(bits.len() * 64);
    if lo >= hi {
        return;
    }
    let (wl, wh) = (lo / 64, (hi - 1) / 64);
    let first = u64::MAX << (lo % 64);
    let last = u64::MAX >> (63 - (hi - 1) % 64);
    if wl == wh {
        bits[wl] |= first & last;
        return;
    }
    bits[wl] |= first;
    for w in &mut bits[wl + 1..wh] {
        *w = u64::MAX;
    }
    bits[wh] |= last;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_sets_exactly_the_range() {
        for lo in 0..200 {
            for hi in lo..200 {
                let mut bits = vec![0u64; 3];
                fill(&mut bits, lo, hi);
                for i in 0..192 {
                    let want = lo <= i && i < hi;
                    assert_eq!(bit(&bits, i as u32), want, "{lo}..{hi} at {i}");
                }
            }
        }
    }

    #[test]
    fn subtree_ranges_are_the_left_spine_descendants() {
        // a forest of left parts: leaves 0..4, then tokens whose left part is an earlier one
        let lefts = [NO_ID, NO_ID, NO_ID, NO_ID, 0, 4, 4, 1, 5, 0, 7, 9, 6];
        let split: Vec<(u32, u32, u32)> = lefts
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, if l == NO_ID { NO_ID } else { 1 }, i as u32))
            .collect();
        let kids = LeftKids::new(&split);
        let n = lefts.len() as u32;
        for c in 0..n {
            let under: Vec<u32> = (0..n)
                .filter(|&v| {
                    let mut x = v;
                    loop {
                        if x == c {
                            break true;
                        }
                        match lefts[x as usize] {
                            NO_ID => break false,
                            l => x = l,
                        }
                    }
                })
                .collect();
            let (lo, len) = (
                kids.pre[c as usize] as usize,
                kids.size[c as usize] as usize,
            );
            let mut got = kids.order[lo..lo + len].to_vec();
            got.sort_unstable();
            assert_eq!(got, under, "subtree of {c}");
        }
    }
}
