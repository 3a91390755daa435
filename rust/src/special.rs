//! Finding special tokens in text, shared by every tokenizer model: a leftmost-longest
//! Aho-Corasick automaton over the chosen special-token texts (HF's added-token matching;
//! tiktoken's `allowed_special`), and another over the specials whose text is refused
//! (tiktoken's `disallowed_special`: their text anywhere in a text is an error, checked by the
//! encoders before they encode it, so a batch checks its texts on its own threads). Build
//! O(total length); search linear in the text.

use crate::error::{Error, Result};
use aho_corasick::{AhoCorasick, MatchKind};

/// Finds a chosen set of special tokens in text, and refuses another.
#[derive(Debug, Clone)]
pub struct SpecialMatcher {
    /// The specials that become their ids.
    allowed: Option<Automaton>,
    /// The specials whose text is an error ([`SpecialMatcher::check`]).
    refused: Option<Automaton>,
}

/// An automaton over special-token texts, with their ids and texts by pattern.
#[derive(Debug, Clone)]
struct Automaton {
    ac: AhoCorasick,
    ids: Vec<u32>,
    texts: Vec<Vec<u8>>,
}

impl Automaton {
    fn new(tokens: Vec<(Vec<u8>, u32)>) -> Result<Option<Self>> {
        if tokens.is_empty() {
            return Ok(None);
        }
        let (texts, ids): (Vec<Vec<u8>>, Vec<u32>) = tokens.into_iter().unzip();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&texts)
            .map_err(|e| Error::Input(format!("cannot index special tokens: {e}")))?;
        Ok(Some(Self { ac, ids, texts }))
    }
}

impl SpecialMatcher {
    /// A matcher for `(text, id)` pairs; `None` if there are none.
    pub fn new(tokens: Vec<(Vec<u8>, u32)>) -> Result<Option<Self>> {
        Ok(Automaton::new(tokens)?.map(|a| Self {
            allowed: Some(a),
            refused: None,
        }))
    }

    /// The specials `allowed` finds, with the text of those `refused` finds refused
    /// ([`SpecialMatcher::check`]); `None` if both are.
    pub fn refusing(allowed: Option<Self>, refused: Option<Self>) -> Option<Self> {
        let refused = refused.and_then(|r| r.allowed);
        let allowed = allowed.and_then(|a| a.allowed);
        (allowed.is_some() || refused.is_some()).then_some(Self { allowed, refused })
    }

    /// First (leftmost-longest) occurrence of an allowed special at or after byte `from`:
    /// `(start, end, id)`.
    pub fn find(&self, text: &str, from: usize) -> Option<(usize, usize, u32)> {
        let a = self.allowed.as_ref()?;
        let m = a.ac.find(&text[from..])?;
        Some((
            from + m.start(),
            from + m.end(),
            a.ids[m.pattern().as_usize()],
        ))
    }

    /// [`Error::Disallowed`] naming the first refused special in `text`, if there is one.
    pub fn check(&self, text: &str) -> Result<()> {
        let Some(r) = &self.refused else {
            return Ok(());
        };
        let Some(m) = r.ac.find(text) else {
            return Ok(());
        };
        Err(Error::Disallowed {
            token: String::from_utf8_lossy(&r.texts[m.pattern().as_usize()]).into_owned(),
            char_at: text[..m.start()].chars().count(),
            text: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &[(&str, u32)]) -> Vec<(Vec<u8>, u32)> {
        list.iter()
            .map(|(t, i)| (t.as_bytes().to_vec(), *i))
            .collect()
    }

    #[test]
    fn allowed_specials_are_found_and_refused_ones_checked() {
        let allowed = SpecialMatcher::new(tokens(&[("<|a|>", 7), ("<|ab|>", 8)])).unwrap();
        let refused = SpecialMatcher::new(tokens(&[("<|b|>", 9)])).unwrap();
        assert!(SpecialMatcher::refusing(None, None).is_none());
        let both = SpecialMatcher::refusing(allowed.clone(), refused.clone()).unwrap();
        assert_eq!(both.find("x <|ab|> <|a|>", 0), Some((2, 8, 8)));
        assert_eq!(both.find("x <|ab|> <|a|>", 8), Some((9, 14, 7)));
        assert!(both.check("x <|ab|> <|a|>").is_ok());
        let e = both.check("é <|a|> ü<|b|>").unwrap_err();
        match &e {
            Error::Disallowed {
                token,
                char_at,
                text,
            } => assert_eq!((token.as_str(), *char_at, *text), ("<|b|>", 9, None)),
            other => panic!("{other:?}"),
        }
        let msg = e.in_text(3).to_string();
        assert!(msg.contains("'<|b|>' (text 3, character 9)"), "{msg}");
        // refusing only: nothing is found, text is checked
        let only = SpecialMatcher::refusing(None, refused).unwrap();
        assert_eq!(only.find("<|a|><|b|>", 0), None);
        assert!(only.check("<|a|>").is_ok() && only.check("<|b|>").is_err());
        // allowing only: nothing is refused
        let open = SpecialMatcher::refusing(allowed, None).unwrap();
        assert!(open.check("<|b|>").is_ok());
        // another error is left as it is
        assert!(Error::Input("x".into()).in_text(2).to_string() == "x");
    }
}
