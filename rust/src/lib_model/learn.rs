//! LiB training: the memorizer/forgetter loop of Yang (2024) as the v2023 reference code runs it
//! (docs/lib.md §3; sections 2-3 of the 2022 paper for the names).
//!
//! One step reads one article (the next `article_len` sentences from a cursor that wraps):
//! for every position, the longest known prefix `c` is read (larger-first), a pending
//! counterfactual comparison is opened against the second-longest `c2` (§3.1), units on
//! probation are checked against their stored context (§3.2), and with probability `in_rate` the
//! join `prev + c` is memorised; unknown characters are memorised at once. At the end of the
//! article, probation lives run down (passive forgetting), rewards move units up or down the
//! list (demotion past the end = active forgetting), and the tail of the list is put on
//! probation (§3.3).
//!
//! Determinism: one CPython-compatible MT19937 draw per known chunk ([`super::rng`]),
//! insertion-ordered maps with Python `dict` semantics for probation and pending comparisons,
//! f64 for the tail formula. With `protect_chars = false` the unit list is byte-for-byte the
//! reference's (golden vectors TV5 and TV6 of docs/lib.md §11, checked in the tests); with
//! protection on, single characters are never forgotten (docs/lib.md §8.2), which may change
//! later choices.
//!
//! Complexity per article: O(characters x match depth) trie steps for reading, O(step) per reward
//! ([`super::lexicon`]), O(|L| + |P|) for forgetting. The loop is sequential by nature (each
//! position's choice depends on the lexicon the previous one left), so training is one thread.

use super::lexicon::{char_count, char_len, tail_start, Hit, LexStore, Lexicon, NONE};
use super::rng::PyRandom;
use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use std::sync::Mutex;

/// LiB hyperparameters (docs/lib.md §6; defaults = v2023 defaults except where noted).
#[derive(Clone, Debug, PartialEq)]
pub struct LearnConfig {
    /// α: probability of memorising `prev + c` at each known chunk.
    pub in_rate: f64,
    /// ω: share of the list's tail put on probation after each article.
    pub out_rate: f64,
    /// τ0: articles a unit survives on probation.
    pub life: u32,
    /// Δ: promotion/demotion step as a share of the index.
    pub update_rate: f64,
    /// Longest unit in characters (`None` = unbounded, as the reference).
    pub max_chunk_len: Option<usize>,
    /// The context rule of docs/lib.md §3.2.
    pub inspect_context: bool,
    /// Sentences per article.
    pub article_len: usize,
    /// Seed of the MT19937 (`random.seed(seed)`).
    pub seed: u64,
    /// Never forget single characters (tokforge; off in reference mode).
    pub protect_chars: bool,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            in_rate: 0.25,
            out_rate: 0.0001,
            life: 10,
            update_rate: 0.1,
            max_chunk_len: None,
            inspect_context: true,
            article_len: 500,
            seed: 0,
            protect_chars: false,
        }
    }
}

impl LearnConfig {
    /// Reject settings that cannot work, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Training(m));
        if !(0.0..=1.0).contains(&self.in_rate) {
            return bad(format!("in_rate must be in [0, 1], got {}", self.in_rate));
        }
        if !(0.0..=1.0).contains(&self.out_rate) {
            return bad(format!("out_rate must be in [0, 1], got {}", self.out_rate));
        }
        if !(self.update_rate >= 0.0 && self.update_rate.is_finite()) {
            return bad(format!(
                "update_rate must be a non-negative number, got {}",
                self.update_rate
            ));
        }
        if self.life == 0 {
            return bad("life must be at least 1".into());
        }
        if self.article_len == 0 {
            return bad("article_len must be at least 1".into());
        }
        if self.max_chunk_len == Some(0) {
            return bad("max_chunk_len must be at least 1 (or None)".into());
        }
        Ok(())
    }
}

/// Stored context of a unit on probation: `left` then `right` bytes at `at` in the learner's
/// context arena, or none (`at == NONE_AT`: tail-marked).
#[derive(Clone, Copy)]
struct Context {
    at: usize,
    left: usize,
    right: usize,
}

const NONE_AT: usize = usize::MAX;
const NO_CONTEXT: Context = Context {
    at: NONE_AT,
    left: 0,
    right: 0,
};

/// An entry of the probation list (its context is in [`Learner::pctx`] at the same index, so
/// that the pass that runs lives down reads 8 bytes per entry, not 32).
#[derive(Clone, Copy)]
struct Probation {
    node: u32,
    life: u32,
}

