//! Storing the pieces of several tables into one on several threads at once.
//!
//! A batch's threads keep the pieces the shared table lacked in tables of their own, and those
//! are stored into it after the call (`PieceCache::absorb_and_give_back`), or a model's first
//! batch's tables are made one (`PieceCache::merge_pool`). A loop of calls of new text waits
//! for that between calls with every core but one idle: 50 ms of a 233 ms pass of 100-document
//! calls (gpt2), half of it the table's growth, half the stores.
//!
//! Here the buckets are cut into one part per thread. Each thread stores the pieces whose home
//! bucket is in its part, probing only within it, so no two threads write one bucket. What
//! a part cannot take is left to one thread afterwards: a piece whose probe runs past the
//! part's end, a value kept in an arena (one arena for the table) or in another value layout,
//! and pieces past the share
//! of the table's room each part gets (so that only that pass grows the table, as one thread
//! storing them one by one would). The pieces of 16 bytes or more are stored by one thread.
//! The growth up front first touches its new memory on every thread (the kernel clears each
//! new page at its first touch), then moves the entries on one.

use super::{hash, in_arena, prefetch_bucket, Bucket, Entry, PieceTable, ABSORB_AHEAD};
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// Short pieces from which [`PieceTable::absorb_in_parts`] uses more than one thread: for
/// fewer, starting a thread costs more than it saves.
pub(super) const PARTS_FROM: usize = 1 << 12;

/// Buckets of a part at least (fewer: one thread).
const PART_BUCKETS_MIN: usize = 1 << 10;

/// Bytes between the writes that first touch a growth's new memory: one per page.
const PAGE: usize = 4096;

/// A piece a part left to the pass on one thread: its key, hash and value, and the table
/// (of the list given) it came from.
#[derive(Clone, Copy)]
struct Left {
    key: u128,
    h: u64,
    val: [u32; 4],
    from: usize,
}

/// What one part did: the pieces it stored, and those it left.
struct PartDone {
    stored: usize,
    left: Vec<Left>,
}

/// Where [`place_within`] put a piece.
enum Placed {
    New,
    Already,
    /// Its probe reached the part's end, or the part's share of room is used up.
    Left,
}

impl PieceTable {
    /// Every piece of `others` stored here, as [`PieceTable::absorb`] of the first (when
    /// `first_absent`: its pieces are missing here) and [`PieceTable::absorb_overlapping`] of
    /// each in turn would store them, on up to `threads` threads (this one included).
    /// The same pieces and ids; where an entry sits may differ, which no lookup sees.
    pub(super) fn absorb_in_parts(
        &mut self,
        others: &[PieceTable],
        first_absent: bool,
        threads: usize,
    ) {
        // one growth for the pieces known to be new, as `absorb` makes
        let known = match others.first() {
            Some(t) if first_absent => t.len,
            _ => 0,
        };
        let want = (self.len + known).min(self.limit);
        let mut size = self.buckets.len();
        while want * 4 > size * 2 * 3 {
            size *= 2;
        }
        let short: usize = others.iter().map(|t| t.len).sum();
        let parts = threads.min(size / PART_BUCKETS_MIN).max(1);
        if parts < 2 || short < PARTS_FROM || self.full() {
            for (k, t) in others.iter().enumerate() {
                self.absorb_with(t, first_absent && k == 0);
            }
            return;
        }
        if size > self.buckets.len() {
            self.touch_room(size, parts);
            self.grow_to(size);
        }
        // the entries this size holds before it grows, within the bound, shared out
        let most = (self.buckets.len() * 3 / 2).min(self.limit);
        let share = most.saturating_sub(self.len) / parts;
        let per = self.buckets.len().div_ceil(parts);
        let layout = Layout {
            shift: self.shift,
            narrow: self.narrow,
        };
        let done = on_threads(self.buckets.chunks_mut(per).enumerate(), |(k, part)| {
            fill_part(part, k * per, layout, others, share)
        });
        let mut left = Vec::new();
        for d in done {
            self.len += d.stored;
            if d.stored > 0 {
                self.fresh = false;
            }
            left.extend(d.left);
        }
        for l in left {
            if self.get_hashed(l.key, l.h).is_some() {
                continue;
            }
            if let Some(t) = others.get(l.from) {
                self.insert_hashed(l.key, l.h, t.found(l.val).ids());
            }
        }
        for (k, t) in others.iter().enumerate() {
            self.absorb_mid_long(t, first_absent && k == 0);
        }
    }

    /// The reserved room up to `size` buckets first touched, one write a page, on `threads`
    /// threads: a growth in place then writes memory already there. Nothing when `size` is
    /// past the room (the growth then moves to a new allocation).
    fn touch_room(&mut self, size: usize, threads: usize) {
        let have = self.buckets.len();
        if size > self.buckets.capacity() || size <= have {
            return;
        }
        let room = &mut self.buckets.spare_capacity_mut()[..size - have];
        let per = room.len().div_ceil(threads.max(1));
        on_threads(room.chunks_mut(per), |chunk| {
            let step = (PAGE / std::mem::size_of::<Bucket>()).max(1);
            for b in chunk.iter_mut().step_by(step) {
                *b = MaybeUninit::new(Bucket::default());
            }
        });
    }
}

