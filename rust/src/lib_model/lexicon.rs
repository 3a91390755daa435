//! The LiB lexicon `L` during training: an ordered list of distinct units (index = priority,
//! 0 = best) over a character trie for prefix matching (docs/lib.md §2, v2023 `TrieList`); and
//! the plain byte [`Trie`] the segmenter compiles a fixed lexicon into.
//!
//! - Units are UTF-8 strings. The learner's trie steps one *character* at a time (its UTF-8
//!   bytes packed into a `u32` key), as the reference's prefixes are characters: a CJK or Thai
//!   character is one step, not three. Lengths and offsets stay in bytes. (The segmenter's
//!   [`Trie`] steps bytes.)
//! - Every string ever interned gets a trie node; the node id is the unit's identity (also for
//!   probation and for strings that have left `L`). Nodes live until the learner compacts the
//!   trie between articles ([`Lexicon::compact`]).
//! - Compact nodes: one 24-byte record per node holds what a walk reads (first child and its
//!   key, live count, a "unit of `L`" flag, number of children, side block) and the
//!   probation slot the learner keeps there. A node with 2 to 7 children keeps the others in
//!   a small block of keys and children (six compares without a branch, no hashing: code and
//!   short-word text branch like this everywhere); from [`WIDE_AT`] children on, its ASCII
//!   children go to a 128-entry table and the rest to one hash map. The root's ASCII children
//!   are a table too, its other children a page table by code point.
//!   A node's text is a span of a shared byte arena (the string whose insertion created the
//!   node, cut to the node's depth): no allocation per unit.
//! - `rank` (a dense array beside the nodes) is the current index in `order` or [`NONE`];
//!   `live` (a node's own unit and its live children) is nonzero exactly where a unit of `L`
//!   lies at or below a node, so walks stop where no unit of `L`
//!   lies ahead (strings once memorised and since forgotten cost nothing). A move shifts
//!   the units it passes in `order` and rewrites their ranks in the same pass: a reward
//!   costs O(step), not the reference's O(|L|) search.
//!
//! Complexity: `match2` O(characters of the longest live match) steps, each an array read, up
//! to six key compares, or (non-ASCII children of wide nodes) one hash lookup; promote/demote O(step); removing a set of units
//! O(|L| - first removed rank). Invariants: `order[rank[n]] == n` for every unit `n` in `L`; `live[n]` = (1 if `n`
//! is a unit of `L`) + (children `c` of `n` with `live[c] > 0`), so `live[n] > 0` exactly when a
//! unit of `L` passes through `n`.

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

/// One trie node of the learner's lexicon (24 bytes: what a walk reads sits together; the
/// rank is in the dense array `Lexicon::rank`, which moves rewrite).
#[derive(Clone, Copy, Debug)]
struct Node {
    /// First child (0 = no child) and the character key leading to it ([`key_at`]); other
    /// children are in `small` (2 to 7 children) or in `wide` and the map (8 or more).
    child: u32,
    key: u32,
    /// 1 if this node is a unit of `L`, plus its children with a nonzero `live`: nonzero
    /// exactly when a unit of `L` lies at or below the node (all a walk asks).
    live: u32,
    /// Probation slot of the learner ([`NONE`] = not on probation); kept here so that the
    /// reader's check costs no extra cache line.
    slot: u32,
    /// With 2 to 7 children, the block of `small` holding all but the first; with [`WIDE_AT`]
    /// or more, the 128-entry table of ASCII children in `wide`; else [`NONE`].
    table: u32,
    /// Children, saturating at 255.
    kids: u8,
    /// The node's text is a unit of `L`.
    unit: bool,
}

const EMPTY: Node = Node {
    child: 0,
    key: 0,
    live: 0,
    slot: NONE,
    table: NONE,
    kids: 0,
    unit: false,
};

/// Children at which a node gets a 128-entry table for its ASCII children instead of hash-map
/// entries (nodes after a space or a common prefix fan out widely in Latin-script text).
pub const WIDE_AT: u8 = 8;
/// Entries of a `small` block: the children after the first of a node with fewer than
/// [`WIDE_AT`] children.
const SMALL: usize = WIDE_AT as usize - 2;

