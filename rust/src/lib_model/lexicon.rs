//! The LiB lexicon `L` during training: an ordered list of distinct units (index = priority,
//! 0 = best) with a byte trie for prefix matching (docs/lib.md §2, v2023 `TrieList`).
//!
//! - Units are UTF-8 strings; the trie walks bytes, and units always end on a character
//!   boundary, so byte-level prefix matches are exactly the reference's character-level ones.
//! - Every string ever inserted gets a trie node; the node id is the unit's identity (also for
//!   probation and for strings that have left `L`). Nodes are never freed: memory grows with the
//!   number of distinct strings memorised, not with `|L|`.
//! - `rank[node]` is the current index in `order` or [`NONE`]. Moves update only the ranks of the
//!   units they shift, so a reward costs O(step) instead of the reference's O(|L|) `list.index`.
//!
//! Complexity: `match2` O(length of the longest match) hash lookups; promote/demote O(step);
//! removing a set of units O(|L|). Invariant: `order[rank[n]] == n` for every unit `n` in `L`.

use rustc_hash::FxHashMap;

/// "Not in L" / "no entry".
pub const NONE: u32 = u32::MAX;

/// A byte trie whose node ids are dense `u32`s (root = 0).
///
/// Layout for fast walks: the root's children in a 256-entry table; every other node keeps its
/// first child inline (`first[node] = (byte, child)`) and only further children go to a hash
/// map. Nodes of one inserted string are created consecutively, so walking down a long unit
/// (fan-out 1 below the first few bytes) reads consecutive array slots instead of hashing.
#[derive(Clone)]
pub struct Trie {
    children: FxHashMap<u64, u32>,
    root: Vec<u32>,
    /// First child of each node: `(byte, child)`, child 0 = no child at all.
    first: Vec<(u8, u32)>,
    /// Parent of each node (root: 0), for walking up without hashing.
    parent: Vec<u32>,
}

#[inline]
fn key(node: u32, b: u8) -> u64 {
    ((node as u64) << 8) | b as u64
}

impl Default for Trie {
    fn default() -> Self {
        Self::new()
    }
}

impl Trie {
    pub fn new() -> Self {
        Trie {
            children: FxHashMap::default(),
            root: vec![0; 256],
            first: vec![(0, 0)],
            parent: vec![0],
        }
    }

    /// Number of nodes, root included.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.len() <= 1
    }

    #[inline]
    pub fn child(&self, node: u32, b: u8) -> Option<u32> {
        if node == 0 {
            return self.root.get(b as usize).copied().filter(|&c| c != 0);
        }
        let (fb, fc) = *self.first.get(node as usize)?;
        if fc == 0 {
            return None;
        }
        if fb == b {
            return Some(fc);
        }
        self.children.get(&key(node, b)).copied()
    }

    /// The node of `s`, created with its missing prefixes.
    pub fn insert(&mut self, s: &[u8]) -> u32 {
        let mut n = 0u32;
        for &b in s {
            n = match self.child(n, b) {
                Some(c) => c,
                None => {
                    let c = self.parent.len() as u32;
                    self.parent.push(n);
                    self.first.push((0, 0));
                    if n == 0 {
                        self.root[b as usize] = c;
                    } else if self.first[n as usize].1 == 0 {
                        self.first[n as usize] = (b, c);
                    } else {
                        self.children.insert(key(n, b), c);
                    }
                    c
                }
            };
        }
        n
    }

    /// The node of `s`, if it was ever inserted.
    pub fn get(&self, s: &[u8]) -> Option<u32> {
        let mut n = 0u32;
        for &b in s {
            n = self.child(n, b)?;
        }
        Some(n)
    }
}

/// Length in bytes of the UTF-8 character that starts with byte `b` (1 for stray bytes).
#[inline]
pub fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Number of characters in UTF-8 bytes.
#[inline]
pub fn char_count(s: &[u8]) -> usize {
    s.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// A prefix match: trie node and length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub node: u32,
    pub len: usize,
}

