//! Where the threads of a batch put each text's ids ([`Bpe::encode_batch_with`]): a list per
//! text ([`EachText`], for `encode_each`), or one flat array with offsets ([`Flat`]) that the
//! threads fill while they encode (docs/bpe.md §13.4).
//!
//! [`Flat`]: each thread appends a text's ids to a scratch buffer of its own (warm in cache,
//! reused from batch to batch) and publishes the count. The text's place in the flat array is
//! the sum of the counts of the texts before it, so whichever thread publishes the count that
//! completes a prefix places those texts (a short lock per text); each thread then copies its
//! placed texts from its scratch straight into the array. Texts are handed out in order, so a
//! text is nearly always placed and copied as soon as it is encoded: no copying phase after the
//! parallel part (before, each text's ids went into a list of their own and were copied into
//! the array once every thread was done: 8 % of a warm cl100k batch's wall time on 2 threads).
//! The array is reserved at its bound (a text has at most one id per byte) and shrunk at the
//! end; untouched pages cost nothing. Being over the allocator's mmap threshold, it is new
//! memory every call, so it asks for huge pages: 7 k page faults a warm cl100k batch with 4 KiB
//! pages, none measurable with them.

use super::Bpe;
use crate::error::{Error, Result};
use crate::special::SpecialMatcher;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where the threads of a batch put each text's ids.
pub trait BatchOut: Sync {
    /// One thread's state.
    type Local;
    /// A thread's state before its first text.
    fn local(&self) -> Self::Local;
    /// The buffer the ids of the next text (of `len` bytes) are appended to.
    fn buf<'a>(&self, l: &'a mut Self::Local, len: usize) -> &'a mut Vec<u32>;
    /// Text `i` is done: its ids are what [`BatchOut::buf`] gained from `start` on (or it
    /// failed).
    fn done(&self, l: &mut Self::Local, i: usize, start: usize, r: Result<()>);
    /// The thread takes no more texts.
    fn finish(&self, l: Self::Local);
}

/// A list of ids per text, handed to a sink as each text is done (`Bpe::encode_each`).
pub struct EachText<F>(pub F);

impl<F: Fn(usize, Result<Vec<u32>>) + Sync> BatchOut for EachText<F> {
    type Local = Vec<u32>;
    fn local(&self) -> Vec<u32> {
        Vec::new()
    }
    fn buf<'a>(&self, l: &'a mut Vec<u32>, len: usize) -> &'a mut Vec<u32> {
        if l.capacity() == 0 {
            *l = Vec::with_capacity(len / 3);
        }
        l
    }
    fn done(&self, l: &mut Vec<u32>, i: usize, _start: usize, r: Result<()>) {
        let ids = std::mem::take(l);
        (self.0)(i, r.map(|()| ids));
    }
    fn finish(&self, _: Vec<u32>) {}
}

/// Not yet known: a count not yet published, a text not yet placed.
const UNSET: usize = usize::MAX;

/// Scratch buffers larger than this many ids are not kept for the thread's next batch.
const KEEP_SCRATCH: usize = 1 << 20;

