//! Encoding many texts at once on the threads of a rayon pool.
//!
//! The threads share one piece table, lent by the model for the whole call and only read while
//! they run (no lock per probe); each thread keeps the pieces it lacks in a table of its own
//! (no lock either), and those tables are merged into the shared one, within its bound, when
//! the call ends (after it returns, on the process's merge thread and in parts on as many
//! threads as the batch had, when they hold many pieces: `PieceCache::absorb_and_give_back`,
//! `PieceTable::absorb_in_parts`). So every text meets every piece the model's table has
//! learnt, and a batch leaves one warm table instead of one partly warm table per thread
//! (docs/bpe.md §13.4). A
//! batch that one thread encodes borrows the model's table as a single call does, and a
//! model's first batch (its table has learnt nothing yet) gives each thread a table of its
//! own, merged into one at the end. Texts are handed out one at a time from a shared counter.
//! The threads are those of the current pool or ([`Bpe::encode_each_here`],
//! [`Bpe::encode_batch_flat_here`]) some of a given pool's and the calling thread, which encodes
//! the shorter texts and, between them, takes care of the finished ones (or of Ctrl-C) through
//! its [`Caller`].
//!
//! Where the ids go is a [`BatchSink`]: one `Vec` per text ([`Bpe::encode_each`],
//! [`Bpe::encode_batch`]), or their places in one flat buffer, in text order
//! ([`Bpe::encode_batch_flat`], [`InOrder`]).

use super::encode::{PieceEncoder, Shared, SpecialMatcher, Tables};
use super::Bpe;
use crate::batch_texts::BatchTexts;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::model::{Caller, Split};
use crate::scratch_ids::ScratchIds;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The texts a batch's threads read: all there (a slice), or arriving while they work
/// ([`BatchTexts`], made to arrive by the calling thread of a [`Crew::Here`] batch).
pub(crate) trait Texts: Sync {
    /// How many.
    fn count(&self) -> usize;
    /// Text `i` (below `count`), waiting while it is on its way; `None` when it will not
    /// arrive, or once `stop()` holds.
    fn text(&self, i: usize, stop: &dyn Fn() -> bool) -> Option<&str>;
    /// Their bytes together, once all have arrived.
    fn bytes(&self) -> usize;
    /// How many bytes they have together at least, before they arrive.
    fn least(&self) -> usize;
    /// Whether every text has arrived, `caller` first making those still to come arrive.
    fn feed(&self, caller: &mut dyn Caller) -> bool;
}

impl<S: AsRef<str> + Sync> Texts for [S] {
    fn count(&self) -> usize {
        self.len()
    }
    fn text(&self, i: usize, _: &dyn Fn() -> bool) -> Option<&str> {
        self.get(i).map(AsRef::as_ref)
    }
    fn bytes(&self) -> usize {
        self.iter().map(|t| t.as_ref().len()).sum()
    }
    fn least(&self) -> usize {
        self.bytes()
    }
    fn feed(&self, _: &mut dyn Caller) -> bool {
        true
    }
}

impl Texts for BatchTexts<'_> {
    fn count(&self) -> usize {
        self.len()
    }
    fn text(&self, i: usize, stop: &dyn Fn() -> bool) -> Option<&str> {
        self.wait_for(i, stop)
    }
    fn bytes(&self) -> usize {
        self.bound()
    }
    fn least(&self) -> usize {
        BatchTexts::least(self)
    }
    fn feed(&self, caller: &mut dyn Caller) -> bool {
        crate::model::fed(self, caller)
    }
}

