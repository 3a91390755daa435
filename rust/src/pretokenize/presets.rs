//! Hand-written pre-tokenizer scanner for the three tiktoken regex presets.
//!
//! tiktoken splits text into "pieces" with a regex before byte-pair merging.
//! This module gives the exact piece boundaries that `fancy-regex` 0.20
//! `Regex::find_iter` produces for the patterns [`GPT2_PATTERN`],
//! [`CL100K_PATTERN`] and [`O200K_PATTERN`] (the `pat_str` values of
//! tiktoken 0.14.0 `tiktoken_ext/openai_public.py`), without running a regex
//! engine and without allocating.
//!
//! # How it mirrors the regexes
//!
//! Every character of any text is matched by some alternative of each
//! pattern, so the matches of `find_iter` tile the text: each match starts
//! where the previous one ended. [`Preset::piece_end`] therefore only has to
//! answer "where does the match that starts at `start` end?", and it does so
//! by walking the alternatives in the pattern's order, exactly as a
//! backtracking engine with leftmost-first alternation would, taking into
//! account:
//!
//! * greedy quantifiers that give characters back (`\s+(?!\S)` keeps all but
//!   the last whitespace character unless the run reaches the end of the
//!   text; `\s*[\r\n]` ends right after the last `\r`/`\n` of the run; the
//!   o200k letter alternatives `[Upper]*[Lower]+` retreat to the last
//!   character that is in both classes),
//! * possessive quantifiers that do not (`?+`, `++`, `{1,3}+`),
//! * the optional leading space ` ?` that is given back when it does not
//!   lead to a match,
//! * `$`, which is the end of the whole text (not multi-line),
//! * `(?i:...)` contractions after an ASCII `'`, using the case folds that
//!   regex-syntax applies (besides ASCII, U+017F LATIN SMALL LETTER LONG S
//!   matches `s`; no other non-ASCII character folds to d, m, t, l, v, e, r).
//!
//! The character classes (`\s` = Unicode `White_Space`, `\p{L}`, `\p{N}`,
//! `\p{Lu}` ... `\p{M}`) and the case folds are read once from
//! `regex-syntax` itself (the version fancy-regex uses), so both sides agree
//! on every code point. They are built lazily in a `OnceLock` (a few
//! milliseconds, once per process) as one byte of class flags per code
//! point: a 128-entry ASCII table, a flat 64 KiB table for the rest of the
//! Basic Multilingual Plane, and a two-level table (256-code-point blocks,
//! identical blocks shared) above it. ASCII bytes are classified by one
//! table load, and runs of ASCII letters and of spaces are skipped 8 bytes
//! at a time (SWAR on `u64` words); UTF-8 is decoded only at bytes `>= 0x80`.
//! No `unsafe`.
//!
//! [`Spans`] (the encoder's path, [`fill_spans`] for one buffer) first asks the fast path of
//! `blocks.rs` (byte classes of 64-byte windows as bitmasks, SSE2 on x86_64;
//! all the boundaries of a window at once where ASCII settles them), and
//! defers everything else to the scanners here; the tests compare both paths
//! with `fancy-regex`.
//!
//! # Complexity
//!
//! Linear in the length of the text, with no super-linear worst case. A
//! piece may look past its own end (to the end of a whitespace run, or of an
//! o200k run of "upper" letters) and then give characters back; only the
//! characters given back are scanned again, by the next piece, which never
//! gives them back a second time. So each character is examined at most
//! three times.
//!
//! # Testing
//!
//! The `tests` module compares the pieces with `fancy_regex::Regex::find_iter`
//! over the same pattern string (matches must tile the text and be equal) on:
//! the `corpora/*.txt` files next to the crate manifest when present (UDHR
//! texts in 30 languages), the crate's own Rust sources, a list of targeted
//! edge cases (contractions and their case folds, trailing whitespace,
//! `\r\n`, lone combining marks, non-ASCII digits, emoji and ZWJ sequences,
//! Unicode spaces, mixed-case words for o200k, ...) and a seeded random test
//! over an alphabet mixing all of the relevant character categories
//! (`TOKFORGE_FUZZ_ITERS` sets the number of strings per preset, 20,000 by
//! default; `TOKFORGE_FUZZ_SEED` the seed).

use std::collections::HashMap;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

use super::blocks::{Classes, Flags, Window, AVX2, AVX512, REBASE, SSE2};

/// Pattern of GPT-2 / `r50k_base` / `p50k_base` (tiktoken `r50k_pat_str`).
pub const GPT2_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";

/// Pattern of `cl100k_base`.
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// Pattern of `o200k_base`: seven alternatives joined by `|`.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+",
);

/// One of the three pre-tokenizer regexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// GPT-2 (`r50k_base`, `p50k_base`, `p50k_edit`).
    Gpt2,
    /// `cl100k_base`.
    Cl100k,
    /// `o200k_base`.
    O200k,
}

impl Preset {
    /// All presets.
    pub const ALL: [Preset; 3] = [Preset::Gpt2, Preset::Cl100k, Preset::O200k];

    /// The exact regex string this preset mirrors.
    #[must_use]
    pub fn pattern(self) -> &'static str {
        match self {
            Preset::Gpt2 => GPT2_PATTERN,
            Preset::Cl100k => CL100K_PATTERN,
            Preset::O200k => O200K_PATTERN,
        }
    }

    /// Short name: `"gpt2"`, `"cl100k"` or `"o200k"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Preset::Gpt2 => "gpt2",
            Preset::Cl100k => "cl100k",
            Preset::O200k => "o200k",
        }
    }

    /// Inverse of [`Preset::name`] (exact, case-sensitive).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Preset> {
        match name {
            "gpt2" => Some(Preset::Gpt2),
            "cl100k" => Some(Preset::Cl100k),
            "o200k" => Some(Preset::O200k),
            _ => None,
        }
    }

    /// Byte offset where the piece that starts at `start` ends.
    ///
    /// `start` should be `< text.len()` and on a char boundary. Out of
    /// contract inputs do not panic: `start >= text.len()` returns
    /// `text.len()`, and a `start` inside a character returns the next char
    /// boundary.
    #[must_use]
    pub fn piece_end(self, text: &str, start: usize) -> usize {
        end_at(self, tables(), text.as_bytes(), start)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Iterator over the pieces of a text; see [`pieces`].
#[derive(Clone)]
pub struct Pieces<'a> {
    preset: Preset,
    text: &'a str,
    pos: usize,
    tables: &'static Tables,
}

/// Iterator over the pieces (`&str` slices) of `text`, in order. The pieces
/// are non-empty and concatenate to `text`.
#[must_use]
pub fn pieces(preset: Preset, text: &str) -> Pieces<'_> {
    Pieces {
        preset,
        text,
        pos: 0,
        tables: tables(),
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let end = end_at(self.preset, self.tables, self.text.as_bytes(), self.pos);
        let piece = self.text.get(self.pos..end);
        self.pos = end;
        piece
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let rest = self.text.len().saturating_sub(self.pos);
        (usize::from(rest > 0), Some(rest))
    }
}

impl FusedIterator for Pieces<'_> {}

/// Fill `buf` with the `(start, end)` byte spans of the pieces of `text` from byte `pos` (a
/// piece start); returns how many, fewer than `buf.len()` only at the end of the text.
pub fn fill_spans(preset: Preset, text: &str, pos: usize, buf: &mut [(usize, usize)]) -> usize {
    Spans::new(preset, text, pos).fill(buf, 0, buf.len())
}

/// Room [`Spans::fill`] needs in `buf` past `want` to emit a window's pieces in groups with
/// no branch per piece: a window ends at most 64 pieces, written up to 8 past the last.
pub const SLACK: usize = 72;

