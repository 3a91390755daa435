//! The piece table: ids of short pre-tokenization pieces, remembered across calls
//! (docs/bpe.md §13).
//!
//! Real text repeats its pieces (Zipf): on the benchmark corpus 99 % of the pieces of a second
//! pass were already seen in the first. The encoder therefore answers most pieces with one
//! probe of an open-addressing table keyed by the piece itself, packed into a `u128` (up to
//! [`MAX_KEY_LEN`] = 15 bytes in the low bytes, the length in the top byte, so no real key is 0,
//! the empty mark), compared with one 128-bit compare instead of a `memcmp`. An entry is 32
//! bytes (key + up to [`INLINE`] = four ids inline, `4 - count` in the top byte of the last
//! lane; a longer result is a slice of a side arena), two entries per 64-byte bucket, so a probe
//! touches one cache line. A model of at most 65,536 ids uses narrow tables
//! ([`PieceTable::with_layout`]): up to [`INLINE16`] = seven ids of 16 bits inline and the count
//! in an eighth 16-bit lane.
//!
//! A table is seeded with the encoding of every regular token of 1..=15 bytes (computed by the
//! same uncached path as a miss, so a seeded value is what a miss would have stored): a piece
//! that is a whole token hits the same table as a repeated piece, and the whole-piece lookup by
//! bytes disappears from the hot path.
//!
//! Bounds: a table holds at most `limit` entries (seed included; [`DEFAULT_LIMIT`] unless set
//! with [`PieceCache::set_limit`]); once full it stops inserting (and keeps what it has: the
//! first pieces of a stream are the frequent ones), so a stream of unique pieces costs a
//! bounded table, never a growing one, and never a clear. The arena holds at most
//! `2 * limit` ids. A limit below the seed's size gives unseeded tables.
//!
//! Pieces of 16..=31 bytes are keyed by two `u128` ([`MID_KEY_LEN`]: no boxed key, no
//! `memcmp`), longer ones by a 64-bit hash of their bytes in a table of their own
//! ([`LongTable`]: slots of hash, length and offset into an arena of ids and bytes); both are
//! bounded by `16 * limit` bytes.
//!
//! Sharing: tables are not locked per probe. [`PieceCache`] (one per model) lends each encoding
//! call a table of its own ([`PieceCache::lend`]) from a pool, and takes it back when the call
//! ends, so tables persist across calls and there are as many as calls ever ran at once (one per
//! encoding thread). Cost: two uncontended lock operations per call. The threads of a batch
//! read one table together and their misses are merged into it at the end
//! ([`PieceTable::absorb`], `Bpe::encode_each`).
//!
//! Complexity: a hit is one hash (multiply-shift of the two key halves) and, at load <= 3/4,
//! about 1.1 bucket probes; a miss adds one insert (amortised O(1), doubling at 3/4 load).
//! Invariants: every stored value is the encoding [`super::Bpe`]'s uncached path gives for the
//! key's bytes; `len <= limit`; the capacity is a power of two >= 4 buckets.

use super::long_table::{hash_long, LongTable};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

mod absorb_in_parts;
mod merger;

/// Longest piece (bytes) the table keys: 15 bytes + the length byte fill a `u128`.
pub const MAX_KEY_LEN: usize = 15;

/// Entries per table unless set: 786,432 = 3/4 of 2^20 slots, so a full table is 2^20 slots of
/// 32 bytes = 32 MiB per encoding thread. The 98 MB benchmark sample has about 700 k distinct
/// short pieces for cl100k, so its second pass hits on nearly every piece.
pub const DEFAULT_LIMIT: usize = 3 << 18;

/// The piece packed as a table key: bytes little-endian in the low 15 bytes, length on top.
/// `piece.len()` must be `1..=MAX_KEY_LEN`.
#[inline]
pub fn pack(piece: &[u8]) -> u128 {
    debug_assert!((1..=MAX_KEY_LEN).contains(&piece.len()));
    let mut b = [0u8; 16];
    let n = piece.len().min(MAX_KEY_LEN);
    b[..n].copy_from_slice(&piece[..n]);
    b[15] = n as u8;
    u128::from_le_bytes(b)
}

/// [`pack`] of `bytes[start..start + n]` reading 16 bytes at once when they exist (the usual
/// case inside a text), masking off what follows the piece.
#[inline]
pub fn pack_at(bytes: &[u8], start: usize, n: usize) -> u128 {
    debug_assert!((1..=MAX_KEY_LEN).contains(&n));
    // one compare against a bound the caller's loop computes once (taking `bytes[start..]` and
    // then its first 16 bytes checked twice, seven instructions on the path of every piece)
    if start < bytes.len().saturating_sub(15) {
        // SAFETY: `start + 16 <= bytes.len()`, checked above; an unaligned read of 16 bytes.
        let w = unsafe {
            bytes
                .as_ptr()
                .add(start)
                .cast::<[u8; 16]>()
                .read_unaligned()
        };
        let [lo, hi] = KEY_MASKS[n & 15];
        let w = u128::from_le_bytes(w);
        let lo = w as u64 & lo;
        let hi = ((w >> 64) as u64 & hi) | ((n as u64) << 56);
        u128::from(lo) | (u128::from(hi) << 64)
    } else {
        pack(&bytes[start..start + n])
    }
}

/// The 64-bit halves of [`low_bytes`]`(n)` for every `n` in `0..16`: two loads on the path of
/// every key instead of building the mask.
static KEY_MASKS: [[u64; 2]; 16] = {
    let mut t = [[0u64; 2]; 16];
    let mut n = 0;
    while n < 16 {
        let m = low_bytes(n);
        t[n] = [m as u64, (m >> 64) as u64];
        n += 1;
    }
    t
};

/// A key for a piece of more than [`MAX_KEY_LEN`] bytes where a short key is expected: no real
/// key (its length byte would be 255) and not the empty mark, so it matches no entry of a table.
pub const NOT_SHORT: u128 = u128::MAX;

/// A mask of the low `n` bytes of a `u128`, `n` in `0..=15`, built from one shift per 64-bit
/// half: a variable `u128` shift compiles to a long `shld`/`cmov` sequence on the path of every
/// key.
#[inline(always)]
const fn low_bytes(n: usize) -> u128 {
    debug_assert!(n <= MAX_KEY_LEN);
    let part = (1u64 << ((8 * n) as u32 & 63)).wrapping_sub(1);
    let lo = if n >= 8 { u64::MAX } else { part };
    let hi = if n > 8 { part } else { 0 };
    lo as u128 | ((hi as u128) << 64)
}

/// Longest piece (bytes) keyed by two `u128` (`pack_mid`).
pub const MID_KEY_LEN: usize = 31;

/// A piece of `MAX_KEY_LEN + 1..=MID_KEY_LEN` bytes packed into two `u128`: its first 16 bytes,
/// then the rest and the length in the top byte (as [`pack`]), so equal keys are equal pieces
/// and the second half of a real key is never 0 (the empty mark of [`MidTable`]).
#[inline]
pub fn pack_mid(piece: &[u8]) -> [u128; 2] {
    debug_assert!((MAX_KEY_LEN + 1..=MID_KEY_LEN).contains(&piece.len()));
    let (head, rest) = piece.split_at(piece.len().min(16));
    let mut a = [0u8; 16];
    a[..head.len()].copy_from_slice(head);
    let mut b = [0u8; 16];
    let n = rest.len().min(15);
    b[..n].copy_from_slice(&rest[..n]);
    b[15] = piece.len() as u8;
    [u128::from_le_bytes(a), u128::from_le_bytes(b)]
}

/// [`pack_mid`] of `bytes[start..start + n]` reading 32 bytes at once when they exist.
#[inline]
pub fn pack_mid_at(bytes: &[u8], start: usize, n: usize) -> [u128; 2] {
    debug_assert!((MAX_KEY_LEN + 1..=MID_KEY_LEN).contains(&n));
    match bytes
        .get(start..start + 32)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
    {
        Some(w) => {
            let (a, b) = w.split_at(16);
            let a = u128::from_le_bytes(a.try_into().unwrap_or([0; 16]));
            let b = u128::from_le_bytes(b.try_into().unwrap_or([0; 16]));
            [a, (b & low_bytes(n - 16)) | ((n as u128) << 120)]
        }
        None => pack_mid(&bytes[start..start + n]),
    }
}

