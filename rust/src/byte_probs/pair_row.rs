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
//! Cost: per row, the merges of the spine tokens plus the bad roots found, plus one short walk
//! up the left spine per member (no memo, no per-state look-ups); `|V|`-bit scratch sets.
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
    /// each token's left part (`NO_ID` for leaves): the walks up the left spines read this
    /// instead of `split` (a third of its size)
    parent: Vec<u32>,
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
        let parent = split.iter().map(|&(l, _, _)| l).collect();
        LeftKids { at, kids, parent }
    }

    fn of(&self, b: u32) -> &[u32] {
        let lo = self.at.get(b as usize).map_or(0, |&x| x as usize);
        let hi = self.at.get(b as usize + 1).map_or(0, |&x| x as usize);
        self.kids.get(lo..hi).unwrap_or(&[])
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

/// The members `v` (`members & reach`) with the merge-only BPE of `bytes(u) + bytes(v)` equal
/// to `[u, v]`, as a bitset of `members.len()` words. `partners(a)` are the merges `(a, r)` as
/// `(r, priority)`.
pub(crate) fn pair_row<'a>(
    split: &[(u32, u32, u32)],
    partners: impl Fn(u32) -> &'a [(u32, u32)],
    kids: &LeftKids,
    u: u32,
    members: &[u64],
    reach: &[u64],
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
            let cs = kids.of(b);
            // children consumed before `a_{i-1}`: then the limit is `a_{i-1}`'s priority, the
            // same for all of them (all bad or none)
            let above = cs.partition_point(|&c| key(split, c, true) > k_prev);
            if p < p_prev {
                for &c in &cs[..above] {
                    set(&mut bad_root, c);
                }
            }
            // the others (the limit is `c`'s priority + 1), while `c` is still above `lo`
            for &c in &cs[above..] {
                let (_, _, pc) = split[c as usize];
                if key(split, c, true) <= lo || pc < p {
                    break;
                }
                set(&mut bad_root, c);
            }
        }
    }
    // `out` doubles as the memo of the walks up the left spines: a member found valid has no
    // bad root on its left spine, and a member found invalid has one (it becomes a bad root
    // itself, for the members above it)
    let mut out = vec![0u64; words];
    for w in 0..words {
        let mut rest = members[w] & reach.get(w).copied().unwrap_or(0) & !with_u[w] & !bad_self[w];
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
