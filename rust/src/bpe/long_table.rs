//! The table of pieces longer than [`MID_KEY_LEN`] bytes (it works for any of at least 16) (docs/bpe.md §13.1): open addressing
//! over 16-byte slots holding a 64-bit hash of the piece, its length and an offset into one
//! arena of `u32` words where the piece's ids and bytes lie together.
//!
//! A warm lookup is the hash (computed by the encoder while it packs a chunk, which prefetches
//! the home slot then), one slot line (four slots a line; the hash and the length reject the
//! other pieces there without touching the arena) and one arena region read twice: the key
//! bytes compared, then the ids copied from just before them. A plain map of boxed keys and
//! values chained four dependent loads per piece (control bytes, entry, key, value).
//!
//! Layout of a piece in the arena, from its offset: the count of ids, the ids, then the bytes
//! in memory order in `len.div_ceil(4)` words (native-endian, so that the words read as bytes
//! give the piece back; the last one zero-padded).
//!
//! Invariants: the slots are a power of two (at least [`MIN_SLOTS`]), at most half of them
//! used; an empty slot has hash 0 and no real hash is 0 ([`hash_long`]); every used slot's
//! piece is in the arena at its offset, and no two slots hold equal pieces.
//!
//! [`MID_KEY_LEN`]: super::piece_table::MID_KEY_LEN

/// Slots of an empty table.
const MIN_SLOTS: usize = 16;

/// A slot: the piece's hash (0 when empty), its length and its offset in the arena.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Slot {
    hash: u64,
    len: u32,
    at: u32,
}

/// Bytes of a slot.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// Hash of a piece of at least 16 bytes, never 0: a folded 64x64->128-bit multiply per 16
/// bytes (independent of each other, so they overlap), combined with a rotation so that order
/// matters; the last 16 bytes are read again when the length is not a multiple of 16 (the
/// length is mixed in, so the overlap is the same for every piece of that length).
#[inline]
pub fn hash_long(p: &[u8]) -> u64 {
    const K0: u64 = 0x9e37_79b9_7f4a_7c15;
    const K1: u64 = 0xbf58_476d_1ce4_e5b9;
    const K2: u64 = 0x94d0_49bb_1331_11eb;
    debug_assert!(p.len() >= 16);
    let word = |c: &[u8]| -> u64 { u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])) };
    let block = |c: &[u8]| fold(word(&c[..8]) ^ K1, word(&c[8..16]) ^ K2);
    let mut h = (p.len() as u64).wrapping_mul(K0);
    let mut chunks = p.chunks_exact(16);
    for c in &mut chunks {
        h = h.rotate_left(23) ^ block(c);
    }
    if !chunks.remainder().is_empty() {
        if let Some(c) = p.get(p.len().saturating_sub(16)..) {
            if c.len() == 16 {
                h = h.rotate_left(23) ^ block(c);
            }
        }
    }
    fold(h ^ K0, K1).max(1)
}

/// The low and high halves of `a * b` (128 bits), xor-ed.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    p as u64 ^ (p >> 64) as u64
}

