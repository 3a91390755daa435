//! Encoding with a [`Bpe`] model: split out allowed special tokens, pre-tokenize, BPE each piece.
//!
//! Per piece: if `ignore_merges` and the piece is a token, emit it (tiktoken, Llama-3). Otherwise
//! start from single bytes and repeatedly apply the adjacent merge of lowest priority, leftmost on
//! ties (HF `BPE::merge_word`; tiktoken's `byte_pair_merge` when priority is the rank of the
//! concatenation): the loops of [`super::merge`].
//!
//! That is the uncached path ([`Bpe::encode_piece`]). Text goes through a [`PieceEncoder`]: the
//! pieces of up to 15 bytes are answered by the model's piece table (docs/bpe.md §13), seeded
//! with every short token and filled by misses, kept across calls; longer pieces are remembered
//! beside it (16..=31 bytes under a packed key, longer ones under a hash of their bytes). A
//! table never changes an id: it stores what the uncached path gives.
//!
//! Special tokens: a leftmost-longest Aho-Corasick automaton over the allowed special texts
//! splits the text; the parts between matches are encoded as ordinary text (tiktoken's
//! `allowed_special`). Checking for disallowed specials is [`SpecialMatcher::find`].

use super::piece_table::{
    self, low_lanes, Found, PieceCache, PieceTable, Seed, INLINE, INLINE16, MAX_INLINE,
    MAX_KEY_LEN, MID_INLINE, MID_KEY_LEN, NOT_SHORT,
};
use super::Bpe;
use crate::error::{Error, Result};
use crate::pretokenize::CHUNK;
#[cfg(target_arch = "x86_64")]
use crate::simd::Level;
pub use crate::special::SpecialMatcher;
use std::mem::ManuallyDrop;
use std::sync::Mutex;

/// Where each token of an encoding came from, in bytes of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// The tables a [`PieceEncoder`] reads and fills: the main table, probed on the hot path, and
/// where its misses go.
pub trait Tables {
    /// The table every piece is looked up in first.
    fn main(&self) -> &PieceTable;
    /// Append the ids of a short piece [`Tables::main`] lacks if another table has them.
    fn find(&self, key: u128, out: &mut Vec<u32>) -> bool;
    /// [`Tables::find`] for a piece longer than [`MAX_KEY_LEN`].
    fn find_long(&self, piece: &[u8], out: &mut Vec<u32>) -> bool;
    /// Remember the ids of a short piece [`Tables::main`] lacks.
    fn store(&mut self, key: u128, ids: &[u32]);
    /// [`Tables::store`] for a piece longer than [`MAX_KEY_LEN`].
    fn store_long(&mut self, piece: &[u8], ids: &[u32]);
    /// Move a short piece found past its home bucket in [`Tables::main`] into that bucket
    /// ([`PieceTable::promote`]), where the main table is this thread's own.
    fn promote(&mut self, key: u128, h: u64);
}

/// A table lent by the model for as long as it lives (one encoding call); given back when
/// dropped. Misses go into it.
pub struct Lent<'a> {
    cache: &'a PieceCache,
    /// Taken out only by `drop` (no empty table is made to take its place: that was an aligned
    /// allocation and three frees on every call, a fifth of a short text's call).
    pub(super) table: ManuallyDrop<PieceTable>,
}

impl Lent<'_> {
    /// The table, no longer given back when dropped.
    pub(super) fn into_table(self) -> PieceTable {
        let mut lent = ManuallyDrop::new(self);
        // SAFETY: `lent` is never dropped, so its `table` is taken out once, here
        unsafe { ManuallyDrop::take(&mut lent.table) }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        // SAFETY: `table` is not used again: this is the `Lent`'s last use of it
        let t = unsafe { ManuallyDrop::take(&mut self.table) };
        self.cache.give_back(t);
    }
}

impl Tables for Lent<'_> {
    #[inline(always)]
    fn main(&self) -> &PieceTable {
        &self.table
    }
    fn find(&self, _: u128, _: &mut Vec<u32>) -> bool {
        false
    }
    fn find_long(&self, _: &[u8], _: &mut Vec<u32>) -> bool {
        false
    }
    fn store(&mut self, key: u128, ids: &[u32]) {
        self.table.insert(key, ids);
    }
    fn store_long(&mut self, piece: &[u8], ids: &[u32]) {
        self.table.insert_long(piece, ids);
    }
    fn promote(&mut self, key: u128, h: u64) {
        self.table.promote(key, h);
    }
}

/// One thread's tables in a batch: the table the batch's threads share, only read (no lock),
/// and a table of the thread's own for the pieces the shared one lacks (no lock either). When
/// the thread is done its table goes to `done`, to be merged into the shared table after the
/// batch ([`Bpe::encode_each`]). A piece new to the shared table is merged once per thread
/// that meets it.
pub struct Shared<'a> {
    pub(super) main: &'a PieceTable,
    /// Taken out only by `drop`.
    own: ManuallyDrop<PieceTable>,
    done: &'a Mutex<Vec<PieceTable>>,
}

impl<'a> Shared<'a> {
    /// `main` shared, with a table of its own of at most `room` short entries.
    pub(super) fn new(main: &'a PieceTable, room: usize, done: &'a Mutex<Vec<PieceTable>>) -> Self {
        Self {
            main,
            // in the shared table's layout, so its values are stored there as they are
            own: ManuallyDrop::new(PieceTable::with_layout(0, room, main.narrow())),
            done,
        }
    }
}

impl Drop for Shared<'_> {
    fn drop(&mut self) {
        // SAFETY: `own` is not used again: this is its last use
        let t = unsafe { ManuallyDrop::take(&mut self.own) };
        if !t.fresh() {
            if let Ok(mut done) = self.done.lock() {
                done.push(t);
            }
        }
    }
}

impl Tables for Shared<'_> {
    #[inline(always)]
    fn main(&self) -> &PieceTable {
        self.main
    }
    fn find(&self, key: u128, out: &mut Vec<u32>) -> bool {
        match self.own.get(key) {
            Some(found) => {
                push_found(found, out);
                true
            }
            None => false,
        }
    }
    fn find_long(&self, piece: &[u8], out: &mut Vec<u32>) -> bool {
        match self.own.get_long(piece) {
            Some(ids) => {
                out.extend_from_slice(ids);
                true
            }
            None => false,
        }
    }
    fn store(&mut self, key: u128, ids: &[u32]) {
        self.own.insert(key, ids);
    }
    fn store_long(&mut self, piece: &[u8], ids: &[u32]) {
        self.own.insert_long(piece, ids);
    }
    /// Nothing: the shared table is only read while the batch runs. (Promoting what the
    /// threads met, when the batch ends, pushed entries met often out of their buckets for the
    /// whole next batch: docs/bpe.md §13.5, fourteenth round.)
    fn promote(&mut self, _: u128, _: u64) {}
}

