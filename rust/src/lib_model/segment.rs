//! Segmenting new text with a learned LiB lexicon (docs/lib.md §4, v2023 `apply`).
//!
//! At each position the trie gives the longest unit `c` and the second-longest `c2` that prefix
//! the rest of the line. If both exist, two greedy paths are rolled out, the default starting
//! with `c` and the alternative with `c2`, always extending the one that ends earlier (longest
//! unit, or one character when none matches) until both end at the same position; the
//! alternative wins iff it has fewer pieces, or as many and a smaller sum of unit ranks
//! (ranks = priority, 0 = best; characters without a unit add 0). The chosen path is emitted
//! and the walk jumps to the common end. Otherwise the single longest unit is emitted, or, when
//! no unit starts here, the character itself (the model turns it into byte tokens).
//!
//! [`Rule::Reference`] keeps the reference's quirk: a multi-character `c` with no shorter unit
//! under it is not emitted; its first character is. [`Rule::Fixed`] emits `c`.
//! [`Rule::Greedy`] is plain longest match (v2020 evaluation), for comparison.
//!
//! Complexity: O(n x match depth) trie steps per line, plus the bounded look-ahead of the
//! rollouts; no allocation per piece (two reusable path buffers). Invariant: the pieces tile the
//! input exactly, in order.

use super::lexicon::{char_len, Trie, NONE};
use crate::error::{Error, Result};

/// Which segmentation rule to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// v2023 `apply`, quirk included.
    Reference,
    /// v2023 `apply` without the quirk (tokforge's default).
    Fixed,
    /// Longest match only.
    Greedy,
}

impl Rule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "reference" => Ok(Rule::Reference),
            "lib" | "fixed" => Ok(Rule::Fixed),
            "greedy" => Ok(Rule::Greedy),
            _ => Err(Error::Input(format!(
                "unknown segmenter {s:?}; expected \"lib\", \"reference\" or \"greedy\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::Reference => "reference",
            Rule::Fixed => "lib",
            Rule::Greedy => "greedy",
        }
    }
}

/// One piece of a segmentation: `[start, end)` bytes of the line and the unit's rank, or
/// [`NONE`] for a character no unit covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
    pub rank: u32,
}

/// A fixed lexicon compiled for segmentation: a byte trie whose terminal nodes carry ranks.
#[derive(Clone)]
pub struct Segmenter {
    trie: Trie,
    term: Vec<u32>,
    rule: Rule,
}

