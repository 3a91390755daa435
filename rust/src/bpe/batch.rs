//! Encoding many texts at once on the threads of the current rayon pool.
//!
//! The threads share one piece table, lent by the model for the whole call and only read while
//! they run (no lock per probe); its misses go to a table of the batch behind locks (sharded,
//! looked up after a miss of the shared one, so a piece is merged once per batch), merged into
//! the shared table, within its bound, when the call ends. So every text meets every piece the
//! model's table has learnt, and a batch leaves one warm table instead of one partly warm table
//! per thread (docs/bpe.md §13.4). Texts are handed out one at a time from a shared counter.
//!
//! Where the ids go is a [`BatchSink`]: one `Vec` per text ([`Bpe::encode_each`],
//! [`Bpe::encode_batch`]), or one run per thread copied into a flat buffer at the end
//! ([`Bpe::encode_batch_flat`]), whose runs are kept for the next batch ([`KEPT_RUNS`]).

use super::encode::{PieceEncoder, Shared, SpecialMatcher, Spill, Tables};
use super::Bpe;
use crate::error::{Error, Result};
use crate::kept_buffers::KeptBuffers;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where the threads of a batch put each text's ids.
trait BatchSink: Sync {
    /// What one thread keeps while it works.
    type Local;
    /// A thread's [`BatchSink::Local`] as it starts.
    fn start(&self) -> Self::Local;
    /// Text `i` of `len` bytes: `encode` appends its ids to the buffer it is given. `false`
    /// when it failed (the batch stops).
    fn text(
        &self,
        local: &mut Self::Local,
        i: usize,
        len: usize,
        encode: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> bool;
    /// The thread is done.
    fn finish(&self, local: Self::Local);
}

/// One `Vec` per text, handed to a callback as each text is done.
struct PerText<F>(F);

impl<F: Fn(usize, Result<Vec<u32>>) + Sync> BatchSink for PerText<F> {
    type Local = ();
    fn start(&self) {}
    fn text(
        &self,
        _: &mut (),
        i: usize,
        len: usize,
        encode: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> bool {
        let mut ids = Vec::with_capacity(len / 3);
        let r = encode(&mut ids);
        let ok = r.is_ok();
        (self.0)(i, r.map(|()| ids));
        ok
    }
    fn finish(&self, _: ()) {}
}

/// One thread's ids, text after text: `ends[k] = (text, end of its ids in `ids`)`.
#[derive(Default)]
struct Run {
    ids: Vec<u32>,
    ends: Vec<(usize, usize)>,
}

/// Each thread appends its texts' ids to one run (a buffer kept across calls, [`KEPT_RUNS`]): no
/// allocation per text, and no fresh memory once the runs have grown to a batch's size.
#[derive(Default)]
struct Runs {
    done: Mutex<Vec<Run>>,
    error: Mutex<Option<Error>>,
}

impl BatchSink for Runs {
    type Local = Run;
    fn start(&self) -> Run {
        Run {
            ids: take_run(),
            ends: Vec::new(),
        }
    }
    fn text(
        &self,
        run: &mut Run,
        i: usize,
        _: usize,
        encode: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> bool {
        match encode(&mut run.ids) {
            Ok(()) => {
                run.ends.push((i, run.ids.len()));
                true
            }
            Err(e) => {
                if let Ok(mut first) = self.error.lock() {
                    first.get_or_insert(e);
                }
                false
            }
        }
    }
    fn finish(&self, run: Run) {
        if let Ok(mut done) = self.done.lock() {
            done.push(run);
        }
    }
}

/// Runs kept for the next batch ([`Bpe::encode_batch_flat`]): at most 8, and 128 MiB together
/// (a larger batch's runs are freed after it).
pub static KEPT_RUNS: KeptBuffers = KeptBuffers::new(8, 128 << 20);

/// An empty run: the largest kept one, else a new one.
fn take_run() -> Vec<u32> {
    KEPT_RUNS
        .take(|kept| (0..kept.len()).max_by_key(|&k| kept[k].capacity()))
        .unwrap_or_default()
}

/// Texts `next..` (claimed one at a time) encoded with `enc` into `sink` until they run out,
/// one fails or `cancel` is set.
#[allow(clippy::too_many_arguments)]
fn work<T: Tables, S: AsRef<str> + Sync, K: BatchSink>(
    enc: &mut PieceEncoder<'_, T>,
    texts: &[S],
    allowed: Option<&SpecialMatcher>,
    sink: &K,
    next: &AtomicUsize,
    failed: &AtomicBool,
    cancel: &crate::cancel::Cancel,
) {
    let mut local = sink.start();
    while !failed.load(Ordering::Relaxed) && !cancel.is_set() {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(text) = texts.get(i) else {
            break;
        };
        let text = text.as_ref();
        let ok = sink.text(&mut local, i, text.len(), |out| {
            crate::cancel::scope(cancel, || enc.encode_into(text, allowed, out))
        });
        if !ok {
            failed.store(true, Ordering::Relaxed);
        }
    }
    sink.finish(local);
}

/// `work` on `threads` threads of the current rayon pool, this one included.
fn on_threads(threads: usize, work: impl Fn() + Sync) {
    rayon::scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| work());
        }
        work();
    });
}