/// A pending comparison `E[c]`: the default path (starts with `c`) and the alternative (starts
/// with `a0` = `c2`), kept as piece counts and rank sums, and where the alternative ends.
///
/// Rank sums can be accumulated as the paths grow because `L` only grows while an article is
/// read (indices are stable until its end). A character of the default path that no unit
/// covers is memorised in the same iteration, so its rank is `|L|` at that moment. A character
/// of the alternative that no unit covers may enter `L` before the comparison (when it is met
/// as an unknown character later in the sentence), so those few are kept in a list (`a_open`,
/// the head of a linked list in [`Learner::open`], [`NONE`] = empty) and ranked at comparison
/// time, as the reference's `ranksum` would. With the list outside, a comparison is plain data:
/// replacing or settling one drops nothing (one comparison opens at nearly every chunk).
///
/// The default path is the reader's own, so its count and sum are kept once per sentence
/// ([`Learner::path`]) and a comparison stores their values before `c` (no per-chunk update
/// of every open comparison).
#[derive(Clone, Copy)]
struct Pending {
    c: u32,
    a0: u32,
    alt_end: usize,
    d_len0: u32,
    d_sum0: u64,
    a_len: u32,
    a_sum: u64,
    a_open: u32,
}

/// Counters of the last article read (for progress reports).
#[derive(Clone, Copy, Debug, Default)]
pub struct ArticleStats {
    /// Chunks read (unknown characters count one each).
    pub tokens: u64,
    /// UTF-8 bytes of the article.
    pub bytes: u64,
}

/// The learner's state: lexicon, probation, the cursor and the random generator.
pub struct Learner {
    cfg: LearnConfig,
    lex: Lexicon,
    /// Probation in insertion order, with tombstones (`node == NONE`) compacted at the end of an
    /// article in which they are half the list; a node's index here is stored with the node
    /// ([`Lexicon::slot`]).
    pents: Vec<Probation>,
    /// The stored context of each entry of `pents` (same index).
    pctx: Vec<Context>,
    /// Bytes of the stored contexts (spans in [`Context`]); rebuilt when mostly garbage.
    ctx_buf: Vec<u8>,
    /// Units forgotten at the end of an article (buffer reused across articles).
    forget: Vec<u32>,
    rewards: Vec<(u32, bool)>,
    pending: Vec<Pending>,
    /// `(node, next)` cells of the pending comparisons' `a_open` lists (cleared per sentence).
    open: Vec<(u32, u32)>,
    /// `memo[pos]`: `longest(sent[pos..])` as `(generation, node, len)`, valid while
    /// `generation == lex_gen` (the lexicon has not grown since). Alternative paths of pending
    /// comparisons converge on the same positions, so most extensions are memo hits.
    memo: Vec<(u64, u32, u32)>,
    /// Chunks read in the sentence so far and the sum of their ranks (the default paths of
    /// pending comparisons are stretches of this path).
    path: (u32, u64),
    lex_gen: u64,
    /// `match2` at two byte positions of the sentence being read (the latest two looked up):
    /// the right context of a new unit is looked up where the reader goes next (and the one
    /// after that), so the walk is done once. Appends are the only change to `L` while a
    /// sentence is read; an appended unit that prefixes the text at a cached position joins
    /// that entry's top two ([`Learner::memorize`]).
    next: [Option<(usize, Option<Hit>, Option<Hit>)>; 2],
    rng: PyRandom,
    cursor: usize,
    steps: u64,
    last: ArticleStats,
    /// Compact the trie when it has this many nodes or its arena this many bytes (see
    /// [`Learner::maybe_compact`]).
    compact_at: usize,
    arena_at: usize,
    /// "No-supra" mode (docs/lib.md §8.3): units must lie inside one pre-tokenization piece.
    pretok: Option<Pretokenizer>,
    /// Piece index of every byte of the sentence being read (only with `pretok`).
    piece_of: Vec<u32>,
    /// The trie's other set of arrays: a rebuild fills them and keeps the old ones here.
    spare: LexStore,
    /// Old node -> new node of the last rebuild (buffer reused).
    map: Vec<u32>,
}

/// The memory of a dropped learner, for the next one: a binding or a benchmark runs many
/// short trainings, and each would otherwise allocate its arrays anew and fault in every page
/// of them (hundreds of page faults per run on code corpora, 5-10 % of its CPU time). One set
/// is kept, of at most [`KEEP_MAX`] bytes; every array is emptied before it is reused.
#[derive(Default)]
struct Spare {
    lex: LexStore,
    old: LexStore,
    map: Vec<u32>,
    pents: Vec<Probation>,
    pctx: Vec<Context>,
    ctx_buf: Vec<u8>,
    forget: Vec<u32>,
    rewards: Vec<(u32, bool)>,
    pending: Vec<Pending>,
    open: Vec<(u32, u32)>,
    memo: Vec<(u64, u32, u32)>,
    piece_of: Vec<u32>,
}