thread_local! {
    /// This thread's scratch buffer of [`Flat`], kept between batches (its pages stay mapped).
    static SCRATCH: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// One thread's state in [`Flat`]: its scratch buffer and its texts not yet copied
/// (index, start in the scratch, count), in increasing index order.
pub struct FlatLocal {
    buf: Vec<u32>,
    pending: VecDeque<(usize, usize, usize)>,
}

/// The flat array of a batch and what its threads share to fill it.
pub struct Flat {
    /// Each text's count of ids, [`UNSET`] until it is encoded.
    counts: Vec<AtomicUsize>,
    /// Each text's offset in the array, [`UNSET`] until every text before it is encoded.
    starts: Vec<AtomicUsize>,
    /// The first text not placed and its offset.
    frontier: Mutex<(usize, usize)>,
    /// The array's buffer: `cap` ids reserved, written only at placed texts' ranges.
    dst: Dst,
    /// Threads' texts left to copy when they finished (placed late, or past `cap`).
    left: Mutex<Vec<FlatLocal>>,
    /// Texts that failed (index, error).
    errors: Mutex<Vec<(usize, Error)>>,
}

/// The flat array's reserved buffer, written by the batch's threads at disjoint ranges.
struct Dst {
    ptr: *mut u32,
    cap: usize,
}

// SAFETY: the pointer is only written at the range of a placed text, by the one thread holding
// that text's ids (ranges of different texts are disjoint: they are prefix sums of counts), and
// read only after every thread has finished.
unsafe impl Send for Dst {}
// SAFETY: as above.
unsafe impl Sync for Dst {}

impl Flat {
    /// State for `n` texts writing into `cap` ids at `ptr`.
    fn new(n: usize, ptr: *mut u32, cap: usize) -> Self {
        Self {
            counts: (0..n).map(|_| AtomicUsize::new(UNSET)).collect(),
            starts: (0..n).map(|_| AtomicUsize::new(UNSET)).collect(),
            frontier: Mutex::new((0, 0)),
            dst: Dst { ptr, cap },
            left: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Place every text whose predecessors all have counts.
    fn advance(&self) {
        let Ok(mut f) = self.frontier.lock() else {
            return;
        };
        let (mut next, mut off) = *f;
        while let Some(c) = self.counts.get(next) {
            let c = c.load(Ordering::Acquire);
            if c == UNSET {
                break;
            }
            self.starts[next].store(off, Ordering::Release);
            off += c;
            next += 1;
        }
        *f = (next, off);
    }

    /// Copy `l`'s texts that are placed and fit the reserved buffer, oldest first; stops at the
    /// first that is not. The scratch is emptied once nothing in it is pending.
    fn copy_placed(&self, l: &mut FlatLocal) {
        while let Some(&(i, s, n)) = l.pending.front() {
            let at = self.starts[i].load(Ordering::Acquire);
            if at == UNSET || at + n > self.dst.cap {
                break;
            }
            debug_assert!(s + n <= l.buf.len());
            let Some(src) = l.buf.get(s..s + n) else {
                break;
            };
            // SAFETY: `at + n <= cap` ids are reserved at `ptr`; text `i`'s range
            // `at..at + n` is written by this thread alone (it holds the text's ids) and no
            // other text's range overlaps it (offsets are prefix sums of counts).
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.dst.ptr.add(at), n) };
            l.pending.pop_front();
        }
        if l.pending.is_empty() {
            l.buf.clear();
        }
    }
}

impl BatchOut for Flat {
    type Local = FlatLocal;
    fn local(&self) -> FlatLocal {
        FlatLocal {
            buf: SCRATCH.with(|c| c.take()),
            pending: VecDeque::new(),
        }
    }
    fn buf<'a>(&self, l: &'a mut FlatLocal, _: usize) -> &'a mut Vec<u32> {
        &mut l.buf
    }
    fn done(&self, l: &mut FlatLocal, i: usize, start: usize, r: Result<()>) {
        match r {
            Ok(()) => {
                let n = l.buf.len() - start;
                l.pending.push_back((i, start, n));
                self.counts[i].store(n, Ordering::Release);
                self.advance();
                self.copy_placed(l);
            }
            Err(e) => {
                l.buf.truncate(start);
                if let Ok(mut errs) = self.errors.lock() {
                    errs.push((i, e));
                }
            }
        }
    }
    fn finish(&self, mut l: FlatLocal) {
        self.copy_placed(&mut l);
        if l.pending.is_empty() {
            if l.buf.capacity() <= KEEP_SCRATCH {
                SCRATCH.with(|c| c.set(std::mem::take(&mut l.buf)));
            }
        } else if let Ok(mut left) = self.left.lock() {
            left.push(l);
        }
    }
}

impl Bpe {
    /// [`Bpe::encode`] of each text, in parallel (as [`Bpe::encode_each`]), into one flat array
    /// plus offsets: `ids[off[i]..off[i + 1]]` are text `i`'s ids. The same ids for any thread
    /// count; stops at the first error (the error of the first failed text is returned).
    pub fn encode_batch_flat<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        // a text has at most one id per byte (no token is empty)
        let bound = texts.iter().map(|t| t.as_ref().len()).sum::<usize>();
        self.encode_batch_flat_within(texts, allowed, bound)
    }

    /// [`Bpe::encode_batch_flat`] with `cap` ids reserved up front; texts past it are copied
    /// after the parallel part (so any `cap` gives the same result).
    pub(super) fn encode_batch_flat_within<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        allowed: Option<&SpecialMatcher>,
        cap: usize,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        let mut flat: Vec<u32> = Vec::new();
        // a failed reservation leaves every text to the copy after the parallel part
        let cap = if flat.try_reserve_exact(cap).is_ok() {
            // 4 KiB pages: a fault per 1 k ids (the array is new memory every call)
            super::piece_table::advise_huge_pages(&flat);
            flat.capacity()
        } else {
            0
        };
        let out = Flat::new(texts.len(), flat.as_mut_ptr(), cap);
        self.encode_batch_with(texts, allowed, &out);
        let Flat {
            counts,
            starts,
            left,
            errors,
            ..
        } = out;
        if let Some((_, e)) = errors
            .into_inner()
            .ok()
            .and_then(|errs| errs.into_iter().min_by_key(|(i, _)| *i))
        {
            return Err(e);
        }
        let mut offsets = Vec::with_capacity(texts.len() + 1);
        offsets.push(0i64);
        let mut total = 0usize;
        for c in &counts {
            let c = c.load(Ordering::Relaxed);
            if c == UNSET {
                // skipped: the batch was interrupted
                return Err(crate::cancel::cancelled());
            }
            total += c;
            offsets.push(total as i64);
        }
        let starts: Vec<usize> = starts.into_iter().map(AtomicUsize::into_inner).collect();
        let left = left.into_inner().unwrap_or_default();
        // what the threads left: texts placed after their thread's last text, copied now;
        // then the texts past `cap` (none when the bound held), after growing the array
        let fits = |i: usize, n: usize| starts[i] + n <= cap;
        for l in &left {
            for &(i, s, n) in l.pending.iter().filter(|&&(i, _, n)| fits(i, n)) {
                let src = &l.buf[s..s + n];
                // SAFETY: `starts[i] + n <= cap` ids are reserved; every thread has finished
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), flat.as_mut_ptr().add(starts[i]), n)
                };
            }
        }
        // every text ending within `cap` is now written: a prefix of the array
        let written = (0..texts.len())
            .take_while(|&i| fits(i, (offsets[i + 1] - offsets[i]) as usize))
            .last()
            .map_or(0, |i| offsets[i + 1] as usize);
        // SAFETY: ids `0..written` were written (each text's range, above or by its thread)
        unsafe { flat.set_len(written) };
        if written < total {
            let mut rest: Vec<(usize, &[u32])> = left
                .iter()
                .flat_map(|l| l.pending.iter().map(|&(i, s, n)| (i, &l.buf[s..s + n])))
                .filter(|&(i, src)| !fits(i, src.len()))
                .collect();
            rest.sort_unstable_by_key(|&(i, _)| i);
            flat.reserve_exact(total - written);
            for (i, src) in rest {
                debug_assert_eq!(flat.len(), starts[i]);
                flat.extend_from_slice(src);
            }
        }
        debug_assert_eq!(flat.len(), total);
        flat.shrink_to_fit();
        Ok((flat, offsets))
    }
}