/// Hash of a two-part key: its halves folded into one `u128`, then two multiplies (not
/// [`hash`]'s one: the fold already xors bytes 0.. with bytes 24.., and these keys are few).
#[inline]
fn hash_mid(key: [u128; 2]) -> u64 {
    let k = key[0] ^ key[1].rotate_left(64);
    let (lo, hi) = (k as u64, (k >> 64) as u64);
    (lo ^ hi.rotate_left(29).wrapping_mul(0xff51_afd7_ed55_8ccd))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Hash of a key: one multiply-shift of its two halves' xor (the top bits index the table; the
/// encoder hashes a chunk's keys for [`Homes::prefetch_hashed`] and [`Homes::probe`]).
///
/// The xor loses nothing for pieces of up to 7 bytes (the low half holds the bytes below bit
/// 56, the high half only the length above it); longer keys can share it only when their bytes
/// 8.. and length xor their first bytes alike, and such a pair still shares a bucket of two
/// entries.
#[inline]
pub fn hash(key: u128) -> u64 {
    let lo = key as u64;
    let hi = (key >> 64) as u64;
    (lo ^ hi).wrapping_mul(HASH_MUL)
}

/// The multiplier of [`hash`] (the encoder's vector packing multiplies by it too).
pub const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Entry {
    key: u128,
    /// the ids, as [`inline_value`] packs them or [`ARENA`] with the arena offset and count
    val: [u32; 4],
}

/// Ids an entry of the short table holds inline (the 32-bit layout).
pub const INLINE: usize = 4;

/// Ids an entry of a narrow table holds inline: eight 16-bit lanes, seven ids and the count
/// ([`PieceTable::narrow`], for vocabularies whose ids fit in 16 bits).
pub const INLINE16: usize = 7;

/// The most ids an entry holds inline in either layout.
pub const MAX_INLINE: usize = INLINE16;

/// The tag (top byte of lane 3) of a value whose ids are in the arena: lane 0 is their offset,
/// lane 1 their count. An inline value's tag is [`INLINE`] minus its count, so a value of four
/// ids has tag 0 and its lane 3 is its fourth id as it is (the emit loop stores lanes as they
/// are; lanes past a smaller count are never kept).
const ARENA: u32 = 0x80;

/// Bits of lane 3 below the tag.
const LANE3: u32 = (1 << 24) - 1;

/// Whether a value (of either layout) keeps its ids in the arena.
#[inline(always)]
fn in_arena(val: [u32; 4]) -> bool {
    val[3] >> 24 == ARENA
}

/// The value holding `ids` inline, `None` when they do not fit (they go to the arena).
/// The 32-bit layout: the ids in lanes 0..=3 (unused lanes 0) and `4 - count` in the top byte
/// of lane 3, so at most [`INLINE`] ids and a fourth id below 2^24. The narrow layout: the value
/// as eight little-endian 16-bit lanes, ids in lanes 0..=6 (unused lanes 0) and the count in
/// lane 7, so at most [`INLINE16`] ids, each below 2^16. An arena value ([`ARENA`] in the top
/// byte) reads as lane 7 = `0x8000` there, so both layouts tell it by the same word.
#[inline]
fn inline_value(ids: &[u32], narrow: bool) -> Option<[u32; 4]> {
    if narrow {
        if ids.is_empty() || ids.len() > INLINE16 || ids.iter().any(|&d| d > u32::from(u16::MAX)) {
            return None;
        }
        let mut lanes = [0u16; 8];
        for (l, &d) in lanes.iter_mut().zip(ids) {
            *l = d as u16;
        }
        lanes[7] = ids.len() as u16;
        let mut val = [0; 4];
        for (v, l) in val.iter_mut().zip(lanes.chunks_exact(2)) {
            *v = u32::from(l[0]) | (u32::from(l[1]) << 16);
        }
        return Some(val);
    }
    if ids.is_empty() || ids.len() > INLINE || ids.get(3).is_some_and(|&d| d > LANE3) {
        return None;
    }
    let mut val = [0; 4];
    val[..ids.len()].copy_from_slice(ids);
    val[3] |= ((INLINE - ids.len()) as u32) << 24;
    Some(val)
}

/// The ids of a value in the layout `narrow` says ([`inline_value`]): inline (count and the
/// lanes, zero past the count) or the arena's `offset..offset + len`.
#[inline(always)]
fn unpack_value(val: [u32; 4], narrow: bool) -> Result<(u32, [u32; MAX_INLINE]), (usize, usize)> {
    if in_arena(val) {
        return Err((val[0] as usize, val[1] as usize));
    }
    let tag = val[3] >> 24;
    if narrow {
        let count = val[3] >> 16;
        debug_assert!((1..=INLINE16 as u32).contains(&count));
        let mut lanes = [0; MAX_INLINE];
        for (k, l) in lanes.iter_mut().enumerate() {
            *l = (val[k / 2] >> (16 * (k % 2))) & 0xffff;
        }
        return Ok((count, lanes));
    }
    debug_assert!(tag < INLINE as u32);
    Ok((
        INLINE as u32 - tag,
        [val[0], val[1], val[2], val[3] & LANE3, 0, 0, 0],
    ))
}

/// Start loading bucket `b` into the cache (a hint: no effect on memory).
#[inline(always)]
fn prefetch_bucket(b: &Bucket) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint neither reads nor writes memory, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((b as *const Bucket).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

/// Two entries sharing one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([Entry; 2]);

/// A piece of 16..=31 bytes and its ids in one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct MidEntry {
    key: [u128; 2],
    /// `[count, id0, .., id6]`; for `count > 7`, `id0` is the arena offset
    val: [u32; 8],
}

/// Ids inline in a [`MidEntry`].
pub const MID_INLINE: usize = 7;

/// Open addressing (linear probing, load <= 1/2) over [`MidEntry`] slots: a probe compares two
/// integers in one cache line, and the slot can be prefetched like a bucket of the short table.
#[derive(Clone)]
struct MidTable {
    slots: Vec<MidEntry>,
    /// `64 - log2(slots.len())`
    shift: u32,
    len: usize,
}

impl MidTable {
    /// An empty table of 16 slots with room reserved (not touched) for `room`, so that it
    /// grows in place up to that size ([`MidTable::grow`]).
    fn with_room(room: usize) -> Self {
        let mut slots = Vec::with_capacity(room.max(16));
        crate::huge_pages::advise(&slots);
        slots.resize(16, MidEntry::default());
        Self {
            slots,
            shift: 60,
            len: 0,
        }
    }

    /// Slots the table has after one more insert.
    fn slots_after_insert(&self) -> usize {
        if (self.len + 1) * 2 > self.slots.len() {
            2 * self.slots.len()
        } else {
            self.slots.len()
        }
    }

    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        (h >> self.shift) as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn get(&self, key: [u128; 2], h: u64) -> Option<&[u32; 8]> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let e = self.slots.get(i & mask)?;
            if e.key == key {
                return Some(&e.val);
            }
            if e.key[1] == 0 {
                return None;
            }
            i += 1;
        }
    }

    fn insert(&mut self, key: [u128; 2], val: [u32; 8]) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(MidEntry { key, val });
        self.len += 1;
    }

    /// Double the slots. Within the reserved room in place, as [`PieceTable::grow_to`]'s
    /// `grow_in_place` (the old slots copied into the new half and re-placed in order, each
    /// below the slot it leaves; those whose probe would reach it placed last); else into a
    /// new allocation.
    #[cold]
    fn grow(&mut self) {
        let old = self.slots.len();
        self.shift -= 1;
        if 2 * old > self.slots.capacity() {
            let old = std::mem::replace(&mut self.slots, vec![MidEntry::default(); 2 * old]);
            for e in old {
                if e.key[1] != 0 {
                    self.place(e);
                }
            }
            return;
        }
        self.slots.extend_from_within(..);
        self.slots[..old].fill(MidEntry::default());
        let mut later = Vec::new();
        for i in old..2 * old {
            let e = std::mem::take(&mut self.slots[i]);
            if e.key[1] == 0 {
                continue;
            }
            let home = self.home(hash_mid(e.key));
            match self
                .slots
                .get_mut(home..i)
                .and_then(|s| s.iter_mut().find(|s| s.key[1] == 0))
            {
                Some(slot) => *slot = e,
                None => later.push(e),
            }
        }
        for e in later {
            self.place(e);
        }
    }

    fn place(&mut self, e: MidEntry) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash_mid(e.key));
        while let Some(slot) = self.slots.get_mut(i & mask) {
            if slot.key[1] == 0 {
                *slot = e;
                return;
            }
            i += 1;
        }
    }
}

/// Most buckets [`PieceTable::with_room`] reserves room for: 2^19 buckets (32 MiB, the table
/// of [`DEFAULT_LIMIT`] entries). Reserved room is address space, not memory, until used.
const ROOM_BUCKETS: usize = 1 << 19;

/// Most slots [`PieceTable::with_room`] reserves room for in the 16..=31-byte table: 2^17
/// (8 MiB, the most [`DEFAULT_LIMIT`]'s bound lets it hold).
const ROOM_MID_SLOTS: usize = 1 << 17;

/// How many inserts ahead [`PieceTable::insert_many`] prefetches a home bucket.
const INSERT_AHEAD: usize = 32;

/// Entries [`PieceTable::absorb`] prefetches at once (an even number: two per bucket).
const ABSORB_AHEAD: usize = 16;

/// Entries of a batch's own tables from which [`PieceCache::absorb_and_give_back`] stores them
/// on a thread of its own; fewer are stored by the calling thread, for which waking a thread
/// would cost more than the work.
const ABSORB_APART: usize = 4096;

/// The home buckets of a [`PieceTable`] ([`PieceTable::homes`]).
#[derive(Clone, Copy)]
pub struct Homes<'a> {
    buckets: &'a [Bucket],
    shift: u32,
}

impl Homes<'_> {
    /// Start loading the home bucket of hash `h` ([`hash`]) into the cache. The encoder
    /// hashes a chunk's pieces first and then prefetches their buckets in a loop of a few
    /// instructions each, so that all of them are in flight at once (with the packing between
    /// the prefetches, the core waited at each of them).
    #[inline(always)]
    pub fn prefetch_hashed(&self, h: u64) {
        let i = (h >> self.shift) as usize & self.buckets.len().wrapping_sub(1);
        #[cfg(target_arch = "x86_64")]
        if let Some(b) = self.buckets.get(i) {
            // SAFETY: a prefetch hint has no effect on memory; the address is a live bucket.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>((b as *const Bucket).cast::<i8>());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// A branch-free look at the home bucket of `key` (hash `h`): the value of the entry
    /// holding `key`, in place (32-bit lanes; for `NARROW`, eight 16-bit lanes
    /// little-endian in them) and a count: 1..=[`INLINE`] (`NARROW`: 1..=[`INLINE16`]) when the
    /// ids are inline (lanes past the count mean nothing), 0 when no entry of the bucket holds
    /// `key` (`key` may still be further along its probe chain), above that when the ids are
    /// in the arena (lanes 0 and 1 then hold their offset and count:
    /// [`PieceTable::arena_ids`]). `NARROW` must be the table's [`PieceTable::narrow`]. Key 0
    /// (no real key) must not be probed: it would match an empty entry.
    /// Both keys are compared and the entry chosen by an index (an address computed, no
    /// branch: which of the two holds the key is a coin toss, and a branch on it cost 0.7 M
    /// mispredictions a warm cl100k pass of the benchmark sample); the caller then reads its
    /// value once, as one 16-byte load (issue 15, fifteenth round: selecting each half of both
    /// values with masks read both and took more instructions).
    #[inline(always)]
    pub fn probe<const NARROW: bool>(&self, key: u128, h: u64) -> (&[u32; 4], u32) {
        debug_assert!(key != 0);
        let i = (h >> self.shift) as usize & self.buckets.len().wrapping_sub(1);
        let Some(Bucket(pair)) = self.buckets.get(i) else {
            return (&[0; 4], 0);
        };
        let (in_a, in_b) = (pair[0].key == key, pair[1].key == key);
        let val = &pair[usize::from(!in_a)].val;
        let count = if NARROW {
            val[3] >> 16
        } else {
            (INLINE as u32).wrapping_sub(val[3] >> 24)
        };
        (val, if in_a | in_b { count } else { 0 })
    }
}

/// Lanes 0 and 1 of an entry's value as one `u64` (lane 0 low), as
/// [`PieceTable::arena_ids`] takes them.
#[inline(always)]
pub fn low_lanes(v: [u32; 4]) -> u64 {
    u64::from(v[0]) | (u64::from(v[1]) << 32)
}

/// Ids found for a piece: up to [`MAX_INLINE`] inline (the count, then the lanes), or a slice
/// of the arena.
pub enum Found<'a> {
    Inline(u32, [u32; MAX_INLINE]),
    Arena(&'a [u32]),
}

impl Found<'_> {
    /// The ids.
    pub fn ids(&self) -> &[u32] {
        match self {
            Found::Inline(c, v) => &v[..(*c as usize).min(MAX_INLINE)],
            Found::Arena(ids) => ids,
        }
    }
}

/// `n` empty buckets. A large table is backed by transparent huge pages where the system
/// offers them on request (Linux `madvise`): with 4 KiB pages each probe of a 16 MiB table is
/// also a TLB miss, which stalled the prefetches (measured: encode ~20 % slower on cl100k).
///
/// `room` buckets (if more than `n`) are reserved, not touched: [`PieceTable::grow_to`] doubles
/// within them in place, so a growth touches only the new half and copies nothing.
fn buckets_like(n: usize, from: &[Bucket], room: usize) -> Vec<Bucket> {
    let mut v: Vec<Bucket> = Vec::with_capacity(n.max(room));
    crate::huge_pages::advise(&v);
    v.extend_from_slice(&from[..from.len().min(n)]);
    v.resize(n, Bucket::default());
    v
}