impl Spare {
    fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.lex.bytes()
            + self.old.bytes()
            + (self.map.capacity() + self.forget.capacity() + self.piece_of.capacity()) * 4
            + self.pents.capacity() * size_of::<Probation>()
            + self.pctx.capacity() * size_of::<Context>()
            + self.ctx_buf.capacity()
            + self.rewards.capacity() * size_of::<(u32, bool)>()
            + self.pending.capacity() * size_of::<Pending>()
            + self.open.capacity() * size_of::<(u32, u32)>()
            + self.memo.capacity() * size_of::<(u64, u32, u32)>()
    }
}

fn empty<T>(mut v: Vec<T>) -> Vec<T> {
    v.clear();
    v
}

/// Largest set of arrays kept for the next learner (bytes): the runs of the speed bench hold
/// 3-14 MB (code 3-4, UDHR 3-11, the mixed documentation text 14); a larger training's memory
/// is given back when it ends.
const KEEP_MAX: usize = 32 << 20;

static SPARE: Mutex<Option<Box<Spare>>> = Mutex::new(None);

impl Drop for Learner {
    fn drop(&mut self) {
        let spare = Spare {
            lex: std::mem::take(&mut self.lex).into_store(),
            old: std::mem::take(&mut self.spare),
            map: std::mem::take(&mut self.map),
            pents: std::mem::take(&mut self.pents),
            pctx: std::mem::take(&mut self.pctx),
            ctx_buf: std::mem::take(&mut self.ctx_buf),
            forget: std::mem::take(&mut self.forget),
            rewards: std::mem::take(&mut self.rewards),
            pending: std::mem::take(&mut self.pending),
            open: std::mem::take(&mut self.open),
            memo: std::mem::take(&mut self.memo),
            piece_of: std::mem::take(&mut self.piece_of),
        };
        if spare.bytes() <= KEEP_MAX {
            if let Ok(mut slot) = SPARE.lock() {
                *slot = Some(Box::new(spare));
            }
        }
    }
}

/// Smallest trie (nodes) worth compacting: 4k nodes (~100 KB), so that small corpora are
/// compacted too. The trie is rebuilt when it has grown 4x since the last rebuild (amortised
/// O(1) per interned byte). Wall-clock times of doubling, quadrupling, 16x or never were within
/// the noise (±10 %) of each other; counted with cachegrind (runs A/B of `benches/lib_model.py
/// speed`, code-go, zh, th, en), quadrupling executes 8-15 % fewer instructions than doubling
/// (a rebuild re-interns every unit) with 5-14 % fewer L1 misses, and 8x saves under 3 % more:
/// the live-count check keeps walks out of forgotten branches.
const COMPACT_MIN: usize = 1 << 12;
/// Smallest text arena worth compacting (bytes).
const ARENA_MIN: usize = 1 << 18;

impl Learner {
    pub fn new(cfg: LearnConfig) -> Result<Self> {
        cfg.validate()?;
        let rng = PyRandom::new(cfg.seed);
        let s = SPARE
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .map_or_else(Spare::default, |b| *b);
        Ok(Learner {
            cfg,
            lex: Lexicon::with_store(s.lex),
            pents: empty(s.pents),
            pctx: empty(s.pctx),
            ctx_buf: empty(s.ctx_buf),
            forget: empty(s.forget),
            rewards: empty(s.rewards),
            pending: empty(s.pending),
            open: empty(s.open),
            // cleared: its entries are stamped with generations a new learner counts again
            memo: empty(s.memo),
            path: (0, 0),
            lex_gen: 1,
            next: [None; 2],
            rng,
            cursor: 0,
            steps: 0,
            last: ArticleStats::default(),
            compact_at: COMPACT_MIN,
            arena_at: ARENA_MIN,
            pretok: None,
            piece_of: empty(s.piece_of),
            spare: s.old,
            map: empty(s.map),
        })
    }

    /// Restrict units to the pieces of a pre-tokenizer (docs/lib.md §8.3, "no-supra" mode):
    /// nothing that crosses a piece boundary is memorised. Off by default (supra-word units).
    pub fn with_pretokenizer(mut self, pretok: Option<Pretokenizer>) -> Self {
        self.pretok = pretok;
        self
    }

    pub fn config(&self) -> &LearnConfig {
        &self.cfg
    }

    pub fn lexicon(&self) -> &Lexicon {
        &self.lex
    }

    pub fn steps_done(&self) -> u64 {
        self.steps
    }

    pub fn last_article(&self) -> ArticleStats {
        self.last
    }

    /// Units on probation, in the probation map's order (may include units no longer in `L`).
    pub fn probation(&self) -> Vec<Vec<u8>> {
        self.probation_nodes()
            .map(|n| self.lex.text(n).to_vec())
            .collect()
    }