/// Where the threads of a batch put each text's ids.
trait BatchSink: Sync {
    /// What one thread keeps while it works (its buffers; empty as it starts).
    type Local: Default;
    /// Text `i`: `encode` appends its ids to the buffer it is given. `false` when it failed
    /// (the batch stops).
    fn text(
        &self,
        local: &mut Self::Local,
        i: usize,
        encode: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> bool;
    /// Every text has arrived, `bytes()` together (the calling thread of a batch whose texts
    /// arrived while it ran, after its [`Caller::feed`]). `false` when the sink failed.
    fn arrived(&self, _local: &mut Self::Local, _bytes: &dyn Fn() -> usize) -> bool {
        true
    }
}

/// One `Vec` per text, handed to a callback as each text is done. A thread encodes each text
/// into its one buffer ([`ScratchIds`]), then copies the ids into a `Vec` of their size: no
/// copy at each growth of a buffer per text, nor its fresh pages.
struct PerText<F>(F);

impl<F: Fn(usize, Result<Vec<u32>>) + Sync> BatchSink for PerText<F> {
    type Local = ScratchIds;
    fn text(
        &self,
        scratch: &mut ScratchIds,
        i: usize,
        encode: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> bool {
        scratch.clear();
        let r = encode(scratch);
        let ok = r.is_ok();
        (self.0)(i, r.map(|()| scratch.to_vec()));
        ok
    }
}

/// Each thread encodes a text into a buffer of its own, then copies its ids straight into the
/// output at the text's place: the texts before it are done (their ids' end is known), or
/// the ids wait, in that buffer, for the thread that finishes the text before them (or for
/// the output, made once every text has arrived when they arrive while the batch runs: its
/// room is then their bytes, as when they are all there from the start). The output's
/// capacity is a bound on the ids (a token is at least one byte of its text), so threads write
/// disjoint ranges of it without moving it. Against a run per thread copied into the output at
/// the end, the ids cross memory once, not three times.
struct InOrder<'f> {
    /// The texts of the batch.
    texts: usize,
    commit: Mutex<Commit>,
    error: Mutex<Option<Error>>,
    /// Texts whose ids are in the output.
    written: AtomicUsize,
    /// The thread to wake when every text's ids are ([`Crew::Here`]'s caller, which waits).
    waiter: Option<std::thread::Thread>,
    /// Makes the output, given the room it needs, once every text has arrived
    /// ([`BatchSink::arrived`]); `None` once made, or when it was there from the start.
    later: Mutex<Option<MakeOutput<'f>>>,
}

/// Gives the output of a flat batch: an empty buffer for the ids it is told of.
type MakeOutput<'f> = Box<dyn FnOnce(usize) -> Vec<u32> + Send + 'f>;

/// Where a launch of [`InOrder`] writes: a buffer with room past its ids for at least the
/// bytes of the launch's texts, or one made once they have all arrived.
enum Output<'f> {
    Ready(Vec<u32>),
    Later(MakeOutput<'f>),
}

/// The start of the output's buffer, written by the threads in ranges [`Commit`] hands out.
#[derive(Clone, Copy)]
struct OutIds(*mut u32);

// SAFETY: the threads write through the pointer only in the disjoint ranges [`Commit::claim`]
// gives them, and the buffer outlives the batch (it is the `Commit`'s, taken out only after
// the threads are done: see [`Bpe::encode_in_order`])
unsafe impl Sync for OutIds {}
// SAFETY: as above; the pointer is handed between threads only with the commit's lock held
unsafe impl Send for OutIds {}

/// The texts whose ids have a place in the output, in text order.
struct Commit {
    /// The next text to place.
    next: usize,
    /// Where its ids go.
    at: usize,
    /// The end of each placed text's ids.
    ends: Vec<i64>,
    /// The ids of texts done before the text before them (or before the output was made).
    waiting: std::collections::BTreeMap<usize, Vec<u32>>,
    /// The output: its capacity is the room for the ids, of which `..at` are placed.
    buf: Vec<u32>,
    /// `buf`'s start, which the threads write through; `None` until the output is made.
    out: Option<OutIds>,
}

impl Commit {
    /// Place the next text's `n` ids: their start, or `None` when they would pass the room.
    fn claim(&mut self, n: usize) -> Option<usize> {
        let at = self.at;
        let end = at.checked_add(n).filter(|&e| e <= self.buf.capacity())?;
        self.at = end;
        self.next += 1;
        self.ends.push(end as i64);
        Some(at)
    }

