//! Pre-tokenization: split text into pieces that BPE merges never cross.
//!
//! Three presets (`gpt2`, `cl100k`, `o200k`) are scanned by hand in [`presets`], piece-for-piece
//! identical to the regexes tiktoken uses (tested against `fancy-regex`); any other pattern runs on
//! `fancy-regex` with HF `Split(behavior="Isolated")` semantics: text between matches becomes a
//! piece of its own, so no byte is ever dropped. A [`Pretokenizer::sequence`] of regexes splits
//! with the first, then splits every piece with the second, and so on (llama.cpp's pre-tokenizers
//! for GGUF vocabularies, docs/bpe.md §12; HF's `Sequence` of `Split`s): each regex sees one piece
//! as its whole haystack, so `$` and look-arounds stop at the piece's ends.
//!
//! [`Pretokenizer::segments`] cuts long text into independent segments for parallel work, and
//! [`Pretokenizer::last_safe_cut`] finds where a stream may be cut, at positions where every
//! preset is known to put a piece boundary and where the pieces on either side cannot depend on
//! the other side (see [`is_safe_cut`]). Cost: linear in the text.
//!
//! Only the presets have such cuts. A custom regex may look behind or ahead any distance
//! (`(?<=...)`, `\s+(?!\S)`, `$`) or match across any character (`.+`, `[\s\S]+`), so no
//! position is provably safe for it: custom patterns are never cut, and a stream (or a training
//! file) pre-tokenized with one is held whole, memory O(text). A custom pattern spelled exactly
//! like a preset (tiktoken's or HF's spelling) is recognised as that preset and keeps bounded
//! memory.

mod blocks;
pub mod presets;

use crate::error::{Error, Result};
pub use presets::Preset;

/// Pieces per chunk of [`Pretokenizer::for_each_chunk`]: enough lookups in flight to hide a
/// memory access (the piece table is larger than the L2 cache), few enough to stay in L1.
pub const CHUNK: usize = 32;

/// A compiled pre-tokenizer.
#[derive(Debug, Clone)]
pub struct Pretokenizer {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Preset(Preset),
    Custom {
        pattern: String,
        regex: Box<fancy_regex::Regex>,
    },
    /// Regexes applied one after the other, each to every piece of the previous; `pattern` is
    /// their list, one per line.
    Sequence {
        pattern: String,
        regexes: Vec<(String, Stage)>,
    },
}

/// One stage of a [`Kind::Sequence`]: a regex spelled like a preset runs on the preset's
/// scanner (same pieces, docs/byte_probs.md §15.8), any other on `fancy-regex`.
#[derive(Debug, Clone)]
enum Stage {
    Preset(Preset),
    Regex(Box<fancy_regex::Regex>),
}

/// Call `f` on the pieces of `text` by one stage of a sequence (Isolated split).
fn split_stage<'t>(
    pattern: &str,
    stage: &Stage,
    text: &'t str,
    count: &mut usize,
    f: &mut impl FnMut(&'t str),
) -> Result<()> {
    match stage {
        Stage::Preset(p) => {
            for piece in presets::pieces(*p, text) {
                if count.is_multiple_of(1024) {
                    crate::cancel::check()?;
                }
                *count += 1;
                f(piece);
            }
            Ok(())
        }
        Stage::Regex(regex) => split_isolated(pattern, regex, text, count, f),
    }
}

/// Call `f` on the Isolated-split pieces of `text` by `regex` (the text between matches is a
/// piece too, empty matches only cut); `count` counts pieces for the cancellation poll.
fn split_isolated<'t>(
    pattern: &str,
    regex: &fancy_regex::Regex,
    text: &'t str,
    count: &mut usize,
    f: &mut impl FnMut(&'t str),
) -> Result<()> {
    let mut last = 0;
    for m in regex.find_iter(text) {
        if count.is_multiple_of(1024) {
            crate::cancel::check()?;
        }
        *count += 1;
        let m = m.map_err(|e| Error::Regex {
            pattern: pattern.to_string(),
            message: format!("matching failed: {e}"),
        })?;
        if m.start() > last {
            f(&text[last..m.start()]);
        }
        if m.end() > m.start() {
            f(m.as_str());
        }
        last = m.end();
    }
    if last < text.len() {
        f(&text[last..]);
    }
    Ok(())
}