    /// The nodes of [`Learner::probation`], in that order (with [`Lexicon::rank`] a caller can
    /// reuse what it built for a unit of `L`).
    pub fn probation_nodes(&self) -> impl Iterator<Item = u32> + '_ {
        self.pents.iter().filter(|p| p.node != NONE).map(|p| p.node)
    }

    /// Whether a unit of `L` is in the clean lexicon ([`Learner::clean_units`]).
    pub fn is_clean(&self, node: u32) -> bool {
        !self.on_probation(node) || self.protected(node)
    }

    /// Number of units on probation (no list is built).
    pub fn probation_len(&self) -> usize {
        self.probation_nodes().count()
    }

    /// `clean_lexicon()`: the units of `L` in order, without those on probation (protected
    /// single characters stay).
    pub fn clean_units(&self) -> Vec<Vec<u8>> {
        self.lex
            .order()
            .iter()
            .filter(|&&n| self.is_clean(n))
            .map(|&n| self.lex.text(n).to_vec())
            .collect()
    }

    #[inline]
    fn on_probation(&self, node: u32) -> bool {
        self.lex.slot(node) != NONE
    }

    #[inline]
    fn protected(&self, node: u32) -> bool {
        self.cfg.protect_chars && char_count(self.lex.text(node)) == 1
    }

    /// `P[x] = (life, ctx)` with dict semantics: an existing key keeps its position.
    fn set_probation(&mut self, node: u32, ctx: Context) {
        let life = self.cfg.life;
        match self.lex.slot(node) {
            NONE => {
                self.lex.set_slot(node, self.pents.len() as u32);
                self.pents.push(Probation { node, life });
                self.pctx.push(ctx);
            }
            s => {
                self.pents[s as usize].life = life;
                self.pctx[s as usize] = ctx;
            }
        }
    }

    fn release(&mut self, node: u32) {
        let s = self.lex.slot(node);
        if s != NONE {
            self.pents[s as usize].node = NONE;
            self.lex.set_slot(node, NONE);
        }
    }

    /// Store a context `(left, right)` in the arena.
    fn context(&mut self, left: &[u8], right: &[u8]) -> Context {
        let at = self.ctx_buf.len();
        self.ctx_buf.extend_from_slice(left);
        self.ctx_buf.extend_from_slice(right);
        Context {
            at,
            left: left.len(),
            right: right.len(),
        }
    }

    /// `memorize(x, (left, force_match(text after x)))` with x = `sent[start..end]` and left =
    /// `sent[left.0..left.1]`. The right context is always `force_match` at the end of x, so it
    /// is computed here, and only when x is new (on the lexicon the call sees, as the
    /// reference's argument evaluation does). `from = (node, len)`: a trie node whose text is
    /// `sent[start..start + len]` (the chunk x starts with; `(0, 0)` = none), where interning
    /// starts. Returns the node of x (0 if x is not memorisable).
    fn memorize(
        &mut self,
        sent: &[u8],
        start: usize,
        end: usize,
        left: (usize, usize),
        from: (u32, usize),
    ) -> u32 {
        if start == end {
            return 0;
        }
        if self.pretok.is_some() && self.piece_of[start] != self.piece_of[end - 1] {
            return 0;
        }
        let x = &sent[start..end];
        if let Some(max) = self.cfg.max_chunk_len {
            if char_count(x) > max {
                return 0;
            }
        }
        let (n, fresh) = self.lex.intern_unit_from(from.0, x, from.1);
        if !fresh && self.lex.contains(n) {
            return n;
        }
        let r = self.force_len_at(sent, end);
        let ctx = self.context(&sent[left.0..left.1], &sent[end..end + r]);
        if fresh {
            self.lex.append_marked(n);
        } else {
            self.lex.append(n);
        }
        self.lex_gen += 1;
        let hit = Hit {
            node: n,
            len: end - start,
        };
        for (p, a, b) in self.next.iter_mut().flatten() {
            // the first byte rejects most positions without a call to memcmp
            if sent.get(*p) == sent.get(start) && sent[*p..].starts_with(&sent[start..end]) {
                // x was not in L, so its length differs from those of a and b
                let la = a.map_or(0, |h| h.len);
                let lb = b.map_or(0, |h| h.len);
                if hit.len > lb {
                    (*a, *b) = (*b, Some(hit));
                } else if hit.len > la {
                    *a = Some(hit);
                }
            }
        }
        self.set_probation(n, ctx);
        n
    }

    /// `match2(sent[pos..])`, through the two-entry cache `next`.
    #[inline]
    fn match_at(&mut self, sent: &[u8], pos: usize) -> (Option<Hit>, Option<Hit>) {
        for &(p, a, b) in self.next.iter().flatten() {
            if p == pos {
                return (a, b);
            }
        }
        let (a, b) = self.lex.match2(&sent[pos..]);
        // the reader moves forward: the entry further back is the one to go
        // (an empty entry counts as the furthest back; ties keep the first: one compare,
        // no branch on which entries are set)
        let back = |e: &Option<(usize, Option<Hit>, Option<Hit>)>| e.map_or(0, |x| x.0 + 1);
        let old = usize::from(back(&self.next[1]) < back(&self.next[0]));
        self.next[old] = Some((pos, a, b));
        (a, b)
    }

    /// `force_match(sent[pos..])` as a byte length (0 at the end of the sentence).
    #[inline]
    fn force_len_at(&mut self, sent: &[u8], pos: usize) -> usize {
        if pos >= sent.len() {
            return 0;
        }
        match self.match_at(sent, pos).1 {
            Some(h) => h.len,
            None => char_len(sent[pos]).min(sent.len() - pos),
        }
    }

    /// Rank sum of the units of `L` in the `a_open` list starting at `head`.
    fn ranksum(&self, mut head: u32) -> u64 {
        let mut sum = 0;
        while let Some(&(n, next)) = self.open.get(head as usize) {
            sum += self.lex.rank(n).map_or(0, u64::from);
            head = next;
        }
        sum
    }

    /// docs/lib.md §3.1: extend pending alternatives up to `loc` and settle those that end there.
    fn evaluate(&mut self, sent: &[u8], loc: usize) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.retain_mut(|e| {
            while e.alt_end < loc {
                let rest = &sent[e.alt_end..];
                let m = self.memo[e.alt_end];
                let hit = if m.0 == self.lex_gen {
                    (m.2 > 0).then_some(Hit {
                        node: m.1,
                        len: m.2 as usize,
                    })
                } else {
                    let h = self.lex.longest(rest);
                    self.memo[e.alt_end] = (
                        self.lex_gen,
                        h.map_or(0, |h| h.node),
                        h.map_or(0, |h| h.len as u32),
                    );
                    h
                };
                match hit {
                    Some(h) => {
                        e.a_sum += self.lex.rank(h.node).map_or(0, u64::from);
                        e.alt_end += h.len;
                    }
                    None => {
                        let l = char_len(rest[0]).min(rest.len());
                        let n = self.lex.intern(&rest[..l]);
                        self.open.push((n, e.a_open));
                        e.a_open = (self.open.len() - 1) as u32;
                        e.alt_end += l;
                    }
                }
                e.a_len += 1;
            }
            if e.alt_end > loc {
                return true;
            }
            let (dl, al) = (self.path.0 - e.d_len0, e.a_len);
            let d_sum = self.path.1 - e.d_sum0;
            if dl > al || (dl == al && d_sum > e.a_sum + self.ranksum(e.a_open)) {
                self.rewards.push((e.a0, true));
                self.rewards.push((e.c, false));
            } else {
                self.rewards.push((e.c, true));
            }
            false
        });
        self.pending = pending;
    }

    /// docs/lib.md §3.2: the reader meets `hit` (= `sent[loc..loc + hit.len]`) while it is on
    /// probation.
    #[inline(never)]
    fn probation_check(
        &mut self,
        hit: Hit,
        sent: &[u8],
        loc: usize,
        prev: (usize, usize),
        prev2: (usize, usize),
        prev_node: (u32, usize),
    ) {
        let (c, clen) = (hit.node, hit.len);
        let slot = self.lex.slot(c) as usize;
        let ctx = self.pctx[slot];
        if ctx.at == NONE_AT || !self.cfg.inspect_context {
            self.release(c);
            return;
        }
        let after = loc + clen;
        let rlen = self.force_len_at(sent, after);
        let lo = &self.ctx_buf[ctx.at..ctx.at + ctx.left];
        let ro = &self.ctx_buf[ctx.at + ctx.left..ctx.at + ctx.left + ctx.right];
        let lc = &sent[prev.0..prev.1];
        let rc = &sent[after..after + rlen];
        if lo.is_empty() && ro.is_empty() && lc.is_empty() && rc.is_empty() {
            return;
        }
        let left = (!lo.is_empty() && lc.ends_with(lo)) || (!lc.is_empty() && lo.ends_with(lc));
        let right =
            (!ro.is_empty() && rc.starts_with(ro)) || (!rc.is_empty() && ro.starts_with(rc));
        if left {
            self.memorize(sent, prev.0, after, prev2, prev_node);
        }
        if right {
            let e2 = after + rlen;
            self.memorize(sent, loc, e2, prev, (c, clen));
        }
        if !left && !right {
            // the unit proved itself without its context: promote (e = -1) and release
            self.rewards.push((c, true));
            self.release(c);
        }
    }

    /// Read one sentence (docs/lib.md §3, the loop body of v2023 `read_article`).
    #[inline(never)]
    fn read_sentence(&mut self, sent: &[u8]) {
        self.pending.clear();
        self.open.clear();
        // entries of earlier sentences carry older generations: no clearing needed
        if self.memo.len() <= sent.len() {
            self.memo.resize(sent.len() + 1, (0, 0, 0));
        }
        self.lex_gen += 1;
        self.next = [None; 2];
        self.path = (0, 0);
        // byte spans of the last two chunks
        let (mut prev, mut prev2) = ((0usize, 0usize), (0usize, 0usize));
        // trie node of the last chunk and its length, (0, 0) if unknown
        let mut prev_node = (0u32, 0usize);
        let mut loc = 0usize;
        while loc < sent.len() {
            if !self.pending.is_empty() {
                self.evaluate(sent, loc);
            }
            let rest = &sent[loc..];
            let (c2, c) = self.match_at(sent, loc);
            let clen;
            let cnode;
            match c {
                Some(c) => {
                    clen = c.len;
                    cnode = c.node;
                    let r = self.lex.rank(c.node).map_or(0, u64::from);
                    let before = self.path;
                    self.path = (before.0 + 1, before.1 + r);
                    if self.on_probation(c.node) {
                        self.probation_check(c, sent, loc, prev, prev2, prev_node);
                    }
                    if let Some(c2) = c2 {
                        let alt_end = loc + c2.len;
                        let fresh = Pending {
                            c: c.node,
                            a0: c2.node,
                            alt_end,
                            d_len0: before.0,
                            d_sum0: before.1,
                            a_len: 1,
                            a_sum: self.lex.rank(c2.node).map_or(0, u64::from),
                            a_open: NONE,
                        };
                        // dict semantics: re-assigning E[c] keeps its place
                        match self.pending.iter_mut().find(|e| e.c == c.node) {
                            Some(e) => *e = fresh,
                            None => self.pending.push(fresh),
                        }
                    }
                    if self.rng.random() < self.cfg.in_rate {
                        let after = loc + c.len;
                        self.memorize(sent, prev.0, after, prev2, prev_node);
                    }
                }
                None => {
                    clen = char_len(rest[0]).min(rest.len());
                    // memorised below, so it will rank |L| (see `Pending`)
                    let unk_rank = self.lex.len() as u64;
                    self.path = (self.path.0 + 1, self.path.1 + unk_rank);
                    let after = loc + clen;
                    cnode = self.memorize(sent, loc, after, prev, (0, 0));
                    debug_assert_eq!(self.lex.len() as u64, unk_rank + 1);
                }
            }
            prev2 = prev;
            prev = (loc, loc + clen);
            prev_node = if cnode == 0 { (0, 0) } else { (cnode, clen) };
            self.last.tokens += 1;
            loc += clen;
        }
        self.pending.clear();
    }

    /// Remove the tombstones of the probation list, keeping the order of the live entries (and
    /// the slots stored with their nodes).
    fn drop_tombstones(&mut self) {
        let mut w = 0;
        for r in 0..self.pents.len() {
            let p = self.pents[r];
            if p.node == NONE {
                continue;
            }
            if w != r {
                // the entry at w is dead (or already copied down): a copy, not a swap
                self.lex.set_slot(p.node, w as u32);
                self.pents[w] = p;
                self.pctx[w] = self.pctx[r];
            }
            w += 1;
        }
        self.pents.truncate(w);
        self.pctx.truncate(w);
    }

    /// docs/lib.md §3.3: passive forgetting, re-ranking, tail probation.
    #[inline(never)]
    fn end_of_article(&mut self) {
        let protect = self.cfg.protect_chars;
        let mut forget = std::mem::take(&mut self.forget);
        forget.clear();
        // one pass: run lives down (passive forgetting); entries of released or forgotten
        // units stay as tombstones until they are half the list, so that live entries (and the
        // slots stored with their nodes, one scattered write each) move once per halving, not
        // after every article that frees an entry before them
        let mut dead = 0;
        for p in self.pents.iter_mut() {
            if p.node == NONE {
                dead += 1;
                continue;
            }
            p.life -= 1;
            if p.life < 1 {
                self.lex.set_slot(p.node, NONE);
                let keep = protect && char_count(self.lex.text(p.node)) == 1;
                if !keep {
                    forget.push(p.node);
                }
                p.node = NONE;
                dead += 1;
            }
        }
        if 2 * dead > self.pents.len() {
            self.drop_tombstones();
        }
        self.lex.remove_units(&forget);
        self.forget = forget;
        // the contexts' live bytes are summed only when the arena is past its minimum (the
        // rebuild's condition cannot hold before)
        if self.ctx_buf.len() > ARENA_MIN {
            let live: usize = (self.pents.iter().zip(&self.pctx))
                .filter(|(p, _)| p.node != NONE)
                .map(|(_, c)| c.left + c.right)
                .sum();
            if self.ctx_buf.len() > 2 * live + ARENA_MIN {
                let old = std::mem::take(&mut self.ctx_buf);
                self.ctx_buf.reserve(live);
                for (p, c) in self.pents.iter().zip(self.pctx.iter_mut()) {
                    if p.node != NONE && c.at != NONE_AT {
                        let at = self.ctx_buf.len();
                        self.ctx_buf
                            .extend_from_slice(&old[c.at..c.at + c.left + c.right]);
                        c.at = at;
                    }
                }
            }
        }
        let rate = self.cfg.update_rate;
        for k in 0..self.rewards.len() {
            let (n, promote) = self.rewards[k];
            let keep = protect && char_count(self.lex.text(n)) == 1;
            self.lex.move_unit(n, promote, rate, keep);
        }
        self.rewards.clear();
        let len = self.lex.len();
        for idx in tail_start(len, self.cfg.out_rate)..len {
            let n = self.lex.order()[idx];
            if !self.on_probation(n) {
                self.set_probation(n, NO_CONTEXT);
            }
        }
        self.maybe_compact();
    }

    /// Every string ever memorised keeps its trie nodes, so without clean-up the trie grows
    /// with the training run (millions of nodes from long joins that were forgotten) and each
    /// lookup misses the cache. Between articles nothing but `L` and `P` refers to nodes, so
    /// when the trie has grown 4x since the last rebuild it is rebuilt from those alone
    /// (amortised O(1) per interned byte). Identities change, the lexicon does not.
    #[inline(never)]
    fn maybe_compact(&mut self) {
        if self.lex.nodes_len() < self.compact_at && self.lex.arena_len() < self.arena_at {
            return;
        }
        self.drop_tombstones();
        let extra: Vec<u32> = self.pents.iter().map(|p| p.node).collect();
        self.lex.compact(&extra, &mut self.spare, &mut self.map);
        for (i, p) in self.pents.iter_mut().enumerate() {
            p.node = self.map[p.node as usize];
            self.lex.set_slot(p.node, i as u32);
        }
        self.compact_at = (self.lex.nodes_len() * 4).max(COMPACT_MIN);
        self.arena_at = (self.lex.arena_len() * 2).max(ARENA_MIN);
    }

    /// One step: read the next article of `sentences` and update the lexicon.
    /// Errors only when a custom pre-tokenization regex fails to run.
    pub fn learn<S: AsRef<str>>(&mut self, sentences: &[S]) -> Result<()> {
        if sentences.is_empty() {
            return Ok(());
        }
        let end = (self.cursor + self.cfg.article_len).min(sentences.len());
        let (start, stop) = (self.cursor, end);
        self.cursor = if end >= sentences.len() { 0 } else { end };
        self.last = ArticleStats::default();
        for s in &sentences[start..stop] {
            let b = s.as_ref().as_bytes();
            self.last.bytes += b.len() as u64;
            if let Some(p) = &self.pretok {
                self.piece_of.clear();
                let mut k = 0u32;
                p.for_each_piece(s.as_ref(), |piece| {
                    self.piece_of.extend(std::iter::repeat_n(k, piece.len()));
                    k += 1;
                })?;
                self.piece_of.resize(b.len(), k);
            }
            self.read_sentence(b);
        }
        self.end_of_article();
        self.steps += 1;
        Ok(())
    }
}