impl Bpe {
    /// Every text encoded into `sink` on the threads of the current rayon pool (module docs).
    fn run_batch<S: AsRef<str> + Sync, K: BatchSink>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
        sink: &K,
    ) {
        let cancel = crate::cancel::current();
        let threads = rayon::current_num_threads().clamp(1, texts.len().max(1));
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let mut main = self.piece_encoder();
        if main.t.table.fresh() && texts.len() > 1 {
            // a table that has learnt nothing (a model's first call): sharing it would merge
            // nearly every piece of the batch into it on one thread after the parallel part, so
            // each thread borrows a table as a single call does, and the batches after this
            // one share the table they find
            drop(main);
            on_threads(threads, || {
                let mut enc = self.piece_encoder();
                work(&mut enc, texts, allowed, sink, &next, &failed, &cancel);
            });
            return;
        }
        // the misses may take what the shared table still has room for
        let spill = Spill::new(main.t.table.limit().saturating_sub(main.t.table.len()));
        let shared = &main.t.table;
        on_threads(threads, || {
            let mut enc = PieceEncoder {
                bpe: self,
                t: Shared {
                    main: shared,
                    spill: &spill,
                },
            };
            work(&mut enc, texts, allowed, sink, &next, &failed, &cancel);
        });
        for shard in spill.shards {
            if let Ok(t) = shard.into_inner() {
                main.t.table.absorb(&t);
            }
        }
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
        self.run_batch(texts, allowed, &PerText(sink));
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
    /// text `i`'s); `flat(n)` gives the buffer for `n` ids (empty, capacity at least `n`).
    /// Each thread appends its texts' ids to a run of its own, kept for the next batch, and
    /// the runs are copied into the buffer in text order on the pool's threads.
    pub fn encode_batch_flat<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
        flat: impl FnOnce(usize) -> Vec<u32>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        let runs = Runs::default();
        self.run_batch(texts, allowed, &runs);
        let done = runs.done.into_inner().unwrap_or_default();
        let out = match runs.error.into_inner().ok().flatten() {
            Some(e) => Err(e),
            None => gather(texts.len(), &done, flat),
        };
        for run in done {
            KEPT_RUNS.keep(run.ids);
        }
        out
    }
}

/// The ids of texts `0..n`, found in `runs`, copied in text order into `flat(total)`; an
/// interruption error when a text is in no run (the batch was stopped).
fn gather(
    n: usize,
    runs: &[Run],
    flat: impl FnOnce(usize) -> Vec<u32>,
) -> Result<(Vec<u32>, Vec<i64>)> {
    let mut src: Vec<Option<&[u32]>> = vec![None; n];
    for run in runs {
        let mut start = 0;
        for &(i, end) in &run.ends {
            if let (Some(slot), Some(ids)) = (src.get_mut(i), run.ids.get(start..end)) {
                *slot = Some(ids);
            }
            start = end;
        }
    }
    let src: Vec<&[u32]> = src
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(crate::cancel::cancelled)?;
    Ok(concat(&src, flat))
}

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
