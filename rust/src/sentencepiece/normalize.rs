//! Text normalizers of SentencePiece-style tokenizers, with an alignment back to the input.
//!
//! The steps HF `tokenizers` offers for BPE vocabularies (NFC, NFD, NFKC, NFKD, Lowercase,
//! Replace with a literal pattern, Prepend, Strip) and SentencePiece's own
//! `remove_extra_whitespaces` ([`Norm::CollapseSpaces`]), applied in order as a `Sequence` does
//! (docs/bpe.md §11).
//!
//! Every step maps a [`Normalized`] string to another and keeps `align`: for each output byte,
//! the byte offset in the original text it came from (an inserted string takes the offset of
//! the character it is inserted before). Cost: O(n) per step; Unicode normalization forms also
//! normalize the text once more per combining run to align it (still O(n)).
//!
//! Invariants: `align.len() == text.len()`; `align` is non-decreasing; when a normalization form
//! changes text across combining runs (rare: Hangul jamo composition), the output text is still
//! the exact whole-text normalization and only the alignment coarsens to the run's start.

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;

/// One normalization step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Norm {
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
    Lowercase,
    /// Replace every occurrence of a literal string (left to right, non-overlapping).
    Replace {
        from: String,
        to: String,
    },
    /// Prepend a string to non-empty text.
    Prepend(String),
    /// Remove leading / trailing whitespace (`char::is_whitespace`, as HF's `Strip`).
    Strip {
        left: bool,
        right: bool,
    },
    /// SentencePiece's `remove_extra_whitespaces`: drop leading and trailing spaces (U+0020)
    /// and collapse runs of them into one.
    CollapseSpaces,
}

/// A string with, for each of its bytes, the offset in the original text it comes from.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    pub text: String,
    pub align: Vec<usize>,
}

impl Normalized {
    /// `text` itself, its bytes at `base + i`.
    pub fn new(text: &str, base: usize) -> Self {
        Self {
            text: text.to_string(),
            align: (base..base + text.len()).collect(),
        }
    }

    fn push_str(&mut self, s: &str, at: usize) {
        self.text.push_str(s);
        self.align.extend(std::iter::repeat_n(at, s.len()));
    }

    /// Original offset of normalized byte `i` (`end` past the last byte).
    pub fn original(&self, i: usize, end: usize) -> usize {
        self.align.get(i).copied().unwrap_or(end)
    }
}

impl Norm {
    /// Apply this step.
    pub fn apply(&self, n: Normalized) -> Normalized {
        match self {
            Norm::Nfc => unicode_form(n, |s| s.nfc().collect()),
            Norm::Nfd => unicode_form(n, |s| s.nfd().collect()),
            Norm::Nfkc => unicode_form(n, |s| s.nfkc().collect()),
            Norm::Nfkd => unicode_form(n, |s| s.nfkd().collect()),
            Norm::Lowercase => {
                let mut out = Normalized::default();
                let mut buf = [0u8; 4];
                for (i, c) in n.text.char_indices() {
                    for l in c.to_lowercase() {
                        out.push_str(l.encode_utf8(&mut buf), n.align[i]);
                    }
                }
                out
            }
            Norm::Replace { from, to } => {
                if from.is_empty() {
                    return n;
                }
                let mut out = Normalized::default();
                let mut last = 0;
                for (i, _) in n.text.match_indices(from.as_str()) {
                    out.text.push_str(&n.text[last..i]);
                    out.align.extend_from_slice(&n.align[last..i]);
                    out.push_str(to, n.align[i]);
                    last = i + from.len();
                }
                out.text.push_str(&n.text[last..]);
                out.align.extend_from_slice(&n.align[last..]);
                out
            }
            Norm::Prepend(p) => {
                if n.text.is_empty() {
                    return n;
                }
                let mut out = Normalized::default();
                out.push_str(p, n.align[0]);
                out.text.push_str(&n.text);
                out.align.extend_from_slice(&n.align);
                out
            }
            Norm::Strip { left, right } => {
                let mut s = 0;
                let mut e = n.text.len();
                if *left {
                    s = e - n.text.trim_start().len();
                }
                if *right {
                    e = s + n.text[s..].trim_end().len();
                }
                Normalized {
                    text: n.text[s..e].to_string(),
                    align: n.align[s..e].to_vec(),
                }
            }
            Norm::CollapseSpaces => {
                let mut out = Normalized::default();
                let mut pending: Option<usize> = None; // offset of a space run not yet written
                for (i, c) in n.text.char_indices() {
                    if c == ' ' {
                        if pending.is_none() {
                            pending = Some(n.align[i]);
                        }
                        continue;
                    }
                    if let Some(at) = pending.take() {
                        if !out.text.is_empty() {
                            out.push_str(" ", at);
                        }
                    }
                    out.text.push(c);
                    out.align.extend_from_slice(&n.align[i..i + c.len_utf8()]);
                }
                out
            }
        }
    }
}

/// A Unicode normalization form: the exact whole-text result, aligned run by run (a run is a
/// character of combining class 0 and the combining marks after it).
fn unicode_form(n: Normalized, f: impl Fn(&str) -> String) -> Normalized {
    let whole = f(&n.text);
    if whole == n.text {
        return n;
    }
    let mut out = Normalized::default();
    let mut start = 0;
    let bounds = n
        .text
        .char_indices()
        .filter(|&(i, c)| i > 0 && canonical_combining_class(c) == 0)
        .map(|(i, _)| i)
        .chain(std::iter::once(n.text.len()));
    for end in bounds {
        out.push_str(&f(&n.text[start..end]), n.align[start]);
        start = end;
    }
    if out.text != whole {
        let at = n.align.first().copied().unwrap_or(0);
        out = Normalized::default();
        out.push_str(&whole, at);
    }
    out
}

/// Apply `steps` in order to `text` (whose first byte is at offset `base` of the original).
pub fn normalize(steps: &[Norm], text: &str, base: usize) -> Normalized {
    steps
        .iter()
        .fold(Normalized::new(text, base), |n, s| s.apply(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(n: &Normalized) {
        assert_eq!(n.align.len(), n.text.len());
        assert!(n.align.windows(2).all(|w| w[0] <= w[1]), "{:?}", n.align);
    }

    #[test]
    fn llama_style_sequence_aligns_to_the_input() {
        let steps = [
            Norm::Prepend("▁".into()),
            Norm::Replace {
                from: " ".into(),
                to: "▁".into(),
            },
        ];
        let n = normalize(&steps, "a b", 10);
        assert_eq!(n.text, "▁a▁b");
        check(&n);
        assert_eq!(n.align, vec![10, 10, 10, 10, 11, 11, 11, 12]);
        assert_eq!(normalize(&steps, "", 0).text, "");
    }

    #[test]
    fn forms_case_strip_and_collapse() {
        let n = normalize(&[Norm::Nfkc], "ﬁ e\u{301}x", 0);
        assert_eq!(n.text, "fi éx");
        check(&n);
        let n = normalize(&[Norm::Nfd, Norm::Lowercase], "ÉA", 0);
        assert_eq!(n.text, "e\u{301}a");
        check(&n);
        let n = normalize(
            &[Norm::Strip {
                left: true,
                right: false,
            }],
            " \t x ",
            0,
        );
        assert_eq!((n.text.as_str(), n.align[0]), ("x ", 3));
        let n = normalize(&[Norm::CollapseSpaces], "  a   b  ", 0);
        assert_eq!(n.text, "a b");
        assert_eq!(n.align, vec![2, 3, 6]);
    }
}