impl Pretokenizer {
    /// `spec` is a preset name (`gpt2`, `cl100k`, `o200k`) or a regex, as a user names it.
    ///
    /// A spec that looks like a name (ASCII letters, digits, `_`, `-`, `.`, starting with a
    /// letter) must be a preset: `"gpt4"` or `"cl100k_base"` is an [`Error::Regex`] listing the
    /// presets, never a regex that matches the literal word (which would pre-tokenize every
    /// text wrongly without a word of warning). Such a regex is written as a group:
    /// `"(?:gpt4)"`. Regexes read from files go through [`Pretokenizer::from_regex`].
    pub fn new(spec: &str) -> Result<Self> {
        if let Some(p) = Preset::from_name(spec) {
            return Ok(Self {
                kind: Kind::Preset(p),
            });
        }
        if looks_like_a_name(spec) {
            let hint = Preset::ALL
                .iter()
                .find(|p| spec.starts_with(p.name()))
                .map(|p| format!(" (did you mean {:?}?)", p.name()))
                .unwrap_or_default();
            return Err(Error::Regex {
                pattern: spec.to_string(),
                message: format!(
                    "unknown preset name{hint}; the presets are \"gpt2\" (GPT-2, r50k/p50k), \
                     \"cl100k\" (GPT-3.5/GPT-4) and \"o200k\" (GPT-4o); to match the literal \
                     text, write the regex as a group, e.g. \"(?:{spec})\""
                ),
            });
        }
        Self::from_regex(spec)
    }

    /// A pre-tokenizer for `regex` as a file holds it (HF `Split` pattern, tekken `pattern`):
    /// always a regex, never a preset name. A regex spelled exactly like a preset (tiktoken's or
    /// HF's spelling) is that preset.
    pub fn from_regex(spec: &str) -> Result<Self> {
        // A regex spelled like a preset (tiktoken's or HF's spelling) uses the fast scanner.
        if let Some(p) = preset_spelled(spec) {
            return Ok(Self {
                kind: Kind::Preset(p),
            });
        }
        if spec.is_empty() {
            return Err(Error::Regex {
                pattern: String::new(),
                message: "the pattern is empty; use gpt2, cl100k, o200k or a regex".into(),
            });
        }
        let regex = fancy_regex::Regex::new(spec).map_err(|e| Error::Regex {
            pattern: spec.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            kind: Kind::Custom {
                pattern: spec.to_string(),
                regex: Box::new(regex),
            },
        })
    }

    /// Split with each regex in turn, every piece of one split by the next (see the module
    /// docs). One regex is [`Pretokenizer::from_regex`]; none is an error.
    pub fn sequence(specs: &[&str]) -> Result<Self> {
        match specs {
            [] => Err(Error::Regex {
                pattern: String::new(),
                message: "a sequence of regexes needs at least one".into(),
            }),
            [one] => Self::from_regex(one),
            _ => {
                let mut regexes = Vec::with_capacity(specs.len());
                for spec in specs {
                    // llama.cpp's GPT-2 spelling splits like the preset too (its stages keep
                    // the text between matches as pieces)
                    let preset =
                        preset_spelled(spec).or((*spec == LLAMA_CPP_GPT2).then_some(Preset::Gpt2));
                    let stage =
                        match preset {
                            Some(p) => Stage::Preset(p),
                            None => Stage::Regex(Box::new(fancy_regex::Regex::new(spec).map_err(
                                |e| Error::Regex {
                                    pattern: spec.to_string(),
                                    message: e.to_string(),
                                },
                            )?)),
                        };
                    regexes.push((spec.to_string(), stage));
                }
                Ok(Self {
                    kind: Kind::Sequence {
                        pattern: specs.join("\n"),
                        regexes,
                    },
                })
            }
        }
    }

    pub fn preset(&self) -> Option<Preset> {
        match &self.kind {
            Kind::Preset(p) => Some(*p),
            Kind::Custom { .. } | Kind::Sequence { .. } => None,
        }
    }