/// The children after the first of a node with 2 to 7 children: keys and children in linking
/// order, unused slots `(0, 0)`.
#[derive(Clone, Copy, Default)]
struct Small {
    keys: [u32; SMALL],
    kids: [u32; SMALL],
}

impl Small {
    /// The child under `k`, 0 if none: every slot is compared and the one match (keys of
    /// siblings differ) selected without a branch, since which slot matches is as good as
    /// random. An unused slot can only match key 0, and its child is 0.
    #[inline(always)]
    fn get(&self, k: u32) -> u32 {
        let mut c = 0;
        for i in 0..SMALL {
            c |= (self.keys[i] == k) as u32 * self.kids[i];
        }
        c
    }
}

/// The character starting at byte `i` of `s` as a trie key (its UTF-8 bytes packed big-endian,
/// so ASCII keys are `0..128` and no two characters share a key) and its length in bytes (cut
/// at the end of `s`).
#[inline(always)]
fn key_at(s: &[u8], i: usize) -> (u32, usize) {
    let b = s[i];
    if b < 0x80 {
        return (b as u32, 1);
    }
    let l = char_len(b).min(s.len() - i);
    let mut k = 0u32;
    for &x in &s[i..i + l] {
        k = (k << 8) | x as u32;
    }
    (k, l)
}

/// The code point of a non-ASCII key of [`key_at`] (for malformed UTF-8 some value below
/// 2^21; distinct keys may then share one).
#[inline(always)]
fn code_point(k: u32) -> u32 {
    if k < 0x1_0000 {
        ((k >> 8) & 0x1F) << 6 | (k & 0x3F)
    } else if k < 0x100_0000 {
        ((k >> 16) & 0x0F) << 12 | ((k >> 8) & 0x3F) << 6 | (k & 0x3F)
    } else {
        ((k >> 24) & 0x07) << 18 | ((k >> 16) & 0x3F) << 12 | ((k >> 8) & 0x3F) << 6 | (k & 0x3F)
    }
}

#[inline]
fn more_key(node: u32, k: u32) -> u64 {
    ((node as u64) << 32) | k as u64
}

/// The ordered lexicon `L`.
#[derive(Clone)]
pub struct Lexicon {
    nodes: Vec<Node>,
    /// Parent of each node (root: 0), for walking up without hashing.
    parent: Vec<u32>,
    /// Index of each node in `order`, or [`NONE`] (dense, so that a move's re-ranking writes
    /// 4-byte slots).
    rank: Vec<u32>,
    /// The root's ASCII children.
    root: Box<[u32; 128]>,
    /// The root's other children by code point: `pages[cp >> 6]` is a block of `root_hi` (or
    /// [`NONE`]) whose entry `cp & 63` is `(key, child)`; a key whose slot another key holds
    /// (only possible for malformed UTF-8) goes to `more`. Every reading position starts at the
    /// root, so in CJK, Thai or Cyrillic text this replaces one hash lookup per position.
    pages: Vec<u32>,
    root_hi: Vec<[(u32, u32); 64]>,
    /// Children after the first of nodes with 2 to 7 children ([`Small`]): a lookup compares
    /// six keys, no hashing.
    small: Vec<Small>,
    /// ASCII child tables of wide nodes (their other children are in `more`).
    wide: Vec<[u32; 128]>,
    more: FxHashMap<u64, u32>,
    /// `span[node] = (offset in arena, depth in bytes)`: the node's text.
    span: Vec<(usize, usize)>,
    arena: Vec<u8>,
    order: Vec<u32>,
}

impl Default for Lexicon {
    fn default() -> Self {
        Self::new()
    }
}

/// The storage of a [`Lexicon`] without its contents: its arrays, emptied, with their
/// capacity. A lexicon built on it ([`Lexicon::with_store`]) reuses the memory instead of
/// allocating and first-touching fresh pages (the learner's trie grows to hundreds of KB per
/// run, and every page the allocator maps anew costs a page fault: 5-10 % of a short run's
/// CPU time).
#[derive(Default)]
pub struct LexStore {
    nodes: Vec<Node>,
    parent: Vec<u32>,
    rank: Vec<u32>,
    root: Option<Box<[u32; 128]>>,
    pages: Vec<u32>,
    root_hi: Vec<[(u32, u32); 64]>,
    small: Vec<Small>,
    wide: Vec<[u32; 128]>,
    more: FxHashMap<u64, u32>,
    span: Vec<(usize, usize)>,
    arena: Vec<u8>,
    order: Vec<u32>,
}