    /// Place the waiting ids of the texts next in order, each with its place in `due`; on a
    /// text whose ids pass the room, its index.
    fn claim_waiting(
        &mut self,
        due: &mut Vec<(usize, Vec<u32>)>,
    ) -> std::result::Result<(), usize> {
        loop {
            let next = self.next;
            let Some(ids) = self.waiting.first_entry().filter(|e| *e.key() == next) else {
                return Ok(());
            };
            let ids = ids.remove();
            let at = self.claim(ids.len()).ok_or(next)?;
            due.push((at, ids));
        }
    }
}

/// What one thread of an [`InOrder`] batch keeps.
#[derive(Default)]
struct Placing {
    /// The ids of the text it encodes (in the thread's kept buffer, or in one its texts that
    /// had to wait for others left it).
    ids: ScratchIds,
    /// Buffers of texts it placed for others, for its next text that must wait.
    spare: Vec<Vec<u32>>,
    /// Waiting ids it placed, with their places, to copy once the lock is let go.
    due: Vec<(usize, Vec<u32>)>,
}

impl InOrder<'_> {
    /// `ids` copied to place `at` of the output `out`.
    fn write(out: OutIds, at: usize, ids: &[u32]) {
        // SAFETY: `at..at + ids.len()` is within the buffer's capacity and was claimed by
        // this thread alone ([`Commit::claim`])
        unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), out.0.add(at), ids.len()) };
    }

    /// The ids of `p.due` copied to their places (their buffers kept for reuse), and `own` +
    /// those texts counted as written; the waiting thread is woken once every text is.
    fn place_due(&self, p: &mut Placing, out: OutIds, own: usize) -> bool {
        let placed = own + p.due.len();
        for (at, mut ids) in p.due.drain(..) {
            Self::write(out, at, &ids);
            ids.clear();
            p.spare.push(ids);
        }
        if self.written.fetch_add(placed, Ordering::AcqRel) + placed == self.texts {
            if let Some(w) = &self.waiter {
                w.unpark();
            }
        }
        true
    }

    fn failed(&self, e: Error) -> bool {
        if let Ok(mut first) = self.error.lock() {
            first.get_or_insert(e);
        }
        false
    }
}

/// The caller of an [`InOrder`] batch ([`Bpe::encode_batch_flat_here`]), done once every text's
/// ids are written (it takes care of none itself).
struct UntilWritten<'a, 'f> {
    caller: &'a mut dyn Caller,
    sink: &'a InOrder<'f>,
}

impl Caller for UntilWritten<'_, '_> {
    fn between(&mut self, wait: bool) -> bool {
        self.caller.between(wait)
    }
    fn done(&self) -> bool {
        self.caller.done() || self.sink.written.load(Ordering::Acquire) == self.sink.texts
    }
    fn feed(&mut self) -> bool {
        self.caller.feed()
    }
}

/// A text whose ids would pass the room [`InOrder`] has for them (a token of no bytes).
fn too_many_ids(i: usize) -> Error {
    Error::Vocab(format!(
        "text {i} of the batch gave more ids than it has bytes"
    ))
}

impl BatchSink for InOrder<'_> {
    type Local = Placing;
    fn text(
        &self,
        p: &mut Placing,
        i: usize,
        encode: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> bool {
        p.ids.clear();
        if let Err(e) = encode(&mut p.ids) {
            return self.failed(e);
        }
        let (out, at) = {
            let Ok(mut c) = self.commit.lock() else {
                return false;
            };
            let Some(out) = c.out.filter(|_| c.next == i) else {
                let empty = p.spare.pop().unwrap_or_default();
                c.waiting.insert(i, std::mem::replace(&mut p.ids, empty));
                return true;
            };
            let Some(at) = c.claim(p.ids.len()) else {
                drop(c);
                return self.failed(too_many_ids(i));
            };
            if let Err(k) = c.claim_waiting(&mut p.due) {
                drop(c);
                return self.failed(too_many_ids(k));
            }
            (out, at)
        };
        Self::write(out, at, &p.ids);
        self.place_due(p, out, 1)
    }

    /// The output made, with room for `bytes()` ids, and the ids waiting for it placed.
    fn arrived(&self, p: &mut Placing, bytes: &dyn Fn() -> usize) -> bool {
        let Some(make) = self.later.lock().ok().and_then(|mut m| m.take()) else {
            return true;
        };
        let bytes = bytes();
        let mut buf = make(bytes);
        buf.clear();
        buf.reserve(bytes);
        let out = OutIds(buf.as_mut_ptr());
        let placed = {
            let Ok(mut c) = self.commit.lock() else {
                return false;
            };
            c.buf = buf;
            c.out = Some(out);
            c.claim_waiting(&mut p.due)
        };
        match placed {
            Ok(()) => self.place_due(p, out, 0),
            Err(k) => self.failed(too_many_ids(k)),
        }
    }
}