    /// `Some(p)` for the sequence `[\p{N}, p]`: every number character split off alone, then
    /// preset `p` (llama.cpp's starcoder, refact, command-r, smollm, ... pre-tokenizers;
    /// docs/byte_probs.md §15.8).
    pub fn digit_split_preset(&self) -> Option<Preset> {
        match &self.kind {
            Kind::Sequence { regexes, .. } => match regexes.as_slice() {
                [(first, _), (_, Stage::Preset(p))] if first == DIGIT_SPLIT => Some(*p),
                _ => None,
            },
            _ => None,
        }
    }

    /// The regexes of a sequence (see [`Pretokenizer::sequence`]); `None` for one pattern.
    pub fn sequence_patterns(&self) -> Option<Vec<&str>> {
        match &self.kind {
            Kind::Sequence { regexes, .. } => {
                Some(regexes.iter().map(|(p, _)| p.as_str()).collect())
            }
            _ => None,
        }
    }

    /// The regex string this pre-tokenizer implements (a sequence: its regexes, one per line).
    pub fn pattern(&self) -> &str {
        match &self.kind {
            Kind::Preset(p) => p.pattern(),
            Kind::Custom { pattern, .. } | Kind::Sequence { pattern, .. } => pattern,
        }
    }

    /// The pattern spelled for HF `tokenizers`, whose Oniguruma engine reads `{1,3}+` as a
    /// repeated counted group rather than a possessive one (so `"12345"` would stay one piece).
    /// The possessive mark is redundant there under backtracking semantics, so dropping it
    /// gives the same pieces in both engines.
    pub fn hf_pattern(&self) -> String {
        match &self.kind {
            Kind::Preset(p) => hf_spelling(*p),
            Kind::Custom { pattern, .. } | Kind::Sequence { pattern, .. } => pattern.clone(),
        }
    }