/// `work` of each item, the first on this thread and the others on threads of their own at
/// the same time (on this one too, after the first, when no thread can be had or one
/// panicked before it took its item); the results in the items' order, but for an item whose
/// thread panicked while at work.
fn on_threads<T: Send, R: Send>(
    items: impl Iterator<Item = T>,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let slots: Vec<Mutex<Option<T>>> = items.map(|t| Mutex::new(Some(t))).collect();
    let take = |slot: &Mutex<Option<T>>| slot.lock().ok().and_then(|mut t| t.take());
    let work = &work;
    std::thread::scope(|s| {
        let spawned: Vec<_> = slots
            .iter()
            .skip(1)
            .map(|slot| {
                std::thread::Builder::new()
                    .name("tokforge-merge".into())
                    .spawn_scoped(s, move || take(slot).map(work))
                    .ok()
            })
            .collect();
        let mut out: Vec<R> = slots.first().and_then(take).map(work).into_iter().collect();
        for (slot, thread) in slots.iter().skip(1).zip(spawned) {
            match thread.and_then(|t| t.join().ok()).flatten() {
                Some(r) => out.push(r),
                None => out.extend(take(slot).map(work)),
            }
        }
        out
    })
}

/// What [`fill_part`] needs of the table it fills.
#[derive(Clone, Copy)]
struct Layout {
    shift: u32,
    narrow: bool,
}

/// The pieces of `others` whose home bucket is in `part` (the buckets from `base` on, of a
/// table laid out as `layout` says) stored into it, at most `share` of them; those it cannot
/// take are left ([`Placed::Left`]), and so are arena values and values of another layout.
fn fill_part(
    part: &mut [Bucket],
    base: usize,
    layout: Layout,
    others: &[PieceTable],
    share: usize,
) -> PartDone {
    let shift = layout.shift;
    let end = base + part.len();
    let mut done = PartDone {
        stored: 0,
        left: Vec::new(),
    };
    let mut group = [(
        0usize,
        Left {
            key: 0,
            h: 0,
            val: [0; 4],
            from: 0,
        },
    ); ABSORB_AHEAD];
    for (from, t) in others.iter().enumerate() {
        for chunk in t.buckets.chunks(ABSORB_AHEAD / 2) {
            let mut n = 0;
            for e in chunk.iter().flat_map(|b| &b.0).filter(|e| e.key != 0) {
                let h = hash(e.key);
                let home = (h >> shift) as usize;
                if home < base || home >= end {
                    continue;
                }
                prefetch_bucket(&part[home - base]);
                let piece = Left {
                    key: e.key,
                    h,
                    val: e.val,
                    from,
                };
                if let Some(g) = group.get_mut(n) {
                    *g = (home - base, piece);
                    n += 1;
                }
            }
            for &(at, piece) in &group[..n] {
                // a value is copied as it is: in the table's layout and inline
                if t.narrow != layout.narrow || in_arena(piece.val) {
                    done.left.push(piece);
                    continue;
                }
                let room = done.stored < share;
                match place_within(part, at, piece.key, piece.val, room) {
                    Placed::New => done.stored += 1,
                    Placed::Already => {}
                    Placed::Left => done.left.push(piece),
                }
            }
        }
    }
    done
}

