//! Fast path of the preset scanners: byte classes of a 64-byte window as bitmasks.
//!
//! [`Window::new`] classifies 64 bytes of the text at once (one AVX-512, two AVX2 or four SSE2
//! compares per class on x86_64, a byte loop elsewhere) into one `u64` per class, bit `k` for byte
//! `base + k`: letters, upper-case letters, digits, whitespace, `\r`/`\n`, `/`, `'`, bytes
//! `>= 0x80` and the bytes inside the text (the upper-case letters, `\r`/`\n` and `/` only for
//! the presets whose rules read them, [`Classes`]). Letters of two and three bytes are classified too
//! (a loop over the window's lead bytes and the BMP class table of `presets`): all their bytes
//! are letter bits, so the rules below treat a non-ASCII word like an ASCII one; for o200k they
//! are also split by its case classes (`Window::case_splits`). The other characters of two and
//! three bytes in `[^\s\p{L}\p{N}]` (punctuation, symbols; for o200k not the marks, which are
//! in its letter classes) are punctuation bits like ASCII punctuation, and for cl100k and o200k
//! the whitespace characters of two and three bytes (`U+00A0`, `U+3000`, ...) are whitespace
//! bits ([`Classes`]). A rule that takes or splits off one character (the prefix of a letter
//! run, the last character of a whitespace run) moves over their continuation bytes
//! (`Window::char_starts`, `next_char`, `after_lone_punct`), so a boundary is never inside a
//! character.
//!
//! Whole window first: over the classified characters each preset's piece boundaries are a
//! function of a few neighbouring bytes, or of the run they lie in (`Window::gpt2_bounds`,
//! `cl100k_bounds`, `o200k_bounds`), so every boundary of the window is computed at once with
//! shifts, ands, carries and doubling fills, with no branch per piece, and the caller emits the
//! pieces with one `trailing_zeros` each. Boundaries are kept only where the masks settle them
//! (see `Window::trusted`). When a window settles none (the piece starts at an unclassified
//! byte `>= 0x80` or a `'` that may start a contraction, or runs past the window), one piece is
//! taken per piece: it ends at a run boundary found with one shift and one `trailing_ones` per
//! run instead of a byte loop, or, when that is not settled either, by the exact scanner.
//!
//! The fast path only answers where the answer is settled by the masks; it returns `None`
//! (and the caller runs the exact scanner of [`super::presets`] from the same start) when:
//! the piece starts with a `'` followed by a contraction letter or a byte `>= 0x80`
//! (contractions and their Unicode case folds) or with an unclassified byte `>= 0x80`; a run
//! stops at an unclassified byte `>= 0x80` (a mark, a non-ASCII digit, a character of four
//! bytes, for gpt2 a non-ASCII space could continue it); a run reaches
//! the end of the window; an o200k letter run is followed by such a `'` (the contraction
//! suffix) or holds an `Lm`/`Lo` letter. Every other case is one of the regex alternatives over
//! the classes, written out per preset below with the reasoning of the exact scanners. Since the
//! scanners answer "where does the piece that starts here end", a fallback needs no state: the
//! result is the same piece either way.
//!
//! Cost: one classification per window (about 13 AVX2 instructions per 32 bytes, plus a few per
//! non-ASCII character), about 60 mask operations for its boundaries, and a new window whenever
//! a piece starts more than [`REBASE`] bytes into the current one, so each byte goes through the
//! SIMD compares at most about twice; the characters of two and three bytes the previous window
//! decoded keep their classes in the next (`Window::advance`), so each is decoded once. On the
//! benchmark sample the whole-window path leaves about 1 % of the pieces to the exact scanner
//! (11 % when only ASCII was classified, 2.5 % before the non-ASCII punctuation and spaces),
//! and the pre-tokenizer takes 17-21 ms for the 26.5 MB (one thread; docs/bpe.md §13.2,
//! §13.5). The tests of
//! `presets` compare the pieces of [`super::presets::fill_spans`] (which uses this path) with
//! `fancy-regex` too, including runs across window ends and ASCII / non-ASCII transitions at
//! every offset of a window, with the exact scanner on long random texts of the characters the
//! window rules tell apart, and every character of two and three bytes in several contexts.

use crate::simd::Level;

/// A piece starting more than this many bytes into the window gets a new window at its start,
/// so runs of up to `64 - REBASE` bytes always end inside the window.
pub(super) const REBASE: usize = 32;

/// How far ahead of a window the text is prefetched (bytes). The hardware prefetcher alone
/// does not keep the text ahead while the encoder's piece-table probes are in flight: a warm
/// encode pass is 5-9 % faster with it (512 and 2048 measured the same; docs/bpe.md §13.5).
const PREFETCH_AHEAD: usize = 1024;

/// SIMD level of a window's code (a const parameter, so a number: [`Level`] as `u8`): the
/// x86_64 baseline (SSE2; the byte loop elsewhere).
pub(super) const SSE2: u8 = Level::Sse2 as u8;
/// SIMD level of a window's code: AVX2 (with BMI1/2, LZCNT, POPCNT).
pub(super) const AVX2: u8 = Level::Avx2 as u8;
/// SIMD level of a window's code: AVX-512 (see `avx512`) on top of AVX2.
pub(super) const AVX512: u8 = Level::Avx512 as u8;

/// The class flags of the Basic Multilingual Plane, one byte per code point (`presets::Tables`).
pub(super) type Flags = [u8; 0x1_0000];

/// Which classes a preset's windows tell apart (see [`Window::new`]): the classes its rules
/// do not read are left empty, so its windows skip their compares.
#[derive(Clone, Copy)]
pub(super) struct Classes {
    /// o200k's two letter classes (`upper`, `both`; ASCII `upper` too)
    pub case: bool,
    /// whitespace of two and three bytes (`wide_space`): cl100k and o200k, whose rules split
    /// it by characters (`Window::char_starts`); gpt2's windows leave it unsettled
    pub spaces: bool,
    /// `nl`: cl100k and o200k, whose whitespace and punctuation rules treat `\r`/`\n` apart
    /// (gpt2's rules never read it)
    pub newlines: bool,
    /// `slash`: o200k, whose punctuation runs take the `/` after them
    pub slash: bool,
}