/// One batch's texts, handed out one at a time from a shared counter, with what every thread
/// needs to encode them: the specials allowed, where the ids go and the cancel handle.
struct Batch<'a, T: ?Sized, K> {
    texts: &'a T,
    next: AtomicUsize,
    failed: AtomicBool,
    allowed: Option<&'a SpecialMatcher>,
    sink: &'a K,
    cancel: Cancel,
}

/// How long the calling thread spins for the batch's last texts before it parks
/// ([`Batch::until_done`]).
const SPIN_BEFORE_PARK: std::time::Duration = std::time::Duration::from_micros(100);

/// Why [`Batch::claim_below`] gave no text.
enum Left {
    /// The next text is too long for the caller: a pool thread will take it.
    Long,
    /// Every text is taken.
    None,
}

/// Who encodes a batch.
pub(crate) enum Crew<'a> {
    /// The threads of the current rayon pool, this one included.
    Pool,
    /// The split's `workers` threads of its pool (at least one: the texts this thread leaves
    /// need one), and this thread (outside it) through [`Batch::work_here`].
    Here {
        split: Split<'a>,
        caller: &'a mut dyn Caller,
    },
}

impl Crew<'_> {
    /// How many threads encode `texts` texts of at least `least` bytes together (at most one
    /// a text; one for a batch smaller than the split's [`Split::alone_below`]).
    fn threads(&self, texts: usize, least: usize) -> usize {
        let n = match self {
            Crew::Pool => rayon::current_num_threads(),
            Crew::Here { split, .. } if split.alone(least) => 1,
            Crew::Here { split, .. } if split.own > 0 => split.workers + 1,
            Crew::Here { split, .. } => split.workers.max(1),
        };
        n.clamp(1, texts.max(1))
    }

    /// The same crew for one more launch.
    fn again(&mut self) -> Crew<'_> {
        match self {
            Crew::Pool => Crew::Pool,
            Crew::Here { split, caller } => Crew::Here {
                split: *split,
                caller: &mut **caller,
            },
        }
    }
}