/// `key` (value `val`) put into the first empty slot of `part` from bucket `at` up (when
/// `room`), unless a slot on the way holds it already.
fn place_within(part: &mut [Bucket], at: usize, key: u128, val: [u32; 4], room: bool) -> Placed {
    for b in part.get_mut(at..).into_iter().flatten() {
        for slot in &mut b.0 {
            if slot.key == key {
                return Placed::Already;
            }
            if slot.key == 0 {
                if !room {
                    return Placed::Left;
                }
                *slot = Entry { key, val };
                return Placed::New;
            }
        }
    }
    Placed::Left
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::PARTS_FROM;

    /// A small xorshift generator: the same tables on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Piece `k`: short (1..=15 bytes), 16..=31 bytes or longer, by `k % 8`.
    fn piece(k: u64) -> Vec<u8> {
        let n = match k % 8 {
            0 => 16 + (k / 8 % 16) as usize,
            1 => 32 + (k / 8 % 20) as usize,
            _ => 1 + (k / 8 % 15) as usize,
        };
        let mut b: Vec<u8> = k.to_le_bytes().iter().copied().cycle().take(n).collect();
        b[0] = b[0].wrapping_add(n as u8);
        b
    }

    /// The ids of piece `k` (a function of its bytes: keys that give one piece give one
    /// value): one to seven, some above 2^16 or 2^24 (arena values in either layout).
    fn ids(k: u64) -> Vec<u32> {
        let k = piece(k).iter().fold(7u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let n = 1 + (k % 7) as usize;
        let big = if k % 11 == 0 {
            1 << 25
        } else if k % 5 == 0 {
            1 << 17
        } else {
            0
        };
        (0..n as u32)
            .map(|j| (k as u32 % 50_000) + j + big)
            .collect()
    }

    fn store(t: &mut PieceTable, k: u64) {
        let p = piece(k);
        if p.len() <= MAX_KEY_LEN {
            t.insert(pack(&p), &ids(k));
        } else {
            t.insert_long(&p, &ids(k));
        }
    }

    fn found(t: &PieceTable, k: u64) -> Option<Vec<u32>> {
        let p = piece(k);
        if p.len() > MAX_KEY_LEN {
            return t.get_long(&p).map(<[u32]>::to_vec);
        }
        match t.get(pack(&p)) {
            None => None,
            Some(Found::Inline(c, v)) => Some(v[..c as usize].to_vec()),
            Some(Found::Arena(s)) => Some(s.to_vec()),
        }
    }

    /// On any number of threads, storing tables in parts gives the table one thread storing
    /// them in turn gives: the same count, every piece with its ids (the shared table's own
    /// and the others'), pieces of every length and both value layouts, tables that overlap,
    /// parts whose probes run past their end (a table at its growth threshold) and a bound
    /// that stops the stores.
    #[test]
    fn storing_in_parts_gives_the_table_storing_in_turn_gives() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        // (entries already there, per other table, other tables, the first's pieces new, limit)
        let cases = [
            (2_000u64, 3_000u64, 2usize, true, DEFAULT_LIMIT),
            (6_000, 3_500, 2, true, DEFAULT_LIMIT),
            (3_000, 6_000, 3, false, DEFAULT_LIMIT),
            (12_000, 700, 8, false, DEFAULT_LIMIT),
            (3_000, 5_000, 2, true, 9_000),
            (50_000, 20_000, 2, true, DEFAULT_LIMIT),
        ];
        for (case, &(base, each, n, first_absent, limit)) in cases.iter().enumerate() {
            for narrow in [false, true] {
                let have: Vec<u64> = (0..base).map(|_| rng.next() >> 8).collect();
                // with room reserved (a growth in place, its new pages touched in parts) or
                // not (a growth into a new allocation)
                let build_main = || {
                    let mut m = if case % 2 == 0 {
                        PieceTable::with_room(0, limit, narrow)
                    } else {
                        PieceTable::with_layout(0, limit, narrow)
                    };
                    for &k in &have {
                        store(&mut m, k);
                    }
                    m
                };
                let main = build_main();
                let mut learnt: Vec<Vec<u64>> = Vec::new();
                for j in 0..n {
                    let new: Vec<u64> = (0..each)
                        .map(|i| {
                            let pick = rng.next();
                            if j == 0 && first_absent || !pick.is_multiple_of(4) {
                                pick >> 8 | 1 << 60
                            } else if pick.is_multiple_of(8) {
                                // a piece the shared table has
                                have[(pick >> 8) as usize % have.len()]
                            } else {
                                // a piece another table has (or will have)
                                ((pick >> 8) % (each * n as u64)) | (1 << 59) | ((i & 1) << 58)
                            }
                        })
                        .collect();
                    learnt.push(new);
                }
                let others: Vec<PieceTable> = learnt
                    .iter()
                    .enumerate()
                    .map(|(j, keys)| {
                        let mut t = PieceTable::with_layout(0, DEFAULT_LIMIT, narrow);
                        for &k in keys {
                            // the first table's pieces are new to `main` when said so
                            let absent = !(j == 0 && first_absent) || found(&main, k).is_none();
                            if absent && found(&t, k).is_none() {
                                store(&mut t, k);
                            }
                        }
                        t
                    })
                    .collect();
                let short: usize = others.iter().map(PieceTable::len).sum();
                assert!(short >= PARTS_FROM, "case {case}: {short} short entries");
                let mut in_turn = build_main();
                for (k, t) in others.iter().enumerate() {
                    in_turn.absorb_with(t, first_absent && k == 0);
                }
                for threads in [1, 2, 3, 4] {
                    let mut parts = build_main();
                    parts.absorb_in_parts(&others, first_absent, threads);
                    if limit == DEFAULT_LIMIT {
                        assert_eq!(parts.len(), in_turn.len(), "case {case} {narrow} {threads}");
                        assert_eq!(parts.entries(), in_turn.entries(), "case {case} {threads}");
                    } else {
                        // within the bounds (which pieces fit depends on the order of stores)
                        assert!(parts.len() <= limit && parts.arena.len() <= 2 * limit);
                        let longer = parts.long.bytes()
                            + parts.mid.slots.len() * std::mem::size_of::<MidEntry>();
                        assert!(longer <= 16 * limit, "case {case} {threads}");
                        assert!(parts.len() + 64 >= in_turn.len(), "case {case} {threads}");
                    }
                    for &k in have.iter().chain(learnt.iter().flatten()) {
                        let got = found(&parts, k);
                        if limit == DEFAULT_LIMIT {
                            assert_eq!(got, Some(ids(k)), "case {case} {threads} {k}");
                        } else {
                            // at the bound, which pieces are kept depends on the order of
                            // the stores; each kept one has its ids
                            assert!(got.is_none() || got == Some(ids(k)), "case {case} {k}");
                        }
                    }
                }
            }
        }
    }
}