#[cfg(test)]
mod tests {
    use crate::bpe::count::PieceCounts;
    use crate::bpe::piece_table::DEFAULT_LIMIT;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::bpe::Bpe;
    use crate::pretokenize::Pretokenizer;
    use crate::progress::Silent;

    fn small() -> Bpe {
        let p = Pretokenizer::new("gpt2").unwrap();
        let mut c = PieceCounts::new();
        let doc = "aaaaaaaa abababab banana bandana ".repeat(50);
        c.add_docs(&p, &[doc.as_str()]).unwrap();
        let cfg = TrainConfig {
            vocab_size: 300,
            min_frequency: 0,
            special_tokens: vec!["<|eot|>".into()],
            tie_order: TieOrder::Hf,
        };
        train(c, p, &cfg, &Silent).unwrap().bpe
    }

    fn texts() -> Vec<String> {
        (0..60)
            .map(|i| match i % 5 {
                0 => "aaaaaaaa abababab banana bandana ".repeat(i * 3 + 1),
                1 => format!(
                    "bandanas{i} and bananas{} abab<|eot|>abba baab\n\n  x",
                    i * 7
                ),
                2 => "ab".repeat(20 + i) + &" q".repeat(i),
                3 if i % 2 == 1 => String::new(),
                _ => format!("{}{} {}", "b".repeat(i), "a".repeat(60), "ba".repeat(12)),
            })
            .collect()
    }

    /// The flat array of a batch is the texts' ids one after the other, for any thread count,
    /// any reserved size (texts past it take the copy after the parallel part), fresh or
    /// warm tables, with and without specials.
    #[test]
    fn flat_batch_is_the_texts_ids_in_order() {
        let bpe = small();
        let texts = texts();
        let m = bpe.special_matcher(&[0]).unwrap();
        let bound: usize = texts.iter().map(String::len).sum();
        for limit in [0, 1000, DEFAULT_LIMIT] {
            bpe.piece_cache().set_limit(limit);
            for allowed in [None, m.as_ref()] {
                let lists: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|t| bpe.encode(t, allowed).unwrap())
                    .collect();
                let want: Vec<u32> = lists.concat();
                let mut offs = vec![0i64];
                for l in &lists {
                    offs.push(offs.last().unwrap() + l.len() as i64);
                }
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    for cap in [bound, 0, 1, want.len() / 2, want.len(), want.len() + 1] {
                        let (ids, off) = pool
                            .install(|| bpe.encode_batch_flat_within(&texts, allowed, cap))
                            .unwrap();
                        assert_eq!(ids, want, "limit {limit}, {threads} threads, cap {cap}");
                        assert_eq!(off, offs, "limit {limit}, {threads} threads, cap {cap}");
                    }
                }
            }
        }
        let none: [&str; 0] = [];
        assert_eq!(
            bpe.encode_batch_flat(&none, None).unwrap(),
            (vec![], vec![0])
        );
    }

    /// A cancelled batch returns an error, not a partial array.
    #[test]
    fn a_cancelled_flat_batch_fails() {
        let bpe = small();
        let texts = texts();
        let c = crate::cancel::Cancel::new();
        c.set();
        let r = crate::cancel::scope(&c, || bpe.encode_batch_flat(&texts, None));
        assert!(r.is_err());
    }
}