impl<'a, T: Texts + ?Sized, K: BatchSink> Batch<'a, T, K> {
    /// The next text not taken yet (once it has arrived). A text that will not arrive fails
    /// the batch.
    fn claim(&self) -> Option<(usize, &'a str)> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.texts.count() {
            return None;
        }
        let t = self.texts.text(i, &|| self.stopped());
        if t.is_none() {
            self.fail();
        }
        t.map(|t| (i, t))
    }

    /// The next text not taken yet, when it is shorter than `limit` bytes (every text has
    /// arrived: this is the calling thread, after its feed).
    fn claim_below(&self, limit: usize) -> std::result::Result<(usize, &'a str), Left> {
        let mut i = self.next.load(Ordering::Relaxed);
        loop {
            if i >= self.texts.count() {
                return Err(Left::None);
            }
            let Some(t) = self.texts.text(i, &|| true) else {
                return Err(Left::None);
            };
            if t.len() >= limit {
                return Err(Left::Long);
            }
            match self
                .next
                .compare_exchange_weak(i, i + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok((i, t)),
                Err(now) => i = now,
            }
        }
    }

    /// A text failed or the caller stopped: the texts not taken yet are skipped.
    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Whether a thread should stop taking texts: one failed, or the handle is set.
    fn stopped(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.cancel.is_set()
    }

    /// Text `i` encoded with `enc` into the sink (the batch fails when it does).
    fn one<E: Tables>(
        &self,
        enc: &mut PieceEncoder<'_, E>,
        (i, text): (usize, &str),
        local: &mut K::Local,
    ) {
        let ok = self.sink.text(local, i, |out| {
            crate::cancel::scope(&self.cancel, || enc.encode_into(text, self.allowed, out))
                .map_err(|e| e.in_text(i))
        });
        if !ok {
            self.fail();
        }
    }

    /// A pool thread's part: texts claimed one at a time until they run out, one fails or the
    /// handle is set.
    fn work<E: Tables>(&self, enc: &mut PieceEncoder<'_, E>) {
        let mut local = K::Local::default();
        while !self.stopped() {
            let Some(next) = self.claim() else {
                break;
            };
            self.one(enc, next, &mut local);
        }
    }

    /// The calling thread's part when it is outside the pool ([`Crew::Here`]): the texts
    /// shorter than `own` bytes it can claim, with `caller` taking care of the finished ones
    /// after each; then `caller` alone until every text is taken care of. A text at least `own`
    /// bytes long is left to the pool, so the caller is never busy with one text for long.
    /// Texts still to come are made to arrive first ([`Caller::feed`]) while the pool's
    /// threads encode those that have.
    fn work_here<'t, E: Tables>(
        &self,
        make: &dyn Fn() -> PieceEncoder<'t, E>,
        own: usize,
        caller: &mut dyn Caller,
    ) {
        let mut local = self.arrive(caller);
        // made at this thread's first text (it may take none)
        let mut enc = None;
        while !self.stopped() {
            let go_on = match self.claim_below(own) {
                Ok(next) => {
                    self.one(enc.get_or_insert_with(make), next, &mut local);
                    caller.between(false)
                }
                Err(Left::Long) => caller.between(true),
                Err(Left::None) => break,
            };
            if !go_on {
                self.fail();
            }
        }
        self.until_done(caller);
    }

    /// The calling thread's start: the texts still to come made to arrive (while the pool's
    /// threads encode those that have), then the sink told; the thread's buffers.
    fn arrive(&self, caller: &mut dyn Caller) -> K::Local {
        let mut local = K::Local::default();
        let bytes = || self.texts.bytes();
        if !self.texts.feed(caller) || !self.sink.arrived(&mut local, &bytes) {
            self.fail();
        }
        local
    }

    /// The calling thread's end: `caller` until every text is taken care of (a set handle
    /// skips the texts not started: they would never be done).
    ///
    /// It spins for up to [`SPIN_BEFORE_PARK`] first (taking care of finished texts), and only
    /// then lets `caller` park between looks: the last texts usually end within that time, and
    /// a parked thread on the development machine (a VM) woke 22 µs after its unpark (a round
    /// trip of two wake-ups took 45 µs), several percent of a call of 100 documents.
    fn until_done(&self, caller: &mut dyn Caller) {
        let start = std::time::Instant::now();
        while !self.stopped() && !caller.done() {
            let park = start.elapsed() >= SPIN_BEFORE_PARK;
            if !park {
                std::hint::spin_loop();
            }
            if !caller.between(park) {
                self.fail();
            }
        }
    }

    /// Every text encoded by `threads` threads of `crew` ([`Crew::threads`]), each with an
    /// encoder from `make`.
    fn launch<'t, E: Tables>(
        &self,
        crew: Crew<'_>,
        threads: usize,
        make: impl Fn() -> PieceEncoder<'t, E> + Sync,
    ) where
        Self: Sync,
    {
        let worker = || self.work(&mut make());
        match crew {
            Crew::Pool => rayon::scope(|s| {
                for _ in 1..threads {
                    s.spawn(|_| worker());
                }
                worker();
            }),
            Crew::Here { split, caller } if split.own > 0 && threads == 1 => {
                self.work_alone(&make, split, caller);
            }
            Crew::Here { split, caller } => split.pool.in_place_scope(|s| {
                // this thread takes part when it may encode
                let spawn = if split.own > 0 { threads - 1 } else { threads };
                for _ in 0..spawn {
                    s.spawn(|_| worker());
                }
                self.work_here(&make, split.own, caller);
            }),
        }
    }

    /// The calling thread encoding every text alone (a one-thread batch, or a batch of one
    /// text): no pool thread is woken for the texts shorter than the split's `own` bytes. A
    /// longer one is encoded by a thread of the split's pool, with this thread's table, while
    /// this one calls `caller` (Ctrl-C) until it is done. Waking a pool thread for every call
    /// and waiting for it cost a one-text batch 24 µs a call (a short text's whole encode is
    /// under 1 µs).
    fn work_alone<'t, E: Tables>(
        &self,
        make: &(dyn Fn() -> PieceEncoder<'t, E> + Sync),
        split: Split<'_>,
        caller: &mut dyn Caller,
    ) {
        let mut local = self.arrive(caller);
        let mut enc = None;
        while !self.stopped() {
            let Some(next) = self.claim() else {
                break;
            };
            if next.1.len() < split.own {
                self.one(enc.get_or_insert_with(make), next, &mut local);
                if !caller.between(false) {
                    self.fail();
                }
                continue;
            }
            // the table goes back to the model, for the pool's thread to borrow
            enc = None;
            let done = AtomicBool::new(false);
            let me = std::thread::current();
            split.pool.in_place_scope(|s| {
                s.spawn(|_| {
                    self.one(&mut make(), next, &mut K::Local::default());
                    done.store(true, Ordering::Release);
                    me.unpark();
                });
                while !done.load(Ordering::Acquire) {
                    if !caller.between(true) {
                        // the handle is set: the text stops at its next check
                        self.fail();
                        break;
                    }
                }
            });
        }
        self.until_done(caller);
    }
}