/// Encodes pieces with the piece tables of [`Tables`]: one per call (or per thread of a
/// batch), not one per piece.
pub struct PieceEncoder<'a, T: Tables = Lent<'a>> {
    pub(super) bpe: &'a Bpe,
    pub(super) t: T,
}

impl<T: Tables> PieceEncoder<'_, T> {
    /// Append the ids of one piece to `out` (the ids of [`Bpe::encode_piece`]).
    #[inline]
    pub fn encode(&mut self, piece: &[u8], out: &mut Vec<u32>) {
        if !piece.is_empty() {
            self.encode_at(piece, 0, piece.len(), out);
        }
    }

    /// Append the ids of the piece `bytes[start..end]` (non-empty) to `out`.
    #[inline]
    fn encode_at(&mut self, bytes: &[u8], start: usize, end: usize, out: &mut Vec<u32>) {
        let n = end - start;
        if n <= MAX_KEY_LEN {
            let key = piece_table::pack_at(bytes, start, n);
            match self.t.main().get(key) {
                Some(found) => push_found(found, out),
                None => self.miss(key, &bytes[start..end], out),
            }
        } else {
            let piece = &bytes[start..end];
            if let Some(ids) = self.t.main().get_long(piece) {
                out.extend_from_slice(ids);
                return;
            }
            self.miss_long(piece, out);
        }
    }

    /// A short piece the main table lacks: from the other tables, else merged and stored.
    #[cold]
    #[inline(never)]
    fn miss(&mut self, key: u128, piece: &[u8], out: &mut Vec<u32>) {
        if self.t.find(key, out) {
            return;
        }
        let at = out.len();
        if self.t.main().seeded() && piece.len() > 1 {
            // every short token is in the seed: this piece is not one, merge it
            self.bpe.merge_linear(piece, out);
        } else {
            self.bpe.encode_piece(piece, out);
        }
        self.t.store(key, &out[at..]);
    }

    /// [`PieceEncoder::miss`] for a piece longer than [`MAX_KEY_LEN`].
    #[cold]
    #[inline(never)]
    fn miss_long(&mut self, piece: &[u8], out: &mut Vec<u32>) {
        if self.t.find_long(piece, out) {
            return;
        }
        let at = out.len();
        self.bpe.encode_piece(piece, out);
        if crate::cancel::is_set() {
            // `merge_heap` stopped early: these ids are not the piece's
            return;
        }
        self.t.store_long(piece, &out[at..]);
    }

    /// Encode ordinary text, appending to `out`; stops with [`crate::Error::Interrupted`] when
    /// the thread's [`crate::cancel`] handle is set.
    ///
    /// Software-pipelined over chunks of pieces: each chunk's short pieces are packed, hashed
    /// and their buckets prefetched, then the chunk before it is looked up and emitted (misses
    /// on a cold path), so every lookup has a chunk's worth of work between its prefetch and
    /// its load, and the chunk's memory accesses overlap instead of following each other.
    pub fn encode_text(&mut self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        // the thread's chunk pair, reused from call to call (a fresh pair is 3.6 KiB to zero);
        // a fresh one when the thread's is in use
        CHUNKS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut chunks) => self.encode_chunked(text, &mut chunks, out),
            Err(_) => self.encode_chunked(text, &mut [Chunk::EMPTY, Chunk::EMPTY], out),
        })
    }

    /// [`PieceEncoder::encode_text`] with `chunks` as its pipeline (contents on entry do not
    /// matter).
    fn encode_chunked(
        &mut self,
        text: &str,
        chunks: &mut [Chunk; 2],
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let bytes = text.as_bytes();
        out.reserve(text.len() / 4);
        let pretokenizer = self.bpe.pretokenizer();
        for c in chunks.iter_mut() {
            c.n = 0;
        }
        let mut cur = 0;
        pretokenizer.for_each_chunk(text, |spans| {
            let [a, b] = &mut *chunks;
            let (next, done) = if cur == 0 { (a, b) } else { (b, a) };
            let main = self.t.main();
            // at most CHUNK (`for_each_chunk`); cut to it, the loops need no index check
            debug_assert!(spans.len() <= CHUNK);
            let spans = &spans[..spans.len().min(CHUNK)];
            #[cfg(target_arch = "x86_64")]
            if simd() == Level::Avx512 {
                // SAFETY: the CPU has the features `pack_avx512` needs, checked by `simd`.
                let mut left = unsafe { pack_avx512(bytes, spans, next) };
                // one bit a piece it left, every other bit of `left`
                while left != 0 {
                    prepare_one(main, bytes, spans, next, left.trailing_zeros() as usize / 2);
                    left &= left - 1;
                }
            } else {
                for j in 0..spans.len() {
                    prepare_one(main, bytes, spans, next, j);
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            for j in 0..spans.len() {
                prepare_one(main, bytes, spans, next, j);
            }
            next.n = spans.len();
            // the short pieces' buckets, in a loop of their own so that all of them are in
            // flight at once (a piece of another length prefetches a bucket it will not read)
            let homes = main.homes();
            for &h in &next.hashes[..spans.len()] {
                homes.prefetch_hashed(h);
            }
            self.emit(bytes, done, out);
            cur ^= 1;
        })?;
        self.emit(bytes, &chunks[cur ^ 1], out);
        // a long piece stops early when cancelled (see `merge_heap`): its ids are not kept
        crate::cancel::check()
    }

    /// Look up and append the ids of a prepared chunk.
    ///
    /// The hot case (a short piece found in its home bucket with at most [`INLINE`] ids: nearly
    /// every piece of a warm pass) takes one branch per piece, which goes the same way until a
    /// piece leaves it: the home bucket is probed without a branch
    /// ([`Homes::probe`](super::piece_table::Homes::probe): the entry chosen by an index, its
    /// value read in place), a miss turns the count to 0, the four inline lanes are copied
    /// into the spare capacity of `out` unconditionally (one 16-byte load and store), and the
    /// write cursor advances by the count when it is 1..=4. The
    /// capacity is reserved for [`LANES`] ids per piece left, so the stores need no check, and
    /// lanes past the count are overwritten by the next piece or lie past the length.
    /// Everything else (pieces of 16 bytes or more, whose key is [`NOT_SHORT`], probe chains,
    /// arena values, misses) takes [`PieceEncoder::emit_slow`].
    ///
    /// A narrow table ([`PieceTable::narrow`]: ids of 16 bits) holds up to [`INLINE16`] ids
    /// inline: its loop widens the entry's eight 16-bit lanes to eight ids (one 16-byte load,
    /// two unpacks, two 16-byte stores; with AVX2 one `vpmovzxwd` and one 32-byte store) and
    /// stays in the hot case for counts 1..=7. The layout is the table's, fixed
    /// for its life: the loop is compiled once per layout (`NARROW`), chosen once per chunk.
    #[inline]
    fn emit(&mut self, bytes: &[u8], c: &Chunk, out: &mut Vec<u32>) {
        let narrow = self.t.main().narrow();
        #[cfg(target_arch = "x86_64")]
        if simd() >= Level::Avx2 {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe {
                if narrow {
                    self.emit_avx2::<true>(bytes, c, out);
                } else {
                    self.emit_avx2::<false>(bytes, c, out);
                }
            }
            return;
        }
        if narrow {
            self.emit_in::<true, false>(bytes, c, out);
        } else {
            self.emit_in::<false, false>(bytes, c, out);
        }
    }

    /// The loop of [`PieceEncoder::emit`] compiled with AVX2: a narrow value's eight 16-bit
    /// lanes are widened by one `vpmovzxwd` and stored by one 32-byte store (the SSE2 loop
    /// takes two unpacks and two stores: every piece of gpt2), and in both layouts the key
    /// compares are VEX `vpxor`/`vptest` with the chunk's base kept in a register (warm passes
    /// 1.01-1.05x faster; docs/bpe.md §13.5, sixteenth round).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    unsafe fn emit_avx2<const NARROW: bool>(
        &mut self,
        bytes: &[u8],
        c: &Chunk,
        out: &mut Vec<u32>,
    ) {
        self.emit_in::<NARROW, true>(bytes, c, out);
    }

    /// [`PieceEncoder::emit`] for the value layout `NARROW` (the main table's); `AVX2` only
    /// inside [`PieceEncoder::emit_avx2`].
    #[inline(always)]
    fn emit_in<const NARROW: bool, const AVX2: bool>(
        &mut self,
        bytes: &[u8],
        c: &Chunk,
        out: &mut Vec<u32>,
    ) {
        let inline = if NARROW { INLINE16 } else { INLINE } as u32;
        let n = c.n.min(CHUNK);
        let mut i = 0;
        while i < n {
            out.reserve(LANES * (n - i));
            let len = out.len();
            let spare = out.spare_capacity_mut();
            let dst = spare.as_mut_ptr().cast::<u32>();
            let mut w = 0;
            let homes = self.t.main().homes();
            let mut home = 0;
            while i < n {
                let (val, count) = homes.probe::<NARROW>(c.keys[i], c.hashes[i]);
                debug_assert!(w + LANES <= spare.len());
                if NARROW && AVX2 {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `AVX2` is set only in `emit_avx2`, whose caller checked the CPU;
                    // `w + 8 <= spare.len()` as below.
                    unsafe {
                        widen_store_avx2(val, dst.add(w));
                    }
                } else if NARROW {
                    let wide = widen(val);
                    // SAFETY: `w + 8 <= spare.len()`: the spare capacity holds `LANES * (n -
                    // i0)` ids (LANES = 8) for the `i0` this inner loop started at, and each
                    // piece before `i` added at most 7 to `w`, so `w + 8 <= 8 * (i - i0 + 1) <=
                    // LANES * (n - i0)`.
                    unsafe { dst.add(w).cast::<[u32; 8]>().write_unaligned(wide) };
                } else {
                    // SAFETY: `w + 4 <= spare.len()`, as above with at most 4 per piece; the
                    // entry's value and the spare capacity do not overlap. (A copy between
                    // the two places: one 16-byte load and store.)
                    unsafe { std::ptr::copy_nonoverlapping(val.as_ptr(), dst.add(w), 4) };
                }
                // one compare for "found, ids inline": a count of 0 (not found) wraps, an
                // arena value's is above `inline`
                if count.wrapping_sub(1) >= inline {
                    home = if count != 0 { low_lanes(*val) } else { 0 };
                    break;
                }
                w += count as usize;
                i += 1;
            }
            // SAFETY: the first `w` ids of the spare capacity were written above (each piece's
            // count lanes, all within the reserved `LANES * (n - i)`).
            unsafe { out.set_len(len + w) };
            if i < n {
                self.emit_slow(bytes, c, i, home, out);
                i += 1;
            }
        }
    }

    /// Piece `i` of chunk `c`, which [`PieceEncoder::emit`] did not answer: long, further along
    /// its probe chain, with more than [`INLINE`] ids, or a miss. The chunk holds its short key
    /// or [`NOT_SHORT`], its 16..=31-byte key, and the hash of its key (for a longer piece, of
    /// its bytes: [`PieceTable::prefetch_long`]); `home` is the arena lanes of its home-bucket
    /// entry when that holds its ids in the arena ([`PieceTable::arena_ids`]), else 0. (Taking
    /// the chunk and the index, not the piece's fields, keeps the emit loop from loading them
    /// for every piece.)
    #[inline(never)]
    fn emit_slow(&mut self, bytes: &[u8], c: &Chunk, i: usize, home: u64, out: &mut Vec<u32>) {
        let ((s, e), key, h) = (c.spans[i], c.keys[i], c.hashes[i]);
        if home != 0 {
            // found in its home bucket: no second probe
            if let Some(ids) = self.t.main().arena_ids(home) {
                push_ids(out, ids);
                return;
            }
        }
        if key == NOT_SHORT {
            if e - s <= MID_KEY_LEN {
                // its slot, then the general path
                if let Some(v) = self.t.main().get_mid_home(c.mids[i], h) {
                    let count = v[0] as usize;
                    if (1..=MID_INLINE).contains(&count) {
                        let [_, lanes @ ..] = v;
                        push_lanes(out, lanes, count);
                        return;
                    }
                    // more ids than the slot holds: lane 1 is their offset in the arena (not
                    // a second lookup by bytes: gpt2's runs of 16..=31 spaces, one id a space)
                    let offset_count = u64::from(v[1]) | (u64::from(v[0]) << 32);
                    if let Some(ids) = self.t.main().arena_ids(offset_count) {
                        out.extend_from_slice(ids);
                        return;
                    }
                }
            } else {
                // its hash and prefetched slot from the pack loop
                let piece = &bytes[s..e];
                if let Some(ids) = self.t.main().get_long_hashed(piece, h) {
                    out.extend_from_slice(ids);
                    return;
                }
                self.miss_long(piece, out);
                return;
            }
            self.encode_at(bytes, s, e, out);
            return;
        }
        match self.t.main().get_hashed(key, h) {
            Some(found) => {
                push_found(found, out);
                // found, and not in its home bucket (`home` covers the arena values there)
                self.t.promote(key, h);
            }
            None => self.miss(key, &bytes[s..e], out),
        }
    }
}

