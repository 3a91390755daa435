//! Finding special tokens in text, shared by every tokenizer model: a leftmost-longest
//! Aho-Corasick automaton over the chosen special-token texts (HF's added-token matching;
//! tiktoken's `allowed_special`). Build O(total length); search linear in the text.

use crate::error::{Error, Result};
use aho_corasick::{AhoCorasick, MatchKind};

/// Finds a chosen set of special tokens in text.
#[derive(Debug, Clone)]
pub struct SpecialMatcher {
    ac: AhoCorasick,
    ids: Vec<u32>,
}

impl SpecialMatcher {
    /// A matcher for `(text, id)` pairs; `None` if there are none.
    pub fn new(tokens: Vec<(Vec<u8>, u32)>) -> Result<Option<Self>> {
        if tokens.is_empty() {
            return Ok(None);
        }
        let (texts, ids): (Vec<Vec<u8>>, Vec<u32>) = tokens.into_iter().unzip();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&texts)
            .map_err(|e| Error::Input(format!("cannot index special tokens: {e}")))?;
        Ok(Some(Self { ac, ids }))
    }

    /// First (leftmost-longest) occurrence at or after byte `from`: `(start, end, id)`.
    pub fn find(&self, text: &str, from: usize) -> Option<(usize, usize, u32)> {
        let m = self.ac.find(&text[from..])?;
        Some((
            from + m.start(),
            from + m.end(),
            self.ids[m.pattern().as_usize()],
        ))
    }
}