impl Bpe {
    /// Every text encoded into `sink` by `crew` (module docs).
    fn run_batch<T: Texts + ?Sized, K: BatchSink>(
        &self,
        texts: &T,
        allowed: Option<&SpecialMatcher>,
        sink: &K,
        crew: Crew<'_>,
    ) {
        let batch = Batch {
            texts,
            next: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            allowed,
            sink,
            cancel: crate::cancel::current(),
        };
        let threads = crew.threads(texts.count(), texts.least());
        if threads == 1 {
            // one thread encodes: it borrows a table as a single call does (no batch table)
            batch.launch(crew, threads, || self.piece_encoder());
            return;
        }
        let Some(table) = self.cache.lend_learnt() else {
            // no table has learnt anything yet (a model's first call): each thread borrows a
            // table as a single call does (promoting what it finds past its home bucket as it
            // goes), then the threads' tables become one, which the batches after this one
            // share. Sharing the fresh table instead, the threads' new pieces went into it in
            // the order of their own tables: later batches found more of the frequent pieces
            // away from their home buckets (about 8 % more CPU a warm batch). Nothing is
            // borrowed here first: a model's first call would build its seed on this thread
            // before the others start (4.7 ms for cl100k)
            batch.launch(crew, threads, || self.piece_encoder());
            // after the call returns (the next call that borrows a table waits for it)
            self.cache.merge_pool(threads);
            return;
        };
        // given back to the model if a thread panics
        let main = self.piece_encoder_of(table);
        // the threads' own tables may take together what the shared table still has room for
        let room = main.t.table.limit().saturating_sub(main.t.table.len());
        let room = room.div_ceil(threads);
        let done = Mutex::new(Vec::new());
        let shared = &main.t.table;
        batch.launch(crew, threads, || PieceEncoder {
            bpe: self,
            t: Shared::new(shared, room, &done),
        });
        let tables = done.into_inner().unwrap_or_default();
        // after the call returns when there is much to store
        self.cache
            .absorb_and_give_back(main.t.into_table(), tables, threads);
    }

    /// [`Bpe::encode`] of each text on the threads of the current rayon pool, handing
    /// `(index, ids)` to `sink` as each text is done (in no particular order); stops at the
    /// first error (the texts not yet started are skipped). The threads share one piece table
    /// (module docs).
    pub fn encode_each<S, F>(&self, texts: &[S], allowed: Option<&SpecialMatcher>, sink: F)
    where
        S: AsRef<str> + Sync,
        F: Fn(usize, Result<Vec<u32>>) + Sync,
    {
        self.run_batch(texts, allowed, &PerText(sink), Crew::Pool);
    }

    /// [`Bpe::encode_each`] from a thread outside the split's pool, which takes part: the
    /// split's `workers` threads encode, and this thread encodes the texts shorter than its
    /// `own` bytes (none when 0) between calls of `caller`, then calls it until every text is
    /// taken care of. So the thread that turns ids into the caller's objects keeps a core busy
    /// instead of waiting on one, and takes care of its own texts while their ids are in its
    /// cache.
    ///
    /// Texts still to come are made to arrive by `caller` first ([`Caller::feed`]), while the
    /// pool's threads encode those that have.
    pub fn encode_each_here<F>(
        &self,
        split: Split<'_>,
        texts: &BatchTexts<'_>,
        allowed: Option<&SpecialMatcher>,
        sink: F,
        caller: &mut dyn Caller,
    ) where
        F: Fn(usize, Result<Vec<u32>>) + Sync,
    {
        self.run_batch(texts, allowed, &PerText(sink), Crew::Here { split, caller });
    }