impl<T: Tables> PieceEncoder<'_, T> {
    /// Append the ids of `text` to `out`, the specials `allowed` matches as their ids.
    pub fn encode_into(
        &mut self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let Some(m) = allowed else {
            return self.encode_text(text, out);
        };
        m.check(text)?;
        let mut pos = 0;
        while let Some((s, e, id)) = m.find(text, pos) {
            self.encode_text(&text[pos..s], out)?;
            out.push(id);
            pos = e;
        }
        self.encode_text(&text[pos..], out)
    }
}

/// Append the first `count` (at most 7) of `lanes` to `out` by one fixed-size copy of all
/// seven, not a call to `memcpy` for a few ids.
#[inline(always)]
fn push_lanes(out: &mut Vec<u32>, lanes: [u32; 7], count: usize) {
    debug_assert!(count <= lanes.len());
    out.reserve(lanes.len());
    let len = out.len();
    for (d, &l) in out.spare_capacity_mut().iter_mut().zip(&lanes) {
        d.write(l);
    }
    // SAFETY: the first `lanes.len()` (>= `count`) ids of the spare capacity, reserved above,
    // were written by the loop.
    unsafe { out.set_len(len + count.min(lanes.len())) };
}

/// Append `ids` to `out`: four to seven of them (a short piece's arena value) by two
/// overlapping copies of four into [`push_lanes`], others as they are.
#[inline(always)]
fn push_ids(out: &mut Vec<u32>, ids: &[u32]) {
    let n = ids.len();
    match (ids.first_chunk::<4>(), ids.last_chunk::<4>()) {
        (Some(head), Some(tail)) if n <= 7 => {
            let mut lanes = [0; 7];
            lanes[n - 4..n].copy_from_slice(tail);
            lanes[..4].copy_from_slice(head);
            push_lanes(out, lanes, n);
        }
        _ => out.extend_from_slice(ids),
    }
}