impl Segmenter {
    /// Compile `units` (rank = position). Units must be non-empty, distinct UTF-8 strings.
    pub fn new<S: AsRef<[u8]>>(units: &[S], rule: Rule) -> Result<Self> {
        let mut trie = Trie::new();
        let mut term = vec![NONE];
        for (r, u) in units.iter().enumerate() {
            let u = u.as_ref();
            if u.is_empty() {
                return Err(Error::Vocab(format!("unit {r} is empty")));
            }
            if std::str::from_utf8(u).is_err() {
                return Err(Error::Vocab(format!("unit {r} is not valid UTF-8: {u:?}")));
            }
            let n = trie.insert(u) as usize;
            term.resize(trie.len(), NONE);
            if term[n] != NONE {
                return Err(Error::Vocab(format!(
                    "unit {r} {:?} repeats unit {}",
                    String::from_utf8_lossy(u),
                    term[n]
                )));
            }
            term[n] = r as u32;
        }
        Ok(Segmenter { trie, term, rule })
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// `(second-longest, longest)` units prefixing `s`: `(rank, byte length)`.
    #[inline]
    fn match2(&self, s: &[u8]) -> (Option<(u32, usize)>, Option<(u32, usize)>) {
        let (mut a, mut b) = (None, None);
        let mut n = 0u32;
        for (i, &byte) in s.iter().enumerate() {
            match self.trie.child(n, byte) {
                Some(c) => n = c,
                None => break,
            }
            let r = self.term[n as usize];
            if r != NONE {
                a = b;
                b = Some((r, i + 1));
            }
        }
        (a, b)
    }

    /// Longest unit at `pos`, else one character with rank [`NONE`].
    #[inline]
    fn step(&self, line: &[u8], pos: usize) -> Piece {
        match self.match2(&line[pos..]).1 {
            Some((r, l)) => Piece {
                start: pos,
                end: pos + l,
                rank: r,
            },
            None => Piece {
                start: pos,
                end: pos + char_len(line[pos]).min(line.len() - pos),
                rank: NONE,
            },
        }
    }

    /// Segment one line (no newline inside is required; newlines are just characters) into
    /// `out`, reusing two path buffers.
    pub fn segment_into(
        &self,
        line: &[u8],
        out: &mut Vec<Piece>,
        paths: &mut (Vec<Piece>, Vec<Piece>),
    ) {
        let mut i = 0usize;
        while i < line.len() {
            let (c2, c) = self.match2(&line[i..]);
            let one = Piece {
                start: i,
                end: i + char_len(line[i]).min(line.len() - i),
                rank: NONE,
            };
            match (c2, c) {
                (Some((r2, l2)), Some((r, l))) if self.rule != Rule::Greedy => {
                    let (d, a) = paths;
                    d.clear();
                    a.clear();
                    d.push(Piece {
                        start: i,
                        end: i + l,
                        rank: r,
                    });
                    a.push(Piece {
                        start: i,
                        end: i + l2,
                        rank: r2,
                    });
                    let (mut de, mut ae) = (i + l, i + l2);
                    while de != ae {
                        if ae < de {
                            let p = self.step(line, ae);
                            ae = p.end;
                            a.push(p);
                        } else {
                            let p = self.step(line, de);
                            de = p.end;
                            d.push(p);
                        }
                    }
                    let rs = |v: &[Piece]| -> u64 {
                        v.iter()
                            .filter(|p| p.rank != NONE)
                            .map(|p| p.rank as u64)
                            .sum()
                    };
                    let alt = a.len() < d.len() || (a.len() == d.len() && rs(a) < rs(d));
                    out.extend_from_slice(if alt { a } else { d });
                    i = de;
                }
                (_, Some((r, l))) => {
                    let single = l == one.end - i;
                    if single || self.rule != Rule::Reference {
                        out.push(Piece {
                            start: i,
                            end: i + l,
                            rank: r,
                        });
                        i += l;
                    } else {
                        out.push(one);
                        i = one.end;
                    }
                }
                (_, None) => {
                    out.push(one);
                    i = one.end;
                }
            }
        }
    }

    /// Pieces of one line.
    pub fn segment(&self, line: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        self.segment_into(line, &mut out, &mut (Vec::new(), Vec::new()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(seg: &Segmenter, s: &str) -> Vec<String> {
        seg.segment(s.as_bytes())
            .iter()
            .map(|p| s[p.start..p.end].to_string())
            .collect()
    }

    /// TV5 of docs/lib.md §11: `apply` with the reference segmenter.
    #[test]
    fn tv5_apply_equals_reference() {
        let units = crate::lib_model::learn::tests_support::TV5_L;
        let seg = Segmenter::new(&units, Rule::Reference).unwrap();
        assert_eq!(
            pieces(&seg, "the cat sat on the log"),
            ["the cat sat o", "n", " the ", "log"]
        );
    }

    #[test]
    fn quirk_only_in_reference_rule() {
        let units = ["ab", "x"];
        let r = Segmenter::new(&units, Rule::Reference).unwrap();
        let f = Segmenter::new(&units, Rule::Fixed).unwrap();
        assert_eq!(pieces(&r, "abx"), ["a", "b", "x"]);
        assert_eq!(pieces(&f, "abx"), ["ab", "x"]);
        assert_eq!(f.segment(b"abx")[0].rank, 0);
        assert_eq!(r.segment(b"abx")[0].rank, NONE);
    }

    #[test]
    fn pieces_tile_any_input_including_unknown_multibyte() {
        let seg = Segmenter::new(&["h", "hé", "héllo", "llo w", "o"], Rule::Fixed).unwrap();
        let s = "héllo wörld 🙂 héllo";
        let p = seg.segment(s.as_bytes());
        let mut pos = 0;
        for x in &p {
            assert_eq!(x.start, pos);
            pos = x.end;
        }
        assert_eq!(pos, s.len());
    }

    #[test]
    fn duplicate_or_empty_units_are_errors() {
        assert!(Segmenter::new(&["a", "a"], Rule::Fixed).is_err());
        assert!(Segmenter::new(&["a", ""], Rule::Fixed).is_err());
    }
}