/// Bitmasks of the classes of 64 bytes of text from `base` (bit `k` is byte `base + k`).
#[derive(Clone, Copy, Default)]
pub(super) struct Window {
    pub base: usize,
    /// bytes inside the text
    valid: u64,
    /// `[A-Za-z]`
    alpha: u64,
    /// `[A-Z]` (empty unless `Classes::case`)
    upper: u64,
    /// `[0-9]`
    digit: u64,
    /// ASCII `\s`: `[\t\n\x0B\x0C\r ]`
    ws: u64,
    /// `[\r\n]` (empty unless `Classes::newlines`)
    nl: u64,
    /// `>= 0x80`: a byte of a non-ASCII character
    high: u64,
    /// `'`
    apos: u64,
    /// `'` that may start a contraction (gpt2, cl100k; o200k's suffix): followed by an ASCII
    /// letter that starts one (`[sdmtlvrSDMTLVR]`), a byte `>= 0x80` (a case fold such as
    /// `ſ`) or the window's end. A `'` followed by anything else is punctuation (gpt2, o200k)
    /// or the prefix of letters (cl100k, o200k) like any other.
    apos_c: u64,
    /// `/` (empty unless `Classes::slash`)
    slash: u64,
    /// ` `
    space: u64,
    /// lead bytes of two- and three-byte characters, `0xC0..=0xEF`
    lead: u64,
    /// o200k: letters in both of its letter classes (`Lm`, `Lo`, two or three bytes)
    both: u64,
    /// the bytes of the two- and three-byte characters in `[^\s\p{L}\p{N}]` (for o200k also
    /// outside its letter classes, so no mark): punctuation like the ASCII one (not `high`)
    wide_other: u64,
    /// the bytes of the two- and three-byte whitespace characters (`U+0085`, `U+00A0`,
    /// `U+3000`, ...): part of `ws` (none is a newline), not `high`
    wide_space: u64,
    /// the bytes of the non-ASCII letters (part of `alpha`)
    wide: u64,
    /// o200k: the bytes of the non-ASCII `Lu`/`Lt` letters (part of `upper`)
    wide_upper: u64,
    /// window offset of the first lead byte not decoded (its character runs past the window),
    /// 64 when all were: the characters before it are classified
    decoded: usize,
}

/// The bits of `m` from each bit of `seed` (a subset of `m`) up to the end of its run: adding
/// the seeds to `m` clears each run from its lowest seed up (the carry stops at the zero after
/// the run); a later seed of the same run is set instead of cleared, hence the `| seed`.
#[inline(always)]
fn smear_up(m: u64, seed: u64) -> u64 {
    (m & !m.wrapping_add(seed)) | seed
}

/// The bits of `m` from each bit of `seed` (a subset of `m`) down to the start of its run.
#[inline(always)]
fn smear_down(m: u64, seed: u64) -> u64 {
    let mut x = seed;
    let mut m = m;
    for k in [1, 2, 4, 8, 16, 32] {
        x |= (x >> k) & m;
        m &= m >> k;
    }
    x
}

/// Starts of the spaces after the last newline of whitespace runs: the runs of `r` (whitespace
/// other than newlines) that follow a bit of `nl` and hold a bit of `ends` (their last bit,
/// where the whitespace run ends). Most windows have no newline followed by such a space.
#[inline(always)]
fn after_last_newline(nl: u64, r: u64, ends: u64) -> u64 {
    if nl & (r >> 1) == 0 {
        return 0;
    }
    let suffix = smear_down(r, ends);
    suffix & !(suffix << 1) & (nl << 1)
}

/// Number of bits from `k` on that are set in `m` (0 for `k >= 64`: an o200k letter run may
/// start right after a run of upper-case letters that fills the window).
#[inline(always)]
fn ones_from(m: u64, k: usize) -> usize {
    m.checked_shr(k as u32)
        .map_or(0, |x| x.trailing_ones() as usize)
}

#[inline(always)]
fn bit(m: u64, k: usize) -> bool {
    k < 64 && (m >> k) & 1 != 0
}

impl Window {
    /// The window of `b` from `base` (bytes past the end of the text are not `valid` and
    /// belong to no class).
    ///
    /// Letters of two and three bytes (`U+0080..=U+FFFF`) are classified too, by `flags` (the
    /// class flags of the Basic Multilingual Plane, see `presets::Tables`): every byte of such
    /// a letter joins `alpha` and leaves `high`. With `case` (o200k) an `Lu`/`Lt` letter also
    /// joins `upper` and an `Lm`/`Lo` letter (in both of o200k's letter classes) `both`;
    /// without it (gpt2, cl100k, where `\p{L}` is one class) `upper` and `both` stay empty
    /// (`upper` is not classified for ASCII either, nor `nl` and `slash` unless `c` asks for
    /// them: their compares are skipped). A character of `[^\s\p{L}\p{N}]` (for o200k also no mark) is punctuation
    /// (`wide_other`: it leaves `high`, so `punct` holds its bytes), and with `c.spaces` a
    /// whitespace character is whitespace (`wide_space`, part of `ws`). Every other non-ASCII
    /// character (marks, digits, for gpt2 spaces, four-byte characters) stays `high`:
    /// unsettled.
    ///
    /// `SIMD`: classify with AVX2 (two 32-byte blocks instead of four 16-byte ones) when
    /// [`AVX2`], with AVX-512 (one 64-byte block, compares into mask registers) when
    /// [`AVX512`]. Only instantiated above [`SSE2`] inside [`super::presets`]' AVX2 and AVX-512
    /// loops, which run after `is_x86_feature_detected!` found those features; always
    /// [`SSE2`] on other targets.
    #[inline(always)]
    pub fn new<const SIMD: u8>(b: &[u8], base: usize, flags: &Flags, c: Classes) -> Window {
        let mut pad = [0u8; 64];
        let (bytes, mut w) = Window::classified::<SIMD>(b, base, &mut pad, c);
        let valid = w.valid;
        w.mark_contractions(bytes, w.apos & valid);
        w.decode::<SIMD>(bytes, flags, c, 0);
        w
    }