/// One open-addressing table (see the module docs). Not shared: one caller at a time.
pub struct PieceTable {
    buckets: Vec<Bucket>,
    /// `64 - log2(buckets.len())`
    shift: u32,
    len: usize,
    limit: usize,
    arena: Vec<u32>,
    /// pieces of 16..=31 bytes keyed by their bytes packed into two `u128` ([`pack_mid`]):
    /// `[count, id0, .., id6]`, or `[count, arena offset, ..]` for `count > 7`
    mid: MidTable,
    /// longer pieces, under a hash of their bytes; with the slots of `mid`, bounded by
    /// `long.bytes() + mid slot bytes <= 16 * limit`
    long: LongTable,
    /// holds the seed: a short piece missing from it is not a token
    seeded: bool,
    /// values in the 16-bit layout ([`inline_value`]): up to seven ids below 2^16 inline
    narrow: bool,
    /// has stored nothing since it was made (a table of the seed, or empty)
    fresh: bool,
}

impl Clone for PieceTable {
    fn clone(&self) -> Self {
        Self {
            buckets: buckets_like(self.buckets.len(), &self.buckets, 0),
            shift: self.shift,
            len: self.len,
            limit: self.limit,
            arena: self.arena.clone(),
            mid: self.mid.clone(),
            long: self.long.clone(),
            seeded: self.seeded,
            narrow: self.narrow,
            fresh: self.fresh,
        }
    }
}

impl PieceTable {
    /// An empty table sized for `n` entries without growing, values in the 32-bit layout.
    pub fn with_capacity(n: usize, limit: usize) -> Self {
        Self::with_layout(n, limit, false)
    }

    /// [`PieceTable::with_capacity`] with the value layout chosen: `narrow` keeps up to
    /// [`INLINE16`] ids below 2^16 inline (for vocabularies of at most 65,536 ids; a larger id
    /// still goes to the arena), else up to [`INLINE`] ids of 32 bits.
    pub fn with_layout(n: usize, limit: usize, narrow: bool) -> Self {
        Self::sized(n, limit, narrow, 0, 0)
    }

    /// [`PieceTable::with_layout`] with `room` buckets and `mid_room` 16..=31-byte slots
    /// reserved.
    fn sized(n: usize, limit: usize, narrow: bool, room: usize, mid_room: usize) -> Self {
        let mut buckets = 4usize;
        while n * 4 > buckets * 2 * 3 {
            buckets *= 2;
        }
        Self {
            buckets: buckets_like(buckets, &[], room),
            shift: 64 - buckets.trailing_zeros(),
            len: 0,
            limit,
            arena: Vec::new(),
            mid: MidTable::with_room(mid_room),
            long: LongTable::default(),
            seeded: false,
            narrow,
            fresh: true,
        }
    }

    /// Whether values use the 16-bit layout (see [`PieceTable::with_layout`]); fixed for the
    /// table's life, so a loop over probes can be specialised for it
    /// ([`Homes::probe`]'s `NARROW`).
    #[inline(always)]
    pub fn narrow(&self) -> bool {
        self.narrow
    }

    /// Whether the table has stored nothing since it was made (a table of the seed, or empty).
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// Whether the table holds the seed (every short token), so that a short piece it misses
    /// is not a token.
    #[inline]
    pub fn seeded(&self) -> bool {
        self.seeded
    }

    /// The ids stored for a piece longer than [`MAX_KEY_LEN`], if any.
    #[inline]
    pub fn get_long(&self, piece: &[u8]) -> Option<&[u32]> {
        if piece.len() <= MID_KEY_LEN {
            let key = pack_mid(piece);
            return self.mid_ids(self.mid.get(key, hash_mid(key))?);
        }
        self.long.get(piece, hash_long(piece))
    }

    /// The ids of a value of this table's 16..=31-byte table: inline, or in its arena.
    #[inline]
    fn mid_ids<'a>(&'a self, v: &'a [u32; 8]) -> Option<&'a [u32]> {
        let c = v[0] as usize;
        if c <= MID_INLINE {
            v.get(1..1 + c)
        } else {
            let s = v[1] as usize;
            self.arena.get(s..s + c)
        }
    }

    /// Whether the pieces longer than [`MAX_KEY_LEN`] fit the bound with `long_bytes` in the
    /// long table and the 16..=31-byte table counted as after one more insert (its growth).
    fn longer_fit(&self, long_bytes: usize) -> bool {
        let mid_bytes = self.mid.slots_after_insert() * std::mem::size_of::<MidEntry>();
        long_bytes + mid_bytes <= self.limit.saturating_mul(16)
    }

    /// The ids stored for a piece longer than [`MID_KEY_LEN`] whose hash is `h`
    /// ([`PieceTable::prefetch_long`]), if any.
    #[inline]
    pub fn get_long_hashed(&self, piece: &[u8], h: u64) -> Option<&[u32]> {
        debug_assert!(piece.len() > MID_KEY_LEN);
        self.long.get(piece, h)
    }

    /// Store the ids of a piece longer than [`MAX_KEY_LEN`] (absent) unless over the bound.
    pub fn insert_long(&mut self, piece: &[u8], ids: &[u32]) {
        if piece.len() > MID_KEY_LEN {
            self.insert_long_hashed(piece, hash_long(piece), ids);
            return;
        }
        // the mid table counts as allocated after the growth this insert may cause
        if !self.longer_fit(self.long.bytes()) {
            return;
        }
        self.insert_mid(pack_mid(piece), ids);
    }

    /// [`PieceTable::insert_long`] of a piece longer than [`MID_KEY_LEN`] with hash `h`: its
    /// slots and arena after the insert, with the 16..=31-byte table's slots, within the bound.
    fn insert_long_hashed(&mut self, piece: &[u8], h: u64, ids: &[u32]) {
        if !self.longer_fit(self.long.bytes_after(piece.len(), ids.len())) {
            return;
        }
        if self.long.insert(piece, h, ids) {
            self.fresh = false;
        }
    }

    /// Store the ids of a piece of 16..=31 bytes under its [`pack_mid`] key (absent; the
    /// caller checked the bound).
    fn insert_mid(&mut self, key: [u128; 2], ids: &[u32]) {
        let mut val = [ids.len() as u32, 0, 0, 0, 0, 0, 0, 0];
        if ids.len() <= MID_INLINE {
            val[1..1 + ids.len()].copy_from_slice(ids);
        } else {
            let Some(v) = self.arena_value(ids) else {
                return;
            };
            val[1] = v[0];
        }
        self.mid.insert(key, val);
        self.fresh = false;
    }

    /// Store every piece of `other`, which this table lacks (the misses a batch collected
    /// while it only read this table), within this table's bounds, as [`PieceTable::insert`]
    /// and [`PieceTable::insert_long`] would one by one. Both tables hold the uncached path's
    /// ids, so this changes no id.
    ///
    /// The table grows once to its final size, and the home buckets of each group of
    /// [`ABSORB_AHEAD`] entries are prefetched before they are filled: this runs on one thread
    /// after a batch's parallel part.
    pub fn absorb(&mut self, other: &PieceTable) {
        self.absorb_with(other, true);
    }

    /// [`PieceTable::absorb`] of a table that may hold pieces this one holds too (those are
    /// skipped): the tables of a batch's threads, each of which met part of the texts.
    pub fn absorb_overlapping(&mut self, other: &PieceTable) {
        self.absorb_with(other, false);
    }

    /// [`PieceTable::absorb`]; `absent`: `other`'s pieces are known to be missing here (so no
    /// lookup, and the final size is known: one growth up front).
    fn absorb_with(&mut self, other: &PieceTable, absent: bool) {
        self.absorb_short(other, absent);
        self.absorb_mid_long(other, absent);
    }

    /// The short pieces of [`PieceTable::absorb_with`].
    fn absorb_short(&mut self, other: &PieceTable, absent: bool) {
        let want = (self.len + other.len).min(self.limit);
        let mut size = self.buckets.len();
        while absent && want * 4 > size * 2 * 3 {
            size *= 2;
        }
        if size > self.buckets.len() {
            self.grow_to(size);
        }
        let used = other
            .buckets
            .iter()
            .flat_map(|b| &b.0)
            .filter(|e| e.key != 0);
        self.in_groups(
            used,
            |t, e| (e, t.prefetch(e.key)),
            |t, (e, h)| {
                debug_assert!(!absent || t.get(e.key).is_none());
                if absent || t.get_hashed(e.key, h).is_none() {
                    t.insert_hashed(e.key, h, other.found(e.val).ids());
                }
                true
            },
        );
    }

    /// `each` of every item of `items` in turn, in groups of [`ABSORB_AHEAD`]: `ahead` of a
    /// whole group first (it prefetches what `each` reads, and gives what `each` needs), so
    /// that a group's loads are in flight at once; stops at the first `each` that returns
    /// false.
    fn in_groups<I: Iterator, T: Copy>(
        &mut self,
        mut items: I,
        ahead: impl Fn(&Self, I::Item) -> T,
        mut each: impl FnMut(&mut Self, T) -> bool,
    ) {
        let mut group = Vec::with_capacity(ABSORB_AHEAD);
        loop {
            group.clear();
            group.extend(items.by_ref().take(ABSORB_AHEAD).map(|x| ahead(self, x)));
            if group.is_empty() {
                return;
            }
            for &g in &group {
                if !each(self, g) {
                    return;
                }
            }
        }
    }

    /// The pieces of 16 bytes or more of [`PieceTable::absorb_with`].
    ///
    /// The home slots of each group of [`ABSORB_AHEAD`] pieces are prefetched before they are
    /// looked up and filled: a batch's 8,600 new 16..=31-byte pieces (gpt2, 100 documents)
    /// took 2.5 ms one at a time, each a miss in the cache.
    fn absorb_mid_long(&mut self, other: &PieceTable, absent: bool) {
        let used = other.mid.slots.iter().filter(|e| e.key[1] != 0);
        self.in_groups(
            used,
            |t, e| (e, t.prefetch_mid(e.key)),
            |t, (e, h)| {
                debug_assert!(!absent || t.mid.get(e.key, h).is_none());
                if !absent && t.mid.get(e.key, h).is_some() {
                    return true;
                }
                if !t.longer_fit(t.long.bytes()) {
                    return false;
                }
                if let Some(ids) = other.mid_ids(&e.val) {
                    t.insert_mid(e.key, ids);
                }
                true
            },
        );
        // the pieces of 32 bytes or more, each group's home slots prefetched first
        self.in_groups(
            other.long.iter(),
            |t, (piece, h, ids)| {
                t.long.prefetch(h);
                (piece, h, ids)
            },
            |t, (piece, h, ids)| {
                debug_assert!(!absent || t.long.get(piece, h).is_none());
                if absent || t.long.get(piece, h).is_none() {
                    t.insert_long_hashed(piece, h, ids);
                }
                true
            },
        );
    }