    /// [`Bpe::encode`] of each text, in parallel (see [`Bpe::encode_each`]); the same ids for
    /// any thread count.
    pub fn encode_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
    ) -> Result<Vec<Vec<u32>>> {
        let slots: Vec<Mutex<Option<Result<Vec<u32>>>>> =
            texts.iter().map(|_| Mutex::new(None)).collect();
        self.encode_each(texts, allowed, |i, ids| {
            if let Some(Ok(mut s)) = slots.get(i).map(|s| s.lock()) {
                *s = Some(ids);
            }
        });
        let mut out = Vec::with_capacity(texts.len());
        let mut skipped = false;
        for s in slots {
            match s.into_inner().ok().flatten() {
                Some(ids) => out.push(ids?),
                None => skipped = true,
            }
        }
        // a text is skipped only after another failed (that error is returned above)
        if skipped {
            return Err(crate::cancel::cancelled());
        }
        Ok(out)
    }

    /// [`Bpe::encode_batch`] as one flat buffer and offsets (`ids[off[i]..off[i + 1]]` are
    /// text `i`'s), on the current pool; `flat(n)` gives the buffer, asked for room for `n`
    /// ids (its contents are replaced). Each thread copies a text's ids into the buffer at
    /// their place ([`InOrder`]); the room asked for is a bound on the ids, the bytes of the
    /// texts, for at most [`GROUP_BYTES`] of text at a time.
    pub fn encode_batch_flat<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
        flat: impl FnOnce(usize) -> Vec<u32>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        self.encode_flat_in_groups(texts, allowed, flat, GROUP_BYTES, Crew::Pool)
    }

    /// [`Bpe::encode_batch_flat`] from a thread outside the split's pool, which takes part as
    /// in [`Bpe::encode_each_here`], then calls `caller` (with `wait`) until every text's ids
    /// are written; its thread is unparked when they are, so a `caller` that waits by parking
    /// wakes at once.
    ///
    /// Texts still to come are made to arrive by `caller` first ([`Caller::feed`]), while the
    /// pool's threads encode those that have; the buffer is asked for once all have (room for
    /// their bytes, as for texts all there). Texts that may pass [`GROUP_BYTES`] all arrive
    /// before any is encoded.
    pub fn encode_batch_flat_here<'f>(
        &self,
        split: Split<'_>,
        texts: &BatchTexts<'_>,
        allowed: Option<&SpecialMatcher>,
        flat: impl FnOnce(usize) -> Vec<u32> + Send + 'f,
        caller: &mut dyn Caller,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        if texts.all_there() || texts.bound() > GROUP_BYTES {
            let all = crate::model::all_arrived(texts, caller)?;
            let crew = Crew::Here { split, caller };
            return self.encode_flat_in_groups(&all, allowed, flat, GROUP_BYTES, crew);
        }
        let crew = Crew::Here { split, caller };
        let later = Output::Later(Box::new(flat));
        self.encode_in_order(texts, allowed, later, vec![0], crew)
    }

    /// [`Bpe::encode_batch_flat`] by `crew`, `group_bytes` of text at a time (at least one
    /// text).
    pub(crate) fn encode_flat_in_groups<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
        flat: impl FnOnce(usize) -> Vec<u32>,
        group_bytes: usize,
        mut crew: Crew<'_>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        // (first text, bytes) of each group: its bytes bound its ids
        let mut groups = vec![(0, 0)];
        for (i, t) in texts.iter().enumerate() {
            let n = t.as_ref().len();
            if let Some(g) = groups
                .last_mut()
                .filter(|g| g.1 == 0 || g.1 + n <= group_bytes)
            {
                g.1 += n;
            } else {
                groups.push((i, n));
            }
        }
        let mut ids = flat(groups[0].1);
        ids.clear();
        let mut ends = Vec::with_capacity(texts.len() + 1);
        ends.push(0);
        for (k, &(start, bytes)) in groups.iter().enumerate() {
            let end = groups.get(k + 1).map_or(texts.len(), |g| g.0);
            ids.reserve(bytes);
            let part = &texts[start..end];
            let out = Output::Ready(ids);
            (ids, ends) = self.encode_in_order(part, allowed, out, ends, crew.again())?;
        }
        Ok((ids, ends))
    }

    /// `texts`' ids appended to the ids of `out` in text order by `crew` ([`InOrder`]), and
    /// the end of each pushed to `ends`: the output and the ends.
    fn encode_in_order<T: Texts + ?Sized>(
        &self,
        texts: &T,
        allowed: Option<&SpecialMatcher>,
        out: Output<'_>,
        ends: Vec<i64>,
        crew: Crew<'_>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        let here = matches!(crew, Crew::Here { .. });
        let (mut buf, later) = match out {
            Output::Ready(buf) => (buf, None),
            Output::Later(make) => (Vec::new(), Some(make)),
        };
        let start = later.is_none().then_some(OutIds(buf.as_mut_ptr()));
        let sink = InOrder {
            texts: texts.count(),
            commit: Mutex::new(Commit {
                next: 0,
                at: buf.len(),
                ends,
                waiting: Default::default(),
                buf,
                out: start,
            }),
            error: Mutex::new(None),
            written: AtomicUsize::new(0),
            waiter: here.then(std::thread::current),
            later: Mutex::new(later),
        };
        match crew {
            Crew::Pool => self.run_batch(texts, allowed, &sink, Crew::Pool),
            Crew::Here { split, caller } => {
                let caller = &mut UntilWritten {
                    caller,
                    sink: &sink,
                };
                self.run_batch(texts, allowed, &sink, Crew::Here { split, caller });
            }
        }
        if let Some(e) = sink.error.into_inner().ok().flatten() {
            return Err(e);
        }
        let mut c = sink
            .commit
            .into_inner()
            .map_err(|_| crate::cancel::cancelled())?;
        if c.next != texts.count() {
            // a text was skipped (the batch was stopped)
            return Err(crate::cancel::cancelled());
        }
        // SAFETY: every id below `c.at` was written: the claimed ranges tile the buffer from
        // its length before the launch to `c.at`, and each claim's copy is made before the
        // thread that claimed it returns from `text` (or `arrived`), so before `run_batch` does
        unsafe { c.buf.set_len(c.at) };
        Ok((c.buf, c.ends))
    }
}