/// Lines as the reference demo reads them: the stripped text split on `\n`, each line stripped.
pub fn sentences(text: &str) -> Vec<&str> {
    text.trim().split('\n').map(str::trim).collect()
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// Final lexicon of golden vector TV5 (docs/lib.md §11), in order.
    pub const TV5_L: [&str; 24] = [
        "the cat ",
        "the ",
        "og",
        " the ",
        "at",
        "t",
        " ",
        " sat",
        "a",
        "o",
        "n",
        "d",
        "the cat sat o",
        "at on the mat",
        "the cat and the dog",
        " the dog sat",
        "the cat sat on the mat",
        "the d",
        "dog",
        " sat ",
        " on the ",
        "l",
        "log",
        "the cat and the dog sat",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<Vec<u8>>) -> Vec<String> {
        v.into_iter()
            .map(|u| String::from_utf8(u).unwrap())
            .collect()
    }

    fn tv5() -> Learner {
        let cfg = LearnConfig {
            in_rate: 0.25,
            out_rate: 0.01,
            life: 3,
            update_rate: 0.1,
            article_len: 3,
            seed: 0,
            ..LearnConfig::default()
        };
        let sents = [
            "the cat sat on the mat",
            "the dog sat on the log",
            "the cat and the dog sat",
        ];
        let mut l = Learner::new(cfg).unwrap();
        for _ in 0..30 {
            l.learn(&sents).unwrap();
        }
        l
    }

    use super::tests_support::TV5_L;

    /// TV5 of docs/lib.md §11: 24 units, 12 on probation, the first 12 after cleaning.
    #[test]
    fn tv5_tiny_golden_lexicon_equals_reference() {
        let l = tv5();
        assert_eq!(s(l.lexicon().units()), TV5_L);
        assert_eq!(l.probation().len(), 12);
        assert_eq!(s(l.clean_units()), TV5_L[..12]);
    }

    /// TV6 A and B of docs/lib.md §11: lexicon size, probation and cleaned counts.
    #[test]
    fn tv6_udhr_golden_counts() {
        // corpora/en.txt is the TV6 corpus of docs/lib.md §11 (sha256 given there)
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpora/en.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let sents = sentences(&text);
        for (out_rate, life, n, p, clean) in
            [(0.01, 3, 1059, 286, 773), (0.0001, 10, 1507, 672, 836)]
        {
            let cfg = LearnConfig {
                in_rate: 0.25,
                out_rate,
                life,
                update_rate: 0.1,
                article_len: 20,
                ..LearnConfig::default()
            };
            let mut l = Learner::new(cfg).unwrap();
            for _ in 0..300 {
                l.learn(&sents).unwrap();
            }
            assert_eq!(l.lexicon().len(), n);
            assert_eq!(l.probation().len(), p);
            assert_eq!(l.clean_units().len(), clean);
        }
    }

    #[test]
    fn compacting_the_trie_after_every_article_changes_nothing() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/corpora/en.txt"))
            .unwrap();
        let sents = sentences(&text);
        let cfg = LearnConfig {
            out_rate: 0.01,
            life: 3,
            article_len: 20,
            ..LearnConfig::default()
        };
        let mut a = Learner::new(cfg.clone()).unwrap();
        let mut b = Learner::new(cfg).unwrap();
        b.compact_at = 0;
        for _ in 0..120 {
            a.learn(&sents).unwrap();
            b.learn(&sents).unwrap();
            b.compact_at = 0;
        }
        assert_eq!(a.lexicon().units(), b.lexicon().units());
        assert_eq!(a.probation(), b.probation());
        assert!(b.lexicon().nodes_len() < a.lexicon().nodes_len());
    }

    /// Learners built on the memory a dropped learner left (see `Spare`), of another
    /// configuration in between, learn what a fresh one learns.
    #[test]
    fn a_learner_on_a_dropped_learners_memory_learns_the_same() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/corpora/en.txt"))
            .unwrap();
        let sents = sentences(&text);
        let run = |out_rate: f64, life: u32| {
            let cfg = LearnConfig {
                out_rate,
                life,
                article_len: 20,
                ..LearnConfig::default()
            };
            let mut l = Learner::new(cfg).unwrap();
            for _ in 0..80 {
                l.learn(&sents).unwrap();
            }
            (l.lexicon().units(), l.probation(), l.clean_units())
        };
        let a = run(0.01, 3);
        let b = run(0.0001, 10);
        assert_eq!(run(0.01, 3), a);
        assert_eq!(run(0.0001, 10), b);
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn protection_keeps_every_seen_character() {
        let cfg = LearnConfig {
            out_rate: 0.2,
            life: 2,
            article_len: 2,
            protect_chars: true,
            ..LearnConfig::default()
        };
        let sents = ["abc abd", "xyz xyq", "zzz"];
        let mut l = Learner::new(cfg).unwrap();
        for _ in 0..50 {
            l.learn(&sents).unwrap();
        }
        let units = s(l.clean_units());
        for ch in "abcdxyzq ".chars() {
            assert!(units.contains(&ch.to_string()), "{ch:?} forgotten");
        }
    }

    #[test]
    fn max_chunk_len_bounds_every_unit() {
        let cfg = LearnConfig {
            max_chunk_len: Some(3),
            article_len: 3,
            ..LearnConfig::default()
        };
        let sents = [
            "the cat sat on the mat",
            "the dog sat on the log",
            "the cat and the dog sat",
        ];
        let mut l = Learner::new(cfg).unwrap();
        for _ in 0..50 {
            l.learn(&sents).unwrap();
        }
        assert!(l.lexicon().units().iter().all(|u| char_count(u) <= 3));
    }

    #[test]
    fn bad_config_is_an_error() {
        assert!(Learner::new(LearnConfig {
            life: 0,
            ..LearnConfig::default()
        })
        .is_err());
        assert!(Learner::new(LearnConfig {
            in_rate: 2.0,
            ..LearnConfig::default()
        })
        .is_err());
    }
}