impl LexStore {
    /// Bytes held (capacities), to bound what a cache of stores keeps.
    pub fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.nodes.capacity() * size_of::<Node>()
            + (self.parent.capacity() + self.rank.capacity() + self.pages.capacity()) * 4
            + self.root_hi.capacity() * size_of::<[(u32, u32); 64]>()
            + self.small.capacity() * size_of::<Small>()
            + self.wide.capacity() * size_of::<[u32; 128]>()
            + self.more.capacity() * 12
            + self.span.capacity() * size_of::<(usize, usize)>()
            + self.arena.capacity()
            + self.order.capacity() * 4
    }
}

impl Lexicon {
    pub fn new() -> Self {
        Self::with_store(LexStore::default())
    }

    /// An empty lexicon on the memory of `store` (see [`LexStore`]).
    pub fn with_store(store: LexStore) -> Self {
        let LexStore {
            mut nodes,
            mut parent,
            mut rank,
            root,
            mut pages,
            mut root_hi,
            mut small,
            mut wide,
            mut more,
            mut span,
            mut arena,
            mut order,
        } = store;
        nodes.clear();
        nodes.push(EMPTY);
        parent.clear();
        parent.push(0);
        rank.clear();
        rank.push(NONE);
        let root = match root {
            Some(mut r) => {
                r.fill(0);
                r
            }
            None => Box::new([0; 128]),
        };
        pages.clear();
        root_hi.clear();
        small.clear();
        wide.clear();
        more.clear();
        span.clear();
        span.push((0, 0));
        arena.clear();
        order.clear();
        Lexicon {
            nodes,
            parent,
            rank,
            root,
            pages,
            root_hi,
            small,
            wide,
            more,
            span,
            arena,
            order,
        }
    }

    /// The lexicon's memory, for a later [`Lexicon::with_store`] (contents dropped there).
    pub fn into_store(self) -> LexStore {
        LexStore {
            nodes: self.nodes,
            parent: self.parent,
            rank: self.rank,
            root: Some(self.root),
            pages: self.pages,
            root_hi: self.root_hi,
            small: self.small,
            wide: self.wide,
            more: self.more,
            span: self.span,
            arena: self.arena,
            order: self.order,
        }
    }