    /// Short name: the preset name, `custom` or `sequence`.
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Preset(p) => p.name(),
            Kind::Custom { .. } => "custom",
            Kind::Sequence { .. } => "sequence",
        }
    }

    /// Call `f` on every piece of `text`, in order. The pieces concatenate to `text`. Stops
    /// with [`Error::Interrupted`] when the thread's [`crate::cancel`] handle is set (checked
    /// every 1024 pieces, from the first).
    pub fn for_each_piece<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str)) -> Result<()> {
        match &self.kind {
            Kind::Preset(p) => {
                for (k, piece) in presets::pieces(*p, text).enumerate() {
                    if k % 1024 == 0 {
                        crate::cancel::check()?;
                    }
                    f(piece);
                }
                Ok(())
            }
            Kind::Custom { pattern, regex } => split_isolated(pattern, regex, text, &mut 0, &mut f),
            Kind::Sequence { regexes, .. } => {
                let mut count = 0;
                let (first, rest) = regexes.split_first().ok_or_else(|| Error::Regex {
                    pattern: String::new(),
                    message: "empty sequence".into(),
                })?;
                let mut pieces = Vec::new();
                split_stage(&first.0, &first.1, text, &mut count, &mut |p| {
                    pieces.push(p)
                })?;
                for (pattern, stage) in rest {
                    let mut next = Vec::with_capacity(pieces.len());
                    for piece in pieces {
                        split_stage(pattern, stage, piece, &mut count, &mut |p| next.push(p))?;
                    }
                    pieces = next;
                }
                pieces.into_iter().for_each(f);
                Ok(())
            }
        }
    }

    /// Call `f` on the `(start, end)` byte spans of the pieces of `text`, in order, in chunks
    /// of up to [`CHUNK`] pieces (so that a caller can prepare a chunk's lookups before making
    /// them). Stops with [`Error::Interrupted`] like [`Pretokenizer::for_each_piece`].
    pub fn for_each_chunk(&self, text: &str, mut f: impl FnMut(&[(usize, usize)])) -> Result<()> {
        match &self.kind {
            Kind::Preset(p) => {
                // the thread's span buffer, reused from call to call (a fresh one is 5 KiB to
                // zero, as much as pre-tokenizing a few hundred bytes); a fresh one when `f`
                // itself pre-tokenizes (the thread's buffer is in use then)
                SPAN_BUF.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => chunks_of_preset(*p, text, &mut buf, &mut f),
                    Err(_) => chunks_of_preset(*p, text, &mut [(0, 0); SPAN_BUF_LEN], &mut f),
                })
            }
            Kind::Custom { .. } | Kind::Sequence { .. } => {
                let mut buf = [(0usize, 0usize); CHUNK];
                let base = text.as_ptr() as usize;
                let mut k = 0;
                self.for_each_piece(text, |p| {
                    let s = p.as_ptr() as usize - base;
                    buf[k] = (s, s + p.len());
                    k += 1;
                    if k == CHUNK {
                        f(&buf);
                        k = 0;
                    }
                })?;
                if k > 0 {
                    f(&buf[..k]);
                }
                Ok(())
            }
        }
    }

    /// The pieces of `text` as a vector (convenience for tests and small inputs).
    pub fn pieces<'t>(&self, text: &'t str) -> Result<Vec<&'t str>> {
        let mut out = Vec::new();
        self.for_each_piece(text, |p| out.push(p))?;
        Ok(out)
    }

    /// Cut `text` into segments of about `target` bytes that can be pre-tokenized independently
    /// with exactly the same pieces as the whole. Custom patterns are never cut (their
    /// look-arounds may see across any position).
    pub fn segments<'t>(&self, text: &'t str, target: usize) -> Vec<&'t str> {
        if self.preset().is_none() || text.len() <= target {
            return vec![text];
        }
        let mut out = Vec::new();
        let mut start = 0;
        while text.len() - start > target {
            match find_safe_cut(text, start + target) {
                Some(cut) => {
                    out.push(&text[start..cut]);
                    start = cut;
                }
                None => break,
            }
        }
        out.push(&text[start..]);
        out
    }

    /// Longest prefix of `text` (ending at a safe cut) whose pieces do not depend on what
    /// follows `text`, so that pre-tokenizing the prefix and the rest separately gives the pieces
    /// of the whole, whatever follows; `None` if there is none. Used for streaming (training
    /// files, `encode_stream`). Always `None` for a custom regex: there is no provable safe cut
    /// for an arbitrary pattern (see the module header), so streams of it are held whole.
    pub fn last_safe_cut(&self, text: &str) -> Option<usize> {
        self.preset()?;
        let b = text.as_bytes();
        (2..b.len()).rev().find(|&p| is_safe_cut(text, p))
    }
}