/// Append the ids of a table hit.
#[inline(always)]
fn push_found(found: Found<'_>, out: &mut Vec<u32>) {
    match found {
        Found::Inline(1, v) => out.push(v[0]),
        Found::Inline(c, v) => out.extend_from_slice(&v[..(c as usize).min(MAX_INLINE)]),
        Found::Arena(ids) => out.extend_from_slice(ids),
    }
}

/// Ids [`PieceEncoder::emit`] may store per piece: the eight widened lanes of a narrow entry
/// (at least the inline ids of a mid entry).
const LANES: usize = 8;
const _: () = assert!(INLINE <= LANES && INLINE16 < LANES && MID_INLINE <= LANES);

/// The eight 16-bit lanes of a narrow value (as [`Homes::probe`] gives it: little-endian in
/// four `u32`) as eight `u32` (one 16-byte load, two unpacks).
///
/// [`Homes::probe`]: super::piece_table::Homes::probe
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn widen(val: &[u32; 4]) -> [u32; 8] {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_setzero_si128, _mm_unpackhi_epi16, _mm_unpacklo_epi16,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes of `val`.
    unsafe {
        let v = _mm_loadu_si128(val.as_ptr().cast::<__m128i>());
        let z = _mm_setzero_si128();
        let lanes: [__m128i; 2] = [_mm_unpacklo_epi16(v, z), _mm_unpackhi_epi16(v, z)];
        std::mem::transmute::<[__m128i; 2], [u32; 8]>(lanes)
    }
}

/// The level the chunk loops of [`PieceEncoder::encode_text`] run at: AVX2 for
/// [`PieceEncoder::emit_avx2`], AVX-512 for [`pack_avx512`] too ([`crate::simd::level`]; in
/// tests, at most the thread's `MAX_SIMD`, so that a CPU with AVX-512 runs the other loops too).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn simd() -> Level {
    let level = crate::simd::level();
    #[cfg(test)]
    let level = level.min(MAX_SIMD.with(std::cell::Cell::get));
    level
}

#[cfg(all(test, target_arch = "x86_64"))]
thread_local! {
    /// Set by a test to run a lower level's loops than the CPU has.
    static MAX_SIMD: std::cell::Cell<Level> = const { std::cell::Cell::new(Level::Avx512) };
}

/// Piece `j` of `spans` prepared in `next`: its span, its short key and the key's hash, or
/// [`NOT_SHORT`] and the hash of its longer key (whose slot is prefetched here).
#[inline(always)]
fn prepare_one(
    main: &PieceTable,
    bytes: &[u8],
    spans: &[(usize, usize)],
    next: &mut Chunk,
    j: usize,
) {
    let Some(&(s, e)) = spans.get(j) else {
        return;
    };
    let n = e - s;
    let (key, h) = if n <= MAX_KEY_LEN {
        let key = piece_table::pack_at(bytes, s, n);
        (key, piece_table::hash(key))
    } else if n <= MID_KEY_LEN {
        let key = piece_table::pack_mid_at(bytes, s, n);
        if let Some(m) = next.mids.get_mut(j) {
            *m = key;
        }
        (NOT_SHORT, main.prefetch_mid(key))
    } else {
        (NOT_SHORT, main.prefetch_long(bytes, s, e))
    };
    if let (Some(sp), Some(k), Some(hh)) = (
        next.spans.get_mut(j),
        next.keys.get_mut(j),
        next.hashes.get_mut(j),
    ) {
        *sp = (s, e);
        *k = key;
        *hh = h;
    }
}

// `pack_avx512` reads a chunk's spans as pairs of 64-bit lanes, start first.
#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    std::mem::offset_of!((usize, usize), 0) == 0
        && std::mem::offset_of!((usize, usize), 1) == 8
        && std::mem::size_of::<(usize, usize)>() == 16
);