    /// A lexicon holding `units` in this order (duplicates keep their first position).
    pub fn from_units<S: AsRef<[u8]>>(units: &[S]) -> Self {
        let mut l = Lexicon::new();
        for u in units {
            if !u.as_ref().is_empty() {
                let n = l.intern(u.as_ref());
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

    /// Trie nodes, root included.
    pub fn nodes_len(&self) -> usize {
        self.nodes.len()
    }

    /// Child of `node` under character key `k`, 0 if none.
    #[inline(always)]
    fn child(&self, node: u32, k: u32) -> u32 {
        if node == 0 {
            return self.root_step(k);
        }
        self.child_of(&self.nodes[node as usize], node, k)
    }

    /// Child of a node other than the root under character key `k`, 0 if none; `nd` is the
    /// node's record. For the one or no child of a chain node and the 2 to 7 children of a
    /// small node the key compares select without a branch (which one matches is data-dependent).
    #[inline(always)]
    fn child_of(&self, nd: &Node, node: u32, k: u32) -> u32 {
        if nd.key == k {
            // the inline child, or 0 when the node has no child at all
            return nd.child;
        }
        if nd.kids < 2 {
            return 0;
        }
        if nd.kids < WIDE_AT {
            return self.small[nd.table as usize].get(k);
        }
        if k < 128 {
            return self.wide[nd.table as usize][k as usize];
        }
        self.more_child(node, k)
    }

    /// Child of the root under character key `k`, 0 if none.
    #[inline(always)]
    fn root_step(&self, k: u32) -> u32 {
        if k < 128 {
            return self.root[k as usize];
        }
        self.root_child(k)
    }

    /// Child of the root under a non-ASCII key.
    #[inline]
    fn root_child(&self, k: u32) -> u32 {
        let cp = code_point(k);
        let page = self.pages.get((cp >> 6) as usize).copied().unwrap_or(NONE);
        if page == NONE {
            return 0;
        }
        let (key, c) = self.root_hi[page as usize][(cp & 63) as usize];
        if key == k {
            c
        } else if c == 0 {
            0
        } else {
            self.more_child(0, k)
        }
    }

    /// Link a new non-ASCII child of the root.
    fn link_root(&mut self, k: u32, c: u32) {
        let cp = code_point(k) as usize;
        if self.pages.len() <= cp >> 6 {
            self.pages.resize((cp >> 6) + 1, NONE);
        }
        if self.pages[cp >> 6] == NONE {
            self.pages[cp >> 6] = self.root_hi.len() as u32;
            self.root_hi.push([(0, 0); 64]);
        }
        let slot = &mut self.root_hi[self.pages[cp >> 6] as usize][cp & 63];
        if slot.1 == 0 {
            *slot = (k, c);
        } else {
            self.more.insert(more_key(0, k), c);
        }
    }

    #[inline(never)]
    fn more_child(&self, node: u32, k: u32) -> u32 {
        self.more.get(&more_key(node, k)).copied().unwrap_or(0)
    }

    /// Link the new node `c` as the child of `n` under key `k`.
    fn link(&mut self, n: u32, k: u32, c: u32) {
        if n == 0 {
            if k < 128 {
                self.root[k as usize] = c;
            } else {
                self.link_root(k, c);
            }
            return;
        }
        let p = self.nodes[n as usize];
        let kids = p.kids.saturating_add(1);
        let nd = &mut self.nodes[n as usize];
        nd.kids = kids;
        if p.child == 0 {
            nd.child = c;
            nd.key = k;
        } else if kids < WIDE_AT {
            if p.kids == 1 {
                nd.table = self.small.len() as u32;
                self.small.push(Small::default());
            }
            let b = &mut self.small[nd.table as usize];
            b.keys[p.kids as usize - 1] = k;
            b.kids[p.kids as usize - 1] = c;
        } else if kids == WIDE_AT {
            // the node turns wide: ASCII children to a table, the others to the map
            let mut t = [0u32; 128];
            let b = self.small[p.table as usize];
            for (kk, cc) in b.keys.into_iter().zip(b.kids).chain([(k, c)]) {
                if kk < 128 {
                    t[kk as usize] = cc;
                } else {
                    self.more.insert(more_key(n, kk), cc);
                }
            }
            self.nodes[n as usize].table = self.wide.len() as u32;
            self.wide.push(t);
        } else if k < 128 {
            self.wide[p.table as usize][k as usize] = c;
        } else {
            self.more.insert(more_key(n, k), c);
        }
    }

    /// The node of `s`, created with its missing prefixes (does not add `s` to `L`).
    pub fn intern(&mut self, s: &[u8]) -> u32 {
        self.intern_from(0, s, 0)
    }

    /// [`Lexicon::intern`] when `s[..skip]` is known to be the text of node `from` (root: 0
    /// and 0): the walk starts there, as a join `prev + c` starts at the node of `prev`.
    pub fn intern_from(&mut self, from: u32, s: &[u8], skip: usize) -> u32 {
        self.intern_walk(from, s, skip, false).0
    }

    /// [`Lexicon::intern_from`] for a string about to be appended to `L`: returns its node and
    /// whether the node is new. A new node's chain of fresh nodes is counted in `live` as it
    /// is created (each has one live child, the last its own unit), and its first live
    /// ancestor too, so the caller must [`Lexicon::append_marked`] it (not
    /// [`Lexicon::append`]) before anything leaves `L`; walks in between find the same units,
    /// as `unit` is still unset. This saves `append` a second walk up the chain, whose exit
    /// mispredicted (a new join `prev + c` is new in most calls).
    pub fn intern_unit_from(&mut self, from: u32, s: &[u8], skip: usize) -> (u32, bool) {
        self.intern_walk(from, s, skip, true)
    }

    fn intern_walk(&mut self, from: u32, s: &[u8], skip: usize, live: bool) -> (u32, bool) {
        debug_assert_eq!(self.text(from), &s[..skip]);
        let mut n = from;
        let mut i = skip;
        while i < s.len() {
            let (k, l) = key_at(s, i);
            let c = self.child(n, k);
            if c == 0 {
                let last = self.grow_chain(n, s, i, u32::from(live));
                if live {
                    self.mark_path(n, true);
                }
                return (last, true);
            }
            n = c;
            i += l;
        }
        (n, false)
    }

    /// Create the nodes of `s[i..]` below `n` (which has no child for the character at `i`):
    /// the first is linked as a new child of `n`, each further one is the only child of the
    /// one before (a chain of fresh nodes), so nothing is looked up; each gets `live`.
    /// Returns the last node.
    fn grow_chain(&mut self, mut n: u32, s: &[u8], mut i: usize, live: u32) -> u32 {
        let at = self.arena.len();
        self.arena.extend_from_slice(s);
        let mut first = true;
        while i < s.len() {
            let (k, l) = key_at(s, i);
            i += l;
            let c = self.nodes.len() as u32;
            self.nodes.push(Node { live, ..EMPTY });
            self.parent.push(n);
            self.rank.push(NONE);
            self.span.push((at, i));
            if first {
                self.link(n, k, c);
                first = false;
            } else {
                let p = &mut self.nodes[n as usize];
                p.child = c;
                p.key = k;
                p.kids = 1;
            }
            n = c;
        }
        n
    }

    /// The node of `s` if the trie has one.
    pub fn node_of(&self, s: &[u8]) -> Option<u32> {
        let mut n = 0u32;
        let mut i = 0;
        while i < s.len() {
            let (k, l) = key_at(s, i);
            i += l;
            n = self.child(n, k);
            if n == 0 {
                return None;
            }
        }
        (n != 0).then_some(n)
    }

    /// Bytes of a node.
    #[inline]
    pub fn text(&self, node: u32) -> &[u8] {
        let (at, len) = self.span.get(node as usize).copied().unwrap_or((0, 0));
        &self.arena[at..at + len]
    }

    /// Bytes in the text arena (grows with every string that creates nodes).
    pub fn arena_len(&self) -> usize {
        self.arena.len()
    }

    #[inline]
    pub fn contains(&self, node: u32) -> bool {
        self.nodes.get(node as usize).is_some_and(|n| n.unit)
    }

    /// Current index of a unit in `L`.
    #[inline]
    pub fn rank(&self, node: u32) -> Option<u32> {
        self.rank.get(node as usize).copied().filter(|&r| r != NONE)
    }

    /// Probation slot stored with a node ([`NONE`] if none or no such node).
    #[inline]
    pub(crate) fn slot(&self, node: u32) -> u32 {
        self.nodes.get(node as usize).map_or(NONE, |n| n.slot)
    }

    #[inline]
    pub(crate) fn set_slot(&mut self, node: u32, slot: u32) {
        if let Some(n) = self.nodes.get_mut(node as usize) {
            n.slot = slot;
        }
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
        if self.contains(node) || node == 0 || node as usize >= self.nodes.len() {
            return;
        }
        self.nodes[node as usize].unit = true;
        self.rank[node as usize] = self.order.len() as u32;
        self.order.push(node);
        self.mark_path(node, true);
    }

    /// [`Lexicon::append`] for a new node of [`Lexicon::intern_unit_from`], whose path is
    /// already counted in `live`.
    pub fn append_marked(&mut self, node: u32) {
        if self.contains(node) || node == 0 || node as usize >= self.nodes.len() {
            return;
        }
        self.nodes[node as usize].unit = true;
        self.rank[node as usize] = self.order.len() as u32;
        self.order.push(node);
    }

    /// Count a unit in (or out of) `live` (walking up the parent links: no hashing). A node
    /// counts its live children, not the units below them, so the walk stops at the first
    /// node whose `live` does not change between zero and nonzero: a new join `prev + c` stops
    /// at the node of `prev`, which is a unit, after its fresh tail (counting every unit on
    /// the whole path cost one step per character of the unit, and a mispredicted exit).
    fn mark_path(&mut self, node: u32, add: bool) {
        let mut n = node;
        while n != 0 {
            let nd = &mut self.nodes[n as usize];
            if add {
                nd.live += 1;
                if nd.live != 1 {
                    break;
                }
            } else {
                nd.live = nd.live.saturating_sub(1);
                if nd.live != 0 {
                    break;
                }
            }
            n = self.parent[n as usize];
        }
    }

    /// `(second-longest, longest)` entries of `L` that are prefixes of `s`. The walk stops at
    /// the first node with no unit of `L` at or below it (a missing child is node 0, the root,
    /// whose count is 0: one test for both). Every node is written to a ring of four hits whose
    /// cursor advances only at units of `L`, so there is no branch per node on "is this a
    /// unit" (the compiler made one of the selects this replaces).
    #[inline]
    pub fn match2(&self, s: &[u8]) -> (Option<Hit>, Option<Hit>) {
        let mut ring = [(0u32, 0u32); 4];
        let mut units = 0usize;
        if !s.is_empty() {
            let (k, mut i) = key_at(s, 0);
            let mut n = self.root_step(k);
            loop {
                let nd = &self.nodes[n as usize];
                if nd.live == 0 {
                    break;
                }
                ring[units & 3] = (n, i as u32);
                units += usize::from(nd.unit);
                if i >= s.len() {
                    break;
                }
                let (k, l) = key_at(s, i);
                i += l;
                n = self.child_of(nd, n, k);
            }
        }
        let hit = |back: usize| {
            (units >= back).then(|| {
                let (node, len) = ring[units.wrapping_sub(back) & 3];
                Hit {
                    node,
                    len: len as usize,
                }
            })
        };
        (hit(2), hit(1))
    }

    /// The longest entry of `L` that is a prefix of `s` (the walk of [`Lexicon::match2`]).
    #[inline]
    pub fn longest(&self, s: &[u8]) -> Option<Hit> {
        let (mut bn, mut bl) = (0u32, 0usize);
        if !s.is_empty() {
            let (k, mut i) = key_at(s, 0);
            let mut n = self.root_step(k);
            loop {
                let nd = &self.nodes[n as usize];
                if nd.live == 0 {
                    break;
                }
                let u = nd.unit;
                bn = if u { n } else { bn };
                bl = if u { i } else { bl };
                if i >= s.len() {
                    break;
                }
                let (k, l) = key_at(s, i);
                i += l;
                n = self.child_of(nd, n, k);
            }
        }
        (bn != 0).then_some(Hit { node: bn, len: bl })
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

    /// The reference's `move` (docs/lib.md §3.3, item 2): promote (`promote = true`) by
    /// `floor(i * rate) + 1` places, or demote by as many; the head never moves; a demotion past
    /// the end deletes the unit unless `keep` (then it goes to the end). Returns `false` if the
    /// unit was deleted. One pass: each shifted unit is moved and re-ranked in the same step ([`rotate_rank`]).
    pub fn move_unit(&mut self, node: u32, promote: bool, rate: f64, keep: bool) -> bool {
        let Some(i) = self.rank(node) else {
            return false;
        };
        let i = i as usize;
        if i == 0 {
            return true;
        }
        // floor(i * rate) + 1: the product is finite and not negative (rate is validated), so
        // the truncating (saturating) cast is the floor, without a libm call per move
        let step = ((i as f64 * rate) as usize).saturating_add(1);
        let n = self.order.len();
        let (order, rank) = (&mut self.order, &mut self.rank);
        if promote {
            let j = i.saturating_sub(step);
            rotate_rank(rank, &mut order[j..=i], j, node, false);
            return true;
        }
        let to = if i.saturating_add(step) < n {
            i + step
        } else if keep {
            n - 1
        } else {
            n
        };
        let last = to.min(n - 1);
        rotate_rank(rank, &mut order[i..=last], i, node, true);
        if to < n {
            true
        } else {
            order.pop();
            rank[node as usize] = NONE;
            self.nodes[node as usize].unit = false;
            self.mark_path(node, false);
            false
        }
    }

    /// Rebuild the trie from the units of `L` and the strings `extra` only, dropping the nodes
    /// of everything else ever interned. Fills `map` with old node -> new node ([`NONE`] for
    /// dropped nodes). Order and ranks are kept; probation slots are not (the caller re-sets
    /// them). O(total bytes kept).
    ///
    /// The rebuilt trie lives in the memory of `spare`, which gets the old trie's memory in
    /// return (a learner alternates between two sets of arrays); `map` is reused too.
    pub fn compact(&mut self, extra: &[u32], spare: &mut LexStore, map: &mut Vec<u32>) {
        map.clear();
        map.resize(self.nodes.len(), NONE);
        let mut fresh = Lexicon::with_store(std::mem::take(spare));
        let room = self.nodes.len();
        fresh.nodes.reserve(room);
        fresh.parent.reserve(room);
        fresh.rank.reserve(room);
        fresh.span.reserve(room);
        fresh.arena.reserve(self.arena.len());
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
        *spare = std::mem::replace(self, fresh).into_store();
    }

    /// Remove the units `gone` (nodes not in `L` are ignored), keeping the order of the rest.
    /// O(|L| - first rank removed) when something is removed.
    pub fn remove_units(&mut self, gone: &[u32]) -> usize {
        let mut removed = 0;
        let mut first = self.order.len();
        for &n in gone {
            if let Some(r) = self.rank(n) {
                first = first.min(r as usize);
                self.nodes[n as usize].unit = false;
                self.rank[n as usize] = NONE;
                self.mark_path(n, false);
                // marked in `order` itself, so that the pass below reads `order` only (reading
                // each unit's rank slot was one scattered read per unit it passes)
                self.order[r as usize] = NONE;
                removed += 1;
            }
        }
        if removed > 0 {
            // units before the first removed one keep their ranks (new units, the usual ones
            // to go, sit near the end)
            let rank = &mut self.rank;
            let mut w = first;
            for r in first..self.order.len() {
                let n = self.order[r];
                if n != NONE {
                    self.order[w] = n;
                    rank[n as usize] = w as u32;
                    w += 1;
                }
            }
            self.order.truncate(w);
        }
        removed
    }
}

/// Rotate `node` (= `seg[0]` if `down`, else the last of `seg`) to the other end of `seg`, a
/// stretch of `order` starting at index `first`, and re-rank every unit of the stretch: the
/// reference's promotion (node at the end, `down = false`) or demotion in one pass with the
/// unit in hand carried along (no memmove followed by a second pass over the same units: a
/// move shifts tens to hundreds of units, and its memmove's size dispatch mispredicted).
#[inline]
fn rotate_rank(rank: &mut [u32], seg: &mut [u32], first: usize, node: u32, down: bool) {
    let mut carry = node;
    let len = rank.len();
    let r = rank.as_mut_ptr();
    let mut put = |t: u32, slot: &mut u32| {
        let u = std::mem::replace(slot, carry);
        debug_assert!((carry as usize) < len);
        // SAFETY: every unit of `order` is a node id below `rank.len()` (the Lexicon
        // invariant: `rank` has one slot per node, `order` holds only appended nodes, and
        // `compact` rebuilds both together), and `carry` is always one of them
        unsafe { *r.add(carry as usize) = t };
        carry = u;
    };
    let f = first as u32;
    if down {
        for (t, slot) in (f..f + seg.len() as u32).zip(seg.iter_mut()).rev() {
            put(t, slot);
        }
    } else {
        for (t, slot) in (f..).zip(seg.iter_mut()) {
            put(t, slot);
        }
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
    fn nodes_are_24_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
    }

    #[test]
    fn character_keys_match_whole_characters() {
        let l = lex(&["日本", "日", "é", "ab"]);
        let (a, b) = l.match2("日本語".as_bytes());
        assert_eq!((strs(&l, a), strs(&l, b)), ("日".into(), "日本".into()));
        assert_eq!(l.longest("éa".as_bytes()).map(|h| h.len), Some(2));
        assert_eq!(l.longest("日x".as_bytes()).map(|h| h.len), Some(3));
        assert!(l.longest("本".as_bytes()).is_none());
    }

    #[test]
    fn wide_nodes_keep_every_child() {
        let words: Vec<String> = (b'a'..=b'z').map(|c| format!("x{}", c as char)).collect();
        let mut l = lex(&words.iter().map(String::as_str).collect::<Vec<_>>());
        let e = l.intern("xé".as_bytes());
        l.append(e);
        for w in &words {
            assert_eq!(l.longest(w.as_bytes()).map(|h| h.len), Some(2), "{w}");
        }
        assert_eq!(l.longest("xé!".as_bytes()).map(|h| h.len), Some(3));
        assert!(l.longest(b"x!").is_none());
    }

    #[test]
    fn small_and_wide_nodes_find_every_child_as_they_grow() {
        // ASCII and non-ASCII children mixed, past the switch to a wide node
        let keys = [
            "a", "é", "b", "日", "c", "d", "ü", "e", "f", "語", "g", "\u{0}", "h",
        ];
        let mut l = lex(&["x"]);
        for (i, k) in keys.iter().enumerate() {
            let u = format!("x{k}");
            let n = l.intern(u.as_bytes());
            l.append(n);
            for (j, k2) in keys.iter().enumerate() {
                let w = format!("x{k2}!");
                let hit = l.longest(w.as_bytes()).map(|h| h.len);
                let want = if j <= i { 1 + k2.len() } else { 1 };
                assert_eq!(hit, Some(want), "{i} {k2:?}");
            }
        }
        assert!(l.longest("xz".as_bytes()).is_some_and(|h| h.len == 1));
    }

    /// `match2` against a scan of the units, after appends, removals and deleting demotions in
    /// a pseudo-random order (the `live` counts decide where walks stop).
    #[test]
    fn walks_find_every_live_unit_after_adds_and_removals() {
        let words = [
            "a", "ab", "abc", "abcd", "b", "ba", "bab", "x", "xy", "xyz", "é", "éa", "日", "日本",
        ];
        let probes = ["abcde", "ab", "babx", "xyzzy", "éab", "日本語", "b", "zz"];
        let mut l = Lexicon::new();
        let mut seed = 12345u64;
        let mut next = |m: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize % m
        };
        for step in 0..400 {
            let w = words[next(words.len())].as_bytes();
            let n = l.intern(w);
            match next(3) {
                0 => l.append(n),
                1 => {
                    l.remove_units(&[n]);
                }
                _ => {
                    l.move_unit(n, false, 1.0, false);
                }
            }
            let units = l.units();
            for p in probes {
                let p = p.as_bytes();
                let mut lens: Vec<usize> = units
                    .iter()
                    .filter(|u| p.starts_with(u))
                    .map(|u| u.len())
                    .collect();
                lens.sort_unstable();
                let (a, b) = l.match2(p);
                let want = |back: usize| lens.len().checked_sub(back).map(|i| lens[i]);
                assert_eq!(
                    (a.map(|h| h.len), b.map(|h| h.len)),
                    (want(2), want(1)),
                    "step {step}"
                );
                assert_eq!(l.longest(p).map(|h| h.len), want(1), "step {step}");
            }
            // and no walk goes further than it must: `live` is nonzero exactly on the paths of
            // the units of `L`
            for n in 1..l.nodes_len() as u32 {
                let t = l.text(n);
                let on_path = units.iter().any(|u| u.starts_with(t));
                assert_eq!(
                    l.nodes[n as usize].live > 0,
                    on_path,
                    "step {step} node {n}"
                );
            }
        }
    }

    /// A lexicon on the storage of another starts empty and then behaves as a fresh one.
    #[test]
    fn a_lexicon_on_reused_storage_starts_empty() {
        let words = ["ab", "abc", "x", "é", "日本", "日"];
        let mut old = lex(&["zz", "zy", "zx", "zw", "zv", "zu", "zt", "zs", "日語", "q"]);
        let q = old.node_of(b"q").unwrap();
        old.remove_units(&[q]);
        let mut l = Lexicon::with_store(old.into_store());
        assert!(l.is_empty());
        assert_eq!(l.nodes_len(), 1);
        assert!(l.longest(b"zz").is_none());
        for w in words {
            let n = l.intern(w.as_bytes());
            l.append(n);
        }
        let fresh = lex(&words);
        assert_eq!(l.units(), fresh.units());
        for p in ["abcd", "xz", "éa", "日本語", "zz", "q"] {
            let (a, b) = l.match2(p.as_bytes());
            let (fa, fb) = fresh.match2(p.as_bytes());
            assert_eq!(
                (a.map(|h| h.len), b.map(|h| h.len)),
                (fa.map(|h| h.len), fb.map(|h| h.len)),
                "{p}"
            );
        }
    }

    #[test]
    fn remove_units_keeps_order_and_ranks() {
        let mut l = lex(&["a", "b", "c", "d"]);
        let b = l.node_of(b"b").unwrap();
        let d = l.node_of(b"d").unwrap();
        let x = l.intern(b"xy");
        assert_eq!(l.remove_units(&[b, x]), 1);
        assert_eq!(names(&l), ["a", "c", "d"]);
        assert_eq!(l.rank(d), Some(2));
        assert!(!l.contains(b));
    }
}
