//! The vocabulary index of docs/byte_probs.md §6: a byte trie over the regular tokens
//! with children in byte order, tokens numbered in DFS (= lexicographic byte) order.
//!
//! Every node `p` owns the contiguous range `[lo(p), hi(p))` of that order (all tokens that start
//! with the bytes spelled by `p`), and the token spelled exactly `p`, if any, sits at `lo(p)`.
//! With `c = cumsum(q[perm])` the mass of all tokens with prefix `p` is `c[hi] - c[lo]`.
//!
//! Build: sort the tokens (`O(|V| log |V| * Lmax)`), one pass to create nodes. Lookup of a child:
//! binary search over at most 256 sorted bytes (the root uses a direct table).
//! Invariants: node 0 is the root with range `[0, n)`; `perm` is a bijection between positions
//! and regular token ids; `pos[perm[k]] == k`; a node's children are sorted by byte.

/// Marks "no token" / "no node".
pub const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    lo: u32,
    hi: u32,
    /// id of the token spelled by this node, or [`NONE`]
    term: u32,
    depth: u32,
    child_start: u32,
    child_len: u32,
}

/// Byte trie over token byte strings with DFS-order ranges.
#[derive(Debug)]
pub struct VocabTrie {
    nodes: Vec<Node>,
    child_bytes: Vec<u8>,
    child_nodes: Vec<u32>,
    root_child: [u32; 256],
    perm: Vec<u32>,
    pos: Vec<u32>,
    lmax: usize,
}

impl VocabTrie {
    /// Index `tokens[id]` for every id with `Some(bytes)` (non-empty); `None` ids (specials,
    /// holes) are left out. Duplicate byte strings keep the smallest id as terminal and stay
    /// adjacent in the order.
    pub fn new(tokens: &[Option<&[u8]>]) -> Self {
        let mut order: Vec<u32> = (0..tokens.len() as u32)
            .filter(|&i| tokens[i as usize].is_some_and(|t| !t.is_empty()))
            .collect();
        let key = |i: u32| tokens[i as usize].unwrap_or(&[]);
        order.sort_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        let mut pos = vec![NONE; tokens.len()];
        let mut nodes = vec![Node {
            lo: 0,
            hi: order.len() as u32,
            term: NONE,
            depth: 0,
            child_start: 0,
            child_len: 0,
        }];
        let mut children: Vec<Vec<(u8, u32)>> = vec![Vec::new()];
        let mut lmax = 0;
        for (k, &id) in order.iter().enumerate() {
            let k = k as u32;
            pos[id as usize] = k;
            let t = key(id);
            lmax = lmax.max(t.len());
            let mut cur = 0usize;
            for (d, &b) in t.iter().enumerate() {
                let next = match children[cur].last() {
                    Some(&(cb, n)) if cb == b => n as usize,
                    _ => {
                        let n = nodes.len();
                        nodes.push(Node {
                            lo: k,
                            hi: k + 1,
                            term: NONE,
                            depth: d as u32 + 1,
                            child_start: 0,
                            child_len: 0,
                        });
                        children.push(Vec::new());
                        children[cur].push((b, n as u32));
                        n
                    }
                };
                nodes[next].hi = k + 1;
                cur = next;
            }
            if nodes[cur].term == NONE {
                nodes[cur].term = id;
            }
        }
        let mut child_bytes = Vec::with_capacity(nodes.len());
        let mut child_nodes = Vec::with_capacity(nodes.len());
        for (i, ch) in children.iter().enumerate() {
            nodes[i].child_start = child_bytes.len() as u32;
            nodes[i].child_len = ch.len() as u32;
            for &(b, n) in ch {
                child_bytes.push(b);
                child_nodes.push(n);
            }
        }
        let mut root_child = [NONE; 256];
        for &(b, n) in &children[0] {
            root_child[b as usize] = n;
        }
        Self {
            nodes,
            child_bytes,
            child_nodes,
            root_child,
            perm: order,
            pos,
            lmax,
        }
    }

    pub const ROOT: u32 = 0;

