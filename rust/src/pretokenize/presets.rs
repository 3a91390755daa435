//! TEMPORARY stand-in (fancy-regex) until the hand-written scanner lands.
use std::sync::OnceLock;

pub const GPT2: &str = r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";
pub const CL100K: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";
pub const O200K: &str = concat!(
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
    r"\s+"
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    Gpt2,
    Cl100k,
    O200k,
}

impl Preset {
    pub fn pattern(self) -> &'static str {
        match self {
            Preset::Gpt2 => GPT2,
            Preset::Cl100k => CL100K,
            Preset::O200k => O200K,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Preset::Gpt2 => "gpt2",
            Preset::Cl100k => "cl100k",
            Preset::O200k => "o200k",
        }
    }
    pub fn from_name(name: &str) -> Option<Preset> {
        match name {
            "gpt2" => Some(Preset::Gpt2),
            "cl100k" => Some(Preset::Cl100k),
            "o200k" => Some(Preset::O200k),
            _ => None,
        }
    }
    fn regex(self) -> &'static fancy_regex::Regex {
        static R: [OnceLock<fancy_regex::Regex>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        R[self as usize].get_or_init(|| fancy_regex::Regex::new(self.pattern()).expect("preset"))
    }
    pub fn piece_end(self, text: &str, start: usize) -> usize {
        match self.regex().find_from_pos(text, start) {
            Ok(Some(m)) => m.end(),
            _ => text.len(),
        }
    }
}

pub struct Pieces<'a> {
    preset: Preset,
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let end = self.preset.piece_end(self.text, self.pos);
        let s = &self.text[self.pos..end];
        self.pos = end;
        Some(s)
    }
}

pub fn pieces(preset: Preset, text: &str) -> Pieces<'_> {
    Pieces { preset, text, pos: 0 }
}