    /// Insert each `(key, ids)` in turn (keys absent, short), the home bucket of each prefetched
    /// [`INSERT_AHEAD`] inserts before it is filled; the same table as inserting them one by
    /// one. Building the seed (~100 k keys into a 16 MiB table) waited for each bucket in turn;
    /// in groups of 16 (all prefetched, then all filled) the first inserts of a group still
    /// waited for the loads just issued.
    pub fn insert_many<'a>(&mut self, items: impl IntoIterator<Item = (u128, &'a [u32])>) {
        let mut ring: [(u128, u64, &[u32]); INSERT_AHEAD] = [(0, 0, &[]); INSERT_AHEAD];
        let mut n = 0usize;
        for (key, ids) in items {
            let slot = &mut ring[n % INSERT_AHEAD];
            if n >= INSERT_AHEAD {
                let (k, h, v) = *slot;
                self.insert_hashed(k, h, v);
            }
            *slot = (key, self.prefetch(key), ids);
            n += 1;
        }
        for i in n.saturating_sub(INSERT_AHEAD)..n {
            let (k, h, v) = ring[i % INSERT_AHEAD];
            self.insert_hashed(k, h, v);
        }
    }

    /// The slot value for `ids`: inline ([`inline_value`]) or [`ARENA`], the offset of the ids
    /// in the arena and their count; `None` when the arena is at its bound.
    fn value(&mut self, ids: &[u32]) -> Option<[u32; 4]> {
        if let Some(val) = inline_value(ids, self.narrow) {
            return Some(val);
        }
        self.arena_value(ids)
    }

    /// [`ARENA`], the offset of `ids` appended to the arena and their count; `None` when the
    /// arena is at its bound.
    fn arena_value(&mut self, ids: &[u32]) -> Option<[u32; 4]> {
        if self.arena.len() + ids.len() > self.limit.saturating_mul(2)
            || self.arena.len() > u32::MAX as usize
        {
            return None;
        }
        let val = [self.arena.len() as u32, ids.len() as u32, 0, ARENA << 24];
        self.arena.extend_from_slice(ids);
        Some(val)
    }

    pub fn len(&self) -> usize {
        self.len
    }
    /// Most short entries this table stores.
    pub fn limit(&self) -> usize {
        self.limit
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes held (slots, arena, long pieces).
    pub fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
            + self.arena.capacity() * 4
            + self.long.bytes()
            + self.mid.slots.len() * std::mem::size_of::<MidEntry>()
    }
    /// Pieces of either length stored.
    pub fn entries(&self) -> usize {
        self.len + self.mid.len + self.long.len()
    }
    pub fn slots(&self) -> usize {
        self.buckets.len() * 2
    }
    /// Whether another entry may be stored.
    #[inline]
    pub fn full(&self) -> bool {
        self.len >= self.limit
    }

    /// Start loading the bucket of `key` into the cache; returns the key's hash for
    /// [`PieceTable::get_hashed`].
    #[inline]
    pub fn prefetch(&self, key: u128) -> u64 {
        let h = hash(key);
        let i = (h >> self.shift) as usize & (self.buckets.len() - 1);
        if let Some(b) = self.buckets.get(i) {
            prefetch_bucket(b);
        }
        h
    }

    /// [`PieceTable::prefetch`] for a piece of 16..=31 bytes ([`pack_mid`]).
    #[inline]
    pub fn prefetch_mid(&self, key: [u128; 2]) -> u64 {
        let h = hash_mid(key);
        #[cfg(target_arch = "x86_64")]
        if let Some(e) = self.mid.slots.get(self.mid.home(h)) {
            // SAFETY: a prefetch hint has no effect on memory; the address is a live slot.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>((e as *const MidEntry).cast::<i8>());
            }
        }
        h
    }

    /// Start loading the home slot of a piece longer than [`MID_KEY_LEN`]; returns its hash for
    /// [`PieceTable::get_long_hashed`]. Out of line and cold, taking the piece as a span of
    /// `bytes`: one piece in 170 takes it, and inlined (its hash, the slice's bounds check)
    /// it cost the encoder's pack loop four instructions for every piece.
    #[cold]
    #[inline(never)]
    pub fn prefetch_long(&self, bytes: &[u8], start: usize, end: usize) -> u64 {
        let piece = bytes.get(start..end).unwrap_or(&[]);
        let h = hash_long(piece);
        self.long.prefetch(h);
        h
    }

    /// The value stored for a piece of 16..=31 bytes when it sits in its home slot:
    /// `[count, id0, .., id6]` (for `count > 7` the ids are in the arena, at the offset in lane
    /// 1: [`PieceTable::arena_ids`] of `offset | count << 32`). `None` says nothing:
    /// the piece may be further along its probe chain ([`PieceTable::get_long`]).
    #[inline(always)]
    pub fn get_mid_home(&self, key: [u128; 2], h: u64) -> Option<[u32; 8]> {
        let e = self.mid.slots.get(self.mid.home(h))?;
        (e.key == key).then_some(e.val)
    }

    /// The arena ids of an entry whose lanes 0 and 1 ([`Homes::probe`], count above [`INLINE`])
    /// are `lanes`: offset and count.
    #[inline]
    pub fn arena_ids(&self, lanes: u64) -> Option<&[u32]> {
        let (s, c) = (lanes as u32 as usize, (lanes >> 32) as usize);
        self.arena.get(s..s + c)
    }

    /// The home buckets of short keys, for [`Homes::probe`] in a loop (the bucket slice and the
    /// shift stay in registers).
    #[inline(always)]
    pub fn homes(&self) -> Homes<'_> {
        Homes {
            buckets: &self.buckets,
            shift: self.shift,
        }
    }

    /// The ids stored for `key`, if any.
    #[inline]
    pub fn get(&self, key: u128) -> Option<Found<'_>> {
        self.get_hashed(key, hash(key))
    }

    /// [`PieceTable::get`] with the key's hash already computed.
    #[inline]
    pub fn get_hashed(&self, key: u128, h: u64) -> Option<Found<'_>> {
        let mask = self.buckets.len() - 1;
        let mut i = (h >> self.shift) as usize;
        loop {
            let b = &self.buckets[i & mask].0;
            for e in b {
                if e.key == key {
                    return Some(self.found(e.val));
                }
                if e.key == 0 {
                    return None;
                }
            }
            i += 1;
        }
    }

    /// The ids of a value of this table: inline, or in its arena.
    #[inline]
    fn found(&self, val: [u32; 4]) -> Found<'_> {
        match unpack_value(val, self.narrow) {
            Ok((c, v)) => Found::Inline(c, v),
            Err((s, c)) => Found::Arena(self.arena.get(s..s + c).unwrap_or(&[])),
        }
    }

    /// Move `key` (hash `h`), if it sits past its home bucket, into that bucket's first
    /// slot; the entry there moves to the second slot and the second slot's entry to where
    /// `key` was. A piece found past its home bucket leaves the encoder's one-branch loop for
    /// its slow path ([`Homes::probe`] reads the home bucket only); moved home, its next
    /// lookups stay in the loop. This keeps every key findable: the table never deletes, so
    /// every slot from a key's home up to where it sits is full, and the entry sent to
    /// `key`'s old place (whose home is at or before `key`'s home bucket) is still reached
    /// by its probe through full slots. Recently promoted entries keep their home slots
    /// (the second slot's entry, promoted earliest, leaves first).
    pub fn promote(&mut self, key: u128, h: u64) {
        let mask = self.buckets.len() - 1;
        let home = (h >> self.shift) as usize & mask;
        let mut i = home;
        loop {
            let b = &self.buckets[i].0;
            let Some(s) = b.iter().position(|e| e.key == key || e.key == 0) else {
                i = (i + 1) & mask;
                if i == home {
                    return;
                }
                continue;
            };
            if b[s].key == 0 || i == home {
                return;
            }
            let found = self.buckets[i].0[s];
            let [first, second] = self.buckets[home].0;
            self.buckets[home].0 = [found, first];
            self.buckets[i].0[s] = second;
            return;
        }
    }

    /// Store `ids` for `key` (absent), unless the table or the arena is full. `ids` is
    /// non-empty.
    pub fn insert(&mut self, key: u128, ids: &[u32]) {
        self.insert_hashed(key, hash(key), ids);
    }

    /// [`PieceTable::insert`] with the key's hash already computed.
    fn insert_hashed(&mut self, key: u128, h: u64, ids: &[u32]) {
        debug_assert!(key != 0 && !ids.is_empty() && h == hash(key));
        if self.full() || ids.is_empty() || ids.len() > u32::MAX as usize {
            return;
        }
        let Some(val) = self.value(ids) else {
            return;
        };
        if (self.len + 1) * 4 > self.buckets.len() * 2 * 3 {
            self.grow_to(self.buckets.len() * 2);
            self.place(Entry { key, val });
        } else {
            self.place_hashed(Entry { key, val }, h);
        }
        self.fresh = false;
        self.len += 1;
    }

    fn place(&mut self, e: Entry) {
        self.place_hashed(e, hash(e.key));
    }

    fn place_hashed(&mut self, e: Entry, h: u64) {
        let mask = self.buckets.len() - 1;
        let mut i = (h >> self.shift) as usize;
        loop {
            for slot in &mut self.buckets[i & mask].0 {
                if slot.key == 0 {
                    *slot = e;
                    return;
                }
            }
            i += 1;
        }
    }

    /// Rehash into `size` buckets (a power of two, larger than now): in place when the
    /// buckets' reserved room holds `size` ([`PieceTable::with_room`]), else into a new
    /// allocation.
    #[cold]
    fn grow_to(&mut self, size: usize) {
        if size <= self.buckets.capacity() {
            self.grow_in_place(size);
            return;
        }
        let old = std::mem::replace(&mut self.buckets, buckets_like(size, &[], 0));
        self.shift = 64 - size.trailing_zeros();
        for b in old {
            for e in b.0 {
                if e.key != 0 {
                    self.place(e);
                }
            }
        }
    }

    /// [`PieceTable::grow_to`] within the reserved room, keeping the order in which a fresh
    /// table would take the entries (the old buckets in turn), so the same entries sit in their
    /// home bucket as after a rehash into a new allocation. The old buckets are first copied
    /// into the new half and cleared; then each copied bucket in turn gives its entries to the
    /// first empty slot from their new home up, below that bucket: everything below it already
    /// holds only re-placed entries (or none), everything from it up is still to be visited or
    /// empty. The few entries whose probe would reach it (homes near the top, or probes that
    /// wrap around) are re-placed last, by a plain insert into the finished table.
    fn grow_in_place(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two() && size > self.buckets.len());
        debug_assert!(size <= self.buckets.capacity());
        let old = self.buckets.len();
        self.buckets.extend_from_within(..);
        self.buckets.resize(size, Bucket::default());
        self.buckets[..old].fill(Bucket::default());
        self.shift = 64 - size.trailing_zeros();
        let mut later = Vec::new();
        for i in old..2 * old {
            for s in 0..2 {
                let e = std::mem::take(&mut self.buckets[i].0[s]);
                if e.key != 0 && !self.place_below(e, i) {
                    later.push(e);
                }
            }
        }
        for e in later {
            self.place(e);
        }
    }

    /// Put `e` into the first empty slot from its home bucket up, below bucket `end` (not
    /// wrapping around); false when there is none.
    fn place_below(&mut self, e: Entry, end: usize) -> bool {
        let home = (hash(e.key) >> self.shift) as usize;
        for b in self.buckets.get_mut(home..end).into_iter().flatten() {
            for slot in &mut b.0 {
                if slot.key == 0 {
                    *slot = e;
                    return true;
                }
            }
        }
        false
    }

    /// [`PieceTable::with_layout`] with room reserved (not touched) for the buckets `limit`
    /// allows, up to [`ROOM_BUCKETS`], and for the 16..=31-byte slots its bound allows, up to
    /// [`ROOM_MID_SLOTS`]: their growth then doubles in place ([`PieceTable::grow_to`]) and
    /// touches only the new half. Reserved room is address space, not memory, until used.
    fn with_room(n: usize, limit: usize, narrow: bool) -> PieceTable {
        let mut room = 4;
        while limit.saturating_mul(4) > room * 2 * 3 && room < ROOM_BUCKETS {
            room *= 2;
        }
        // the 16..=31-byte table up to the size its bound allows (see `insert_long`)
        let mut mid_room = 16;
        while 2 * mid_room * std::mem::size_of::<MidEntry>() <= limit.saturating_mul(16)
            && mid_room < ROOM_MID_SLOTS
        {
            mid_room *= 2;
        }
        Self::sized(n, limit, narrow, room, mid_room)
    }
}

