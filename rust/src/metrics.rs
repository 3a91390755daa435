//! Corpus-metric counts over a token stream: one pass over the UTF-8 text and the ids together.
//!
//! Given the text (documents concatenated), the ids of its encoding and each id's byte length,
//! the tokens tile the text, so a cursor over the tokens advances with a cursor over the
//! characters. In that single pass this module counts what the intrinsic metrics of
//! docs/metrics.md (section Corpus metrics) need:
//! - words: maximal runs of non-whitespace characters (Python's `str.isspace` set), never
//!   across documents; a word is *continued* (Rust et al. 2021, "proportion of continued
//!   words") when the token holding its first byte differs from the one holding its last byte,
//!   i.e. two or more tokens overlap it;
//! - characters whose bytes are split between two or more tokens;
//! - tokens per non-empty line (a token belongs to the line of its first byte; documents end
//!   lines), for per-sentence premiums on parallel text (Petrov et al. 2023);
//! - tokens whose flags mark them as partial characters or byte fallback.
//!
//! Complexity: O(bytes + tokens) time, O(lines) memory, no allocation per token.
//! Invariants: the token lengths add up to the text length (else [`Error::Input`]); every
//! character is visited once and every token is entered once, in order.

use crate::error::{Error, Result};

/// Flag bit: the token's bytes are not whole UTF-8 characters.
pub const FLAG_PARTIAL: u8 = 1;
/// Flag bit: the token is a single non-ASCII byte.
pub const FLAG_BYTE_FALLBACK: u8 = 2;

/// What one pass counts (see the module header).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamCounts {
    pub words: u64,
    pub continued_words: u64,
    pub chars: u64,
    pub split_chars: u64,
    pub partial_tokens: u64,
    pub byte_fallback_tokens: u64,
    /// Tokens of each line that holds at least one non-whitespace character, in text order.
    pub line_tokens: Vec<u32>,
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+001C..U+001F.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// [`is_space`] of the ASCII characters.
const ASCII_SPACE: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = matches!(i, 9..=13 | 28..=32);
        i += 1;
    }
    t
};

/// Length of the UTF-8 sequence that `lead` starts (1 for ASCII and for stray bytes).
fn seq_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Byte lengths of the documents concatenated in `text`, given their lengths in characters
/// (code points: Python's `len`), so the caller need not encode each document on its own.
pub fn doc_byte_lens(text: &[u8], doc_chars: &[usize]) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(doc_chars.len());
    let mut p = 0usize;
    for &chars in doc_chars {
        let start = p;
        for _ in 0..chars {
            if p >= text.len() {
                return Err(Error::Input(format!(
                    "the documents have more characters than the text ({} bytes)",
                    text.len()
                )));
            }
            p += 1;
            while p < text.len() && text[p] & 0xC0 == 0x80 {
                p += 1;
            }
        }
        out.push(p - start);
    }
    if p != text.len() {
        return Err(Error::Input(format!(
            "the documents have fewer characters than the text: {p} of {} bytes used",
            text.len()
        )));
    }
    Ok(out)
}