/// The text one launch of [`Bpe::encode_batch_flat`] encodes at most, in bytes (but at least
/// one text): the room reserved for its ids is 4 bytes a byte, mapped only where written.
const GROUP_BYTES: usize = 1 << 28;

/// `parts` one after the other in `flat(total)` (its contents are replaced), with the offsets
/// of each (`ids[off[i]..off[i + 1]]` is `parts[i]`).
pub(crate) fn concat(
    parts: &[&[u32]],
    flat: impl FnOnce(usize) -> Vec<u32>,
) -> (Vec<u32>, Vec<i64>) {
    let mut offsets = Vec::with_capacity(parts.len() + 1);
    offsets.push(0i64);
    let mut total = 0usize;
    for p in parts {
        total += p.len();
        offsets.push(total as i64);
    }
    let mut ids = flat(total);
    ids.clear();
    ids.reserve(total);
    // the copy (and the first touch of new pages) runs on the pool: on one thread it was a
    // serial tail of every batch. Not zeroed first: every id is written by the copy
    let mut dst = Vec::with_capacity(parts.len());
    let mut rest = &mut ids.spare_capacity_mut()[..total];
    for p in parts {
        let (head, tail) = rest.split_at_mut(p.len());
        dst.push(head);
        rest = tail;
    }
    dst.into_par_iter()
        .zip(parts.par_iter())
        .with_min_len(16)
        .for_each(|(d, p)| {
            for (d, &v) in d.iter_mut().zip(p.iter()) {
                d.write(v);
            }
        });
    // SAFETY: the parts' ranges tile `0..total` and each was copied into its range above
    unsafe { ids.set_len(total) };
    (ids, offsets)
}