    /// The 64 bytes of `b` from `base` (zero-padded into `pad` at the text's end) and their
    /// byte classes: the SIMD part of [`Window::new`] and [`Window::advance`].
    #[inline(always)]
    fn classified<'a, const SIMD: u8>(
        b: &'a [u8],
        base: usize,
        pad: &'a mut [u8; 64],
        c: Classes,
    ) -> (&'a [u8; 64], Window) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch reads nothing and faults on no address; the pointer is only formed
        // with `wrapping_add`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(base + PREFETCH_AHEAD).cast());
        }
        let rest = b.get(base..).unwrap_or(&[]);
        let (bytes, valid) = match rest.first_chunk::<64>() {
            Some(c) => (c, u64::MAX),
            None => {
                pad[..rest.len()].copy_from_slice(rest);
                let padded: &'a [u8; 64] = pad;
                (padded, (1u64 << rest.len()) - 1)
            }
        };
        #[cfg(target_arch = "x86_64")]
        if SIMD == AVX512 {
            // SAFETY: `SIMD` is `AVX512` only in code that runs after AVX-512 BW was detected
            // (see `new`).
            let mut w = unsafe { avx512::classify(bytes, c) };
            w.base = base;
            w.valid = valid;
            return (bytes, w);
        }
        #[cfg(target_arch = "x86_64")]
        let mut w = if SIMD == AVX2 {
            // SAFETY: `SIMD` is `AVX2` or more only in code that runs after AVX2 was detected.
            unsafe { avx2::classify(bytes, c) }
        } else {
            classify(bytes, c)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let mut w = classify(bytes, c);
        w.base = base;
        w.valid = valid;
        (bytes, w)
    }

    /// Marks in `apos_c` the `'`s of `apos` (bits of `bytes`) that a contraction letter or a
    /// byte `>= 0x80` (a case fold) follows.
    #[inline(always)]
    fn mark_contractions(&mut self, bytes: &[u8; 64], apos: u64) {
        let mut a = apos;
        while a != 0 {
            let k = a.trailing_zeros() as usize;
            a &= a - 1;
            let next = bytes.get(k + 1).copied().unwrap_or(0x80);
            if matches!(next | 0x20, b's' | b'd' | b'm' | b't' | b'l' | b'v' | b'r') || next >= 0x80
            {
                self.apos_c |= 1u64 << k;
            }
        }
    }

    /// The window of `b` from `base`, like [`Window::new`], reusing the characters `self`
    /// (the window of the same text at a lower base) decoded: their bytes keep their classes,
    /// shifted, and only the lead bytes past them are decoded. A character's classes depend on
    /// its own bytes alone, so the masks equal those of [`Window::new`].
    #[inline(always)]
    pub fn advance<const SIMD: u8>(
        &self,
        b: &[u8],
        base: usize,
        flags: &Flags,
        c: Classes,
    ) -> Window {
        let d = base.wrapping_sub(self.base);
        if d == 0 || d >= self.decoded {
            return Window::new::<SIMD>(b, base, flags, c);
        }
        let mut pad = [0u8; 64];
        let (bytes, mut w) = Window::classified::<SIMD>(b, base, &mut pad, c);
        let valid = w.valid;
        // a `'` of the old window keeps its class unless its next byte was past that window
        w.apos_c = (self.apos_c >> d) & !(1u64 << (63 - d));
        w.mark_contractions(bytes, w.apos & valid & !((1u64 << (63 - d)) - 1));
        w.wide = self.wide >> d;
        w.wide_upper = self.wide_upper >> d;
        w.both = self.both >> d;
        w.wide_other = self.wide_other >> d;
        w.wide_space = self.wide_space >> d;
        w.upper |= w.wide_upper;
        w.decode::<SIMD>(bytes, flags, c, self.decoded - d);
        w
    }

    /// Classify the two- and three-byte characters whose lead byte is at window offset `from`
    /// or later (see [`Window::new`]), up to the first that runs past the window. At the [`AVX2`]
    /// level and above their code points are computed for all 64 offsets at once and the
    /// class masks come from one compare per class (`avx2::decode`); below it, one character
    /// at a time.
    #[inline(always)]
    fn decode<const SIMD: u8>(&mut self, bytes: &[u8; 64], flags: &Flags, c: Classes, from: usize) {
        let case = c.case;
        // a character with none of these flags is punctuation, `wide_other` (numbers and
        // spaces are not; for o200k neither are marks, which are in its case classes)
        let word = if case {
            super::presets::FLAG_WORD | super::presets::FLAG_UP | super::presets::FLAG_LO
        } else {
            super::presets::FLAG_WORD
        };
        let leads = self.lead & self.valid & (u64::MAX << from);
        #[cfg(target_arch = "x86_64")]
        if SIMD >= AVX2 {
            // SAFETY: `SIMD` is `AVX2` or more only in code that runs after AVX2 was detected,
            // `AVX512` only after AVX-512 F/BW was (see `new`).
            unsafe { avx2::decode::<SIMD>(self, bytes, flags, c, leads, word) };
            self.finish_decode();
            return;
        }
        self.decoded = 64;
        let mut leads = leads;
        while leads != 0 {
            let k = leads.trailing_zeros() as usize;
            leads &= leads - 1;
            let x = u32::from(bytes[k]);
            let cont = |i: usize| u32::from(bytes.get(k + i).copied().unwrap_or(0) & 0x3F);
            let (cp, n) = if x < 0xE0 {
                (((x & 0x1F) << 6) | cont(1), 2)
            } else {
                (((x & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
            };
            if k + n > 64 {
                self.decoded = k;
                break;
            }
            // (a code point of at most three bytes is below 0x1_0000: no bounds check)
            let f = flags[(cp & 0xFFFF) as usize];
            // branch-free: letters and punctuation alternate unpredictably in some scripts
            let span = ((1u64 << n) - 1) << k;
            let letter = u64::from(f & super::presets::FLAG_L != 0).wrapping_neg();
            let m = span & letter;
            self.wide |= m;
            self.wide_other |= span & u64::from(f & word == 0).wrapping_neg();
            // (no whitespace character is a letter)
            let space = u64::from(c.spaces & (f & super::presets::FLAG_S != 0)).wrapping_neg();
            self.wide_space |= span & space;
            if case {
                // branch-free too (`up && lo` compiled to a mispredicted branch)
                let up = u64::from(f & super::presets::FLAG_UP != 0);
                let lo = u64::from(f & super::presets::FLAG_LO != 0);
                self.both |= m & (up & lo).wrapping_neg();
                let u = m & (up & !lo).wrapping_neg();
                self.upper |= u;
                self.wide_upper |= u;
            }
        }
        self.finish_decode();
    }

    /// Ors the decoded characters' masks into the ASCII classes.
    #[inline(always)]
    fn finish_decode(&mut self) {
        // (once, not per character: each of these is a chain through the loop)
        self.alpha |= self.wide;
        self.ws |= self.wide_space;
        self.high &= !(self.wide | self.wide_other | self.wide_space);
    }

    /// Every class mask of [`classify`] (for the tests of the SIMD versions).
    #[cfg(all(test, target_arch = "x86_64"))]
    fn masks(&self) -> [u64; 10] {
        [
            self.alpha, self.upper, self.digit, self.ws, self.nl, self.high, self.apos, self.slash,
            self.space, self.lead,
        ]
    }

    /// `alpha`, `upper`, `both`, `high`.
    #[cfg(test)]
    pub fn masks_for_tests(&self) -> (u64, u64, u64, u64) {
        (self.alpha, self.upper, self.both, self.high)
    }

    /// ASCII punctuation `[^\s\p{L}\p{N}]`.
    #[inline(always)]
    fn punct(&self) -> u64 {
        self.valid & !(self.alpha | self.digit | self.ws | self.high)
    }

    /// ASCII members of `[^\r\n\p{L}\p{N}]` (the optional prefix of letter pieces).
    #[inline(always)]
    fn prefix(&self) -> u64 {
        self.valid & !(self.alpha | self.digit | self.nl | self.high)
    }

    /// End (window offset) of the run of `m` from `k`, if it is settled: the run stops inside
    /// the window at a byte that is not `>= 0x80`.
    #[inline(always)]
    fn run(&self, m: u64, k: usize) -> Option<usize> {
        let e = k + ones_from(m, k);
        (e < 64 && !bit(self.high, e)).then_some(e)
    }

    /// The continuation bytes of the settled characters of two and three bytes that are not
    /// letters (`wide_other`, `wide_space`): a punctuation or whitespace rule that takes or
    /// splits off one character takes all of its bytes.
    #[inline(always)]
    fn cont(&self) -> u64 {
        (self.wide_other | self.wide_space) & !self.lead
    }

    /// Window offset of the character after the one that starts at `k`.
    #[inline(always)]
    fn next_char(&self, k: usize) -> usize {
        k + 1 + ones_from(self.cont(), k + 1)
    }

    /// The first bytes of the characters that hold the bits of `m` (bits of `m` moved down
    /// over the continuation bytes).
    #[inline(always)]
    fn char_starts(&self, m: u64) -> u64 {
        let cont = self.cont();
        let m = (m & !cont) | ((m & cont) >> 1);
        (m & !cont) | ((m & cont) >> 1)
    }

    /// The end of a piece of whitespace from `o` that a non-space follows at `e` (the run
    /// `o..e` holds no newline): all but its last character, or that one character.
    #[inline(always)]
    fn space_piece(&self, o: usize, e: usize) -> usize {
        // `e > o`: the run is not empty; back over the last character's continuation bytes
        let last = e - 1 - (self.cont() << (64 - e)).leading_ones() as usize;
        self.base + if last > o { last } else { e }
    }

    /// The bits after a lone punctuation character (one that starts a piece, at `o` or not
    /// after a space or other punctuation: the prefix of a letter run that follows it), for
    /// cl100k and o200k; a character of `wide_other` counts once, not per byte.
    #[inline(always)]
    fn after_lone_punct(&self, q: u64, o: u64) -> u64 {
        let prev = |m: u64| m << 1;
        let cont = self.cont();
        let mut a = (q & !cont & !prev(q) & !prev(self.space)) | (q & o);
        a |= prev(a) & cont;
        a |= prev(a) & cont;
        prev(a)
    }

    /// cl100k: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
    /// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s` from window offset `o`.
    #[inline(always)]
    pub fn cl100k(&self, o: usize, len: usize) -> Option<usize> {
        if bit(self.apos_c | self.high, o) {
            return None;
        }
        let p = self.prefix();
        if bit(self.alpha, o) {
            return self.run(self.alpha, o).map(|e| self.base + e);
        }
        if bit(p, o) {
            let n = self.next_char(o);
            if bit(self.high, n) {
                return None;
            }
            if bit(self.alpha, n) {
                return self.run(self.alpha, n).map(|e| self.base + e);
            }
        }
        if bit(self.digit, o) {
            return self.digits(o);
        }
        let q = self.punct();
        let from = if bit(self.space, o) && bit(q, o + 1) {
            o + 1
        } else {
            o
        };
        if bit(q, from) {
            let e = self.run(q, from)?;
            let e = e + ones_from(self.nl, e);
            return (e < 64).then_some(self.base + e);
        }
        // whitespace (the only class left)
        let e = self.run(self.ws, o)?;
        if self.base + e == len {
            return Some(len);
        }
        let nl = self.nl & (((1u64 << e) - 1) >> o << o);
        if nl != 0 {
            return Some(self.base + 64 - nl.leading_zeros() as usize);
        }
        Some(self.space_piece(o, e))
    }

    /// `\p{N}{1,3}+` from `o` (a digit).
    #[inline(always)]
    fn digits(&self, o: usize) -> Option<usize> {
        let n = ones_from(self.digit, o);
        if n >= 3 {
            return Some(self.base + o + 3);
        }
        self.run(self.digit, o).map(|e| self.base + e)
    }

    /// GPT-2: `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`.
    #[inline(always)]
    pub fn gpt2(&self, o: usize, len: usize) -> Option<usize> {
        if bit(self.apos_c | self.high, o) {
            return None;
        }
        let q = self.punct();
        let mut from = o;
        if bit(self.space, o) {
            if bit(self.high, o + 1) {
                return None;
            }
            if bit(self.alpha | self.digit | q, o + 1) {
                from = o + 1;
            }
        }
        for m in [self.alpha, self.digit] {
            if bit(m, from) {
                return self.run(m, from).map(|e| self.base + e);
            }
        }
        if bit(q, from) {
            return self.run(q, from).map(|e| self.base + e);
        }
        let e = self.run(self.ws, o)?;
        if self.base + e == len {
            return Some(len);
        }
        Some(self.space_piece(o, e))
    }

    /// o200k (see `O200K_PATTERN`): ASCII letters are "upper" `[A-Z]` or "lower" `[a-z]`, never
    /// both, so both letter alternatives end after `[A-Z]*[a-z]*` (at least one letter; the
    /// exact scanner's `UpperRun` reasoning with no character in both classes).
    #[inline(always)]
    pub fn o200k(&self, o: usize, len: usize) -> Option<usize> {
        if bit(self.high, o) {
            return None;
        }
        let mut at = None;
        if bit(self.alpha, o) {
            at = Some(o);
        } else if bit(self.prefix(), o) {
            let n = self.next_char(o);
            if bit(self.high, n) {
                return None;
            }
            if bit(self.alpha, n) {
                at = Some(n);
            }
        }
        if let Some(p) = at {
            let u = p + ones_from(self.upper, p);
            let e = self.run(self.alpha & !self.upper & !self.both, u)?;
            if (self.both >> p) & (u64::MAX >> (63 - (e - p))) != 0 {
                return None;
            }
            // the optional contraction suffix is left to the exact scanner
            return (!bit(self.apos_c, e)).then_some(self.base + e);
        }
        if bit(self.digit, o) {
            return self.digits(o);
        }
        let q = self.punct();
        let from = if bit(self.space, o) && bit(q, o + 1) {
            o + 1
        } else {
            o
        };
        if bit(q, from) {
            let e = self.run(q, from)?;
            let e = e + ones_from(self.nl | self.slash, e);
            return (e < 64).then_some(self.base + e);
        }
        let e = self.run(self.ws, o)?;
        let nl = self.nl & (((1u64 << e) - 1) >> o << o);
        if nl != 0 {
            return Some(self.base + 64 - nl.leading_zeros() as usize);
        }
        if self.base + e == len {
            return Some(len);
        }
        Some(self.space_piece(o, e))
    }
}

impl Window {
    /// The trusted piece boundaries of the window for GPT-2 when a piece starts at window
    /// offset `o` (bit `k` = a piece ends at `base + k`; only bits above `o` are set).
    ///
    /// Over ASCII with no contraction, the pieces are the maximal runs of letters, of digits
    /// and of punctuation (each taking the space before it, when there is one), and the runs of
    /// whitespace, of which the last character is a piece of its own (or the space of the
    /// following run) when a non-space follows, and which stay whole at the end of the text.
    /// So a boundary at `k` is a function of the bytes `k - 1..=k + 1` alone, computed for
    /// all 64 positions at once with shifts. Boundaries are trusted only before what ASCII
    /// does not settle: up to 2 bytes before a byte `>= 0x80` or the window's end, and up to a
    /// `'` that starts a piece (a contraction is left to the per-piece path).
    #[inline(always)]
    pub fn gpt2_bounds(&self, o: usize) -> u64 {
        let q = self.punct();
        let prev = |m: u64| m << 1;
        let runs =
            (self.alpha & !prev(self.alpha)) | (self.digit & !prev(self.digit)) | (q & !prev(q));
        let after_space = prev(self.space);
        let ws = self.ws;
        let starts = (runs & !after_space)
            | ((runs & after_space) >> 1)
            | (ws & !prev(ws))
            | (ws & !(ws >> 1) & (self.valid >> 1));
        // (whitespace is ASCII here: `Classes::spaces` is off for gpt2)
        self.trusted(o, starts, (starts | 1u64 << o) & self.apos_c, 0)
    }

    /// [`Window::gpt2_bounds`] for cl100k. Over ASCII with no contraction: a letter run takes
    /// the character before it when that one starts a piece and is in `[^\r\n\p{L}\p{N}]`
    /// (the last of a whitespace run that is not a newline; a lone punctuation character not
    /// after a space); digit runs split every 3 digits from their start; a punctuation run
    /// takes the space before it and the newlines after it; a whitespace run (less those
    /// newlines) splits after its last newline and before its last character when that is not
    /// a newline and a non-space follows, and stays whole at the end of the text. Where a
    /// whitespace run goes on past what ASCII settles, its split is not known: boundaries are
    /// trusted only up to its start.
    #[inline(always)]
    pub fn cl100k_bounds(&self, o: usize) -> u64 {
        let prev = |m: u64| m << 1;
        let q = self.punct();
        let nl = self.nl;
        // one seed per run of newlines (a punctuation character is not a newline): a carry
        let seed = nl & prev(q);
        let absorbed = (nl.wrapping_add(seed) ^ nl) & nl;
        let w2 = self.ws & !absorbed;
        let r = w2 & !nl;
        let last = r & !(w2 >> 1) & (self.valid >> 1);
        let ws_starts =
            (w2 & !prev(w2)) | after_last_newline(nl & w2, r, last) | self.char_starts(last);
        // (`o` is a start whatever precedes it: the bytes before may not be ASCII)
        let lone_q = self.after_lone_punct(q, 1u64 << o);
        let letters = self.alpha & !prev(self.alpha) & !lone_q & !prev(r);
        let puncts = q & !prev(q) & !prev(self.space);
        let starts = letters | puncts | ws_starts | self.digit_starts(o);
        self.trusted(o, starts, (starts | 1u64 << o) & self.apos_c, w2)
    }

    /// [`Window::cl100k_bounds`] for o200k: letter runs also split before an upper-case letter
    /// that follows a lower-case one; a punctuation run takes the `[\r\n/]` after it; a
    /// whitespace run at the end of the text splits after its last newline too. A `'` after a
    /// letter (the contraction suffix) is left to the per-piece path.
    #[inline(always)]
    pub fn o200k_bounds(&self, o: usize, len: usize) -> u64 {
        let prev = |m: u64| m << 1;
        let nl = self.nl;
        let q0 = self.punct();
        let seed = nl & prev(q0);
        // (no seed: `smear_up` gives 0; a branch on it was mispredicted 0.15 M times a pass)
        let absorbed = smear_up(nl | self.slash, seed);
        let q = q0 & !absorbed;
        let w2 = self.ws & !absorbed;
        let r = w2 & !nl;
        let run_end = r & !(w2 >> 1);
        let last = self.char_starts(run_end & (self.valid >> 1));
        // the ends of runs that end before a non-space or at the end of the text: `last` and,
        // when the text ends in the window (`valid` is then its bytes), its last byte; one
        // shift instead of a compare and a select (`len > base`, so `end >= 1`)
        let end = len - self.base;
        let ends = run_end & (self.valid >> u32::from(end > 64));
        let ws_starts = (w2 & !prev(w2)) | after_last_newline(nl & w2, r, ends) | last;
        // (`o` is a start whatever precedes it: the bytes before may not be ASCII)
        let lone_q = self.after_lone_punct(q, 1u64 << o);
        let lower = self.alpha & !self.upper & !self.both;
        let (splits, open) = if self.both == 0 {
            (self.upper & prev(lower), w2)
        } else {
            self.case_splits(o, lower, w2)
        };
        let letters = (self.alpha & !prev(self.alpha) & !lone_q & !prev(r)) | splits;
        let puncts = q & !prev(q) & !prev(self.space);
        let starts = letters | puncts | ws_starts | self.digit_starts(o);
        self.trusted(o, starts, (self.apos_c & prev(self.alpha)) >> 1, open)
    }

    /// o200k's splits inside a run of letters when some are in both of its letter classes
    /// (`W`: `Lm`, `Lo`; `U`: `upper`, `Lu`/`Lt`; `D`: `lower`, `Ll`), and the runs whose
    /// splits depend on where they end (for `trusted`). The letter alternatives are
    /// `P?[UW]*[DW]+|P?[UW]+[DW]*`: from a piece start, `[UW]*` takes every `U` and `W`; if a
    /// `D` follows, `[DW]+` takes the `D`/`W` run after it and the piece ends before the next
    /// `U`: a split before each `U` that follows a `D`, or a `W` after a `D` of the same
    /// `D`/`W` run. If no `D` follows the `U`/`W` run, `[UW]*` gives back down to its last `W`
    /// (`[DW]+` takes that one), or, with no `W`, the second alternative takes the whole run:
    /// a split before the `U`s that end such a run after a `W` that no `D` precedes. That
    /// split depends on the run's end, so a run of `U`s after a `W` is open (with that `W`):
    /// not trusted past its start when it reaches a byte that is not settled. The splits
    /// follow from the window's piece start `o` on.
    #[inline(always)]
    fn case_splits(&self, o: usize, lower: u64, w2: u64) -> (u64, u64) {
        let prev = |m: u64| m << 1;
        let (up, both) = (self.upper, self.both);
        // (the piece start `o` ends any `D`/`W` run before it: it may follow a contraction)
        let from = u64::MAX << o;
        let dw = smear_up((lower | both) & from, lower & from);
        let x = up | both;
        let last_u = up & !(x >> 1) & !(lower >> 1);
        let tail = smear_down(up, last_u);
        let splits = (up & prev(dw)) | (tail & !prev(tail) & prev(both & !dw));
        // open: every run of `U` after a `W` with that `W` (only the split before such a run
        // depends on what follows it; `x | w2` would chain words and spaces to the window end)
        let after_w = smear_up(up, up & prev(both));
        (splits, after_w | (both & (after_w >> 1)) | w2)
    }

    /// Starts of the `\p{N}{1,3}` pieces from `o` on: every third digit of a run from its start
    /// (`o` is a piece start, so it starts a group; a run after a byte `>= 0x80` may continue a
    /// non-ASCII digit run, and gets no start).
    #[inline(always)]
    fn digit_starts(&self, o: usize) -> u64 {
        let n = self.digit;
        let mut d = ((n & !(n << 1) & !(self.high << 1)) | 1u64 << o) & n & (u64::MAX << o);
        let n3 = n & (n << 1) & (n << 2);
        let mut cur = d;
        loop {
            cur = (cur << 3) & n3;
            if cur == 0 {
                return d;
            }
            d |= cur;
        }
    }

    /// The `starts` after the piece start `o` that ASCII settles: before the first byte
    /// `>= 0x80` (from `o`) less 1, before bit 63 (bit 63 needs byte 64), up to the first bit
    /// of `stop` (from `o`) included, and up to the start of a run of `open` (runs whose
    /// splits depend on where they end) that reaches the first byte not settled; plus the end
    /// of the text when it lies in the window. No branch: about 30 mask operations.
    #[inline(always)]
    fn trusted(&self, o: usize, starts: u64, stop: u64, open: u64) -> u64 {
        // masks and selects, no branch on which case applies (the `open` case alone was
        // mispredicted 0.15 M times a cl100k pass as an `if`)
        let from = u64::MAX << o;
        // the end of the text when it lies in the window (`valid` is then its bytes)
        let b = ((starts & self.valid) | self.valid.wrapping_add(1)) & (from << 1);
        // `h`: the first byte not settled (none: every byte is, up to the window's end)
        let unsettled = self.high & self.valid & from;
        let h = unsettled & unsettled.wrapping_neg();
        let (none, full) = (unsettled == 0, self.valid == u64::MAX);
        // trusted: the bits below the byte before `h` (bit 63 needs byte 64), or every bit
        // when the text ends in the window
        let below = (h.wrapping_sub(1) >> 1) | (u64::from(none & !full) << 63);
        // a run of `open` that reaches the byte before `h` (or the window's last byte): only
        // up to its start
        let last = (h >> 1) | (u64::from(none & full) << 63);
        let rest = ((!open & last.wrapping_sub(1)) << 1) | 1;
        let to_open = u64::MAX >> rest.leading_zeros();
        let to_open = to_open | u64::from(last & open == 0).wrapping_neg();
        // and up to the first bit of `stop` included
        let stop = stop & from;
        b & below & to_open & (stop ^ stop.wrapping_sub(1))
    }
}

/// Every class, and none of those a preset may leave out (for the tests of the SIMD versions).
#[cfg(all(test, target_arch = "x86_64"))]
const CLASSES_FOR_TESTS: [Classes; 2] = [
    Classes {
        case: true,
        spaces: true,
        newlines: true,
        slash: true,
    },
    Classes {
        case: false,
        spaces: false,
        newlines: false,
        slash: false,
    },
];

/// `simd` (a SIMD classifier) gives the masks of the byte loop on 64-byte windows holding every
/// byte value, forwards and backwards, for every class set of [`CLASSES_FOR_TESTS`].
#[cfg(all(test, target_arch = "x86_64"))]
fn check_classifier(simd: impl Fn(&[u8; 64], Classes) -> Window) {
    for j in 0..8u8 {
        let mut bytes = [0u8; 64];
        for (k, x) in bytes.iter_mut().enumerate() {
            let v = 64 * (j % 4) + k as u8;
            *x = if j < 4 { v } else { 255 - v };
        }
        for c in CLASSES_FOR_TESTS {
            assert_eq!(
                simd(&bytes, c).masks(),
                classify_bytes(&bytes, c).masks(),
                "{j}"
            );
        }
    }
}

/// The class masks of 64 bytes (`base` and `valid` left 0; the classes `c` leaves out empty).
#[inline]
fn classify(bytes: &[u8; 64], c: Classes) -> Window {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::classify(bytes, c)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        classify_bytes(bytes, c)
    }
}

/// Portable classification, one byte at a time (also the reference of the SIMD versions).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_bytes(bytes: &[u8; 64], c: Classes) -> Window {
    let mut w = Window::default();
    for (k, &x) in bytes.iter().enumerate() {
        let m = 1u64 << k;
        let set = |f: bool| if f { m } else { 0 };
        w.alpha |= set(x.is_ascii_alphabetic());
        w.upper |= set(c.case && x.is_ascii_uppercase());
        w.digit |= set(x.is_ascii_digit());
        w.ws |= set(matches!(x, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' '));
        w.nl |= set(c.newlines && (x == b'\r' || x == b'\n'));
        w.high |= set(x >= 0x80);
        w.apos |= set(x == b'\'');
        w.slash |= set(c.slash && x == b'/');
        w.space |= set(x == b' ');
        w.lead |= set((0xC0..0xF0).contains(&x));
    }
    w
}