/// Whether a pattern given by a user is meant as a preset name: ASCII letters, digits, `_`,
/// `-` and `.`, starting with a letter (`gpt4`, `cl100k_base`, `gpt-3.5`).
fn looks_like_a_name(spec: &str) -> bool {
    spec.starts_with(|c: char| c.is_ascii_alphabetic())
        && spec
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The preset a regex spells (tiktoken's or HF's spelling), if any.
fn preset_spelled(spec: &str) -> Option<Preset> {
    Preset::ALL.into_iter().find(|&p| {
        p.pattern() == spec || hf_spelling(p) == spec || (p == Preset::Gpt2 && spec == HF_GPT2)
    })
}

/// The number split of llama.cpp's digit-splitting pre-tokenizers (one number character a piece).
pub const DIGIT_SPLIT: &str = r"\p{N}";

/// The GPT-2 pattern as llama.cpp spells it (no `\s+` at the end: the one whitespace character
/// no alternative matches, the last of a run before a non-space, becomes an Isolated piece of its
/// own, as `\s+` would make it); same pieces as the preset.
pub const LLAMA_CPP_GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// The GPT-2 pattern as HF's `ByteLevel(use_regex=true)` spells it; same pieces as the preset.
pub const HF_GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

fn hf_spelling(p: Preset) -> String {
    p.pattern().replace("{1,3}+", "{1,3}")
}

/// First safe cut at or after byte `from`.
fn find_safe_cut(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    (from.max(2)..b.len()).find(|&p| is_safe_cut(text, p))
}

/// `p` is a safe cut for all three presets when either
/// (a) `text[p-1]` is an ASCII letter, `text[p]` is a space and `text[p+1]` an ASCII letter: the
///     letter run ends at `p` in every preset, and a space cannot extend any alternative that
///     failed at the end of the left part; or
/// (b) `text[p-1]` is `\n` preceded by a non-whitespace character, and `text[p]` is neither
///     whitespace nor `/` (o200k's punctuation piece swallows trailing `[\r\n/]`): the `\n` ends
///     a piece (alone, or as cl100k/o200k's punctuation tail) whatever follows.
///
/// No preset looks behind, so the right part scans the same from `p`. Tested by comparing the
/// pieces of whole texts with those of their segments.
fn is_safe_cut(text: &str, p: usize) -> bool {
    let b = text.as_bytes();
    if p < 2 || p + 1 >= b.len() || !text.is_char_boundary(p) {
        return false;
    }
    if b[p] == b' ' {
        return b[p - 1].is_ascii_alphabetic() && b[p + 1].is_ascii_alphabetic();
    }
    if b[p - 1] != b'\n' || b[p] == b'/' {
        return false;
    }
    let next = text[p..].chars().next();
    let prev = text[..p - 1].chars().next_back();
    matches!((prev, next), (Some(a), Some(c)) if !a.is_whitespace() && !c.is_whitespace())
}

/// Spans one [`chunks_of_preset`] buffer holds: filled [`FILL`] at a time, with the room
/// [`presets::Spans::fill`] needs past that.
const SPAN_BUF_LEN: usize = FILL + presets::SLACK;

/// Spans [`chunks_of_preset`] asks [`presets::Spans::fill`] for at once (8 chunks).
const FILL: usize = 8 * CHUNK;

thread_local! {
    /// The span buffer of this thread's [`Pretokenizer::for_each_chunk`] calls.
    static SPAN_BUF: std::cell::RefCell<[(usize, usize); SPAN_BUF_LEN]> =
        const { std::cell::RefCell::new([(0, 0); SPAN_BUF_LEN]) };
}

/// [`Pretokenizer::for_each_chunk`] for a preset, with `buf` as its span buffer (its contents
/// on entry do not matter): filled a window at a time, [`FILL`] spans at once (up to
/// [`presets::SLACK`] more), and handed out by chunks.
fn chunks_of_preset(
    preset: Preset,
    text: &str,
    buf: &mut [(usize, usize); SPAN_BUF_LEN],
    f: &mut impl FnMut(&[(usize, usize)]),
) -> Result<()> {
    let mut spans = presets::Spans::new(preset, text, 0);
    let (mut from, mut have) = (0, 0);
    for round in 0usize.. {
        if round % (1024 / CHUNK) == 0 {
            crate::cancel::check()?;
        }
        if have - from < CHUNK && !spans.done() {
            buf.copy_within(from..have, 0);
            have = spans.fill(buf, have - from, FILL);
            from = 0;
        }
        let n = (have - from).min(CHUNK);
        if n == 0 {
            break;
        }
        f(&buf[from..from + n]);
        from += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_give_the_same_pieces_as_the_whole() {
        let text =
            "Hello world.\nThe  quick brown fox's tail\n\n  jumps!\n/etc over 12345 lazy\ndogs' \
                    名前は\n「東京」です。\nاللغة العربية\n  x \n";
        let text = text.repeat(40);
        for name in ["gpt2", "cl100k", "o200k"] {
            let p = Pretokenizer::new(name).unwrap();
            let whole = p.pieces(&text).unwrap();
            for target in [1, 7, 64, 500] {
                let segs = p.segments(&text, target);
                assert!(segs.len() > 1);
                let mut parts = Vec::new();
                for s in segs {
                    parts.extend(p.pieces(s).unwrap());
                }
                assert_eq!(parts, whole, "{name} target {target}");
            }
        }
    }

    #[test]
    fn stream_cuts_give_the_pieces_of_the_whole_for_presets_only() {
        let text = "the cat sat\non the mat\n  the dog  ate\nbones".repeat(3);
        for name in ["gpt2", "cl100k", "o200k"] {
            let p = Pretokenizer::new(name).unwrap();
            let whole = p.pieces(&text).unwrap();
            for end in 1..=text.len() {
                if !text.is_char_boundary(end) {
                    continue;
                }
                if let Some(cut) = p.last_safe_cut(&text[..end]) {
                    let mut parts = p.pieces(&text[..cut]).unwrap();
                    parts.extend(p.pieces(&text[cut..]).unwrap());
                    assert_eq!(parts, whole, "{name} cut {cut}");
                }
            }
            assert!(p.last_safe_cut(&text).is_some(), "{name}");
        }
        // `.+` makes one piece per line, so the preset cut "the| cat" would change the pieces;
        // a preset spelled as a regex is the preset and keeps its cuts
        for custom in [r".+", r"\s+(?!\S)|\S+", r"(?<=\s)\w+|\w+|\s+"] {
            let p = Pretokenizer::new(custom).unwrap();
            assert_eq!(p.last_safe_cut(&text), None, "{custom}");
        }
        let spelled = Pretokenizer::new(Preset::Cl100k.pattern()).unwrap();
        assert!(spelled.last_safe_cut(&text).is_some());
    }

    /// The chunks of `for_each_chunk` (filled many windows at a time, handed out by up to
    /// `CHUNK`) concatenate to the pieces of the exact scanner, on long texts.
    #[test]
    fn chunks_concatenate_to_the_pieces() {
        let words = [
            "the",
            " cat",
            "  ",
            "\n",
            "12345",
            "'s",
            " don't",
            "名前は",
            "。",
            "Привет",
            "\u{a0}",
            "x",
            ".",
            "!!",
            " \n\n ",
            "ÉtÉ",
            "a",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..20 {
            let text: String = (0..3000 + 500 * round)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    words[(seed % words.len() as u64) as usize]
                })
                .collect();
            for name in ["gpt2", "cl100k", "o200k"] {
                let p = Pretokenizer::new(name).unwrap();
                let want: Vec<&str> = presets::pieces(p.preset().unwrap(), &text).collect();
                let mut got = Vec::new();
                p.for_each_chunk(&text, |c| {
                    assert!(!c.is_empty() && c.len() <= CHUNK);
                    got.extend(c.iter().map(|&(s, e)| &text[s..e]));
                })
                .unwrap();
                assert_eq!(got, want, "{name} round {round}");
            }
        }
    }

    /// The thread's reused span buffer: a long text and then short ones, and a callback that
    /// pre-tokenizes another text while the buffer is in use (it gets a fresh one), all give
    /// the exact scanner's pieces.
    #[test]
    fn reused_and_nested_chunk_buffers_give_the_pieces() {
        let long = "The  quick brown fox's tail\n\n  jumps!\n/etc 12345 名前は「東京」です。 x \n"
            .repeat(50);
        let texts = [long.as_str(), "a", "", " b c", "hello world 12", "\n\n  x"];
        for name in ["gpt2", "cl100k", "o200k"] {
            let p = Pretokenizer::new(name).unwrap();
            let exact = |t: &str| -> Vec<(usize, usize)> {
                let base = t.as_ptr() as usize;
                presets::pieces(p.preset().unwrap(), t)
                    .map(|s| {
                        (
                            s.as_ptr() as usize - base,
                            s.as_ptr() as usize - base + s.len(),
                        )
                    })
                    .collect()
            };
            for (i, t) in texts.iter().enumerate() {
                let inner = texts[(i + 1) % texts.len()];
                let (mut got, mut got_inner) = (Vec::new(), Vec::new());
                p.for_each_chunk(t, |c| {
                    got.extend_from_slice(c);
                    if got_inner.is_empty() {
                        p.for_each_chunk(inner, |d| got_inner.extend_from_slice(d))
                            .unwrap();
                    }
                })
                .unwrap();
                assert_eq!(got, exact(t), "{name} text {i}");
                if !got.is_empty() {
                    assert_eq!(got_inner, exact(inner), "{name} nested in text {i}");
                }
                let mut again = Vec::new();
                p.for_each_chunk(t, |c| again.extend_from_slice(c)).unwrap();
                assert_eq!(again, got, "{name} text {i} again");
            }
        }
    }

    #[test]
    fn custom_regex_keeps_the_gaps_as_pieces() {
        let p = Pretokenizer::new(r"\d+").unwrap();
        assert_eq!(p.pieces("ab12cd3").unwrap(), vec!["ab", "12", "cd", "3"]);
    }

    #[test]
    fn unknown_preset_names_are_errors_not_literal_regexes() {
        for name in [
            "gpt4",
            "cl100k_base",
            "o200k-base",
            "gpt-3.5",
            "GPT2",
            "llama3",
        ] {
            let e = Pretokenizer::new(name).unwrap_err();
            assert!(matches!(e, Error::Regex { .. }), "{name}: {e}");
            assert!(e.to_string().contains("unknown preset name"), "{e}");
        }
        let e = Pretokenizer::new("cl100k_base").unwrap_err().to_string();
        assert!(e.contains("did you mean \"cl100k\""), "{e}");
        // written as a group, or read from a file, the word is a regex
        let p = Pretokenizer::new("(?:gpt4)").unwrap();
        assert_eq!(p.pieces("a gpt4 b").unwrap(), vec!["a ", "gpt4", " b"]);
        let p = Pretokenizer::from_regex("gpt4").unwrap();
        assert_eq!(p.pieces("a gpt4 b").unwrap(), vec!["a ", "gpt4", " b"]);
        // regexes and presets are unaffected
        for ok in [r"\w+", "a|b", "[a-z]+", "cl100k", "_x"] {
            assert!(Pretokenizer::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Pretokenizer::from_regex(Preset::O200k.pattern())
                .unwrap()
                .preset(),
            Some(Preset::O200k)
        );
    }

    #[test]
    fn bad_regex_is_an_error_naming_the_pattern() {
        let e = Pretokenizer::new("(unclosed").unwrap_err().to_string();
        assert!(e.contains("(unclosed"), "{e}");
    }
}

#[cfg(test)]
mod sequence_tests {
    use super::*;

    /// A sequence's preset-spelled stages run on the preset scanners (docs/byte_probs.md
    /// §15.8): the pieces equal those of the same sequence evaluated by `fancy-regex` alone, on
    /// random texts rich in digits, whitespace runs, apostrophes and non-ASCII characters.
    #[test]
    fn preset_stages_of_a_sequence_equal_the_regex() {
        let alphabet = [
            " ", "  ", "\t", "\n", "\r\n", "a", "Bc", "1", "23", "\u{663}", "'s", "'", "!", ".",
            "é", "\u{301}", "中", "\u{a0}", "x'll", "/",
        ];
        let stages: [&str; 4] = [
            LLAMA_CPP_GPT2,
            HF_GPT2,
            Preset::Cl100k.pattern(),
            Preset::O200k.pattern(),
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for stage in stages {
            let seq = Pretokenizer::sequence(&[DIGIT_SPLIT, stage]).unwrap();
            assert!(seq.digit_split_preset().is_some(), "{stage}");
            let first = fancy_regex::Regex::new(DIGIT_SPLIT).unwrap();
            let second = fancy_regex::Regex::new(stage).unwrap();
            for _ in 0..3000 {
                let len = (next() % 12) as usize;
                let text: String = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                let mut outer = Vec::new();
                split_isolated(DIGIT_SPLIT, &first, &text, &mut 0, &mut |p| outer.push(p)).unwrap();
                let mut want = Vec::new();
                for piece in outer {
                    split_isolated(stage, &second, piece, &mut 0, &mut |p| want.push(p)).unwrap();
                }
                assert_eq!(seq.pieces(&text).unwrap(), want, "{stage}: {text:?}");
            }
        }
        // any other second stage stays a regex
        let other = Pretokenizer::sequence(&[DIGIT_SPLIT, r"\w+|\W"]).unwrap();
        assert_eq!(other.digit_split_preset(), None);
    }
}