/// Pieces longer than [`MID_KEY_LEN`](super::piece_table::MID_KEY_LEN) bytes and their ids
/// (see the module docs). Bounds are the
/// caller's ([`LongTable::bytes_after`]); an insert past what a `u32` offset can address is
/// refused.
#[derive(Clone)]
pub struct LongTable {
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`
    shift: u32,
    len: usize,
    /// per piece: count, ids, bytes in words
    data: Vec<u32>,
}

impl Default for LongTable {
    fn default() -> Self {
        Self {
            slots: vec![Slot::default(); MIN_SLOTS],
            shift: 64 - MIN_SLOTS.trailing_zeros(),
            len: 0,
            data: Vec::new(),
        }
    }
}

impl LongTable {
    /// Pieces stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held: slots and arena.
    pub fn bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES + self.data.len() * 4
    }

    /// [`LongTable::bytes`] after storing a piece of `len` bytes and `count` ids.
    pub fn bytes_after(&self, len: usize, count: usize) -> usize {
        let slots = if (self.len + 1) * 2 > self.slots.len() {
            2 * self.slots.len()
        } else {
            self.slots.len()
        };
        slots * SLOT_BYTES + (self.data.len() + 1 + count + len.div_ceil(4)) * 4
    }

    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        (h >> self.shift) as usize & (self.slots.len() - 1)
    }

    /// Start loading the home slot of hash `h` ([`hash_long`]) into the cache.
    #[inline(always)]
    pub fn prefetch(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = self.slots.get(self.home(h)) {
            // SAFETY: a prefetch hint has no effect on memory; the address is a live slot.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>((s as *const Slot).cast::<i8>());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// The ids stored for `piece` (hash `h` = [`hash_long`] of it), if any.
    #[inline]
    pub fn get(&self, piece: &[u8], h: u64) -> Option<&[u32]> {
        debug_assert_eq!(h, hash_long(piece));
        self.find(piece, h)
    }

    /// [`LongTable::get`] under the hash `h`, whatever it is.
    #[inline(always)]
    fn find(&self, piece: &[u8], h: u64) -> Option<&[u32]> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let s = self.slots.get(i & mask)?;
            if s.hash == h && s.len as usize == piece.len() {
                let (ids, key) = self.entry(s);
                if key == piece {
                    return Some(ids);
                }
            }
            if s.hash == 0 {
                return None;
            }
            i += 1;
        }
    }

    /// The ids and the bytes of the piece of a used slot.
    #[inline(always)]
    fn entry(&self, s: &Slot) -> (&[u32], &[u8]) {
        let at = s.at as usize;
        let count = self.data.get(at).map_or(0, |&c| c as usize);
        let ids = self.data.get(at + 1..at + 1 + count).unwrap_or(&[]);
        let len = s.len as usize;
        let words = self
            .data
            .get(at + 1 + count..at + 1 + count + len.div_ceil(4))
            .unwrap_or(&[]);
        // SAFETY: `u8` has no alignment or validity requirement, and the `4 * words.len()`
        // bytes are those of the initialised words, borrowed for as long as `self` is.
        let bytes =
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), 4 * words.len()) };
        (ids, bytes.get(..len).unwrap_or(&[]))
    }

    /// Store the ids of `piece` (absent; hash `h`); false when an offset or a length would not
    /// fit in 32 bits (nothing stored).
    pub fn insert(&mut self, piece: &[u8], h: u64, ids: &[u32]) -> bool {
        debug_assert_eq!(h, hash_long(piece));
        self.store(piece, h, ids)
    }

    /// [`LongTable::insert`] under the hash `h`, whatever it is (not 0).
    fn store(&mut self, piece: &[u8], h: u64, ids: &[u32]) -> bool {
        debug_assert!(h != 0 && self.find(piece, h).is_none());
        let words = 1 + ids.len() + piece.len().div_ceil(4);
        if piece.len() > u32::MAX as usize || self.data.len() + words > u32::MAX as usize {
            return false;
        }
        let at = self.data.len() as u32;
        self.data.push(ids.len() as u32);
        self.data.extend_from_slice(ids);
        for c in piece.chunks(4) {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            self.data.push(u32::from_ne_bytes(w));
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(Slot {
            hash: h,
            len: piece.len() as u32,
            at,
        });
        self.len += 1;
        true
    }

    /// Every stored piece with its hash and ids, in the order they were stored (their order in
    /// the arena): a table that takes them in this order lays them out in its arena as this
    /// one did, the pieces met first (in running text, the frequent ones) together. (In slot
    /// order they were scattered over the arena: the batches after a model's first, whose
    /// threads each kept the longer pieces, spent 3-4 % more time.)
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64, &[u32])> + '_ {
        let mut used: Vec<Slot> = self.slots.iter().filter(|s| s.hash != 0).copied().collect();
        used.sort_unstable_by_key(|s| s.at);
        used.into_iter().map(|s| {
            let (ids, key) = self.entry(&s);
            (key, s.hash, ids)
        })
    }

    /// Double the slots (re-placed from their stored hashes: no piece is hashed again).
    #[cold]
    fn grow(&mut self) {
        let size = 2 * self.slots.len();
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        self.shift -= 1;
        for s in old {
            if s.hash != 0 {
                self.place(s);
            }
        }
    }

    fn place(&mut self, s: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(s.hash);
        while let Some(slot) = self.slots.get_mut(i & mask) {
            if slot.hash == 0 {
                *slot = s;
                return;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::xorshift as rng;

    fn value(i: usize) -> Vec<u32> {
        (0..(i % 19) as u32 + 1)
            .map(|j| (i as u32).wrapping_mul(977) ^ j)
            .collect()
    }

    #[test]
    fn random_long_pieces_round_trip_through_growth() {
        let mut next = rng(7);
        let mut t = LongTable::default();
        let mut stored: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
        for i in 0..5000usize {
            let len = 32 + (next() % 200) as usize;
            // few distinct bytes, so that pieces share long prefixes
            let p: Vec<u8> = (0..len)
                .map(|_| b"ab\xe4\xb8"[(next() % 4) as usize])
                .collect();
            let h = hash_long(&p);
            match stored.iter().find(|(q, _)| *q == p) {
                Some((_, ids)) => assert_eq!(t.get(&p, h), Some(&ids[..])),
                None => {
                    assert!(t.get(&p, h).is_none());
                    assert!(t.insert(&p, h, &value(i)));
                    stored.push((p, value(i)));
                }
            }
        }
        assert_eq!(t.len(), stored.len());
        assert!(t.len() * 2 <= t.slots.len() && t.slots.len().is_power_of_two());
        for (p, ids) in &stored {
            assert_eq!(t.get(p, hash_long(p)), Some(&ids[..]));
            // one byte longer, shorter or changed at the end: absent unless stored
            let mut longer = p.clone();
            longer.push(0);
            let mut changed = p.clone();
            *changed.last_mut().unwrap_or(&mut 0) ^= 1;
            for q in [longer, p[..p.len() - 1].to_vec(), changed] {
                let want = stored.iter().find(|(x, _)| *x == q).map(|(_, v)| &v[..]);
                assert_eq!(t.get(&q, hash_long(&q)), want);
            }
        }
        // every piece, in the order stored (the slots grew ten times meanwhile)
        let seen: Vec<(Vec<u8>, Vec<u32>)> = t
            .iter()
            .map(|(k, h, ids)| {
                assert_eq!(h, hash_long(k));
                (k.to_vec(), ids.to_vec())
            })
            .collect();
        assert_eq!(seen, stored);
        // and a table that takes them in that order lays them out as this one did
        let mut copy = LongTable::default();
        for (k, h, ids) in t.iter() {
            assert!(copy.insert(k, h, ids));
        }
        assert_eq!(copy.data, t.data);
    }

    #[test]
    fn values_match_the_pieces_they_were_stored_for() {
        let mut t = LongTable::default();
        let piece = |i: usize| format!("{i:>40}|{}", "x".repeat(i % 70)).into_bytes();
        for i in 0..3000 {
            let p = piece(i);
            assert!(t.insert(&p, hash_long(&p), &value(i)));
        }
        for i in 0..3000 {
            let p = piece(i);
            assert_eq!(t.get(&p, hash_long(&p)), Some(&value(i)[..]), "{i}");
        }
        assert_eq!(
            t.bytes(),
            t.slots.len() * SLOT_BYTES + 4 * t.data.len(),
            "slots and arena"
        );
    }

    /// Pieces whose hashes collide (forced: every piece stored under one hash) are told apart
    /// by their length and bytes, along one probe chain that wraps around the slots.
    #[test]
    fn equal_hashes_are_told_apart_by_the_bytes() {
        let mut t = LongTable::default();
        let h = u64::MAX; // home: the last slot, so the chain wraps
        let pieces: Vec<Vec<u8>> = (0..40usize)
            .map(|i| {
                let mut p = vec![b'z'; 32 + i % 3];
                p[i / 3] = b'a';
                p
            })
            .collect();
        for (i, p) in pieces.iter().enumerate() {
            assert!(t.find(p, h).is_none());
            assert!(t.store(p, h, &value(i)));
        }
        for (i, p) in pieces.iter().enumerate() {
            assert_eq!(t.find(p, h), Some(&value(i)[..]), "{i}");
        }
        assert!(t.find(&[b'z'; 32], h).is_none());
        assert!(t.find(&[b'z'; 36], h).is_none());
    }

    #[test]
    fn hash_depends_on_every_byte_and_the_length() {
        let base: Vec<u8> = (0..100u8).collect();
        for n in 16..base.len() {
            let p = &base[..n];
            let h = hash_long(p);
            assert_ne!(h, 0);
            assert_ne!(h, hash_long(&base[..n + 1]), "{n}");
            for k in 0..n {
                let mut q = p.to_vec();
                q[k] ^= 0x40;
                assert_ne!(h, hash_long(&q), "{n} {k}");
            }
        }
        assert_ne!(hash_long(&[0; 32]), hash_long(&[0; 48]));
    }
}