/// The ordered lexicon `L`.
#[derive(Clone)]
pub struct Lexicon {
    pub(crate) trie: Trie,
    rank: Vec<u32>,
    /// `live[node]`: units of `L` at or below `node`. Walks stop at dead branches (strings
    /// once memorised and since forgotten), so matching costs the depth of the live lexicon.
    live: Vec<u32>,
    order: Vec<u32>,
    text: FxHashMap<u32, Box<[u8]>>,
}

impl Default for Lexicon {
    fn default() -> Self {
        Self::new()
    }
}

impl Lexicon {
    pub fn new() -> Self {
        Lexicon {
            trie: Trie::new(),
            rank: vec![NONE],
            live: vec![0],
            order: Vec::new(),
            text: FxHashMap::default(),
        }
    }

    /// A lexicon holding `units` in this order (duplicates keep their first position).
    pub fn from_units<S: AsRef<[u8]>>(units: &[S]) -> Self {
        let mut l = Lexicon::new();
        for u in units {
            let n = l.intern(u.as_ref());
            if !l.contains(n) && !u.as_ref().is_empty() {
                l.append(n);
            }
        }
        l
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The node of `s`, created if needed (does not add `s` to `L`).
    pub fn intern(&mut self, s: &[u8]) -> u32 {
        let n = self.trie.insert(s);
        if self.rank.len() < self.trie.len() {
            self.rank.resize(self.trie.len(), NONE);
            self.live.resize(self.trie.len(), 0);
        }
        self.text.entry(n).or_insert_with(|| s.into());
        n
    }

    /// The node of `s` if it was ever interned.
    pub fn node_of(&self, s: &[u8]) -> Option<u32> {
        self.trie.get(s).filter(|n| self.text.contains_key(n))
    }

    /// Bytes of an interned node.
    pub fn text(&self, node: u32) -> &[u8] {
        self.text.get(&node).map(|b| &b[..]).unwrap_or(&[])
    }

    #[inline]
    pub fn contains(&self, node: u32) -> bool {
        self.rank.get(node as usize).is_some_and(|&r| r != NONE)
    }

    /// Current index of a unit in `L`.
    #[inline]
    pub fn rank(&self, node: u32) -> Option<u32> {
        self.rank.get(node as usize).copied().filter(|&r| r != NONE)
    }

    /// Units in priority order (trie nodes).
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Units in priority order, as bytes.
    pub fn units(&self) -> Vec<Vec<u8>> {
        self.order.iter().map(|&n| self.text(n).to_vec()).collect()
    }

    /// Append an interned node at the lowest priority (no-op if already in `L`).
    pub fn append(&mut self, node: u32) {
        if self.contains(node) {
            return;
        }
        self.rank[node as usize] = self.order.len() as u32;
        self.order.push(node);
        self.mark_path(node, true);
    }

    /// Count a unit in (or out of) the `live` counters of the nodes on its path (walking up
    /// the parent links: no hashing).
    fn mark_path(&mut self, node: u32, add: bool) {
        let mut n = node;
        while n != 0 {
            let l = &mut self.live[n as usize];
            *l = if add { *l + 1 } else { l.saturating_sub(1) };
            n = self.trie.parent[n as usize];
        }
    }

    /// `(second-longest, longest)` entries of `L` that are prefixes of `s`.
    #[inline]
    pub fn match2(&self, s: &[u8]) -> (Option<Hit>, Option<Hit>) {
        let (mut a, mut b) = (None, None);
        let mut n = 0u32;
        for (i, &byte) in s.iter().enumerate() {
            match self.trie.child(n, byte) {
                Some(c) => n = c,
                None => break,
            }
            if self.rank[n as usize] != NONE {
                a = b;
                b = Some(Hit {
                    node: n,
                    len: i + 1,
                });
            }
        }
        (a, b)
    }

    /// The longest entry of `L` that is a prefix of `s`.
    #[inline]
    pub fn longest(&self, s: &[u8]) -> Option<Hit> {
        self.match2(s).1
    }

    /// `force_match`: the longest entry of `L` prefixing `s`, else the first character of `s`,
    /// else empty. Returned as a byte length.
    #[inline]
    pub fn force_len(&self, s: &[u8]) -> usize {
        match self.longest(s) {
            Some(h) => h.len,
            None => s.first().map_or(0, |&b| char_len(b).min(s.len())),
        }
    }

    fn reindex(&mut self, from: usize, to: usize) {
        for i in from..to {
            self.rank[self.order[i] as usize] = i as u32;
        }
    }

    /// The reference's `move` (docs/lib.md §3.3, item 2): promote (`promote = true`) by
    /// `floor(i * rate) + 1` places, or demote by as many; the head never moves; a demotion past
    /// the end deletes the unit unless `keep` (then it goes to the end). Returns `false` if the
    /// unit was deleted.
    pub fn move_unit(&mut self, node: u32, promote: bool, rate: f64, keep: bool) -> bool {
        let Some(i) = self.rank(node) else {
            return false;
        };
        let i = i as usize;
        if i == 0 {
            return true;
        }
        let step = ((i as f64 * rate).floor() as usize).saturating_add(1);
        let n = self.order.len();
        if promote {
            let j = i.saturating_sub(step);
            self.order[j..=i].rotate_right(1);
            self.reindex(j, i + 1);
        } else if i.saturating_add(step) < n {
            self.order[i..=i + step].rotate_left(1);
            self.reindex(i, i + step + 1);
        } else if keep {
            self.order[i..].rotate_left(1);
            self.reindex(i, n);
        } else {
            self.order.remove(i);
            self.rank[node as usize] = NONE;
            self.mark_path(node, false);
            self.reindex(i, n - 1);
            return false;
        }
        true
    }

    /// Rebuild the trie from the units of `L` and the strings `extra` only, dropping the nodes
    /// of everything else ever interned. Returns the map old node -> new node ([`NONE`] for
    /// dropped nodes). Order, ranks and texts are kept. O(total bytes kept).
    pub fn compact(&mut self, extra: &[u32]) -> Vec<u32> {
        let mut map = vec![NONE; self.trie.len()];
        let mut fresh = Lexicon::new();
        for &n in &self.order {
            let m = fresh.intern(self.text(n));
            map[n as usize] = m;
            fresh.append(m);
        }
        for &n in extra {
            if map[n as usize] == NONE {
                map[n as usize] = fresh.intern(self.text(n));
            }
        }
        *self = fresh;
        map
    }

    /// Remove every unit for which `drop` is true, keeping the order of the rest. O(|L|).
    pub fn remove_where(&mut self, mut drop: impl FnMut(u32) -> bool) -> usize {
        let before = self.order.len();
        let mut kept = Vec::with_capacity(before);
        let mut gone = Vec::new();
        for &n in &self.order {
            if drop(n) {
                self.rank[n as usize] = NONE;
                gone.push(n);
            } else {
                kept.push(n);
            }
        }
        self.order = kept;
        for n in gone {
            self.mark_path(n, false);
        }
        self.reindex(0, self.order.len());
        before - self.order.len()
    }
}

/// Start of the tail put on probation, `floor((1 - out_rate) * |L|)` in f64 (so
/// `|L| - tail_start` units), as the reference computes it (docs/lib.md §3.3, item 3; vector TV3
/// of §11).
pub fn tail_start(len: usize, out_rate: f64) -> usize {
    ((1.0 - out_rate) * len as f64).floor() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(units: &[&str]) -> Lexicon {
        Lexicon::from_units(units)
    }

    fn strs(l: &Lexicon, h: Option<Hit>) -> String {
        h.map(|h| String::from_utf8(l.text(h.node).to_vec()).unwrap())
            .unwrap_or_default()
    }

    fn names(l: &Lexicon) -> Vec<String> {
        l.units()
            .into_iter()
            .map(|u| String::from_utf8(u).unwrap())
            .collect()
    }

    /// TV1 of docs/lib.md §11.
    #[test]
    fn tv1_match2_returns_second_longest_and_longest_prefix() {
        let l = lex(&["t", "h", "e", "th", "the", "there", "r"]);
        let m = |s: &str| {
            let (a, b) = l.match2(s.as_bytes());
            (strs(&l, a), strs(&l, b))
        };
        assert_eq!(m("there is"), ("the".into(), "there".into()));
        assert_eq!(m("then"), ("th".into(), "the".into()));
        assert_eq!(m("hat"), ("".into(), "h".into()));
        assert_eq!(m("xyz"), ("".into(), "".into()));
    }

    /// TV2 of docs/lib.md §11.
    #[test]
    fn tv2_moves_follow_the_reference() {
        let w: Vec<String> = (0..12).map(|i| format!("w{i}")).collect();
        let wr: Vec<&str> = w.iter().map(String::as_str).collect();
        let mut l = lex(&wr);
        let n10 = l.node_of(b"w10").unwrap();
        l.move_unit(n10, true, 0.1, false);
        assert_eq!(l.rank(n10), Some(8));
        let mut l = lex(&wr);
        l.move_unit(n10, true, 0.2, false);
        assert_eq!(l.rank(n10), Some(7));

        let mut l = lex(&wr[..5]);
        let n3 = l.node_of(b"w3").unwrap();
        l.move_unit(n3, false, 0.1, false);
        assert_eq!(names(&l), ["w0", "w1", "w2", "w4", "w3"]);
        let mut l = lex(&wr[..5]);
        let n4 = l.node_of(b"w4").unwrap();
        assert!(!l.move_unit(n4, false, 0.1, false));
        assert_eq!(names(&l), ["w0", "w1", "w2", "w3"]);
        let n0 = l.node_of(b"w0").unwrap();
        l.move_unit(n0, true, 0.1, false);
        l.move_unit(n0, false, 0.1, false);
        assert_eq!(names(&l), ["w0", "w1", "w2", "w3"]);

        let mut l = lex(&wr[..6]);
        for (u, promote) in [("w1", false), ("w5", true), ("w2", false)] {
            let n = l.node_of(u.as_bytes()).unwrap();
            l.move_unit(n, promote, 0.5, false);
        }
        assert_eq!(names(&l), ["w0", "w5", "w2", "w1", "w3", "w4"]);
    }

    #[test]
    fn protected_demotion_past_the_end_keeps_the_unit_last() {
        let mut l = lex(&["a", "b", "c"]);
        let b = l.node_of(b"b").unwrap();
        assert!(l.move_unit(b, false, 0.9, true));
        assert_eq!(names(&l), ["a", "c", "b"]);
    }

    #[test]
    fn huge_update_rate_saturates_instead_of_overflowing() {
        let mut l = lex(&["a", "b", "c"]);
        let c = l.node_of(b"c").unwrap();
        l.move_unit(c, true, 1e300, false);
        assert_eq!(names(&l), ["c", "a", "b"]);
        let b = l.node_of(b"b").unwrap();
        assert!(!l.move_unit(b, false, 1e300, false));
    }

    /// TV3 of docs/lib.md §11.
    #[test]
    fn tv3_tail_count() {
        for (n, w, k) in [
            (1059, 0.01, 11),
            (5000, 0.0001, 1),
            (20000, 0.0001, 2),
            (10, 0.0001, 1),
        ] {
            assert_eq!(n - tail_start(n, w), k);
        }
    }

    #[test]
    fn remove_where_keeps_order_and_ranks() {
        let mut l = lex(&["a", "b", "c", "d"]);
        let b = l.node_of(b"b").unwrap();
        let d = l.node_of(b"d").unwrap();
        assert_eq!(l.remove_where(|n| n == b), 1);
        assert_eq!(names(&l), ["a", "c", "d"]);
        assert_eq!(l.rank(d), Some(2));
        assert!(!l.contains(b));
    }
}