/// Count words, continued words, split characters and per-line tokens (module header).
///
/// `doc_lens` are the byte lengths of the documents concatenated in `text`; `lengths[id]` is the
/// byte length of token `id` and `flags[id]` its [`FLAG_PARTIAL`] / [`FLAG_BYTE_FALLBACK`] bits.
pub fn stream_counts(
    text: &[u8],
    doc_lens: &[usize],
    ids: &[u32],
    lengths: &[u32],
    flags: &[u8],
) -> Result<StreamCounts> {
    if doc_lens.iter().sum::<usize>() != text.len() {
        return Err(Error::Input(format!(
            "document lengths add up to {} bytes, the text has {}",
            doc_lens.iter().sum::<usize>(),
            text.len()
        )));
    }
    if flags.len() != lengths.len() {
        return Err(Error::Input(format!(
            "flags has {} entries, lengths {}",
            flags.len(),
            lengths.len()
        )));
    }
    let mut spelled: u64 = 0;
    let mut out = StreamCounts::default();
    for &id in ids {
        let i = id as usize;
        let (Some(&len), Some(&f)) = (lengths.get(i), flags.get(i)) else {
            return Err(Error::Input(format!(
                "id {id} is outside the length table of {} ids",
                lengths.len()
            )));
        };
        spelled += u64::from(len);
        out.partial_tokens += u64::from(f & FLAG_PARTIAL != 0);
        out.byte_fallback_tokens += u64::from(f & FLAG_BYTE_FALLBACK != 0);
    }
    if spelled != text.len() as u64 {
        return Err(Error::Input(format!(
            "the tokens spell {spelled} bytes but the text has {}: corpus metrics need a \
             tokenizer whose tokens reproduce the text byte for byte",
            text.len()
        )));
    }
    let mut w = Walk::default();
    let mut doc_ends = doc_lens.iter().scan(0usize, |acc, &l| {
        *acc += l;
        Some(*acc)
    });
    let mut doc_end = 0usize;
    while doc_end == 0 && !text.is_empty() {
        doc_end = doc_ends.next().unwrap_or(text.len());
    }
    let mut pos = 0usize;
    for &id in ids {
        // `lengths[id]` exists: checked above
        let end = pos + lengths.get(id as usize).copied().unwrap_or(0) as usize;
        while pos >= doc_end && doc_end < text.len() {
            // a new document: words and lines never continue into it (tokens do not cross
            // documents: each is encoded on its own)
            w.end_word();
            w.end_line(&mut out.line_tokens);
            doc_end = doc_ends.next().unwrap_or(text.len());
        }
        w.line_count += 1;
        // the token starts inside a word if the word goes on with the next character
        let mut boundary = w.in_word;
        let mut q = pos;
        while q < end {
            let b = text[q];
            if b & 0xC0 == 0x80 {
                // the token starts inside the previous character (counted as split there)
                boundary = false;
                q += 1;
                continue;
            }
            let (n, space) = if b < 0x80 {
                (1, ASCII_SPACE[b as usize])
            } else {
                let n = seq_len(b).min(doc_end.saturating_sub(q).max(1));
                match std::str::from_utf8(&text[q..q + n]) {
                    Ok(s) => (n, s.chars().next().is_some_and(is_space)),
                    Err(_) => (1, false), // a stray byte: one non-space "character"
                }
            };
            w.chars += 1;
            w.split += u64::from(q + n > end);
            if space {
                w.end_word();
            } else {
                if !w.in_word {
                    w.in_word = true;
                    w.words += 1;
                    w.line_has_text = true;
                }
                // a token boundary before this character, or inside it, is inside the word
                w.cont |= boundary || q + n > end;
            }
            boundary = false;
            if b == b'\n' {
                w.end_line(&mut out.line_tokens);
            }
            q += n;
        }
        pos = end;
    }
    w.end_word();
    w.end_line(&mut out.line_tokens);
    out.words = w.words;
    out.continued_words = w.continued;
    out.chars = w.chars;
    out.split_chars = w.split;
    Ok(out)
}

/// State of the walk over characters.
#[derive(Default)]
struct Walk {
    in_word: bool,
    cont: bool,
    line_has_text: bool,
    line_count: u32,
    words: u64,
    continued: u64,
    chars: u64,
    split: u64,
}

impl Walk {
    fn end_word(&mut self) {
        if self.in_word {
            self.continued += u64::from(self.cont);
            self.in_word = false;
            self.cont = false;
        }
    }