/// What every lent table starts with: the encoding of every short token, as a list (key and
/// ids, in the order they are inserted) rather than a table, so that a lent table is built
/// straight into its own buckets (reserved for its limit, sized past the growth its first
/// misses would cause) instead of being a copy of a table kept only to be copied.
pub struct Seed {
    keys: Vec<u128>,
    /// where each key's ids end in `ids` (they start where the previous key's end)
    ends: Vec<usize>,
    ids: Vec<u32>,
    narrow: bool,
}

impl Seed {
    /// An empty seed whose tables use the value layout `narrow` ([`PieceTable::with_layout`]).
    pub fn new(narrow: bool) -> Self {
        Self {
            keys: Vec::new(),
            ends: Vec::new(),
            ids: Vec::new(),
            narrow,
        }
    }

    /// Room for `n` keys.
    pub fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
        self.ends.reserve(n);
    }

    /// Add a short key (absent so far) and the ids it encodes to.
    pub fn push(&mut self, key: u128, ids: &[u32]) {
        debug_assert!(key != 0 && !ids.is_empty());
        self.ids.extend_from_slice(ids);
        self.keys.push(key);
        self.ends.push(self.ids.len());
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A seeded table of limit `limit` (at least [`Seed::len`]) holding every key, inserted in
    /// order (the table [`PieceTable::insert`] one at a time would give, growth aside), sized
    /// for `1 / SEED_SLACK` more entries than the seed's so that its first misses do not grow
    /// it, with room reserved ([`PieceTable::with_room`]).
    fn table(&self, limit: usize) -> PieceTable {
        let n = self.len();
        let mut t = PieceTable::with_room(n + n / SEED_SLACK, limit, self.narrow);
        // every key, whatever the arena's bound (the seed is stored whole, as before the limit)
        t.limit = usize::MAX;
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        t.insert_many(
            self.keys
                .iter()
                .zip(starts.zip(&self.ends))
                .filter_map(|(&key, (s, &e))| Some((key, self.ids.get(s..e)?))),
        );
        debug_assert_eq!(t.len(), n);
        t.limit = limit;
        t.seeded = true;
        t.fresh = true;
        t
    }
}

/// A table built from a [`Seed`] of `n` keys is sized for `n + n / SEED_SLACK` entries: a seed
/// just under the growth threshold (o200k's fills its table to 72 %) would otherwise grow at
/// its first misses.
const SEED_SLACK: usize = 16;

/// What [`PieceCache::info`] reports, summed over the model's tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// tables (one per encoding thread that ever ran at once)
    pub tables: usize,
    /// pieces stored, seed included
    pub entries: usize,
    /// seeded entries per table (0 before the first encode, or when the limit is below it)
    pub seed: usize,
    /// slots allocated
    pub slots: usize,
    /// bytes held by the tables
    pub bytes: usize,
    /// most entries a table may hold
    pub limit: usize,
}

/// The tables of one model: a lazily built seed and a pool of tables lent to encoding calls.
pub struct PieceCache {
    seed: OnceLock<Seed>,
    /// Shared with a merge of the pool that runs after the batch that asked for it
    /// ([`PieceCache::merge_pool`]).
    pool: Arc<Pool>,
    limit: AtomicUsize,
}

/// The tables not lent, and whether a merge of them is under way.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    /// Signalled when a merge ends.
    merged: Condvar,
}

#[derive(Default)]
struct PoolState {
    tables: Vec<PieceTable>,
    /// A merge has taken every table out and will give one back: the id of the process whose
    /// thread runs it.
    merging: Option<u32>,
}

impl Pool {
    /// The pool once no merge is under way (`None` if a thread panicked holding it).
    fn settled(&self) -> Option<MutexGuard<'_, PoolState>> {
        let s = self.state.lock().ok()?;
        let mut s = self
            .merged
            .wait_while(s, |s| s.merging.is_some_and(|p| p == std::process::id()))
            .ok()?;
        // a merge that the parent of a forked process started never ends in the child (its
        // thread is not there): the child's calls make new tables
        s.merging = None;
        Some(s)
    }

    /// The tables of a merge given back (`tables`, none when it failed), and the merge over.
    fn merge_done(&self, tables: Vec<PieceTable>, limit: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.tables
                .extend(tables.into_iter().filter(|t| t.limit == limit));
            s.merging = None;
        }
        self.merged.notify_all();
    }
}

/// Ends a merge of the pool even when it panics (its tables are then lost: calls make new
/// ones), so that no call waits for it forever.
struct MergeGuard {
    pool: Arc<Pool>,
    limit: usize,
    merged: Option<PieceTable>,
}

impl Drop for MergeGuard {
    fn drop(&mut self) {
        self.pool
            .merge_done(self.merged.take().into_iter().collect(), self.limit);
    }
}

/// The tables `all` made one: the largest with every piece of the others (within its bound),
/// stored on up to `threads` threads ([`PieceTable::absorb_in_parts`]).
fn merge_tables(mut all: Vec<PieceTable>, threads: usize) -> Option<PieceTable> {
    let k = (0..all.len()).max_by_key(|&k| all[k].len())?;
    let mut into = all.swap_remove(k);
    // a fresh table holds only what every table of this model starts with
    all.retain(|t| !t.fresh());
    into.absorb_in_parts(&all, false, threads);
    Some(into)
}

impl Default for PieceCache {
    fn default() -> Self {
        Self {
            seed: OnceLock::new(),
            pool: Arc::default(),
            limit: AtomicUsize::new(DEFAULT_LIMIT),
        }
    }
}

impl std::fmt::Debug for PieceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PieceCache({:?})", self.info())
    }
}