/// The piece spans of a text, handed out in bufferfuls (the encoder's path).
///
/// Keeps the classified window and the detected CPU features from one [`Spans::fill`] to the
/// next, so a text is classified window after window once, not again at each buffer's first
/// piece. Cost: linear in the text (see `blocks`).
pub struct Spans<'t> {
    preset: Preset,
    text: &'t [u8],
    /// start of the next piece
    pos: usize,
    /// the window of `pos` (`base <= pos`), when one was built
    window: Option<Window>,
    /// the builds of the loop that can run: [`AVX512`], [`AVX2`] or [`SSE2`] (the CPU's
    /// [`crate::simd::level`])
    simd: u8,
}

impl<'t> Spans<'t> {
    /// The pieces of `text` from byte `pos` (a piece start).
    pub fn new(preset: Preset, text: &'t str, pos: usize) -> Self {
        let simd = crate::simd::level() as u8;
        Spans {
            preset,
            text: text.as_bytes(),
            pos,
            window: None,
            simd,
        }
    }

    /// Whether every piece has been handed out.
    pub fn done(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Write spans into `buf` from index `k` on until at least `want` are there or the text
    /// ends; returns the new count. Never writes past `buf.len()`: with at least [`SLACK`]
    /// entries past `want`, a window's pieces are emitted whole (the count may pass `want`),
    /// otherwise it stops at `buf.len()`.
    pub fn fill(&mut self, buf: &mut [(usize, usize)], k: usize, want: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        if self.simd == AVX512 {
            // SAFETY: `simd` is only `AVX512` when the features of `fill_avx512` were detected.
            return unsafe { self.fill_avx512(buf, k, want) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.simd == AVX2 {
            // SAFETY: `simd` is only `AVX2` when the features of `fill_avx2` were detected.
            return unsafe { self.fill_avx2(buf, k, want) };
        }
        self.fill_with::<SSE2>(buf, k, want)
    }

    /// [`Spans::fill`] compiled for AVX-512 as well as AVX2: a window's 64 bytes classified
    /// with one compare per class into mask registers, its pieces written 8 at a time from the
    /// compressed offsets of its ends (`blocks::avx512`).
    ///
    /// # Safety
    /// The CPU must support the features of `fill_avx2` and AVX-512 F, BW and VBMI2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512vbmi2")]
    unsafe fn fill_avx512(&mut self, buf: &mut [(usize, usize)], k: usize, want: usize) -> usize {
        self.fill_with::<AVX512>(buf, k, want)
    }

    /// [`Spans::fill`] compiled for AVX2 (classification of 32 bytes per instruction) and BMI
    /// (`tzcnt`, `lzcnt` and friends for the mask arithmetic).
    ///
    /// # Safety
    /// The CPU must support AVX2, BMI1, BMI2, LZCNT and POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn fill_avx2(&mut self, buf: &mut [(usize, usize)], k: usize, want: usize) -> usize {
        self.fill_with::<AVX2>(buf, k, want)
    }

    /// [`Spans::fill`] at the SIMD level `SIMD` (above [`SSE2`] only from `fill_avx2` and
    /// `fill_avx512`).
    #[inline(always)]
    fn fill_with<const SIMD: u8>(
        &mut self,
        buf: &mut [(usize, usize)],
        k: usize,
        want: usize,
    ) -> usize {
        let t = tables();
        // one loop per preset, so that both scanners are inlined into it; the window fast path
        // (`blocks`) answers ASCII pieces, the exact scanner the rest
        match self.preset {
            Preset::Gpt2 => fill_blocks::<Gpt2Rules, SIMD>(self, t, buf, k, want),
            Preset::Cl100k => fill_blocks::<Cl100kRules, SIMD>(self, t, buf, k, want),
            Preset::O200k => fill_blocks::<O200kRules, SIMD>(self, t, buf, k, want),
        }
    }
}

/// A preset's window rules and exact scanner, as plain functions (not closures), so that they
/// are inlined into the loop and compiled with its target features.
trait Rules {
    /// The non-ASCII classes its windows tell apart (see `Window::new`).
    const CLASSES: Classes;
    /// The trusted piece ends of a window from a piece start (`Window::gpt2_bounds`, ...).
    fn bounds(w: &Window, o: usize, len: usize) -> u64;
    /// One piece the per-piece way, if the window settles it (`Window::gpt2`, ...).
    fn fast(w: &Window, o: usize, len: usize) -> Option<usize>;
    /// The exact scanner.
    fn end(t: &Tables, b: &[u8], s: usize) -> usize;
}

struct Gpt2Rules;
struct Cl100kRules;
struct O200kRules;

impl Rules for Gpt2Rules {
    const CLASSES: Classes = Classes {
        case: false,
        spaces: false,
        newlines: false,
        slash: false,
    };
    #[inline(always)]
    fn bounds(w: &Window, o: usize, _len: usize) -> u64 {
        w.gpt2_bounds(o)
    }
    #[inline(always)]
    fn fast(w: &Window, o: usize, len: usize) -> Option<usize> {
        w.gpt2(o, len)
    }
    #[inline(always)]
    fn end(t: &Tables, b: &[u8], s: usize) -> usize {
        gpt2(t, b, s)
    }
}

impl Rules for Cl100kRules {
    const CLASSES: Classes = Classes {
        case: false,
        spaces: true,
        newlines: true,
        slash: false,
    };
    #[inline(always)]
    fn bounds(w: &Window, o: usize, _len: usize) -> u64 {
        w.cl100k_bounds(o)
    }
    #[inline(always)]
    fn fast(w: &Window, o: usize, len: usize) -> Option<usize> {
        w.cl100k(o, len)
    }
    #[inline(always)]
    fn end(t: &Tables, b: &[u8], s: usize) -> usize {
        cl100k(t, b, s)
    }
}

impl Rules for O200kRules {
    const CLASSES: Classes = Classes {
        case: true,
        spaces: true,
        newlines: true,
        slash: true,
    };
    #[inline(always)]
    fn bounds(w: &Window, o: usize, len: usize) -> u64 {
        w.o200k_bounds(o, len)
    }
    #[inline(always)]
    fn fast(w: &Window, o: usize, len: usize) -> Option<usize> {
        w.o200k(o, len)
    }
    #[inline(always)]
    fn end(t: &Tables, b: &[u8], s: usize) -> usize {
        o200k(t, b, s)
    }
}

/// Pieces of a window the emit loop of [`fill_blocks`] writes with no branch at all (more in
/// groups of 8).
const EMIT_FIRST: usize = 16;
// the emit loop's writes (the first ones, then whole groups of 8) stay within `SLACK` for the
// up to 64 pieces of a window
const _: () = assert!(EMIT_FIRST <= SLACK && EMIT_FIRST + (SLACK - EMIT_FIRST) / 8 * 8 >= 64);

/// Fill `buf` from index `k` (see [`Spans::fill`]): first every piece a window settles at
/// once (`R::bounds`: the trusted piece ends of a window starting at a piece start, see
/// `Window::gpt2_bounds`), and one piece the per-piece way (`R::fast`, else `R::end`) when a
/// window settles none.
#[inline(always)]
fn fill_blocks<R: Rules, const SIMD: u8>(
    spans: &mut Spans<'_>,
    t: &Tables,
    buf: &mut [(usize, usize)],
    mut k: usize,
    want: usize,
) -> usize {
    let b = spans.text;
    let len = b.len();
    let mut pos = spans.pos;
    let want = want.min(buf.len());
    let mut w = match spans.window {
        Some(w) => w,
        None => Window::new::<SIMD>(b, pos, &t.bmp, R::CLASSES),
    };
    while k < want && pos < len {
        if pos - w.base > REBASE {
            w = w.advance::<SIMD>(b, pos, &t.bmp, R::CLASSES);
        }
        let o = pos - w.base;
        let mut ends = R::bounds(&w, o, len);
        if ends == 0 {
            let mut e = match R::fast(&w, o, len) {
                Some(e) => e,
                None => R::end(t, b, pos),
            };
            if e <= pos {
                // only when `pos` is not on a char boundary (see `end_at`)
                e = pos + 1;
                while matches!(b.get(e), Some(&x) if (0x80..0xC0).contains(&x)) {
                    e += 1;
                }
            }
            if let Some(slot) = buf.get_mut(k) {
                *slot = (pos, e);
            }
            pos = e;
            k += 1;
            continue;
        }
        if let Some(dst) = buf.get_mut(k..k + SLACK) {
            // every piece of the window in groups of 8, with no branch per piece: past the
            // last end, `trailing_zeros` of 0 writes entries that the count leaves out
            let n = ends.count_ones() as usize;
            let last = w.base + 63 - ends.leading_zeros() as usize;
            let mut start = pos;
            #[cfg(target_arch = "x86_64")]
            if SIMD == AVX512 {
                if let Some(dst) = dst.first_chunk_mut::<64>() {
                    // SAFETY: `SIMD` is `AVX512` only inside `fill_avx512`.
                    unsafe { super::blocks::avx512::emit(dst, pos, w.base, ends, n) };
                }
                k += n;
                pos = last;
                continue;
            }
            let (first, more) = dst.split_at_mut(EMIT_FIRST);
            for slot in first {
                let e = w.base + ends.trailing_zeros() as usize;
                *slot = (start, e);
                start = e;
                ends &= ends.wrapping_sub(1);
            }
            if n > EMIT_FIRST {
                for (g, group) in more.chunks_exact_mut(8).enumerate() {
                    if g > 0 && EMIT_FIRST + 8 * g >= n {
                        break;
                    }
                    for slot in group {
                        let e = w.base + ends.trailing_zeros() as usize;
                        *slot = (start, e);
                        start = e;
                        ends &= ends.wrapping_sub(1);
                    }
                }
            }
            k += n;
            pos = last;
            continue;
        }
        for slot in buf[k..].iter_mut() {
            if ends == 0 {
                break;
            }
            let e = w.base + ends.trailing_zeros() as usize;
            *slot = (pos, e);
            pos = e;
            k += 1;
            ends &= ends - 1;
        }
    }
    spans.pos = pos;
    spans.window = Some(w);
    k
}

impl fmt::Debug for Pieces<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pieces")
            .field("preset", &self.preset)
            .field("pos", &self.pos)
            .field("len", &self.text.len())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------

/// `\p{L}`
const L: u8 = 1;
/// `\p{N}`
const N: u8 = 2;
/// `\s`
const S: u8 = 4;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` (o200k "upper")
const UP: u8 = 8;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` (o200k "lower")
const LO: u8 = 16;
/// `[^\s\p{L}\p{N}]`
const Q: u8 = 32;
/// `[^\r\n\p{L}\p{N}]`
const P: u8 = 64;
/// The flags the window classification of `blocks` reads.
pub(super) const FLAG_L: u8 = L;
pub(super) const FLAG_UP: u8 = UP;
pub(super) const FLAG_LO: u8 = LO;
pub(super) const FLAG_WORD: u8 = L | N | S;
pub(super) const FLAG_S: u8 = S;

/// Class patterns and the flag each one sets, parsed with regex-syntax.
const CLASS_PATTERNS: [(&str, u8); 5] = [
    (r"\p{L}", L),
    (r"\p{N}", N),
    (r"\s", S),
    (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", UP),
    (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", LO),
];

/// Letters of the contractions; a character's fold bits tell which of them
/// it matches under `(?i)`.
const CONTRACTION_LETTERS: [(char, u8); 8] = [
    ('s', F_S),
    ('d', F_D),
    ('m', F_M),
    ('t', F_T),
    ('l', F_L),
    ('v', F_V),
    ('e', F_E),
    ('r', F_R),
];
const F_S: u8 = 1;
const F_D: u8 = 2;
const F_M: u8 = 4;
const F_T: u8 = 8;
const F_L: u8 = 16;
const F_V: u8 = 32;
const F_E: u8 = 64;
const F_R: u8 = 128;

const BLOCK_BITS: u32 = 8;
const BLOCK: usize = 1 << BLOCK_BITS;
const MAX_CP: usize = 0x11_0000;
const BMP: usize = 0x1_0000;

struct Tables {
    /// Class flags of ASCII characters.
    ascii: [u8; 128],
    /// Class flags of the Basic Multilingual Plane, one byte per code point.
    bmp: Box<Flags>,
    /// Case-fold bits of ASCII characters.
    ascii_fold: [u8; 128],
    /// Block number of each 256-code-point block (used above the BMP).
    index: Vec<u16>,
    /// Concatenated distinct blocks of class flags.
    blocks: Vec<u8>,
    /// Non-ASCII characters that fold to a contraction letter.
    folds: Vec<(u32, u8)>,
}

/// Run class of a character for the settled-boundary rule of `byte_probs` (docs/byte_probs.md
/// §15): 0 = `\s`, 1 = letter or mark (`\p{L}`, `\p{M}`), 2 = `\p{N}`, 3 = anything else.
/// Every class the three presets scan runs of lies inside one of these.
pub fn run_class(c: char) -> u8 {
    let f = char_flags(c);
    if f & S != 0 {
        0
    } else if f & (L | UP | LO) != 0 {
        1
    } else if f & N != 0 {
        2
    } else {
        3
    }
}

/// Whether `c` can be the optional first character of a letter, number or punctuation piece
/// of `preset` (docs/byte_probs.md §15.1): gpt2's ` ?` is a space only; cl100k's and o200k's
/// `[^\r\n\p{L}\p{N}]?` is anything but `\r`, `\n`, letters and numbers (their ` ?` before
/// punctuation is a subset).
pub fn may_lead(preset: Preset, c: char) -> bool {
    match preset {
        Preset::Gpt2 => c == ' ',
        Preset::Cl100k | Preset::O200k => char_flags(c) & P != 0,
    }
}

/// The class flags the preset scanners decide on (`\p{L}`, `\p{N}`, `\s`, o200k's upper and
/// lower sets, ...), one bit each: two characters with equal flags are scanned alike, apart
/// from the few the patterns name (`'`, `\r`, `\n`, `/`, space, contraction letters).
pub fn char_flags(c: char) -> u8 {
    tables().flags_of(c as u32)
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::build)
}

/// Ranges of a class pattern as regex-syntax (Unicode mode) parses it; empty
/// if the pattern is not a Unicode class (never happens for our patterns, and
/// the tests check it).
fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let parsed = regex_syntax::ParserBuilder::new()
        .unicode(true)
        .build()
        .parse(pattern);
    match parsed.as_ref().map(regex_syntax::hir::Hir::kind) {
        Ok(HirKind::Class(Class::Unicode(class))) => class
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        _ => Vec::new(),
    }
}

impl Tables {
    fn build() -> Tables {
        let mut flat = vec![0u8; MAX_CP];
        // Written before it is read: the zeros come from the kernel as one shared read-only
        // page, and the loops below read each byte before they write it, so each of its 272
        // pages was first mapped for reading and then faulted again on its first write, which
        // flushes the page's old mapping from every core running the process: an interrupt
        // to the other thread of a model's first batch for each page (on a VM, an exit each;
        // docs/bpe.md §13.5, twenty-fifth round). A write per page maps it writable at once.
        for b in flat.iter_mut().step_by(4096) {
            // SAFETY: `b` is a valid, aligned `u8` of `flat`; volatile so the write is kept.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
        for (pattern, flag) in CLASS_PATTERNS {
            for (lo, hi) in class_ranges(pattern) {
                let hi = (hi as usize).min(MAX_CP - 1);
                for f in flat.iter_mut().take(hi + 1).skip(lo as usize) {
                    *f |= flag;
                }
            }
        }
        for (cp, f) in flat.iter_mut().enumerate() {
            if *f & (S | L | N) == 0 {
                *f |= Q;
            }
            if *f & (L | N) == 0 && cp != 0x0A && cp != 0x0D {
                *f |= P;
            }
        }

        let mut ascii = [0u8; 128];
        ascii.copy_from_slice(&flat[..128]);
        let mut bmp = Box::new([0u8; BMP]);
        bmp.copy_from_slice(&flat[..BMP]);

        let mut index = Vec::with_capacity(MAX_CP / BLOCK);
        let mut blocks: Vec<u8> = Vec::new();
        let mut seen: HashMap<&[u8], u16> = HashMap::new();
        for chunk in flat.chunks(BLOCK) {
            let next = u16::try_from(seen.len()).unwrap_or(u16::MAX);
            let id = *seen.entry(chunk).or_insert_with(|| {
                blocks.extend_from_slice(chunk);
                next
            });
            index.push(id);
        }

        let mut ascii_fold = [0u8; 128];
        let mut folds: Vec<(u32, u8)> = Vec::new();
        for (letter, bit) in CONTRACTION_LETTERS {
            for (lo, hi) in class_ranges(&format!("(?i:[{letter}])")) {
                for cp in lo..=hi {
                    if let Some(f) = ascii_fold.get_mut(cp as usize) {
                        *f |= bit;
                    } else if let Some(entry) = folds.iter_mut().find(|(c, _)| *c == cp) {
                        entry.1 |= bit;
                    } else {
                        folds.push((cp, bit));
                    }
                }
            }
        }

        Tables {
            ascii,
            bmp,
            ascii_fold,
            index,
            blocks,
            folds,
        }
    }

    /// Class flags of a code point (0 for values that are not code points).
    #[inline(always)]
    fn flags_of(&self, cp: u32) -> u8 {
        if let Some(&f) = self.bmp.get(cp as usize) {
            return f;
        }
        match self.index.get((cp >> BLOCK_BITS) as usize) {
            Some(&block) => self
                .blocks
                .get(((block as usize) << BLOCK_BITS) | (cp as usize & (BLOCK - 1)))
                .copied()
                .unwrap_or(0),
            None => 0,
        }
    }

    /// Class flags and byte length of the character at `i`; `(0, 0)` at the
    /// end of the text.
    #[inline(always)]
    fn at(&self, b: &[u8], i: usize) -> (u8, usize) {
        match b.get(i) {
            None => (0, 0),
            Some(&x) if x < 0x80 => (self.ascii[x as usize], 1),
            Some(&x) => {
                let (cp, n) = decode(b, i, x);
                (self.flags_of(cp), n)
            }
        }
    }

    /// End of the run of characters with any of the `mask` flags from `i`.
    #[inline(always)]
    fn run(&self, b: &[u8], mut i: usize, mask: u8) -> usize {
        // Runs of ASCII letters are skipped 8 bytes at a time.
        let swar = match mask {
            L => Some(false),
            LO => Some(true),
            _ => None,
        };
        while let Some(&x) = b.get(i) {
            if let Some(lower_only) = swar.filter(|_| x < 0x80) {
                while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
                    let n = ascii_letters(u64::from_le_bytes(*chunk), lower_only);
                    i += n;
                    if n < 8 {
                        break;
                    }
                }
            }
            let Some(&x) = b.get(i) else { break };
            if x < 0x80 {
                if self.ascii[x as usize] & mask == 0 {
                    break;
                }
                i += 1;
            } else {
                let (cp, n) = decode(b, i, x);
                if self.flags_of(cp) & mask == 0 {
                    break;
                }
                i += n;
            }
        }
        i
    }

    /// End of at most `max` characters with the `mask` flags from `i`.
    #[inline]
    fn run_max(&self, b: &[u8], mut i: usize, mask: u8, max: usize) -> usize {
        for _ in 0..max {
            let (f, n) = self.at(b, i);
            if f & mask == 0 {
                break;
            }
            i += n;
        }
        i
    }

    /// Scans the whitespace run from `i` (whose first character is
    /// whitespace).
    #[inline]
    fn whitespace_run(&self, b: &[u8], mut i: usize) -> WhitespaceRun {
        let mut last_start = i;
        let mut after_newline = None;
        loop {
            if let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
                let n = leading_spaces(u64::from_le_bytes(*chunk));
                if n > 0 {
                    last_start = i + n - 1;
                    i += n;
                    continue;
                }
            }
            let (f, n) = self.at(b, i);
            if f & S == 0 {
                break;
            }
            if matches!(b.get(i), Some(b'\r' | b'\n')) {
                after_newline = Some(i + 1);
            }
            last_start = i;
            i += n;
        }
        WhitespaceRun {
            end: i,
            last_start,
            after_newline,
        }
    }

    /// Case-fold bits and length of the character at `i`.
    #[inline]
    fn fold_at(&self, b: &[u8], i: usize) -> (u8, usize) {
        match b.get(i) {
            None => (0, 0),
            Some(&x) if x < 0x80 => (self.ascii_fold[x as usize], 1),
            Some(&x) => {
                let (cp, n) = decode(b, i, x);
                let bits = self
                    .folds
                    .iter()
                    .find(|(c, _)| *c == cp)
                    .map_or(0, |&(_, bits)| bits);
                (bits, n)
            }
        }
    }

    /// Matches `'(?i:x|yz|...)` at `i` (the apostrophe is ASCII `'` only):
    /// `singles` are the one-letter alternatives (as a fold-bit set), `pairs`
    /// the two-letter ones in pattern order. Alternatives are tried in
    /// pattern order; since no character folds to two different contraction
    /// letters, the first letter decides which alternative can match.
    #[inline]
    fn contraction(&self, b: &[u8], i: usize, singles: u8, pairs: &[(u8, u8)]) -> Option<usize> {
        if b.get(i) != Some(&b'\'') {
            return None;
        }
        let i = i + 1;
        let (f1, n1) = self.fold_at(b, i);
        if f1 == 0 {
            return None;
        }
        if f1 & singles != 0 {
            return Some(i + n1);
        }
        let (f2, n2) = self.fold_at(b, i + n1);
        pairs
            .iter()
            .find(|&&(first, second)| f1 & first != 0 && f2 & second != 0)
            .map(|_| i + n1 + n2)
    }
}

struct WhitespaceRun {
    /// End of the run.
    end: usize,
    /// Start of the last character of the run (the run's start if it has a
    /// single character).
    last_start: usize,
    /// Offset just after the last `\r` or `\n` in the run.
    after_newline: Option<usize>,
}

const fn splat(x: u8) -> u64 {
    x as u64 * 0x0101_0101_0101_0101
}

/// Number of leading bytes (in text order) of the little-endian word `w`
/// that are ASCII letters `[A-Za-z]`, or only `[a-z]` when `lower_only`.
/// These are exactly the ASCII members of `\p{L}` and of o200k's "lower"
/// class (checked by a test).
#[inline(always)]
fn ascii_letters(w: u64, lower_only: bool) -> usize {
    let v = if lower_only { w } else { w | splat(0x20) };
    let low7 = v & splat(0x7F);
    // Per byte, without carries: high bit set iff the byte is >= b'a' ...
    let ge_a = low7.wrapping_add(splat(0x80 - b'a'));
    // ... and iff it is > b'z'.
    let gt_z = low7.wrapping_add(splat(0x80 - b'z' - 1));
    let letters = ge_a & !gt_z & !w & splat(0x80);
    ((!letters & splat(0x80)).trailing_zeros() / 8) as usize
}

/// Number of leading ASCII spaces of the little-endian word `w`.
#[inline(always)]
fn leading_spaces(w: u64) -> usize {
    ((w ^ splat(b' ')).trailing_zeros() / 8) as usize
}

/// Decodes the character whose (non-ASCII) first byte `x` is at `i`. A
/// continuation byte (only possible when a caller starts inside a character)
/// gives `u32::MAX`, which has no class flags.
#[inline(always)]
fn decode(b: &[u8], i: usize, x: u8) -> (u32, usize) {
    let cont = |k: usize| u32::from(b.get(i + k).copied().unwrap_or(0x80) & 0x3F);
    if x < 0xC0 {
        (u32::MAX, 1)
    } else if x < 0xE0 {
        ((u32::from(x & 0x1F) << 6) | cont(1), 2)
    } else if x < 0xF0 {
        ((u32::from(x & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            (u32::from(x & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    }
}

// ---------------------------------------------------------------------------
// Scanners
// ---------------------------------------------------------------------------

#[inline]
fn end_at(preset: Preset, t: &Tables, b: &[u8], start: usize) -> usize {
    if start >= b.len() {
        return b.len();
    }
    let end = match preset {
        Preset::Gpt2 => gpt2(t, b, start),
        Preset::Cl100k => cl100k(t, b, start),
        Preset::O200k => o200k(t, b, start),
    };
    if end > start {
        end
    } else {
        // Only reachable when `start` is not on a char boundary: skip to the
        // next boundary.
        let mut i = start + 1;
        while matches!(b.get(i), Some(&x) if (0x80..0xC0).contains(&x)) {
            i += 1;
        }
        i
    }
}

/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`
///
/// Returns `s` when nothing matches (not on a char boundary).
#[inline]
fn gpt2(t: &Tables, b: &[u8], s: usize) -> usize {
    let x0 = b.get(s).copied().unwrap_or(0);
    // '(?:[sdmt]|ll|ve|re)   (case-sensitive, ASCII only)
    if x0 == b'\'' {
        match (b.get(s + 1), b.get(s + 2)) {
            (Some(b's' | b'd' | b'm' | b't'), _) => return s + 2,
            (Some(b'l'), Some(b'l')) | (Some(b'v' | b'r'), Some(b'e')) => return s + 3,
            _ => {}
        }
    }
    // ` ?X++` for X in L, N, [^\s\p{L}\p{N}]: the space is taken only if an
    // X follows (otherwise it is given back, and a space is none of them).
    if x0 == b' ' {
        let (f1, _) = t.at(b, s + 1);
        for class in [L, N, Q] {
            if f1 & class != 0 {
                return t.run(b, s + 1, class);
            }
        }
    }
    let (f0, n0) = t.at(b, s);
    for class in [L, N, Q] {
        if f0 & class != 0 {
            return t.run(b, s, class);
        }
    }
    if f0 & S != 0 {
        let ws = t.whitespace_run(b, s);
        // \s++$
        if ws.end == b.len() {
            return ws.end;
        }
        // \s+(?!\S): the run gives back its last character (which is then
        // followed by whitespace); needs at least two characters.
        if ws.last_start > s {
            return ws.last_start;
        }
        // \s
        return s + n0;
    }
    s
}

/// `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
#[inline]
fn cl100k(t: &Tables, b: &[u8], s: usize) -> usize {
    let x0 = b.get(s).copied().unwrap_or(0);
    // '(?i:[sdmt]|ll|ve|re)
    if let Some(e) = t.contraction(
        b,
        s,
        F_S | F_D | F_M | F_T,
        &[(F_L, F_L), (F_V, F_E), (F_R, F_E)],
    ) {
        return e;
    }
    let (f0, n0) = t.at(b, s);
    // [^\r\n\p{L}\p{N}]?+\p{L}++ : the prefix is possessive, and it is
    // disjoint from \p{L}, so with a prefix a letter must follow.
    if f0 & P != 0 {
        let (f1, _) = t.at(b, s + n0);
        if f1 & L != 0 {
            return t.run(b, s + n0, L);
        }
    } else if f0 & L != 0 {
        return t.run(b, s, L);
    }
    // \p{N}{1,3}+
    if f0 & N != 0 {
        return t.run_max(b, s, N, 3);
    }
    // ` ?[^\s\p{L}\p{N}]++[\r\n]*+`
    if x0 == b' ' {
        let (f1, _) = t.at(b, s + 1);
        if f1 & Q != 0 {
            return newline_tail(b, t.run(b, s + 1, Q), false);
        }
    }
    if f0 & Q != 0 {
        return newline_tail(b, t.run(b, s, Q), false);
    }
    if f0 & S != 0 {
        let ws = t.whitespace_run(b, s);
        // \s++$
        if ws.end == b.len() {
            return ws.end;
        }
        // \s*[\r\n]: \s* gives back down to the last \r or \n of the run.
        if let Some(e) = ws.after_newline {
            return e;
        }
        // \s+(?!\S)
        if ws.last_start > s {
            return ws.last_start;
        }
        // \s
        return s + n0;
    }
    s
}

/// The seven o200k alternatives; see [`O200K_PATTERN`].
#[inline]
fn o200k(t: &Tables, b: &[u8], s: usize) -> usize {
    let x0 = b.get(s).copied().unwrap_or(0);
    let (f0, n0) = t.at(b, s);
    // 1: [^\r\n\p{L}\p{N}]?[Upper]*[Lower]+(?i:'s|...)?
    // 2: [^\r\n\p{L}\p{N}]?[Upper]+[Lower]*(?i:'s|...)?
    if let Some(e) = o200k_letters(t, b, s, f0, n0) {
        return o200k_contraction(t, b, e);
    }
    // 3: \p{N}{1,3}
    if f0 & N != 0 {
        return t.run_max(b, s, N, 3);
    }
    // 4: ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
    if x0 == b' ' {
        let (f1, _) = t.at(b, s + 1);
        if f1 & Q != 0 {
            return newline_tail(b, t.run(b, s + 1, Q), true);
        }
    }
    if f0 & Q != 0 {
        return newline_tail(b, t.run(b, s, Q), true);
    }
    if f0 & S != 0 {
        let ws = t.whitespace_run(b, s);
        // 5: \s*[\r\n]+ : ends right after the last \r or \n of the run.
        if let Some(e) = ws.after_newline {
            return e;
        }
        // 6: \s+(?!\S) : all of a run that ends the text, else all but the
        // last character (needs two characters).
        if ws.end == b.len() {
            return ws.end;
        }
        if ws.last_start > s {
            return ws.last_start;
        }
        // 7: \s+ (a single whitespace character here)
        return ws.end;
    }
    s
}

/// Alternatives 1 and 2 of o200k up to (not including) the contraction
/// suffix, which always succeeds as it is optional. Both start with the
/// greedy optional prefix `[^\r\n\p{L}\p{N}]?`, so a backtracking engine
/// tries, in order: 1 with the prefix, 1 without it, 2 with it, 2 without it.
/// `f0`, `n0`: flags and length of the character at `s`.
#[inline(always)]
fn o200k_letters(t: &Tables, b: &[u8], s: usize, f0: u8, n0: usize) -> Option<usize> {
    if f0 & P == 0 {
        // No prefix possible (the first character is a letter, a digit, \r
        // or \n).
        let run = UpperRun::scan(t, b, s);
        return run
            .upper_star_lower_plus(t, b)
            .or_else(|| (run.end > s).then_some(run.end));
    }
    let p = s + n0;
    let run = UpperRun::scan(t, b, p);
    // 1 with the prefix.
    if let Some(e) = run.upper_star_lower_plus(t, b) {
        return Some(e);
    }
    // 1 without the prefix. A prefix character that is "upper" is a mark
    // (the prefix excludes letters), and marks are "lower" too. Without the
    // prefix, `[Upper]*` takes the mark and then `run`; nothing in `run` nor
    // the character after it is "lower" (1 failed above), so `[Upper]*`
    // gives everything back and `[Lower]+` matches the mark alone. A prefix
    // character that is not "upper" is not "lower" either: 1 fails.
    if f0 & UP != 0 {
        return Some(p);
    }
    // 2 with the prefix: `[Upper]+` takes the run, and `[Lower]*` matches
    // nothing after it (the next character is not "lower": 1 failed).
    if run.end > p {
        return Some(run.end);
    }
    // 2 without the prefix fails: the first character is not "upper".
    None
}

/// A maximal run of o200k "upper" characters `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`.
struct UpperRun {
    /// End of the run.
    end: usize,
    /// End of the last character of the run that is also "lower"
    /// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`.
    last_lower_end: Option<usize>,
    /// Whether the character after the run is "lower".
    next_is_lower: bool,
}

impl UpperRun {
    #[inline(always)]
    fn scan(t: &Tables, b: &[u8], mut i: usize) -> UpperRun {
        let mut last_lower_end = None;
        loop {
            let (f, n) = t.at(b, i);
            if f & UP == 0 {
                return UpperRun {
                    end: i,
                    last_lower_end,
                    next_is_lower: f & LO != 0,
                };
            }
            i += n;
            if f & LO != 0 {
                last_lower_end = Some(i);
            }
        }
    }

    /// `[Upper]*[Lower]+` from the start of the run, as a backtracking
    /// engine resolves it: the greedy `[Upper]*` takes the whole run; if the
    /// next character is "lower", `[Lower]+` continues from there; otherwise
    /// `[Upper]*` gives characters back until `[Lower]+` can start, i.e. the
    /// match ends after the last character of the run that is also "lower"
    /// (Lm, Lo and M are in both classes).
    #[inline(always)]
    fn upper_star_lower_plus(&self, t: &Tables, b: &[u8]) -> Option<usize> {
        if self.next_is_lower {
            Some(t.run(b, self.end, LO))
        } else {
            self.last_lower_end
        }
    }
}

/// The optional `(?i:'s|'t|'re|'ve|'m|'ll|'d)` suffix of the o200k letter
/// alternatives.
#[inline]
fn o200k_contraction(t: &Tables, b: &[u8], e: usize) -> usize {
    t.contraction(
        b,
        e,
        F_S | F_T | F_M | F_D,
        &[(F_R, F_E), (F_V, F_E), (F_L, F_L)],
    )
    .unwrap_or(e)
}

/// `[\r\n]*` (or `[\r\n/]*` when `slash`) from `i`.
#[inline]
fn newline_tail(b: &[u8], mut i: usize, slash: bool) -> usize {
    while let Some(&x) = b.get(i) {
        if x == b'\r' || x == b'\n' || (slash && x == b'/') {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use fancy_regex::Regex;
    use std::path::{Path, PathBuf};

    fn regex(preset: Preset) -> Regex {
        Regex::new(preset.pattern()).expect("preset pattern compiles")
    }

    fn reference<'t>(re: &Regex, text: &'t str) -> Vec<&'t str> {
        re.find_iter(text)
            .map(|m| m.expect("fancy-regex match").as_str())
            .collect()
    }

    /// Compares our pieces with fancy-regex; returns a description of the
    /// first difference.
    fn compare(preset: Preset, re: &Regex, text: &str) -> Result<(), String> {
        let ours: Vec<&str> = pieces(preset, text).collect();
        let theirs = reference(re, text);
        if ours.concat() != text {
            return Err(format!(
                "{preset}: our pieces do not tile {text:?}: {ours:?}"
            ));
        }
        if theirs.concat() != text {
            return Err(format!(
                "{preset}: fancy-regex matches do not tile {text:?}: {theirs:?}"
            ));
        }
        if ours != theirs {
            let i = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
            let lo = i.saturating_sub(3);
            return Err(format!(
                "{preset}: first difference at piece {i}\n  ours:   {:?}\n  theirs: {:?}",
                &ours[lo..(i + 3).min(ours.len())],
                &theirs[lo..(i + 3).min(theirs.len())]
            ));
        }
        // the chunked scanner (window fast path + exact scanner), in chunks of 7 pieces
        let mut spans = Vec::new();
        let mut buf = [(0, 0); 7];
        loop {
            let from = spans.last().map_or(0, |&(_, e)| e);
            let k = fill_spans(preset, text, from, &mut buf);
            spans.extend_from_slice(&buf[..k]);
            if k < buf.len() {
                break;
            }
        }
        let chunked: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
        if chunked != ours {
            let i = ours
                .iter()
                .zip(&chunked)
                .take_while(|(a, b)| a == b)
                .count();
            let lo = i.saturating_sub(3);
            return Err(format!(
                "{preset}: fill_spans differs at piece {i} of {text:?}\n  exact:  {:?}\n  chunked: {:?}",
                &ours[lo..(i + 3).min(ours.len())],
                &chunked[lo..(i + 3).min(chunked.len())]
            ));
        }
        let mut pos = 0;
        for piece in &ours {
            let end = preset.piece_end(text, pos);
            if end != pos + piece.len() {
                return Err(format!("{preset}: piece_end({pos}) = {end} in {text:?}"));
            }
            pos = end;
        }
        Ok(())
    }

    fn check_all(texts: &[String]) -> usize {
        let mut failures = Vec::new();
        for preset in Preset::ALL {
            let re = regex(preset);
            for text in texts {
                if let Err(e) = compare(preset, &re, text) {
                    failures.push(e);
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} mismatches, first ones:\n{}",
            failures.len(),
            failures[..failures.len().min(10)].join("\n")
        );
        texts.len()
    }

    #[test]
    fn patterns_and_names() {
        for preset in Preset::ALL {
            assert_eq!(Preset::from_name(preset.name()), Some(preset));
            assert!(Regex::new(preset.pattern()).is_ok());
        }
        for other in ["cl100k_base", "GPT2", "o200k ", ""] {
            assert_eq!(Preset::from_name(other), None);
        }
        let o200k = [
            r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            r"\p{N}{1,3}",
            r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
            r"\s*[\r\n]+",
            r"\s+(?!\S)",
            r"\s+",
        ];
        assert_eq!(O200K_PATTERN, o200k.join("|"));
    }

    #[test]
    fn classes_come_from_regex_syntax() {
        for (pattern, _) in CLASS_PATTERNS {
            assert!(!class_ranges(pattern).is_empty(), "{pattern}");
        }
        let t = tables();
        assert_eq!(t.ascii[b' ' as usize] & (S | P | Q), S | P);
        assert_eq!(t.ascii[b'\n' as usize] & (S | P), S);
        assert_eq!(t.ascii[b'a' as usize], L | LO);
        assert_eq!(t.ascii[b'A' as usize], L | UP);
        assert_eq!(t.ascii[b'7' as usize], N);
        assert_eq!(t.ascii[b'\'' as usize], Q | P);
        assert_eq!(t.ascii_fold[b'S' as usize], F_S);
        assert_eq!(t.fold_at("ſ".as_bytes(), 0), (F_S, 2));
        assert_eq!(t.fold_at("\u{212A}".as_bytes(), 0), (0, 3));
        assert_eq!(t.at("\u{3000}".as_bytes(), 0), (S | P, 3));
        assert_eq!(t.at("\u{180E}".as_bytes(), 0), (Q | P, 3));
        assert_eq!(t.at("\u{0301}".as_bytes(), 0), (UP | LO | Q | P, 2));
    }

    #[test]
    fn swar_helpers_agree_with_tables() {
        let t = tables();
        for x in 0..=255u8 {
            let w = u64::from_le_bytes([x, x, x, x, x, 0, x, x]);
            let is_letter = x < 0x80 && t.ascii[x as usize] & L != 0;
            let is_lower = x < 0x80 && t.ascii[x as usize] & LO != 0;
            assert_eq!(
                ascii_letters(w, false),
                if is_letter { 5 } else { 0 },
                "{x}"
            );
            assert_eq!(ascii_letters(w, true), if is_lower { 5 } else { 0 }, "{x}");
            assert_eq!(leading_spaces(w), if x == b' ' { 5 } else { 0 }, "{x}");
        }
        assert_eq!(ascii_letters(u64::from_le_bytes(*b"abcdefgh"), true), 8);
        assert_eq!(ascii_letters(u64::from_le_bytes(*b"abcDefgh"), true), 3);
        assert_eq!(ascii_letters(u64::from_le_bytes(*b"abcDefgh"), false), 8);
        assert_eq!(leading_spaces(u64::from_le_bytes(*b"        ")), 8);
    }

    #[test]
    fn out_of_contract_inputs_do_not_panic() {
        let text = "aé€😀 ";
        for preset in Preset::ALL {
            for start in 0..text.len() + 3 {
                let end = preset.piece_end(text, start);
                assert!(end > start || start >= text.len());
                assert!(end <= text.len());
            }
            assert_eq!(pieces(preset, "").count(), 0);
        }
    }

    /// Targeted edge cases (each is also tried with a few heads and tails).
    #[rustfmt::skip]
    const EDGE_CASES: &[&str] = &[
        "", " ", "  ", "   ", "a", "a ", "a  ", "a  \n  ", "\n\n  x", "\n", "\r\n", "\r\n\r\n",
        " \r\n", "x\r\n", "x\r\ny", "x \r\n y", "\t", "\t\t", "a\t\tb", " \t x", "x   ", "x \t\n",
        "x\n\n", "x\n \n ", "x\n  \n  y", "I'm 12345 tokens!\n\n  x", "'S'LL 'Ve",
        "'s 'S 'd 'D 'm 'M 't 'T 'll 'LL 'lL 've 'VE 'vE 're 'RE 'Re", "'", "''", "'''s", "'l",
        "'lx", "'v", "'r", "'x", "it's", "IT'S", "they'll", "THEY'LL", "we've", "you're", "don't",
        "I'd", "ma'am", "'ſ", "ſ", "'ſt", "x'ſ", "\u{212A}", "'\u{212A}", "a'\u{212A}",
        "hello world", " hello", "  hello", "hello  world", "hello\n world", "12345", "1234567",
        " 123", "a1b2", "x123y", "!!!", " !!!", "  !!!", "!!!\n\n", "!!! \n", "a/b", "a//\n/b",
        "http://x.y/z", ".\r\n/", "x.\r\r\n", " \u{0301}", "\u{0301}", "\u{0301}\u{0301}",
        "a\u{0301}", "e\u{0301}'s", "\u{0301}'s", "!\u{0301}", "!!\u{0301}", "\u{0301}A!",
        "A\u{0301}", " \u{0301}A", "\u{0903}\u{0903}", "\u{0660}\u{0661}\u{0662}\u{0663}\u{0664}",
        "\u{0966}\u{0967}\u{0968}\u{0969}", "x\u{0966}\u{0967}", "Ⅻ²³", "\u{2160}\u{2161}", "😀",
        "😀😀 😀", "👨\u{200D}👩\u{200D}👧", " 👍🏽", "🏳️\u{200D}🌈", "a\u{00A0}b", "\u{00A0}",
        "a\u{00A0}\u{00A0}b", "\u{3000}", "日本\u{3000}語", "\u{0085}", "a\u{0085}b", "\u{0085}\n",
        "a\u{180E}b", "\u{180E}", "\u{2028}x", "x\u{2029}", "\u{2003}\u{2003}x", "HTTPServer",
        "McDonald's", "ÀÉÎõü", "ǅungla", "ǅ", "ʰʰ'S", "HELLO'S", "Hello'S", "hello'RE", "ABC'll",
        "ĲSSELMEER", "ΣΊΣΥΦΟΣ", "Привет, мир!", "مرحبا بالعالم", "你好，世界。", "안녕하세요 세계",
        "x\u{200B}y", "\u{FEFF}x", "a\u{0000}b", "tab\there", "   leading", "trailing   ",
        "mixed \t\n\r\u{0B}\u{0C} end", "\u{0B}\u{0C}x",
    ];

    fn edge_cases() -> Vec<String> {
        let mut v: Vec<String> = EDGE_CASES.iter().map(ToString::to_string).collect();
        for tail in [
            " ", "  ", "\t", "\n", "\r\n", " \n", "\n ", "\u{00A0}", "\u{3000}",
        ] {
            for head in ["x", "1", "!", "'s", "A", "ʰ"] {
                v.push(format!("{head}{tail}"));
                v.push(format!("{head}{tail}{head}"));
            }
        }
        v
    }

    #[test]
    fn edge_cases_match_fancy_regex() {
        check_all(&edge_cases());
    }

    fn texts_in(dir: &Path, ext: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                texts_in(&path, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.extend(std::fs::read_to_string(&path).ok());
            }
        }
    }

    #[test]
    fn corpora_match_fancy_regex() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in [manifest.join("corpora"), manifest.join("../corpora")] {
            if dir.is_dir() {
                texts_in(&dir, "txt", &mut texts);
                break;
            }
        }
        check_all(&texts);
    }

    #[test]
    fn sources_match_fancy_regex() {
        // This file, plus the crate's Rust sources (a few hundred KB of code).
        let mut texts = vec![include_str!("presets.rs").to_string()];
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in [manifest.join("src"), manifest.join("rust/src")] {
            texts_in(&dir, "rs", &mut texts);
        }
        check_all(&texts);
    }

    /// Alphabet of the random test: ASCII letters, digits, punctuation and
    /// whitespace, the apostrophe, the contraction letters in both cases and
    /// their non-ASCII folds, letters of each category (Lu, Ll, Lt, Lm, Lo),
    /// marks, non-ASCII digits (Nd, Nl, No), Unicode whitespace and
    /// look-alikes, emoji, ZWJ, private use. One character in twelve is
    /// instead a random code point.
    const ALPHABET: &str = concat!(
        "abxZQ059!.,/-\"(_    \t\r\n\n\u{0B}\u{0C}",
        "'''sSdDmMtTlLvVeErRſ\u{212A}",
        "ÉΩЖéωжß\u{01C5}\u{1F88}\u{02B0}\u{3005}中文اب한ア",
        "\u{0301}\u{0903}\u{20DD}\u{0660}\u{0967}\u{2160}\u{00B2}\u{00BD}",
        "\u{00A0}\u{2003}\u{2028}\u{3000}\u{0085}\u{180E}\u{200B}\u{200D}",
        "😀\u{1F3FD}\u{E000}\u{FFFD}«»“”’—。、§×",
    );

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn char(&mut self, alphabet: &[char]) -> char {
            if self.below(12) == 0 {
                // A random code point (surrogates are not chars: retry).
                loop {
                    let cp = if self.below(2) == 0 {
                        self.below(0x3_0000)
                    } else {
                        self.below(0x11_0000)
                    };
                    if let Some(c) = u32::try_from(cp).ok().and_then(char::from_u32) {
                        return c;
                    }
                }
            }
            alphabet[self.below(alphabet.len() as u64) as usize]
        }

        fn string(&mut self, alphabet: &[char]) -> String {
            let len = self.below(24);
            (0..len).map(|_| self.char(alphabet)).collect()
        }
    }

    /// Runs of every ASCII class across the ends of the 64-byte windows of the fast path
    /// (`blocks`), each followed by non-ASCII characters that could continue it (letters,
    /// marks, digits, spaces, the long s of the contractions) or by ASCII.
    #[test]
    fn window_boundaries_match_fancy_regex() {
        let runs = [
            "a", "Z", "aB", "Ab", "7", " ", "  ", "\n", " \n", "\t", "!", "/", "'", "x.", "ab ",
            "A1 ", " !", "é", "Жж", "中A", "ʰAB", "aא", "中 ", "Ａ。",
        ];
        let tails = [
            "",
            "é",
            "É",
            "ſ",
            "\u{00A0}",
            "\u{0301}",
            "\u{0660}",
            "\u{3000}",
            "'s",
            "'LL",
            "'ſ",
            " y",
            "\r\n",
            "  ",
            "1",
            "!",
            "/\n",
            "\n ",
            "\u{1D41A}",
            "\u{1D400}",
            "中",
            "“",
        ];
        let mut texts = Vec::new();
        for run in runs {
            for n in [
                1, 2, 3, 4, 15, 16, 30, 31, 32, 33, 34, 47, 63, 64, 65, 66, 97,
            ] {
                let body = run.repeat(n);
                for tail in tails {
                    texts.push(format!("{body}{tail}"));
                    texts.push(format!("{tail}{body}{tail}z"));
                    texts.push(format!("x {body}{tail}."));
                }
            }
        }
        check_all(&texts);
    }

    /// Long mostly-ASCII random strings: many pieces per window, and rebased windows.
    #[test]
    fn long_ascii_strings_match_fancy_regex() {
        let alphabet: Vec<char> = "aaeeTTsdmlrvx  \n\n\r\t0123'!./-é\u{00A0}\u{0301}ſ"
            .chars()
            .collect();
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let texts: Vec<String> = (0..3000)
            .map(|_| {
                let len = rng.below(300);
                (0..len).map(|_| rng.char(&alphabet)).collect()
            })
            .collect();
        check_all(&texts);
    }

    #[test]
    fn random_strings_match_fancy_regex() {
        let count: usize = std::env::var("TOKFORGE_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let seed: u64 = std::env::var("TOKFORGE_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        let mut rng = XorShift(seed | 1);
        let alphabet: Vec<char> = ALPHABET.chars().collect();
        let texts: Vec<String> = (0..count).map(|_| rng.string(&alphabet)).collect();
        check_all(&texts);
    }

    /// Every character of two and three bytes, next to ASCII and non-ASCII letters of each
    /// case class and at the ends of runs and windows, cut by the window path (`fill_spans`)
    /// as by the exact scanner; and its window class is the regex's (`\p{L}`, o200k's upper
    /// and lower sets).
    #[test]
    fn every_two_and_three_byte_character_matches_the_exact_scanner() {
        let letter = Regex::new(r"^\p{L}$").unwrap();
        let upper = Regex::new(r"^[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]$").unwrap();
        let lower = Regex::new(r"^[\p{Ll}\p{Lm}\p{Lo}\p{M}]$").unwrap();
        let number_or_space = Regex::new(r"^[\s\p{N}]$").unwrap();
        let mark = Regex::new(r"^\p{M}$").unwrap();
        let space_re = Regex::new(r"^\s$").unwrap();
        let t = tables();
        let mut texts = Vec::new();
        for cp in 0x80..=0xFFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let s = c.to_string();
            let (l, u, d) = (
                letter.is_match(&s).unwrap(),
                upper.is_match(&s).unwrap(),
                lower.is_match(&s).unwrap(),
            );
            let (n, m) = (
                number_or_space.is_match(&s).unwrap(),
                mark.is_match(&s).unwrap(),
            );
            for (case, spaces) in [(false, false), (false, true), (true, true)] {
                let text = format!("a{s}b");
                let c = Classes {
                    case,
                    spaces,
                    newlines: true,
                    slash: case,
                };
                let w = Window::new::<SSE2>(text.as_bytes(), 0, &t.bmp, c);
                let mask = ((1u64 << s.len()) - 1) << 1;
                let (alpha, up, both, high) = w.masks_for_tests();
                assert_eq!(alpha & mask != 0, l, "{cp:#x} letter");
                assert!(alpha & mask == 0 || alpha & mask == mask, "{cp:#x}");
                // letters, and punctuation (`[^\s\p{L}\p{N}]`, for o200k no mark either),
                // are settled
                let punct = !(l || n || (case && m));
                let space = spaces && space_re.is_match(&s).unwrap();
                assert_eq!(high & mask == 0, l || punct || space, "{cp:#x} high");
                if case && l {
                    assert_eq!(up & mask == mask, u && !d, "{cp:#x} upper");
                    assert_eq!(both & mask == mask, u && d, "{cp:#x} both");
                } else {
                    assert_eq!(up & mask, 0, "{cp:#x}");
                    assert_eq!(both & mask, 0, "{cp:#x}");
                }
            }
            for ctx in [
                "a{}B", "A{}b", "{}{}a", "{}Ab", "aB{}", "ab{}C", "{}ー", "ーA{}B ", "ж{}Ж",
                "Ｗ{}ｗ", " {}", "!{}!", "'{}s", "{}'s", "{}{}{}\n", "中{}Ａ",
            ] {
                let body = ctx.replace("{}", &s);
                texts.push(body.clone());
                texts.push(format!("{}{body}", "x".repeat(60)));
                texts.push(format!("{}{body}", "x".repeat(61)));
            }
        }
        for text in &texts {
            for preset in [Preset::Gpt2, Preset::Cl100k, Preset::O200k] {
                let want: Vec<&str> = pieces(preset, text).collect();
                let mut spans = [(0, 0); 64];
                let mut got = Vec::new();
                let mut from = 0;
                loop {
                    let k = fill_spans(preset, text, from, &mut spans);
                    got.extend(spans[..k].iter().map(|&(s, e)| &text[s..e]));
                    from = spans[..k].last().map_or(from, |&(_, e)| e);
                    if k < spans.len() {
                        break;
                    }
                }
                assert_eq!(got, want, "{preset}: {text:?}");
            }
        }
    }

    /// The whole-window boundaries (`Window::*_bounds`) against the exact scanner on long
    /// random texts of the characters their rules distinguish (letters of both cases, digit
    /// runs, `'`, `/`, every ASCII space, newlines after punctuation) and non-ASCII letters,
    /// digits and spaces that continue ASCII runs; pieces taken 5 at a time, so chunks end
    /// anywhere in a window.
    #[test]
    fn window_bounds_give_the_exact_scanners_pieces() {
        let alphabet: Vec<char> =
            "aZbYs tT  \n\n\r\t\x0b\x0c'/.-,(09 1 \u{e9}\u{660}\u{3000}\u{a0}Ab\
             éÉжЖǅʰא中ーＡａ\u{301}\u{903}ſ𝐀«“’—。§×"
                .chars()
                .collect();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for case in 0..5000 {
            let len = rng.below(700);
            let ascii_only = rng.below(4) == 0;
            let text: String = (0..len)
                .map(|_| {
                    let c = alphabet[rng.below(alphabet.len() as u64) as usize];
                    if ascii_only && !c.is_ascii() {
                        'q'
                    } else {
                        c
                    }
                })
                .collect();
            for preset in [Preset::Gpt2, Preset::Cl100k, Preset::O200k] {
                let want: Vec<&str> = pieces(preset, &text).collect();
                let mut spans = Vec::new();
                let mut buf = [(0, 0); 5];
                loop {
                    let from = spans.last().map_or(0, |&(_, e)| e);
                    let k = fill_spans(preset, &text, from, &mut buf);
                    spans.extend_from_slice(&buf[..k]);
                    if k < buf.len() {
                        break;
                    }
                }
                let got: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
                assert_eq!(got, want, "case {case}, {preset}: {text:?}");
                // one `Spans` kept across buffers, with the slack for whole windows (the
                // encoder's way), asking for 1 to 40 pieces at a time; in the build that
                // `fill_spans` ran and in each below it (down to SSE2 on x86_64)
                for simd in [AVX512, AVX2, SSE2] {
                    let mut scan = Spans::new(preset, &text, 0);
                    scan.simd = scan.simd.min(simd);
                    let mut big = [(0, 0); 40 + SLACK];
                    let mut got = Vec::new();
                    let mut have = 0;
                    while !scan.done() || have > 0 {
                        let want = 1 + rng.below(40) as usize;
                        have = scan.fill(&mut big, have, want);
                        let n = have.min(want);
                        assert!(n > 0 || scan.done(), "case {case}: no progress");
                        got.extend_from_slice(&big[..n]);
                        big.copy_within(n..have, 0);
                        have -= n;
                    }
                    assert_eq!(got, spans, "case {case}, {preset}, simd {simd}: {text:?}");
                }
            }
        }
    }
}