/// The AVX-512 level (its intrinsics are stable since Rust 1.89, the crate's MSRV).
#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use super::{Classes, Window};
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_castsi512_si128, _mm512_cmpeq_epi8_mask,
        _mm512_cmplt_epu8_mask, _mm512_cvtepu8_epi64, _mm512_loadu_si512,
        _mm512_maskz_compress_epi8, _mm512_movepi8_mask, _mm512_or_si512,
        _mm512_permutex2var_epi64, _mm512_permutexvar_epi64, _mm512_set1_epi64, _mm512_set1_epi8,
        _mm512_setr_epi64, _mm512_storeu_si512, _mm512_sub_epi8, _mm512_test_epi8_mask,
    };

    // the emit stores a piece as two 64-bit lanes, start then end
    const _: () = assert!(
        std::mem::offset_of!((usize, usize), 0) == 0
            && std::mem::offset_of!((usize, usize), 1) == 8
            && std::mem::size_of::<(usize, usize)>() == 16
    );

    /// Bytes `x` with `lo <= x < lo + n` (unsigned).
    #[inline(always)]
    unsafe fn in_range(v: __m512i, lo: u8, n: u8) -> u64 {
        _mm512_cmplt_epu8_mask(
            _mm512_sub_epi8(v, _mm512_set1_epi8(lo as i8)),
            _mm512_set1_epi8(n as i8),
        )
    }

    #[inline(always)]
    unsafe fn eq(v: __m512i, x: u8) -> u64 {
        _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(x as i8))
    }

    /// [`super::sse2::classify`] with one 64-byte block, each class one compare into a mask
    /// register.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and BW.
    #[inline(always)]
    pub(super) unsafe fn classify(bytes: &[u8; 64], c: Classes) -> Window {
        let mut w = Window::default();
        // SAFETY: `bytes` is 64 readable bytes; the load is unaligned. The rest are
        // register-only AVX-512 intrinsics; the caller guarantees the features.
        unsafe {
            let v = _mm512_loadu_si512(bytes.as_ptr().cast::<__m512i>());
            w.alpha = in_range(_mm512_or_si512(v, _mm512_set1_epi8(0x20)), b'a', 26);
            if c.case {
                w.upper = in_range(v, b'A', 26);
            }
            w.digit = in_range(v, b'0', 10);
            w.space = eq(v, b' ');
            w.ws = in_range(v, b'\t', 5) | w.space;
            if c.newlines {
                w.nl = eq(v, b'\n') | eq(v, b'\r');
            }
            w.high = _mm512_movepi8_mask(v);
            w.apos = eq(v, b'\'');
            if c.slash {
                w.slash = eq(v, b'/');
            }
            w.lead = in_range(v, 0xC0, 0x30);
        }
        w
    }

    /// [`super::avx2::any_flag`] with one `vptestmb`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and BW.
    #[inline(always)]
    pub(super) unsafe fn any_flag(fl: &[u8; 64], f: u8) -> u64 {
        // SAFETY: `fl` is 64 readable bytes (unaligned load); the caller guarantees the
        // features.
        unsafe {
            let v = _mm512_loadu_si512(fl.as_ptr().cast::<__m512i>());
            _mm512_test_epi8_mask(v, _mm512_set1_epi8(f as i8))
        }
    }

    /// Writes the `n` pieces that end at the bits of `ends` (window offsets from `base`; the
    /// first starts at `start`, each next one where the one before ends) into `dst` as
    /// `(start, end)` spans, 8 at a time: the offsets of the bits compressed into the first
    /// `n` bytes of a register (`vpcompressb`), each 8 widened to 64 bits and interleaved with
    /// the ends before them into two 64-byte stores. The first 16 spans are written whatever
    /// `n` is, then whole groups of 8; entries past `n` hold arbitrary spans.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VBMI2.
    #[inline(always)]
    pub(in crate::pretokenize) unsafe fn emit(
        dst: &mut [(usize, usize); 64],
        start: usize,
        base: usize,
        ends: u64,
        n: usize,
    ) {
        // SAFETY: register-only AVX-512 intrinsics (the caller guarantees the features); the
        // stores write 64 bytes, 4 spans, at spans `4 * j` for `j < 16` of the 64 of `dst`
        // (unaligned), whose layout the assertion above fixes.
        unsafe {
            let iota = _mm512_loadu_si512(IOTA.as_ptr().cast::<__m512i>());
            let offsets = _mm512_maskz_compress_epi8(ends, iota);
            let base = _mm512_set1_epi64(base as i64);
            // (start, end) of pieces 0..4 of a group: lane 8 is the end before the group
            let first = _mm512_setr_epi64(15, 0, 0, 1, 1, 2, 2, 3);
            let second = _mm512_setr_epi64(3, 4, 4, 5, 5, 6, 6, 7);
            let mut prev = _mm512_set1_epi64(start as i64);
            let out = dst.as_mut_ptr().cast::<__m512i>();
            for g in 0..8 {
                if g >= 2 && 8 * g >= n {
                    break;
                }
                let group = _mm512_permutexvar_epi64(_mm512_set1_epi64(g as i64), offsets);
                let e = _mm512_add_epi64(_mm512_cvtepu8_epi64(_mm512_castsi512_si128(group)), base);
                _mm512_storeu_si512(out.add(2 * g), _mm512_permutex2var_epi64(e, first, prev));
                _mm512_storeu_si512(out.add(2 * g + 1), _mm512_permutexvar_epi64(second, e));
                prev = e;
            }
        }
    }

    /// The byte offsets of a window, `0..64`.
    static IOTA: [u8; 64] = {
        let mut a = [0u8; 64];
        let mut i = 0;
        while i < 64 {
            a[i] = i as u8;
            i += 1;
        }
        a
    };

    #[cfg(test)]
    mod tests {
        #[test]
        fn avx512_agrees_with_bytes() {
            if !(std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw"))
            {
                return;
            }
            // SAFETY: AVX-512 F and BW were detected above.
            super::super::check_classifier(|b, c| unsafe { super::classify(b, c) });
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Classes, Flags, Window};
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_add_epi8, _mm256_and_si256, _mm256_blendv_epi8, _mm256_cmpeq_epi8,
        _mm256_cmpgt_epi16, _mm256_cmpgt_epi8, _mm256_cvtepu8_epi16, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi16, _mm256_set1_epi8,
        _mm256_setzero_si256, _mm256_slli_epi16, _mm256_storeu_si256, _mm_alignr_epi8,
        _mm_loadu_si128, _mm_setzero_si128,
    };

    /// Bytes `x` with `lo <= x < lo + n` (unsigned), as in the SSE2 version.
    #[inline(always)]
    unsafe fn in_range(v: __m256i, lo: u8, n: u8) -> __m256i {
        let shifted = _mm256_add_epi8(v, _mm256_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
        _mm256_cmpgt_epi8(_mm256_set1_epi8((0x80u8.wrapping_add(n)) as i8), shifted)
    }

    #[inline(always)]
    unsafe fn eq(v: __m256i, x: u8) -> __m256i {
        _mm256_cmpeq_epi8(v, _mm256_set1_epi8(x as i8))
    }

    #[inline(always)]
    unsafe fn bits(m: __m256i) -> u64 {
        u64::from(_mm256_movemask_epi8(m) as u32)
    }

    /// [`super::sse2::classify`] with two 32-byte blocks.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn classify(bytes: &[u8; 64], c: Classes) -> Window {
        let mut w = Window::default();
        for (i, chunk) in bytes.chunks_exact(32).enumerate() {
            // SAFETY: `chunk` is 32 readable bytes; the load is unaligned.
            let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>()) };
            let sh = 32 * i;
            // SAFETY: register-only AVX2 intrinsics; the caller guarantees AVX2.
            unsafe {
                let lower = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
                w.alpha |= bits(in_range(lower, b'a', 26)) << sh;
                if c.case {
                    w.upper |= bits(in_range(v, b'A', 26)) << sh;
                }
                w.digit |= bits(in_range(v, b'0', 10)) << sh;
                let space = eq(v, b' ');
                w.ws |= bits(_mm256_or_si256(in_range(v, b'\t', 5), space)) << sh;
                if c.newlines {
                    w.nl |= bits(_mm256_or_si256(eq(v, b'\n'), eq(v, b'\r'))) << sh;
                }
                w.high |= bits(v) << sh;
                w.apos |= bits(eq(v, b'\'')) << sh;
                if c.slash {
                    w.slash |= bits(eq(v, b'/')) << sh;
                }
                w.space |= bits(space) << sh;
                w.lead |= bits(in_range(v, 0xC0, 0x30)) << sh;
            }
        }
        w
    }

    /// The code point of the two- or three-byte character that would start at each offset
    /// of `bytes` (meaningful at the lead bytes only; bytes past the window read as 0, so a
    /// character that runs past it gets a wrong one and must be left out by the caller).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn code_points(bytes: &[u8; 64], cps: &mut [u16; 64]) {
        for g in 0..4 {
            // SAFETY: bytes `16 * g..16 * g + 32` (the second half only below 48) and `u16`s
            // `16 * g..16 * g + 16` are in the arrays (unaligned loads and store); the rest are
            // register-only AVX2 intrinsics.
            unsafe {
                let p = bytes.as_ptr().add(16 * g);
                let a = _mm_loadu_si128(p.cast::<__m128i>());
                let b = if g < 3 {
                    _mm_loadu_si128(p.add(16).cast::<__m128i>())
                } else {
                    _mm_setzero_si128()
                };
                let b0 = _mm256_cvtepu8_epi16(a);
                let b1 = _mm256_cvtepu8_epi16(_mm_alignr_epi8::<1>(b, a));
                let b2 = _mm256_cvtepu8_epi16(_mm_alignr_epi8::<2>(b, a));
                let m3f = _mm256_set1_epi16(0x3F);
                let t1 = _mm256_and_si256(b1, m3f);
                let two = _mm256_or_si256(
                    _mm256_slli_epi16::<6>(_mm256_and_si256(b0, _mm256_set1_epi16(0x1F))),
                    t1,
                );
                // (the shift by 12 keeps the lead byte's low 4 bits)
                let three = _mm256_or_si256(
                    _mm256_or_si256(_mm256_slli_epi16::<12>(b0), _mm256_slli_epi16::<6>(t1)),
                    _mm256_and_si256(b2, m3f),
                );
                let is3 = _mm256_cmpgt_epi16(b0, _mm256_set1_epi16(0xDF));
                let cp = _mm256_blendv_epi8(two, three, is3);
                _mm256_storeu_si256(cps.as_mut_ptr().add(16 * g).cast::<__m256i>(), cp);
            }
        }
    }

    /// Bit `k` set when byte `k` of `fl` has one of the flags `f`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn any_flag(fl: &[u8; 64], f: u8) -> u64 {
        let mut out = 0;
        for (i, chunk) in fl.chunks_exact(32).enumerate() {
            // SAFETY: `chunk` is 32 readable bytes (unaligned load); the rest are register-only
            // AVX2 intrinsics.
            let none = unsafe {
                let v = _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>());
                _mm256_cmpeq_epi8(
                    _mm256_and_si256(v, _mm256_set1_epi8(f as i8)),
                    _mm256_setzero_si256(),
                )
            };
            out |= !unsafe { bits(none) } << (32 * i) & (u64::from(u32::MAX) << (32 * i));
        }
        out
    }

    /// [`Window::decode`] of the lead bytes `leads` of `bytes` (all past the characters
    /// already classified), branch-free but for one loop of two loads and a store per
    /// character: the code points of every offset at once ([`code_points`]), each lead's
    /// class flags looked up into a byte array, then each class's lead bits by one compare
    /// (one `vptestmb` when `SIMD` is [`super::AVX512`]) and moved over the character's
    /// continuation bytes with two shifts. `word`: the flags of the characters that are not
    /// punctuation.
    ///
    /// # Safety
    /// The CPU must support AVX2, and AVX-512 F and BW when `SIMD` is [`super::AVX512`].
    #[inline(always)]
    pub(super) unsafe fn decode<const SIMD: u8>(
        w: &mut Window,
        bytes: &[u8; 64],
        flags: &Flags,
        c: Classes,
        leads: u64,
        word: u8,
    ) {
        use crate::pretokenize::presets::{FLAG_L, FLAG_LO, FLAG_S, FLAG_UP};
        w.decoded = 64;
        if leads == 0 {
            return;
        }
        let mut lead3 = 0;
        for (i, chunk) in bytes.chunks_exact(32).enumerate() {
            // SAFETY: `chunk` is 32 readable bytes; the load is unaligned.
            let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>()) };
            // SAFETY: register-only AVX2 intrinsics; the caller guarantees AVX2.
            lead3 |= unsafe { bits(in_range(v, 0xE0, 0x10)) } << (32 * i);
        }
        // the character that runs past the window (a lead byte at 63, a three-byte one at 62;
        // at most one): it and the bytes after it stay unclassified
        let cut = leads & ((1 << 63) | (lead3 & (1 << 62)));
        w.decoded = cut.trailing_zeros() as usize;
        let leads = leads & !cut;
        let lead3 = lead3 & leads;
        let mut cps = [0u16; 64];
        // SAFETY: the caller guarantees AVX2.
        unsafe { code_points(bytes, &mut cps) };
        let mut fl = [0u8; 64];
        let mut m = leads;
        while m != 0 {
            let k = m.trailing_zeros() as usize & 63;
            m &= m - 1;
            fl[k] = flags[usize::from(cps[k])];
        }
        // SAFETY: the caller guarantees AVX2, and AVX-512 F/BW when `SIMD` is `AVX512`.
        let any = |f: u8| unsafe {
            if SIMD == super::AVX512 {
                return super::avx512::any_flag(&fl, f);
            }
            any_flag(&fl, f)
        };
        let letter = any(FLAG_L);
        let other = leads & !any(word);
        let space = if c.spaces { any(FLAG_S) } else { 0 };
        let (up, lo) = if c.case {
            (any(FLAG_UP), any(FLAG_LO))
        } else {
            (0, 0)
        };
        // every byte of the characters that start at the bits of `x`
        let spread = |x: u64| x | (x << 1) | ((x & lead3) << 2);
        w.wide |= spread(letter);
        w.wide_other |= spread(other);
        w.wide_space |= spread(space);
        if c.case {
            w.both |= spread(letter & up & lo);
            let u = spread(letter & up & !lo);
            w.upper |= u;
            w.wide_upper |= u;
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn avx2_agrees_with_bytes() {
            if !std::arch::is_x86_feature_detected!("avx2") {
                return;
            }
            // SAFETY: AVX2 was detected above.
            super::super::check_classifier(|b, c| unsafe { super::classify(b, c) });
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::{Classes, Window};
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };

    /// Bytes `x` with `lo <= x < lo + n` (unsigned): shift the range to the bottom of the
    /// signed range and compare once.
    #[inline(always)]
    fn in_range(v: __m128i, lo: u8, n: u8) -> __m128i {
        // SAFETY: SSE2 is part of the x86_64 baseline; these are register-only intrinsics.
        unsafe {
            let shifted = _mm_add_epi8(v, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
            _mm_cmplt_epi8(shifted, _mm_set1_epi8((0x80u8.wrapping_add(n)) as i8))
        }
    }

    #[inline(always)]
    fn eq(v: __m128i, x: u8) -> __m128i {
        // SAFETY: as above.
        unsafe { _mm_cmpeq_epi8(v, _mm_set1_epi8(x as i8)) }
    }

    #[inline(always)]
    fn bits(m: __m128i) -> u64 {
        // SAFETY: as above.
        u64::from(unsafe { _mm_movemask_epi8(m) } as u16)
    }

    #[inline(always)]
    fn or(a: __m128i, b: __m128i) -> __m128i {
        // SAFETY: as above.
        unsafe { _mm_or_si128(a, b) }
    }

    #[inline]
    pub(super) fn classify(bytes: &[u8; 64], c: Classes) -> Window {
        let mut w = Window::default();
        for (i, chunk) in bytes.chunks_exact(16).enumerate() {
            // SAFETY: `chunk` is 16 readable bytes; the load is unaligned.
            let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
            let sh = 16 * i;
            // SAFETY: as above.
            let lower = unsafe { _mm_or_si128(v, _mm_set1_epi8(0x20)) };
            w.alpha |= bits(in_range(lower, b'a', 26)) << sh;
            if c.case {
                w.upper |= bits(in_range(v, b'A', 26)) << sh;
            }
            w.digit |= bits(in_range(v, b'0', 10)) << sh;
            let space = eq(v, b' ');
            w.ws |= bits(or(in_range(v, b'\t', 5), space)) << sh;
            if c.newlines {
                w.nl |= bits(or(eq(v, b'\n'), eq(v, b'\r'))) << sh;
            }
            w.high |= bits(v) << sh;
            w.apos |= bits(eq(v, b'\'')) << sh;
            if c.slash {
                w.slash |= bits(eq(v, b'/')) << sh;
            }
            w.space |= bits(space) << sh;
            w.lead |= bits(in_range(v, 0xC0, 0x30)) << sh;
        }
        w
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn sse2_agrees_with_bytes() {
            super::super::check_classifier(super::classify);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The carry fill of `smear_up` against a fill by doubling steps, on random masks with
    /// several seeds per run.
    #[test]
    fn smear_up_is_a_fill() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let m = next() | next();
            let seed = next() & next() & m;
            let (mut want, mut mm) = (seed, m);
            for k in [1, 2, 4, 8, 16, 32] {
                want |= (want << k) & mm;
                mm &= mm << k;
            }
            assert_eq!(super::smear_up(m, seed), want, "{m:#x} {seed:#x}");
        }
    }
}