impl PieceCache {
    /// Most entries per table from now on. Tables over it are dropped (their calls get fresh
    /// ones); ids never depend on it.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        if let Some(mut p) = self.pool.settled() {
            p.tables.retain(|t| t.limit == limit);
        }
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The tables' sizes (once a merge under way has ended).
    pub fn info(&self) -> CacheInfo {
        let mut info = CacheInfo {
            limit: self.limit(),
            seed: self.seed.get().map_or(0, Seed::len),
            ..CacheInfo::default()
        };
        if info.seed > info.limit {
            info.seed = 0;
        }
        if let Some(p) = self.pool.settled() {
            for t in p.tables.iter() {
                info.tables += 1;
                info.entries += t.entries();
                info.slots += t.slots();
                info.bytes += t.bytes();
            }
        }
        info
    }

    /// A table for one call: from the pool (once a merge under way has ended), else a new
    /// table of the seed (built once by `seed`: every short token's encoding). Give it back
    /// with [`PieceCache::give_back`].
    pub fn lend(&self, seed: impl FnOnce() -> Seed) -> PieceTable {
        let limit = self.limit();
        if let Some(t) = self.pool.settled().and_then(|mut p| p.tables.pop()) {
            if t.limit == limit {
                return t;
            }
        }
        let s = self.seed.get_or_init(seed);
        if s.len() <= limit {
            s.table(limit)
        } else {
            PieceTable::with_room(limit.min(1 << 16), limit, false)
        }
    }

    /// A table of the pool that has learnt pieces (once a merge under way has ended), or
    /// `None`: then nothing is built, not even the seed ([`crate::bpe::Bpe::encode_batch`]'s
    /// threads then each borrow a table with [`PieceCache::lend`]). Give it back with
    /// [`PieceCache::give_back`].
    pub fn lend_learnt(&self) -> Option<PieceTable> {
        let limit = self.limit();
        let mut p = self.pool.settled()?;
        let k = p
            .tables
            .iter()
            .rposition(|t| !t.fresh() && t.limit == limit)?;
        Some(p.tables.swap_remove(k))
    }

    /// The tables given back so far made one: the largest with every piece of the others
    /// (within its bound), the others dropped. A batch whose threads each borrowed a table
    /// leaves one table that met every text, for the next batch to share
    /// ([`crate::bpe::Bpe::encode_batch`]).
    ///
    /// The merge runs on the merge thread, so that the batch's call returns before it ends
    /// (it took 7.8 ms of a 110 ms first batch of the benchmark sample on 2 threads, with the
    /// other thread idle), and stores in parts on up to `threads` threads, the batch's
    /// ([`PieceTable::absorb_in_parts`]); until it ends, [`PieceCache::lend`],
    /// [`PieceCache::info`] and [`PieceCache::set_limit`] wait for it. Tables that learnt
    /// nothing need no merge.
    pub fn merge_pool(&self, threads: usize) {
        let all = {
            let Some(mut p) = self.pool.settled() else {
                return;
            };
            if p.tables.iter().filter(|t| !t.fresh()).count() < 2 {
                // nothing learnt (every piece was in the seed): the next batch borrows these
                // tables again (merging dropped all but one, so every batch of such text built
                // a table of the seed for its second thread: 0.4 ms a call of two short texts,
                // 3 ms a call of 100); or one table learnt and the rest hold the seed alone
                if p.tables.iter().any(|t| !t.fresh()) {
                    p.tables.retain(|t| !t.fresh());
                }
                return;
            }
            p.merging = Some(std::process::id());
            std::mem::take(&mut p.tables)
        };
        self.merge_apart(move || merge_tables(all, threads));
    }

    /// `learnt` stored in `into` (a table lent by [`PieceCache::lend_learnt`]), which goes back
    /// to the pool: the tables in which the threads of a batch that shared `into` kept the
    /// pieces it lacked ([`PieceTable::absorb`]; the largest first, all of whose pieces are new
    /// to `into`).
    ///
    /// When they hold at least [`ABSORB_APART`] entries, this runs on the merge thread, as
    /// [`PieceCache::merge_pool`] does, so that the batch's call returns first: a batch of text
    /// the table had not met (the benchmark sample's odd documents after its even ones, 13.75
    /// MB) spent the last 15 of its 78 ms on this, and on the table's growth, with its other
    /// thread idle. A call that wants a table meanwhile waits for it. The stores run in parts
    /// on up to `threads` threads, the batch's ([`PieceTable::absorb_in_parts`]).
    pub fn absorb_and_give_back(
        &self,
        mut into: PieceTable,
        mut learnt: Vec<PieceTable>,
        threads: usize,
    ) {
        learnt.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let entries: usize = learnt.iter().map(PieceTable::entries).sum();
        let absorb = move |into: &mut PieceTable| into.absorb_in_parts(&learnt, true, threads);
        if entries < ABSORB_APART {
            absorb(&mut into);
            self.give_back(into);
            return;
        }
        {
            let Some(mut p) = self.pool.settled() else {
                return;
            };
            p.merging = Some(std::process::id());
        }
        self.merge_apart(move || {
            absorb(&mut into);
            Some(into)
        });
    }

    /// `merge` run on the process's merge thread ([`merger`]), the pool marked as merging (by
    /// the caller), its table given back to the pool when it ends (or none, when it panics or
    /// no thread can be had: the next calls then make new tables).
    fn merge_apart(&self, merge: impl FnOnce() -> Option<PieceTable> + Send + 'static) {
        let mut guard = MergeGuard {
            pool: Arc::clone(&self.pool),
            limit: self.limit(),
            merged: None,
        };
        let job: merger::Job = Box::new(move || {
            guard.merged = merge();
            drop(guard);
        });
        // on the process's merge thread, else on a thread of its own; with no thread to be had
        // the job is dropped with its guard, which ends the merge without its tables (the next
        // calls make new ones)
        if let Err(job) = merger::run(job) {
            let _ = std::thread::Builder::new()
                .name("tokforge-merge".into())
                .spawn(job);
        }
    }

    /// Return a table lent by [`PieceCache::lend`].
    pub fn give_back(&self, t: PieceTable) {
        if t.limit != self.limit() {
            return;
        }
        if let Ok(mut p) = self.pool.state.lock() {
            p.tables.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_at_equals_pack_and_keys_differ_by_length() {
        let text = b"hello world, a longer text than sixteen bytes";
        for start in 0..text.len() {
            for n in 1..=MAX_KEY_LEN.min(text.len() - start) {
                assert_eq!(
                    pack_at(text, start, n),
                    pack(&text[start..start + n]),
                    "{start} {n}"
                );
            }
        }
        assert_ne!(pack(b"a"), pack(b"a\0"));
        assert_ne!(pack(b"\0"), 0);
    }

    #[test]
    fn low_bytes_is_the_mask_of_the_low_bytes() {
        for (n, &[lo, hi]) in KEY_MASKS.iter().enumerate() {
            assert_eq!(low_bytes(n), (1u128 << (8 * n)) - 1, "{n}");
            assert_eq!(u128::from(lo) | (u128::from(hi) << 64), low_bytes(n), "{n}");
        }
    }

    /// Checks [`Homes::probe`] against [`PieceTable::get`] on a table of the layout `NARROW`:
    /// keys in their home bucket or further along, values inline (1..=4 ids, narrow 1..=7) or in
    /// the arena (more ids, or an id too large for the layout), absent keys and NOT_SHORT.
    fn home_probe_agrees_with_the_lookup<const NARROW: bool>() {
        let mut t = PieceTable::with_layout(0, 100_000, NARROW);
        let keys: Vec<u128> = (0..3000u32)
            .map(|i| pack(format!("p{i}").as_bytes()))
            .collect();
        let (most, big) = if NARROW {
            (INLINE16, 1 << 16)
        } else {
            (INLINE, 1 << 24)
        };
        let ids = |i: usize| -> Vec<u32> {
            let big = if i.is_multiple_of(7) { big } else { 0 };
            (0..(i % (most + 2)) as u32 + 1)
                .map(|j| ((i as u32 * 10 + j) % 60_000) | big)
                .collect()
        };
        for (i, &k) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 2) {
            t.insert(k, &ids(i));
        }
        let homes = t.homes();
        let (mut home, mut away, mut arena, mut full) = (0, 0, 0, 0);
        for (i, &k) in keys.iter().chain(&[NOT_SHORT, pack(b"absent")]).enumerate() {
            let (val, count) = homes.probe::<NARROW>(k, hash(k));
            let lanes: Vec<u32> = if NARROW {
                (0..8)
                    .map(|l| (val[l / 2] >> (16 * (l % 2))) & 0xffff)
                    .collect()
            } else {
                val.to_vec()
            };
            match t.get(k) {
                Some(Found::Inline(c, v)) if count != 0 => {
                    assert_eq!(
                        (count, lanes[..c as usize].to_vec()),
                        (c, v[..c as usize].to_vec())
                    );
                    assert_eq!(v[..c as usize], ids(i)[..]);
                    full += usize::from(c as usize == most);
                    home += 1;
                }
                Some(Found::Arena(got)) if count != 0 => {
                    assert!(count > most as u32);
                    assert_eq!(got, &ids(i)[..]);
                    assert_eq!(t.arena_ids(low_lanes(*val)), Some(got));
                    home += 1;
                    arena += 1;
                }
                Some(_) => away += 1,
                None => assert_eq!(count, 0, "{k:x}"),
            }
        }
        assert!(
            home > 1000 && away > 0 && arena > 100 && full > 50,
            "{home} {away} {arena} {full}"
        );
        assert_eq!(homes.probe::<NARROW>(NOT_SHORT, 0).1, 0);
    }

    #[test]
    fn the_home_probe_agrees_with_the_lookup() {
        home_probe_agrees_with_the_lookup::<false>();
    }

    #[test]
    fn the_narrow_home_probe_agrees_with_the_lookup() {
        home_probe_agrees_with_the_lookup::<true>();
    }

    /// [`PieceTable::promote`] moves a key found past its home bucket into it and leaves every
    /// key findable with its ids, on a table loaded to its growth threshold, through growth
    /// after promotions, for keys that wrap around the end of the table too.
    #[test]
    fn promoted_keys_move_home_and_every_key_stays_found() {
        let mut t = PieceTable::with_capacity(0, 100_000);
        let keys: Vec<u128> = (0..6000u32)
            .map(|i| pack(format!("k{i}").as_bytes()))
            .collect();
        let ids =
            |i: usize| -> Vec<u32> { (0..(i % 6) as u32 + 1).map(|j| i as u32 * 8 + j).collect() };
        let check = |t: &PieceTable, upto: usize| {
            for (i, &k) in keys[..upto].iter().enumerate() {
                let got: Vec<u32> = match t.get(k) {
                    Some(Found::Inline(c, v)) => v[..c as usize].to_vec(),
                    Some(Found::Arena(a)) => a.to_vec(),
                    None => panic!("key {i} lost"),
                };
                assert_eq!(got, ids(i), "key {i}");
            }
            assert!(t.get(pack(b"absent")).is_none());
        };
        let at_home = |t: &PieceTable, k: u128| t.homes().probe::<false>(k, hash(k)).1 != 0;
        let mut next = super::super::xorshift(0x2545_f491_4f6c_dd1d);
        // 3000 keys: the table's threshold is 3/4 of its slots, so many sit past their home
        for (i, &k) in keys[..3000].iter().enumerate() {
            t.insert(k, &ids(i));
        }
        let away: Vec<usize> = (0..3000)
            .filter(|&i| ids(i).len() <= INLINE && !at_home(&t, keys[i]))
            .collect();
        assert!(away.len() > 100, "{}", away.len());
        let mut moved = 0;
        for _ in 0..20_000 {
            let i = next() as usize % 3000;
            let k = keys[i];
            let was_home = t.homes().probe::<false>(k, hash(k)).1 != 0;
            t.promote(k, hash(k));
            if ids(i).len() <= INLINE {
                // inline values: the home probe now answers with the ids
                assert!(at_home(&t, k), "key {i}");
                moved += usize::from(!was_home);
            }
        }
        assert!(moved > 100, "{moved}");
        check(&t, 3000);
        t.promote(pack(b"absent"), hash(pack(b"absent")));
        check(&t, 3000);
        // growth re-places the promoted layout; more promotions after it
        for (i, &k) in keys.iter().enumerate().skip(3000) {
            t.insert(k, &ids(i));
        }
        for _ in 0..20_000 {
            let k = keys[next() as usize % 6000];
            t.promote(k, hash(k));
        }
        check(&t, 6000);
        assert_eq!(t.len(), 6000);
    }

    #[test]
    fn values_of_up_to_four_small_ids_are_inline() {
        for ids in [
            &[7][..],
            &[0, 1],
            &[1 << 24, u32::MAX, 5],
            &[1, 2, 3, 4],
            &[u32::MAX, 0, 0, (1 << 24) - 1],
        ] {
            let v = inline_value(ids, false);
            assert!(v.is_some(), "{ids:?}");
            let (c, lanes) = v
                .map(|v| unpack_value(v, false))
                .and_then(Result::ok)
                .unwrap_or_default();
            assert_eq!(&lanes[..c as usize], ids);
        }
        for ids in [&[][..], &[1, 2, 3, 1 << 24], &[1, 2, 3, 4, 5]] {
            assert_eq!(inline_value(ids, false), None, "{ids:?}");
        }
    }

    #[test]
    fn narrow_values_of_up_to_seven_ids_below_65536_are_inline() {
        for n in 1..=INLINE16 {
            for top in [0, 1, 255, 256, 65_534, 65_535] {
                let ids: Vec<u32> = (0..n as u32).map(|j| top - j.min(top)).collect();
                let v = inline_value(&ids, true);
                assert!(v.is_some(), "{ids:?}");
                let (c, lanes) = v
                    .map(|v| unpack_value(v, true))
                    .and_then(Result::ok)
                    .unwrap_or_default();
                assert_eq!(&lanes[..c as usize], &ids[..], "{ids:?}");
                assert!(lanes[c as usize..].iter().all(|&l| l == 0));
            }
        }
        for ids in [
            &[][..],
            &[65_536],
            &[1, 2, 3, 4, 5, 6, 65_536],
            &[u32::MAX],
            &[1, 2, 3, 4, 5, 6, 7, 8],
        ] {
            assert_eq!(inline_value(ids, true), None, "{ids:?}");
        }
    }

    #[test]
    fn a_narrow_table_keeps_large_ids_and_long_values_in_the_arena() {
        let mut t = PieceTable::with_layout(0, 1000, true);
        assert!(t.narrow() && !PieceTable::with_capacity(0, 1000).narrow());
        let values: [&[u32]; 6] = [
            &[65_535; 7],
            &[65_536],
            &[1, 65_536],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[u32::MAX, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0; 7],
        ];
        for (i, ids) in values.iter().enumerate() {
            t.insert(pack(&[b'a' + i as u8]), ids);
        }
        for (i, ids) in values.iter().enumerate() {
            let key = pack(&[b'a' + i as u8]);
            let got = match t.get(key) {
                Some(Found::Inline(c, v)) => {
                    assert!(i == 0 || i == 5, "{i}");
                    v[..c as usize].to_vec()
                }
                Some(Found::Arena(s)) => {
                    assert!(!(i == 0 || i == 5), "{i}");
                    s.to_vec()
                }
                None => Vec::new(),
            };
            assert_eq!(got, ids.to_vec(), "{i}");
            let (_, count) = t.homes().probe::<true>(key, hash(key));
            assert_eq!(count <= INLINE16 as u32, i == 0 || i == 5, "{i}");
        }
        // a wide table takes a narrow one's pieces unchanged
        let mut wide = PieceTable::with_capacity(0, 1000);
        wide.absorb(&t);
        for (i, ids) in values.iter().enumerate() {
            let got = match wide.get(pack(&[b'a' + i as u8])) {
                Some(Found::Inline(c, v)) => v[..c as usize].to_vec(),
                Some(Found::Arena(s)) => s.to_vec(),
                None => Vec::new(),
            };
            assert_eq!(got, ids.to_vec(), "{i}");
        }
    }

    #[test]
    fn stores_inline_and_arena_values_grows_and_stops_at_the_limit() {
        let mut t = PieceTable::with_capacity(0, 1000);
        let keys: Vec<Vec<u8>> = (0..1500u32).map(|i| format!("k{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            let ids: Vec<u32> = (0..(i % 4) as u32 + 1).map(|j| i as u32 * 10 + j).collect();
            assert!(t.get(pack(k)).is_none());
            t.insert(pack(k), &ids);
        }
        assert_eq!(t.len(), 1000);
        for (i, k) in keys.iter().enumerate() {
            let want: Vec<u32> = (0..(i % 4) as u32 + 1).map(|j| i as u32 * 10 + j).collect();
            let got = match t.get(pack(k)) {
                None => None,
                Some(Found::Inline(c, v)) => Some(v[..c as usize].to_vec()),
                Some(Found::Arena(s)) => Some(s.to_vec()),
            };
            if i < 1000 {
                assert_eq!(got, Some(want), "{i}");
            } else {
                assert_eq!(got, None, "{i}");
            }
        }
        assert!(t.slots() >= 1000 * 4 / 3);
    }

    /// Growth in place ([`PieceTable::with_room`]'s room) keeps every entry reachable, from 4
    /// buckets (where probes wrap around the end) through several doublings, and by more than
    /// a doubling at once (`absorb`); it leaves the same entries as growth into a new
    /// allocation, and the same in their home bucket but for the few placed last.
    #[test]
    fn growth_in_place_keeps_every_entry() {
        let ids = |i: u32| -> Vec<u32> { (0..i % 6 + 1).map(|j| i * 10 + j).collect() };
        let key = |i: u32| pack(format!("g{i}").as_bytes());
        let value = |t: &PieceTable, k: u128| match t.get(k) {
            None => None,
            Some(Found::Inline(c, v)) => Some(v[..c as usize].to_vec()),
            Some(Found::Arena(s)) => Some(s.to_vec()),
        };
        let at_home = |t: &PieceTable, k: u128| {
            let i = (hash(k) >> t.shift) as usize;
            t.buckets[i].0.iter().any(|e| e.key == k)
        };
        let mut room = PieceTable::with_room(0, 100_000, false);
        let mut plain = PieceTable::with_capacity(0, 100_000);
        assert!(room.buckets.capacity() >= 1 << 16 && plain.buckets.capacity() < 16);
        for i in 0..20_000u32 {
            room.insert(key(i), &ids(i));
            plain.insert(key(i), &ids(i));
            if i.is_power_of_two() || i % 997 == 0 {
                assert_eq!(room.buckets.len(), plain.buckets.len());
                for j in 0..=i {
                    assert_eq!(value(&room, key(j)), Some(ids(j)), "{i} {j}");
                }
            }
        }
        // pieces of 16..=31 bytes grow their table in place too
        let pieces: Vec<Vec<u8>> = (0..5000usize)
            .map(|i| {
                format!("{i:05} is a piece of 16 to 31 bytes").into_bytes()[..16 + i % 16].to_vec()
            })
            .collect();
        assert!(room.mid.slots.capacity() >= 1 << 14);
        for (i, p) in pieces.iter().enumerate() {
            assert!(room.get_long(p).is_none(), "{i}");
            room.insert_long(p, &ids(i as u32));
            plain.insert_long(p, &ids(i as u32));
        }
        assert_eq!(room.mid.slots.len(), plain.mid.slots.len());
        for (i, p) in pieces.iter().enumerate() {
            assert_eq!(room.get_long(p), Some(&ids(i as u32)[..]), "{i}");
        }
        let home = |t: &PieceTable| (0..20_000).filter(|&i| at_home(t, key(i))).count();
        let (a, b) = (home(&room), home(&plain));
        assert!(a.abs_diff(b) < 100, "{a} {b}");
        // more than a doubling at once
        let mut big = PieceTable::with_room(0, 100_000, false);
        big.insert(pack(b"first"), &[1]);
        big.absorb(&room);
        assert_eq!(big.len(), 20_001);
        for i in 0..20_000u32 {
            assert_eq!(value(&big, key(i)), Some(ids(i)), "{i}");
        }
        assert_eq!(value(&big, pack(b"absent")), None);
    }

    /// Pieces over 31 bytes stop at the bound (their slots and arena with the 16..=31-byte
    /// slots within `16 * limit` bytes), keep what they stored, and a batch's absorb adds
    /// another table's within the same bound.
    #[test]
    fn long_pieces_stop_at_the_bound_and_absorb_within_it() {
        let ids =
            |i: usize| -> Vec<u32> { (0..(i % 9) as u32 + 1).map(|j| i as u32 * 16 + j).collect() };
        let piece =
            |i: usize| format!("{i:>6}: {}", "\u{4e2d}\u{6587}".repeat(4 + i % 20)).into_bytes();
        let value = |t: &PieceTable, i: usize| t.get_long(&piece(i)).map(<[u32]>::to_vec);
        let long_bytes =
            |t: &PieceTable| t.long.bytes() + t.mid.slots.len() * std::mem::size_of::<MidEntry>();
        let limit = 2000;
        let mut t = PieceTable::with_capacity(0, limit);
        for i in 0..3000 {
            assert_eq!(value(&t, i), None);
            t.insert_long(&piece(i), &ids(i));
            assert!(long_bytes(&t) <= 16 * limit, "{i}");
        }
        let kept = (0..3000).filter(|&i| value(&t, i).is_some()).count();
        assert!(kept > 100 && kept < 3000, "{kept}");
        assert_eq!(t.entries(), kept);
        for i in 0..3000 {
            assert!(
                value(&t, i).is_none() || value(&t, i) == Some(ids(i)),
                "{i}"
            );
        }
        // the first pieces are kept (inserting stops, it never evicts)
        assert!((0..kept).all(|i| value(&t, i) == Some(ids(i))));
        // absorb: a table with room takes every piece of another, hashes reused
        let mut big = PieceTable::with_capacity(0, 1 << 20);
        big.insert_long(&piece(5000), &ids(5000));
        big.absorb(&t);
        assert_eq!(big.entries(), kept + 1);
        for i in (0..kept).chain([5000]) {
            assert_eq!(value(&big, i), Some(ids(i)), "{i}");
            let p = piece(i);
            let h = big.prefetch_long(&p, 0, p.len());
            assert_eq!(big.get_long_hashed(&p, h), Some(&ids(i)[..]), "{i}");
        }
        // and a full table absorbs within its bound
        let mut small = PieceTable::with_capacity(0, 200);
        small.absorb(&t);
        assert!(small.entries() > 0 && small.entries() < kept);
        assert!(long_bytes(&small) <= 16 * 200);
        for i in 0..kept {
            assert!(
                value(&small, i).is_none() || value(&small, i) == Some(ids(i)),
                "{i}"
            );
        }
    }

    #[test]
    fn long_pieces_of_every_length_round_trip() {
        let mut t = PieceTable::with_capacity(0, 1000);
        // lengths on both sides of the packed (16..=31) and the plain map, pieces that differ
        // only in their last byte or in a trailing NUL, values inline and in the arena
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for n in 16..=40usize {
            let p: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let mut q = p.clone();
            q[n - 1] = b'#';
            let mut z = p.clone();
            z.push(0);
            pieces.extend([p, q, z]);
        }
        for (i, p) in pieces.iter().enumerate() {
            assert!(t.get_long(p).is_none());
            let ids: Vec<u32> = (0..(i % 6) as u32 + 1).map(|j| i as u32 * 10 + j).collect();
            t.insert_long(p, &ids);
        }
        for (i, p) in pieces.iter().enumerate() {
            let ids: Vec<u32> = (0..(i % 6) as u32 + 1).map(|j| i as u32 * 10 + j).collect();
            assert_eq!(t.get_long(p), Some(&ids[..]), "{}", p.len());
        }
        assert_eq!(t.entries(), pieces.len());
        assert_ne!(pack_mid(&[0; 16]), pack_mid(&[0; 17]));
    }

    /// `insert_many` (the seed's prefetched inserts) lays out exactly the table of inserting
    /// one key at a time, growth and the bound included.
    #[test]
    fn insert_many_equals_inserting_one_by_one() {
        let ids = |i: u32| -> Vec<u32> { (0..i % 6 + 1).map(|j| i * 10 + j).collect() };
        for (n, cap, limit) in [
            (0, 0, 10),
            (INSERT_AHEAD as u32 - 1, 0, 1000),
            (INSERT_AHEAD as u32, 0, 1000),
            (INSERT_AHEAD as u32 + 1, 0, 1000),
            (37, 0, 1000),
            (5000, 5000, usize::MAX),
            (900, 64, 700),
        ] {
            let keys: Vec<(u128, Vec<u32>)> = (0..n)
                .map(|i| (pack(format!("p{i}").as_bytes()), ids(i)))
                .collect();
            let mut one = PieceTable::with_capacity(cap, limit);
            for (k, v) in &keys {
                one.insert(*k, v);
            }
            let mut many = PieceTable::with_capacity(cap, limit);
            many.insert_many(keys.iter().map(|(k, v)| (*k, &v[..])));
            assert_eq!(one.len(), many.len());
            assert_eq!(one.arena, many.arena);
            assert_eq!(one.buckets.len(), many.buckets.len());
            for (a, b) in one.buckets.iter().zip(&many.buckets) {
                for (x, y) in a.0.iter().zip(&b.0) {
                    assert_eq!((x.key, x.val), (y.key, y.val));
                }
            }
        }
    }

    #[test]
    fn overlapping_tables_absorb_into_their_union() {
        let ids = |i: u32| -> Vec<u32> { (0..i % 7 + 1).map(|j| i * 10 + j).collect() };
        let key = |i: u32| format!("k{i}").into_bytes();
        let mid = |i: u32| format!("a mid piece {i:06}").into_bytes();
        let long = |i: u32| format!("a long piece of text, one of many: {i}").into_bytes();
        let mut a = PieceTable::with_capacity(0, 10_000);
        let mut b = PieceTable::with_capacity(0, 10_000);
        for (t, range) in [(&mut a, 0..300u32), (&mut b, 200..500u32)] {
            for i in range {
                t.insert(pack(&key(i)), &ids(i));
                t.insert_long(&mid(i), &ids(i));
                t.insert_long(&long(i), &ids(i));
            }
        }
        a.absorb_overlapping(&b);
        assert_eq!(a.len(), 500);
        for i in 0..500u32 {
            let short = match a.get(pack(&key(i))) {
                Some(Found::Inline(c, v)) => v[..c as usize].to_vec(),
                Some(Found::Arena(s)) => s.to_vec(),
                None => panic!("{i} missing"),
            };
            assert_eq!(short, ids(i), "{i}");
            assert_eq!(a.get_long(&mid(i)), Some(&ids(i)[..]), "{i}");
            assert_eq!(a.get_long(&long(i)), Some(&ids(i)[..]), "{i}");
        }
    }

    #[test]
    fn absorb_adds_every_piece_within_the_bound() {
        let ids = |i: u32| -> Vec<u32> { (0..i % 5 + 1).map(|j| i * 10 + j).collect() };
        let key = |i: u32| format!("k{i}").into_bytes();
        let long = |i: u32| format!("a long piece of text number {i}").repeat(1 + i as usize % 2);
        for limit in [50, 10_000] {
            let mut main = PieceTable::with_capacity(0, limit);
            let mut other = PieceTable::with_capacity(0, limit);
            for i in 0..40u32 {
                main.insert(pack(&key(i)), &ids(i));
            }
            for i in 40..400u32 {
                other.insert(pack(&key(i)), &ids(i));
                other.insert_long(long(i).as_bytes(), &ids(i));
            }
            main.absorb(&other);
            assert_eq!(main.len(), 400.min(limit));
            assert!(main.arena.len() <= 2 * limit);
            let got = |t: &PieceTable, i: u32| match t.get(pack(&key(i))) {
                None => None,
                Some(Found::Inline(c, v)) => Some(v[..c as usize].to_vec()),
                Some(Found::Arena(s)) => Some(s.to_vec()),
            };
            for i in 0..400u32 {
                let g = got(&main, i);
                assert!(g.is_none() || g == Some(ids(i)), "{i}");
                let l = main.get_long(long(i).as_bytes());
                assert!(l.is_none() || l == Some(&ids(i)[..]), "{i}");
                if limit == 10_000 {
                    assert_eq!(g, Some(ids(i)), "{i}");
                    assert!(i < 40 || l.is_some(), "{i}");
                }
            }
        }
    }

    #[test]
    fn the_arena_is_bounded_too() {
        let mut t = PieceTable::with_capacity(0, 10);
        for i in 0..10u32 {
            t.insert(pack(&i.to_le_bytes()), &[i; 6]);
        }
        assert!(t.arena.len() <= 20);
        assert_eq!(t.len(), 3, "only three 6-id values fit 2 * limit arena ids");
    }

    /// A seed of two keys, one with its ids inline and one in the arena.
    fn seed() -> Seed {
        let mut s = Seed::new(false);
        s.push(pack(b"ab"), &[7]);
        s.push(pack(b"cd"), &[8, 9, 10, 11, 12]);
        s
    }

    /// The ids `t` holds for `k` (none when absent).
    fn ids(t: &PieceTable, k: u128) -> Vec<u32> {
        match t.get(k) {
            Some(Found::Inline(c, v)) => v[..c as usize].to_vec(),
            Some(Found::Arena(s)) => s.to_vec(),
            None => Vec::new(),
        }
    }

    #[test]
    fn cache_lends_seeded_tables_and_respects_a_new_limit() {
        let c = PieceCache::default();
        let t = c.lend(seed);
        assert_eq!(t.len(), 2);
        assert!(t.seeded() && t.fresh());
        assert_eq!(ids(&t, pack(b"ab")), [7]);
        assert_eq!(ids(&t, pack(b"cd")), [8, 9, 10, 11, 12]);
        c.give_back(t);
        assert_eq!(c.info().tables, 1);
        c.set_limit(1);
        assert_eq!(c.info().tables, 0);
        let t = c.lend(seed);
        assert_eq!(t.len(), 0, "a seed over the limit is not used");
        c.give_back(t);
        assert_eq!(c.info().seed, 0);
    }

    /// [`PieceCache::lend_learnt`] lends only a table that has learnt pieces, and builds
    /// nothing (not the seed) when there is none.
    #[test]
    fn only_a_table_that_has_learnt_is_lent_as_learnt() {
        let c = PieceCache::default();
        assert!(c.lend_learnt().is_none());
        assert_eq!(c.info().seed, 0, "the seed was built");
        let (mut a, b) = (c.lend(seed), c.lend(seed));
        c.give_back(b);
        assert!(c.lend_learnt().is_none());
        assert_eq!(c.info().tables, 1, "a fresh table left the pool");
        a.insert(pack(b"x"), &[1]);
        c.give_back(a);
        let t = c.lend_learnt().expect("the table that learnt");
        assert_eq!(ids(&t, pack(b"x")), [1]);
        assert_eq!(c.info().tables, 1);
        c.give_back(t);
        c.set_limit(5);
        assert!(
            c.lend_learnt().is_none(),
            "set_cache_limit dropped the tables: none to lend"
        );
    }

    /// [`PieceCache::merge_pool`]: tables that learnt nothing stay as they are (a batch of
    /// whole tokens rebuilt its second table every call); once one has learnt, the largest
    /// takes every other table's pieces and the rest go.
    #[test]
    fn merging_keeps_tables_that_learnt_nothing_and_makes_the_others_one() {
        let c = PieceCache::default();
        let (a, b) = (c.lend(seed), c.lend(seed));
        c.give_back(a);
        c.give_back(b);
        c.merge_pool(2);
        assert_eq!((c.info().tables, c.info().entries), (2, 4));
        let (mut a, mut b, fresh) = (c.lend(seed), c.lend(seed), c.lend(seed));
        a.insert(pack(b"x"), &[1]);
        b.insert(pack(b"y"), &[2, 3]);
        b.insert(pack(b"z"), &[4]);
        for t in [a, fresh, b] {
            c.give_back(t);
        }
        c.merge_pool(2);
        assert_eq!((c.info().tables, c.info().entries), (1, 5));
        let t = c.lend(seed);
        assert_eq!(ids(&t, pack(b"ab")), [7]);
        assert_eq!(ids(&t, pack(b"cd")), [8, 9, 10, 11, 12]);
        for (k, want) in [(&b"x"[..], &[1][..]), (b"y", &[2, 3]), (b"z", &[4])] {
            assert_eq!(ids(&t, pack(k)), want);
        }
    }

    /// A later batch's own tables stored into the table it shared, by the calling thread (few
    /// entries) or on a thread of its own (many): the next call that borrows a table waits for
    /// it and finds one table with every piece of both, a piece both held once.
    #[test]
    fn a_later_batch_s_tables_go_into_the_shared_one_which_the_next_call_finds_whole() {
        // fewer entries than ABSORB_APART (stored by the calling thread), then more (apart)
        for n in [300u32, 3 * ABSORB_APART as u32] {
            let c = PieceCache::default();
            let mut t = c.lend(seed);
            t.insert(pack(b"learnt"), &[1]);
            c.give_back(t);
            let into = c.lend_learnt().expect("a table that learnt");
            let key = |k: u32| pack(&[&[0xff][..], &k.to_le_bytes()].concat());
            let (mut a, mut b) = (
                PieceTable::with_capacity(0, DEFAULT_LIMIT),
                PieceTable::with_capacity(0, DEFAULT_LIMIT),
            );
            // the threads' tables overlap (k % 6 in 0, 2, 4 and not 3: both met it); some
            // values are in the arena
            let val = |k: u32| {
                if k.is_multiple_of(5) {
                    vec![k; 6]
                } else {
                    vec![k, k + 1]
                }
            };
            for k in 0..n {
                if !k.is_multiple_of(3) {
                    a.insert(key(k), &val(k));
                }
                if k.is_multiple_of(2) {
                    b.insert(key(k), &val(k));
                }
            }
            a.insert_long(&[b'x'; 40], &[5, 6]);
            b.insert_long(&[b'y'; 20], &[8]);
            c.absorb_and_give_back(into, vec![b, a], 2);
            // waits for a store under way
            let t = c.lend(seed);
            assert_eq!(ids(&t, pack(b"learnt")), [1]);
            assert_eq!(ids(&t, pack(b"cd")), [8, 9, 10, 11, 12]);
            for k in 0..n {
                let want = if !k.is_multiple_of(3) || k.is_multiple_of(2) {
                    val(k)
                } else {
                    Vec::new()
                };
                assert_eq!(ids(&t, key(k)), want, "n {n}, key {k}");
            }
            assert_eq!(t.get_long(&[b'x'; 40]), Some(&[5, 6][..]));
            assert_eq!(t.get_long(&[b'y'; 20]), Some(&[8][..]));
            let kept = (0..n)
                .filter(|k| !k.is_multiple_of(3) || k.is_multiple_of(2))
                .count();
            assert_eq!(
                t.entries(),
                c.seed.get().map_or(0, Seed::len) + 1 + kept + 2
            );
            c.give_back(t);
            assert_eq!(c.info().tables, 1, "n {n}");
        }
    }

    /// A merge on a thread of its own: every call that borrows a table, and `info`, wait for
    /// it and find the one merged table; many rounds, so that calls land while it runs.
    #[test]
    fn calls_during_a_merge_after_the_batch_wait_for_it() {
        let c = PieceCache::default();
        for round in 0..50u32 {
            let (mut a, mut b) = (c.lend(seed), c.lend(seed));
            let (x, y) = (
                pack(&round.to_le_bytes()),
                pack(&(round + 1000).to_le_bytes()),
            );
            a.insert(x, &[round]);
            b.insert(y, &[round, 1]);
            c.give_back(a);
            c.give_back(b);
            c.merge_pool(2);
            let t = c.lend(seed);
            assert_eq!(ids(&t, x), [round]);
            assert_eq!(ids(&t, y), [round, 1]);
            c.give_back(t);
            assert_eq!(c.info().tables, 1, "round {round}");
        }
    }

    /// A merge started by the parent of a forked process has no thread in the child: the
    /// child's calls go on without its tables instead of waiting for ever.
    #[test]
    fn a_merge_of_another_process_is_not_waited_for() {
        let c = PieceCache::default();
        c.give_back(c.lend(seed));
        if let Ok(mut p) = c.pool.state.lock() {
            p.merging = Some(std::process::id().wrapping_add(1));
        }
        assert_eq!(c.info().tables, 1);
        let t = c.lend(seed);
        assert_eq!(ids(&t, pack(b"ab")), [7]);
    }
}