    /// Number of indexed tokens.
    pub fn len(&self) -> usize {
        self.perm.len()
    }
    pub fn is_empty(&self) -> bool {
        self.perm.is_empty()
    }
    /// Number of trie nodes (node ids are `0..n_nodes()`).
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }
    /// Longest token in bytes.
    pub fn lmax(&self) -> usize {
        self.lmax
    }
    /// Token id at DFS position `k`.
    pub fn perm(&self) -> &[u32] {
        &self.perm
    }
    /// DFS position of token `id` ([`NONE`] when not indexed).
    pub fn pos(&self, id: u32) -> u32 {
        self.pos.get(id as usize).copied().unwrap_or(NONE)
    }
    /// A bitset over token ids (`ids`, bit `id` of word `id / 64`) re-indexed by DFS position:
    /// bit `k` of the result is set when `perm[k]`'s bit is, for `k < len()` (the ids outside the
    /// trie are dropped). See [`VocabTrie::bits_in_order_from`].
    pub fn bits_in_order(&self, ids: &[u64]) -> Vec<u64> {
        self.bits_in_order_from(ids, &[], &[])
    }

    /// [`VocabTrie::bits_in_order`] of `ids`, starting from a bitset `base` (by id) whose
    /// re-indexed copy `base_in_order` (`= bits_in_order(base)`) is known: the copy, then one
    /// bit flipped per id where `ids` and `base` differ; or, when `ids` has fewer set bits than
    /// it has differences with `base`, one bit set per id of `ids` in an empty result. The work
    /// is one counting pass over the words of `ids` plus one scattered write per differing (or
    /// set) bit, whichever is fewer (the writes land in the `len() / 8`-byte result; `pos` is
    /// read in id order), so a base close to `ids` (the ids valid alone, for a validity row)
    /// spares most of the scatter, and so does a sparse `ids` (a row after a whitespace tail).
    pub fn bits_in_order_from(&self, ids: &[u64], base: &[u64], base_in_order: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; self.perm.len().div_ceil(64)];
        let words = ids.len().max(base.len());
        let word = |b: &[u64], w: usize| b.get(w).copied().unwrap_or(0);
        let (mut set, mut differ) = (0u32, 0u32);
        for w in 0..words {
            set += word(ids, w).count_ones();
            differ += (word(ids, w) ^ word(base, w)).count_ones();
        }
        let from_base = differ <= set;
        if from_base {
            let m = out.len().min(base_in_order.len());
            out[..m].copy_from_slice(&base_in_order[..m]);
        }
        for (w, pos) in self.pos.chunks(64).enumerate().take(words) {
            let mut diff = if from_base {
                word(ids, w) ^ word(base, w)
            } else {
                word(ids, w)
            };
            while diff != 0 {
                let j = diff.trailing_zeros() as usize;
                diff &= diff - 1;
                let k = pos.get(j).copied().unwrap_or(NONE);
                // an id outside the trie (`NONE`) has no word
                if let Some(o) = out.get_mut(k as usize / 64) {
                    debug_assert!((k as usize) < self.perm.len());
                    *o ^= 1 << (k % 64);
                }
            }
        }
        out
    }

    /// `[lo, hi)` of a node.
    #[inline]
    pub fn range(&self, node: u32) -> (usize, usize) {
        let n = &self.nodes[node as usize];
        (n.lo as usize, n.hi as usize)
    }
    /// Token spelled exactly by the node, if any.
    #[inline]
    pub fn terminal(&self, node: u32) -> Option<u32> {
        let t = self.nodes[node as usize].term;
        (t != NONE).then_some(t)
    }
    /// Bytes spelled by the node (its depth).
    #[inline]
    pub fn depth(&self, node: u32) -> usize {
        self.nodes[node as usize].depth as usize
    }
    /// Whether some token strictly extends the node.
    #[inline]
    pub fn has_children(&self, node: u32) -> bool {
        self.nodes[node as usize].child_len > 0
    }
    /// Child along byte `b`.
    #[inline]
    pub fn child(&self, node: u32, b: u8) -> Option<u32> {
        if node == Self::ROOT {
            let c = self.root_child[b as usize];
            return (c != NONE).then_some(c);
        }
        let n = &self.nodes[node as usize];
        let s = n.child_start as usize;
        let bytes = &self.child_bytes[s..s + n.child_len as usize];
        bytes
            .binary_search(&b)
            .ok()
            .map(|i| self.child_nodes[s + i])
    }
    /// `(byte, child)` pairs of a node in byte order.
    pub fn children(&self, node: u32) -> impl Iterator<Item = (u8, u32)> + '_ {
        let n = &self.nodes[node as usize];
        let s = n.child_start as usize;
        let e = s + n.child_len as usize;
        self.child_bytes[s..e]
            .iter()
            .copied()
            .zip(self.child_nodes[s..e].iter().copied())
    }
    /// Node spelled by `bytes`, if some token starts with them.
    pub fn walk(&self, bytes: &[u8]) -> Option<u32> {
        let mut cur = Self::ROOT;
        for &b in bytes {
            cur = self.child(cur, b)?;
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_prefix_sets_and_terminal_sits_at_lo() {
        let toks: Vec<&[u8]> = vec![b"b", b"a", b"ab", b"abc", b"c", b"bc", b"ba"];
        let opt: Vec<Option<&[u8]>> = toks.iter().map(|t| Some(*t)).chain([None]).collect();
        let trie = VocabTrie::new(&opt);
        assert_eq!(trie.len(), 7);
        assert_eq!(trie.lmax(), 3);
        for p in [&b"a"[..], b"ab", b"b", b"abc", b""] {
            let node = trie.walk(p).unwrap();
            let (lo, hi) = trie.range(node);
            let mut got: Vec<u32> = trie.perm()[lo..hi].to_vec();
            got.sort();
            let mut want: Vec<u32> = (0..7u32)
                .filter(|&i| toks[i as usize].starts_with(p))
                .collect();
            want.sort();
            assert_eq!(got, want, "prefix {p:?}");
            if let Some(t) = trie.terminal(node) {
                assert_eq!(toks[t as usize], p);
                assert_eq!(trie.pos(t) as usize, lo);
            }
            assert_eq!(trie.depth(node), p.len());
        }
        assert!(trie.walk(b"ca").is_none());
        assert_eq!(trie.pos(7), NONE);
    }

    #[test]
    fn bits_in_order_follow_perm() {
        // 150 two-byte tokens in reverse byte order of their ids, a hole and two ids past the
        // tokens: positions and ids differ, and the result spans three words
        let names: Vec<[u8; 2]> = (0..150u8).map(|i| [b'z' - i / 26, b'z' - i % 26]).collect();
        let mut opt: Vec<Option<&[u8]>> = names.iter().map(|t| Some(&t[..])).collect();
        opt[7] = None;
        let trie = VocabTrie::new(&opt);
        let n_ids = opt.len() + 2;
        let every = |stride: usize| {
            let mut ids = vec![0u64; n_ids.div_ceil(64)];
            for id in (0..n_ids).filter(|i| i % stride == 0) {
                ids[id / 64] |= 1 << (id % 64);
            }
            ids
        };
        for stride in [1usize, 2, 3, 64, 149] {
            let ids = every(stride);
            let got = trie.bits_in_order(&ids);
            assert_eq!(got.len(), trie.len().div_ceil(64));
            for k in 0..got.len() * 64 {
                let set = (got[k / 64] >> (k % 64)) & 1 == 1;
                let want = trie
                    .perm()
                    .get(k)
                    .is_some_and(|&id| (id as usize).is_multiple_of(stride));
                assert_eq!(set, want, "stride {stride}, position {k}");
            }
            // from a base: the same bits, whatever the base (sub-, super- or overlapping set,
            // shorter than `ids`, empty)
            for base in [every(1), every(2), every(5), vec![u64::MAX], vec![]] {
                let from = trie.bits_in_order_from(&ids, &base, &trie.bits_in_order(&base));
                assert_eq!(from, got, "stride {stride}, base {base:?}");
            }
        }
    }
}