    fn end_line(&mut self, lines: &mut Vec<u32>) {
        if self.line_has_text {
            lines.push(self.line_count);
        }
        self.line_count = 0;
        self.line_has_text = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are positions in a token list; lengths from the pieces.
    fn run(docs: &[&str], pieces: &[&str]) -> StreamCounts {
        let text: Vec<u8> = docs.concat().into_bytes();
        let doc_lens: Vec<usize> = docs.iter().map(|d| d.len()).collect();
        let ids: Vec<u32> = (0..pieces.len() as u32).collect();
        let lengths: Vec<u32> = pieces.iter().map(|p| p.len() as u32).collect();
        let flags: Vec<u8> = pieces
            .iter()
            .map(|p| u8::from(std::str::from_utf8(p.as_bytes()).is_err()))
            .collect();
        stream_counts(&text, &doc_lens, &ids, &lengths, &flags).unwrap()
    }

    #[test]
    fn worked_example_the_cats_sat() {
        let c = run(&["the cats sat"], &["the", " cat", "s", " sat"]);
        assert_eq!((c.words, c.continued_words, c.chars), (3, 1, 12));
        assert_eq!(c.line_tokens, vec![4]);
    }

    #[test]
    fn split_characters_and_words_across_documents() {
        // "é" (2 bytes) cut in the middle: one split character; documents never join words
        let text = "aé";
        let doc_lens = [1usize, 2];
        let ids = [0u32, 1, 2];
        let lengths = [1u32, 1, 1];
        let flags = [0u8, 1, 1];
        let c = stream_counts(text.as_bytes(), &doc_lens, &ids, &lengths, &flags).unwrap();
        assert_eq!((c.words, c.continued_words, c.split_chars), (2, 1, 1));
        assert_eq!(c.partial_tokens, 2);
        assert_eq!(c.line_tokens, vec![1, 2]);
    }

    #[test]
    fn lines_without_text_are_dropped_and_tokens_go_to_their_first_byte() {
        let c = run(&["ab.\n\n cd\n"], &["ab", ".\n\n", " cd", "\n"]);
        assert_eq!(c.line_tokens, vec![2, 2]);
        // "ab." is held by "ab" and ".\n\n": continued; "cd" is inside " cd"
        assert_eq!((c.words, c.continued_words), (2, 1));
    }

    #[test]
    fn empty_documents_and_unicode_spaces() {
        let text = "a\u{3000}b";
        let c =
            stream_counts(text.as_bytes(), &[0, 5, 0], &[0, 1, 2], &[1, 3, 1], &[0; 3]).unwrap();
        assert_eq!(
            (c.words, c.continued_words, c.chars, c.split_chars),
            (2, 0, 3, 0)
        );
        assert_eq!(c.line_tokens, vec![3]);
    }

    #[test]
    fn document_characters_become_bytes() {
        let text = "aé中😀bc".as_bytes();
        assert_eq!(
            doc_byte_lens(text, &[2, 0, 2, 2]).unwrap(),
            vec![3, 0, 7, 2]
        );
        assert!(doc_byte_lens(text, &[2, 2]).is_err());
        assert!(doc_byte_lens(text, &[2, 2, 3]).is_err());
    }

    #[test]
    fn mismatched_lengths_are_an_input_error() {
        let e = stream_counts(b"abc", &[3], &[0], &[2], &[0]).unwrap_err();
        assert!(e.to_string().contains("spell 2 bytes"), "{e}");
        let e = stream_counts(b"abc", &[3], &[5], &[3], &[0]).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        let e = stream_counts(b"abc", &[2], &[0], &[3], &[0]).unwrap_err();
        assert!(e.to_string().contains("document lengths"), "{e}");
    }

    #[test]
    fn whitespace_is_pythons_isspace() {
        for c in [
            '\u{1c}', '\u{85}', '\u{a0}', '\u{3000}', '\u{2028}', ' ', '\t',
        ] {
            assert!(is_space(c), "{c:?}");
        }
        for c in ['\u{180e}', '\u{200b}', 'a'] {
            assert!(!is_space(c), "{c:?}");
        }
        for b in 0u8..128 {
            assert_eq!(ASCII_SPACE[b as usize], is_space(char::from(b)), "{b}");
        }
    }
}