/// The keys, hashes and spans of the pieces of `spans` in `next`, as [`prepare_one`] gives
/// them, four at a time with AVX-512: one masked load of the 64 bytes from the group's first
/// start (fewer at the end of the text), the four keys picked out of them by one `vpermb`
/// (each 16-byte lane indexed from its piece's start, the bytes past its length zeroed by the
/// mask), the lengths blended into the top bytes, the hashes by one `vpmullq`, 64-byte stores
/// of the keys and the spans. A piece that is not short or does not end within the 64 bytes
/// gets a key that means nothing: it is left to [`prepare_one`], without a branch here. Returns
/// the pieces left, bit `2j` for piece `j` (the pieces after the last whole group too).
///
/// # Safety
/// The CPU must support AVX2 and AVX-512 F, BW, VL, DQ and VBMI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi")]
#[inline(never)]
unsafe fn pack_avx512(bytes: &[u8], spans: &[(usize, usize)], next: &mut Chunk) -> u64 {
    use std::arch::x86_64::{
        __m256i, __m512i, _mm256_storeu_si256, _mm512_add_epi8, _mm512_castsi512_si256,
        _mm512_cmp_epu64_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512, _mm512_mask_blend_epi8,
        _mm512_maskz_loadu_epi8, _mm512_maskz_permutexvar_epi8, _mm512_mullo_epi64,
        _mm512_permutexvar_epi64, _mm512_set1_epi64, _mm512_set_epi64, _mm512_setzero_si512,
        _mm512_shuffle_epi32, _mm512_shuffle_epi8, _mm512_storeu_si512, _mm512_sub_epi64,
        _mm512_unpackhi_epi64, _mm512_unpacklo_epi64, _mm512_xor_si512, _MM_CMPINT_LE,
        _MM_PERM_BADC,
    };
    // byte t of each 16-byte lane: t
    let lane_bytes = _mm512_unpacklo_epi64(
        _mm512_set1_epi64(0x0706_0504_0302_0100),
        _mm512_set1_epi64(0x0f0e_0d0c_0b0a_0908),
    );
    let fourteen = _mm512_set1_epi64(MAX_KEY_LEN as i64 - 1);
    let sixty_four = _mm512_set1_epi64(64);
    let one = _mm512_set1_epi64(1);
    let mul = _mm512_set1_epi64(piece_table::HASH_MUL as i64);
    let evens = _mm512_set_epi64(0, 0, 0, 0, 6, 4, 2, 0);
    let zero = _mm512_setzero_si512();
    let groups = spans.len().min(CHUNK) / 4;
    let mut left = 0;
    // the pieces after the last whole group
    for j in 4 * groups..spans.len().min(CHUNK) {
        left |= 1 << (2 * j);
    }
    for g in 0..groups {
        let j = 4 * g;
        let (Some(group), Some(k), Some(h), Some(sp)) = (
            spans.get(j..j + 4),
            next.keys.get_mut(j..j + 4),
            next.hashes.get_mut(j..j + 4),
            next.spans.get_mut(j..j + 4),
        ) else {
            break;
        };
        // SAFETY: `group` is four spans, 64 bytes (the layout pinned above)
        let p = unsafe { _mm512_loadu_si512(group.as_ptr().cast::<__m512i>()) };
        let s0 = group[0].0;
        // each lane: (start, start) and the length (wrapping when a span is reversed)
        let starts = _mm512_unpacklo_epi64(p, p);
        let n = _mm512_sub_epi64(_mm512_unpackhi_epi64(p, p), starts);
        let base = _mm512_set1_epi64(s0 as i64);
        // the pieces packed here: 1..=15 bytes (n - 1 <= 14 unsigned), ending within 64
        // bytes of `s0` (spans in order: starting at or after it)
        let short = _mm512_cmp_epu64_mask::<_MM_CMPINT_LE>(_mm512_sub_epi64(n, one), fourteen);
        let end = _mm512_sub_epi64(_mm512_unpackhi_epi64(p, p), base);
        let inside = _mm512_cmp_epu64_mask::<_MM_CMPINT_LE>(end, sixty_four);
        left |= u64::from(!(short & inside) & 0x55) << (8 * g);
        let avail = bytes.len().saturating_sub(s0).min(64);
        // SAFETY: reads the `avail` bytes at `s0`, within `bytes`; the masked-off bytes are
        // not accessed.
        let window = unsafe {
            _mm512_maskz_loadu_epi8(
                u64::MAX.checked_shr(64 - avail as u32).unwrap_or(0),
                bytes.as_ptr().wrapping_add(s0).cast::<i8>(),
            )
        };
        // each lane's start in the window and its length, in every byte of the lane
        let rel = _mm512_shuffle_epi8(_mm512_sub_epi64(starts, base), zero);
        let nb = _mm512_shuffle_epi8(n, zero);
        let within = _mm512_cmplt_epu8_mask(lane_bytes, nb);
        let keys = _mm512_maskz_permutexvar_epi8(within, _mm512_add_epi8(rel, lane_bytes), window);
        // the length in each key's top byte
        let keys = _mm512_mask_blend_epi8(0x8000_8000_8000_8000, keys, nb);
        // `piece_table::hash` of each: its halves xor-ed, one multiply
        let folded = _mm512_xor_si512(keys, _mm512_shuffle_epi32::<_MM_PERM_BADC>(keys));
        let hashes = _mm512_permutexvar_epi64(evens, _mm512_mullo_epi64(folded, mul));
        // SAFETY: 64 bytes of four keys, 32 of four hashes, 64 of four spans, each in the
        // slices taken above
        unsafe {
            _mm512_storeu_si512(k.as_mut_ptr().cast::<__m512i>(), keys);
            _mm256_storeu_si256(
                h.as_mut_ptr().cast::<__m256i>(),
                _mm512_castsi512_si256(hashes),
            );
            _mm512_storeu_si512(sp.as_mut_ptr().cast::<__m512i>(), p);
        }
    }
    left
}

/// [`widen`] with AVX2, stored: the eight ids written to `dst` by one 32-byte store.
///
/// # Safety
/// The CPU must support AVX2; `dst` must be valid for writes of eight `u32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn widen_store_avx2(val: &[u32; 4], dst: *mut u32) {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_cvtepu16_epi32, _mm256_storeu_si256, _mm_loadu_si128,
    };
    // SAFETY: the load reads the 16 bytes of `val`; the store writes 32 bytes at `dst`, valid
    // by the caller's contract.
    unsafe {
        let v = _mm_loadu_si128(val.as_ptr().cast::<__m128i>());
        _mm256_storeu_si256(dst.cast::<__m256i>(), _mm256_cvtepu16_epi32(v));
    }
}

/// [`widen`] without SSE2.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn widen(val: &[u32; 4]) -> [u32; 8] {
    let mut wide = [0u32; 8];
    for (k, w) in wide.iter_mut().enumerate() {
        *w = (val[k / 2] >> (16 * (k % 2))) & 0xffff;
    }
    wide
}

/// A chunk of pieces prepared for lookup: spans, keys and hashes. A short piece has its key in
/// `keys`, a longer one [`NOT_SHORT`] there; a piece of 16..=31 bytes has its two key halves in
/// `mids` (other entries of `mids` are stale). `hashes` holds the hash of every piece's key (of
/// a piece over 31 bytes, of its bytes).
struct Chunk {
    n: usize,
    spans: [(usize, usize); CHUNK],
    keys: [u128; CHUNK],
    mids: [[u128; 2]; CHUNK],
    hashes: [u64; CHUNK],
}

thread_local! {
    /// The chunk pair of this thread's [`PieceEncoder::encode_text`] calls.
    static CHUNKS: std::cell::RefCell<[Chunk; 2]> =
        const { std::cell::RefCell::new([Chunk::EMPTY, Chunk::EMPTY]) };
}

impl Chunk {
    /// A chunk of no pieces.
    const EMPTY: Chunk = Chunk {
        n: 0,
        spans: [(0, 0); CHUNK],
        keys: [0; CHUNK],
        mids: [[0; 2]; CHUNK],
        hashes: [0; CHUNK],
    };
}

impl Bpe {
    /// A matcher for the special tokens with the given ids (`None` if the list is empty).
    pub fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids {
            if !self.is_special(id) {
                return Err(Error::Vocab(format!("id {id} is not a special token")));
            }
            tokens.push((self.tokens[id as usize].clone(), id));
        }
        SpecialMatcher::new(tokens)
    }

    /// A piece encoder holding one of the model's piece tables until dropped: use one per call
    /// (or per thread), not one per piece.
    pub fn piece_encoder(&self) -> PieceEncoder<'_> {
        self.piece_encoder_of(self.cache.lend(|| self.seed_table()))
    }

    /// A piece encoder holding `table`, lent by the model's cache, until dropped.
    pub(super) fn piece_encoder_of(&self, table: PieceTable) -> PieceEncoder<'_> {
        PieceEncoder {
            bpe: self,
            t: Lent {
                cache: &self.cache,
                table: ManuallyDrop::new(table),
            },
        }
    }

    /// The encoding of every regular token of 1..=15 bytes, by the uncached path.
    fn seed_table(&self) -> Seed {
        let short = |(i, t): &(usize, &Vec<u8>)| {
            (1..=MAX_KEY_LEN).contains(&t.len()) && !self.is_special[*i]
        };
        let n = self.tokens.iter().enumerate().filter(short).count();
        // ids of 16 bits hold seven inline (gpt2's whitespace runs of 5..=7 ids stay on the
        // hot path); a larger id in a narrow table goes to the arena
        let mut seed = Seed::new(self.tokens.len() <= 1 << 16);
        seed.reserve(n);
        let mut ids = Vec::new();
        for (i, t) in self.tokens.iter().enumerate().filter(short) {
            ids.clear();
            if self.ignore_merges {
                // a whole piece that is a token is that token (`encode_piece`), and a regular
                // token's bytes name only its own id (`Bpe::build` refuses two ids for one
                // text): no lookup by bytes
                ids.push(i as u32);
                debug_assert_eq!(self.id_of(t), Some(i as u32));
            } else {
                self.encode_piece(t, &mut ids);
            }
            seed.push(piece_table::pack(t), &ids);
        }
        seed
    }

    /// Encode ordinary text (no special-token handling), appending to `out`. Stops with
    /// [`crate::Error::Interrupted`] when the thread's [`crate::cancel`] handle is set.
    pub fn encode_ordinary_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        self.piece_encoder().encode_text(text, out)
    }

    /// Ids of `text`, treating special-token text as ordinary text.
    pub fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3);
        self.encode_ordinary_into(text, &mut out)?;
        Ok(out)
    }

    /// Ids of `text`; occurrences of the specials in `allowed` become their ids.
    pub fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3);
        self.encode_into(text, allowed, &mut out)?;
        Ok(out)
    }

    /// [`Bpe::encode`] appended to `out`.
    pub fn encode_into(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        match allowed {
            None => self.encode_ordinary_into(text, out),
            Some(_) => self.piece_encoder().encode_into(text, allowed, out),
        }
    }

    /// Like [`Bpe::encode`], with the byte span of every token. A token that is part of a piece
    /// gets the span of its bytes in the input.
    pub fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<Span>)> {
        let mut ids = Vec::new();
        let mut spans = Vec::new();
        let mut enc = self.piece_encoder();
        let mut emit =
            |part: &str, base: usize, ids: &mut Vec<u32>, spans: &mut Vec<Span>| -> Result<()> {
                let mut off = base;
                self.pretokenizer.for_each_piece(part, |p| {
                    let before = ids.len();
                    enc.encode(p.as_bytes(), ids);
                    let mut s = off;
                    for &id in &ids[before..] {
                        let len = self.tokens[id as usize].len();
                        spans.push(Span {
                            start: s,
                            end: s + len,
                        });
                        s += len;
                    }
                    off += p.len();
                })
            };
        let mut pos = 0;
        if let Some(m) = allowed {
            m.check(text)?;
            while let Some((s, e, id)) = m.find(text, pos) {
                emit(&text[pos..s], pos, &mut ids, &mut spans)?;
                ids.push(id);
                spans.push(Span { start: s, end: e });
                pos = e;
            }
        }
        emit(&text[pos..], pos, &mut ids, &mut spans)?;
        crate::cancel::check()?;
        Ok((ids, spans))
    }

    /// Concatenated bytes of `ids` (special tokens give their text); `Err` names the first id
    /// that is unknown or unused.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (k, &id) in ids.iter().enumerate() {
            let t = self.token_bytes(id).ok_or_else(|| {
                Error::Vocab(format!(
                    "ids[{k}] = {id} is outside the vocabulary of {} (or an unused id)",
                    self.vocab_size()
                ))
            })?;
            out.extend_from_slice(t);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::count::PieceCounts;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::pretokenize::Pretokenizer;
    use crate::progress::Silent;

    /// The ids of `text` by the uncached path: each pre-token piece through `encode_piece`.
    fn uncached(bpe: &Bpe, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for p in bpe.pretokenizer().pieces(text).unwrap() {
            bpe.encode_piece(p.as_bytes(), &mut out);
        }
        out
    }

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

    #[test]
    fn heap_and_linear_agree_and_round_trip() {
        let bpe = small();
        for piece in [
            "a".repeat(32),
            "ab".repeat(16),
            "banana".repeat(5),
            "bandana".repeat(3),
        ] {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            bpe.merge_linear(piece.as_bytes(), &mut x);
            bpe.merge_heap(piece.as_bytes(), &mut y);
            assert_eq!(x, y);
            assert_eq!(bpe.decode_bytes(&x).unwrap(), piece.as_bytes());
        }
        for piece in ["a".repeat(1001), "banana".repeat(300)] {
            let mut y = Vec::new();
            bpe.merge_heap(piece.as_bytes(), &mut y);
            assert_eq!(bpe.decode_bytes(&y).unwrap(), piece.as_bytes());
        }
    }

    #[test]
    fn fixed_size_copies_append_exactly_the_ids() {
        for n in 0..=12u32 {
            let ids: Vec<u32> = (0..n).map(|k| 1000 + k).collect();
            for prefix in [0, 1, 5] {
                let mut out: Vec<u32> = (0..prefix).collect();
                out.shrink_to_fit();
                push_ids(&mut out, &ids);
                let want: Vec<u32> = (0..prefix).chain(ids.iter().copied()).collect();
                assert_eq!(out, want, "{n} ids after {prefix}");
            }
        }
        let lanes = [7, 6, 5, 4, 3, 2, 1];
        for count in 0..=7 {
            let mut out = vec![9];
            push_lanes(&mut out, lanes, count);
            assert_eq!(out[1..], lanes[..count], "{count}");
        }
    }

    #[test]
    fn specials_split_only_when_allowed() {
        let bpe = small();
        let text = "banana<|eot|>bandana";
        let m = bpe.special_matcher(&[0]).unwrap();
        let ids = bpe.encode(text, m.as_ref()).unwrap();
        assert!(ids.contains(&0));
        let plain = bpe.encode(text, None).unwrap();
        assert!(!plain.contains(&0));
        assert_eq!(bpe.decode_bytes(&ids).unwrap(), text.as_bytes());
        let (ids2, spans) = bpe.encode_with_spans(text, m.as_ref()).unwrap();
        assert_eq!(ids2, ids);
        let k = ids.iter().position(|&i| i == 0).unwrap();
        assert_eq!(spans[k], Span { start: 6, end: 13 });
        assert_eq!(spans.last().unwrap().end, text.len());
        assert!(bpe.special_matcher(&[5]).is_err());
    }

    #[test]
    fn piece_table_limits_change_no_id() {
        let bpe = small();
        let texts = [
            "aaaaaaaa abababab banana bandana ".repeat(20),
            "bandanas and bananas, abab abba baab\n\n  x".repeat(5),
            "a".repeat(300),
            // short texts after long ones: the thread's reused chunk pair holds a long text's
            // pieces when they start
            "ab ba".to_string(),
            String::new(),
            "banana".to_string(),
        ];
        let want: Vec<Vec<u32>> = texts.iter().map(|t| uncached(&bpe, t)).collect();
        for limit in [0, 1, 5, 1000, piece_table::DEFAULT_LIMIT] {
            bpe.piece_cache().set_limit(limit);
            for _ in 0..2 {
                for (t, w) in texts.iter().zip(&want) {
                    assert_eq!(&bpe.encode_ordinary(t).unwrap(), w, "limit {limit}");
                }
            }
            assert!(
                bpe.piece_cache().info().entries <= limit.max(1) * 2,
                "limit {limit}"
            );
        }
    }

    #[test]
    fn a_batch_shares_one_table_and_changes_no_id() {
        let bpe = small();
        let texts: Vec<String> = (0..40)
            .map(|i| match i % 4 {
                0 => "aaaaaaaa abababab banana bandana ".repeat(i + 1),
                1 => format!(
                    "bandanas{i} and bananas{} abab<|eot|>abba baab\n\n  x",
                    i * 7
                ),
                2 => "ab".repeat(20 + i) + &" q".repeat(i),
                _ => format!(
                    "{}{} {}",
                    "b".repeat(i),
                    "a".repeat(60 - i),
                    "ba".repeat(12)
                ),
            })
            .collect();
        let m = bpe.special_matcher(&[0]).unwrap();
        for limit in [0, 3, 1000, piece_table::DEFAULT_LIMIT] {
            bpe.piece_cache().set_limit(limit);
            for allowed in [None, m.as_ref()] {
                let want: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|t| bpe.encode(t, allowed).unwrap())
                    .collect();
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    for _ in 0..2 {
                        let got = pool.install(|| bpe.encode_batch(&texts, allowed)).unwrap();
                        assert_eq!(got, want, "limit {limit}, {threads} threads");
                    }
                    let info = bpe.piece_cache().info();
                    // (a table of limit 0 stores nothing: each batch takes a table per thread)
                    if limit > 0 {
                        assert_eq!(info.tables, 1, "limit {limit}: one call at a time");
                    }
                    assert!(info.entries <= limit.max(1) * 3, "limit {limit}: {info:?}");
                }
            }
        }
        bpe.piece_cache().set_limit(piece_table::DEFAULT_LIMIT);
        // a batch's misses are merged into the shared table: after a fresh model's first batch
        // (one table per thread, however the texts fell to the threads) a second batch shares
        // the last table given back and leaves it holding every piece of the texts, and a
        // single call then borrows that table (the pool is last in, first out) and adds nothing
        let fresh = small();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| fresh.encode_batch(&texts, None)).unwrap();
        pool.install(|| fresh.encode_batch(&texts, None)).unwrap();
        let after_batch = fresh.piece_cache().info().entries;
        for t in &texts {
            fresh.encode_ordinary(t).unwrap();
        }
        assert_eq!(fresh.piece_cache().info().entries, after_batch);
    }

    /// A batch on a table that has learnt pieces already: with one thread the batch borrows
    /// the table as a single call does; with more, each thread keeps the pieces the table
    /// lacks in a table of its own, and those are merged into the shared one at the end (a
    /// piece several threads met, once). Either way the table then holds every piece of the
    /// batch (a single call adds nothing), the pool holds one table, and the ids are the
    /// uncached path's, short pieces, 16..=31-byte ones and longer ones alike.
    #[test]
    fn a_batch_after_the_first_leaves_every_new_piece_in_the_one_table() {
        let known: Vec<String> = (0..8).map(|i| format!("ab{i} abba baab ")).collect();
        // new pieces, most of them in several texts (so in several threads' own tables); long
        // enough texts that every thread takes some
        let texts: Vec<String> = (0..60)
            .map(|i| {
                let words: Vec<String> = (0..400)
                    .map(|k| {
                        format!(
                            "bandana{} {} {}{}{}",
                            (i + k) % 7,
                            "ab".repeat(8 + (i * k) % 5),
                            "b".repeat(20 + k % 3),
                            "a".repeat(40 + i % 4),
                            " q".repeat(k % 9)
                        )
                    })
                    .collect();
                // and pieces of this text alone: short, of 16..=31 bytes, longer
                let tag: String = [b'a' + (i % 26) as u8, b'a' + (i / 26) as u8]
                    .iter()
                    .map(|&c| c as char)
                    .collect();
                let own = format!(" z{tag} {}{tag} {}{tag}", "y".repeat(16), "x".repeat(35));
                words.join(" ") + &own.repeat(3)
            })
            .collect();
        for threads in [1, 2, 3] {
            let bpe = small();
            for t in &known {
                bpe.encode_ordinary(t).unwrap();
            }
            let before = bpe.piece_cache().info().entries;
            let want: Vec<Vec<u32>> = texts.iter().map(|t| uncached(&bpe, t)).collect();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| bpe.encode_batch(&texts, None)).unwrap();
            assert_eq!(got, want, "{threads} threads");
            let info = bpe.piece_cache().info();
            assert_eq!(info.tables, 1, "{threads} threads: {info:?}");
            assert!(info.entries > before, "{threads} threads: {info:?}");
            for (t, w) in texts.iter().zip(&want) {
                assert_eq!(&bpe.encode_ordinary(t).unwrap(), w);
            }
            assert_eq!(bpe.piece_cache().info(), info, "{threads} threads");
        }
    }

    /// `pack_avx512` gives the keys, hashes and spans of `pack_at` and `hash` for every piece
    /// it does not leave, and leaves every piece it cannot pack: pieces of 1..=40 bytes, up to a
    /// chunk of them, cut at every end of the text (the window's masked load near it). (The
    /// encoding tests would not see a wrong key that is still one key per piece: it only
    /// misses the seeded entries.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn pack_avx512_agrees_with_pack_at() {
        if simd() != Level::Avx512 {
            return;
        }
        let mut x = 99u64;
        let mut text = Vec::new();
        let mut cuts = vec![0];
        while text.len() < 3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (x >> 33) as usize;
            let n = if r.is_multiple_of(5) {
                1 + r / 5 % 40
            } else {
                1 + r / 5 % 9
            };
            text.extend((0..n).map(|i| (r >> (i % 24)) as u8));
            cuts.push(text.len());
        }
        let spans: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        let mut c = Chunk::EMPTY;
        let mut packed_any = 0;
        for from in 0..spans.len() {
            for take in [1, 3, 4, 7, 8, 13, CHUNK] {
                let part = &spans[from..(from + take).min(spans.len())];
                let bytes = &text[..part[part.len() - 1].1];
                // SAFETY: the CPU has the features, checked above.
                let left = unsafe { pack_avx512(bytes, part, &mut c) };
                for (j, &(s, e)) in part.iter().enumerate() {
                    let n = e - s;
                    let packed = left & (1 << (2 * j)) == 0;
                    if n > MAX_KEY_LEN || j >= part.len() / 4 * 4 {
                        assert!(!packed, "{from} {take} {j}");
                    }
                    if packed {
                        packed_any += 1;
                        let key = piece_table::pack_at(bytes, s, n);
                        assert_eq!(c.keys[j], key, "{from} {take} {j}");
                        assert_eq!(c.hashes[j], piece_table::hash(key));
                        assert_eq!(c.spans[j], (s, e));
                    }
                }
            }
        }
        assert!(packed_any > 10_000, "{packed_any}");
    }

    /// The chunk loops' builds (SSE2, AVX2 and AVX-512 where the CPU has them) on a narrow
    /// table and on a wide one (a model of more than 65,536 ids), against the uncached path:
    /// pieces with one to seven ids, arena values, 16..=31-byte and longer pieces, repeated
    /// (warm) and not.
    #[test]
    fn every_emit_loop_gives_the_uncached_ids() {
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], u32::from(b))).collect();
        let letters = b"abcdefghijklmnop";
        for len in 2..=4u32 {
            for k in 0..16usize.pow(len) {
                let t: Vec<u8> = (0..len).map(|d| letters[k / 16usize.pow(d) % 16]).collect();
                ranks.push((t, ranks.len() as u32));
            }
        }
        let wide = Bpe::from_ranks(ranks, vec![], Pretokenizer::new("gpt2").unwrap()).unwrap();
        let narrow = small();
        let mut texts = Vec::new();
        let mut x = 12345u64;
        for n in [10, 300, 3000] {
            let mut t = String::new();
            for _ in 0..n {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (x >> 33) as usize;
                match r % 7 {
                    0 => t.push_str(&" ".repeat(1 + r / 7 % 40)),
                    1 => t.push('\n'),
                    2 => t.push_str(&(r % 100_000).to_string()),
                    3 => t.push_str(&"ab".repeat(1 + r / 7 % 24)),
                    4 => t.push_str(", "),
                    _ => {
                        t.push(' ');
                        for i in 0..1 + r / 7 % 9 {
                            t.push(char::from(letters[(r >> (3 + i)) % 16]));
                        }
                    }
                }
            }
            texts.push(t);
        }
        for (bpe, is_narrow) in [(&narrow, true), (&wide, false)] {
            assert_eq!(bpe.piece_encoder().t.table.narrow(), is_narrow);
            for t in &texts {
                let mut want = Vec::new();
                for p in bpe.pretokenizer().pieces(t).unwrap() {
                    bpe.encode_piece(p.as_bytes(), &mut want);
                }
                #[cfg(target_arch = "x86_64")]
                for level in [Level::Sse2, Level::Avx512, Level::Avx2, Level::Sse2] {
                    MAX_SIMD.with(|c| c.set(level));
                    for _ in 0..2 {
                        assert_eq!(bpe.encode_ordinary(t).unwrap(), want, "{level:?}");
                    }
                }
                assert_eq!(bpe.encode_ordinary(t).unwrap(), want);
            }
        }
        #[cfg(target_arch = "x86_64")]
        MAX_SIMD.with(|c| c.set(Level::Avx512));
    }

    /// TV4 of docs/bpe.md §6: toy ranks a=0 b=1 c=2 ab=3 cb=4 ac=5 bb=6 cbb=7 acbb=8 (plus the
    /// other bytes after them), whole string one piece.
    #[test]
    fn tv4_rank_semantics() {
        let mut ranks: Vec<(Vec<u8>, u32)> = ["a", "b", "c", "ab", "cb", "ac", "bb", "cbb", "acbb"]
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_bytes().to_vec(), i as u32))
            .collect();
        let mut next = 9;
        for b in 0..=255u8 {
            if !b"abc".contains(&b) {
                ranks.push((vec![b], next));
                next += 1;
            }
        }
        let bpe = Bpe::from_ranks(ranks, vec![], Pretokenizer::new(r"[\s\S]+").unwrap()).unwrap();
        let enc = |s: &str| bpe.encode_ordinary(s).unwrap();
        assert_eq!(enc("abacb"), vec![3, 0, 4]);
        assert_eq!(enc("abacbb"), vec![3, 8]);
        assert_eq!(enc("bbb"), vec![6, 1]);
        assert_eq!(enc("aaa"), vec![0, 0, 0]);
    }
}
