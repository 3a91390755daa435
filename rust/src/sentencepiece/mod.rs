//! SentencePiece-style BPE: the model of Llama-2, Mistral-v1 and SentencePiece `.model` BPE
//! vocabularies (docs/bpe.md §11).
//!
//! Pipeline for each stretch of text between special tokens:
//! 1. normalize ([`normalize`]: NFC/NFKC/.., Lowercase, Replace, Prepend, Strip, SentencePiece's
//!    whitespace collapsing), keeping an alignment to the input;
//! 2. optionally pre-tokenize with HF's `Metaspace` ([`Metaspace`]): spaces become the word
//!    marker `▁`, a `▁` is prepended per `prepend_scheme` (`always`; `first`: only to text that
//!    starts the input; `never`), and with `split` each `▁` starts a new word;
//! 3. per word, start from its characters (a character outside the vocabulary becomes its UTF-8
//!    bytes `<0xNN>` with byte fallback, else the unk token, consecutive unks fused if
//!    `fuse_unk`), then repeatedly merge the adjacent pair of lowest priority, leftmost on ties.
//!    Priority is a pair's position in the merge list (HF `tokenizer.json`) or the score rank
//!    of the concatenated piece (SentencePiece `.model`: highest score first, equal scores tie
//!    and go leftmost, as `bpe_model.cc` orders its agenda). Both are one pair table.
//!
//! Decoding: a token's bytes are its piece with `▁` as a space (a byte piece is its byte, a
//! special token its text); the decoded text drops `strip_leading` leading spaces (HF's
//! `Strip` / `Metaspace` decoders, SentencePiece's dummy-prefix removal).
//!
//! Complexity: normalization O(n); merging O(m log m) per word of m characters (heap + linked
//! list), so whole-text words (Llama-2 has no pre-tokenizer) stay O(n log n).
//!
//! Invariants (checked by [`SpBpe::new`]): ids are `0..n`, every id has a piece; a piece
//! string has one id; merged pairs name pieces whose concatenation is a piece; byte fallback
//! needs all 256 `<0xNN>` pieces; an unk id, if set, is a valid id. Unlike byte-level BPE,
//! `decode(encode(t)) == t` holds only when normalization is lossless (no NFKC / Lowercase /
//! whitespace collapsing, no unk) and for HF's `Prepend` only without special tokens in `t`.

pub mod normalize;

use crate::error::{Error, Result};
use crate::special::SpecialMatcher;
use normalize::Norm;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The word-marker character SentencePiece uses for spaces.
pub const MARKER: char = '▁';

/// When HF's `Metaspace` prepends its replacement character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrependScheme {
    Always,
    First,
    Never,
}

impl PrependScheme {
    pub fn name(self) -> &'static str {
        match self {
            PrependScheme::Always => "always",
            PrependScheme::First => "first",
            PrependScheme::Never => "never",
        }
    }
}

/// HF's `Metaspace` pre-tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metaspace {
    pub replacement: char,
    pub prepend: PrependScheme,
    pub split: bool,
}

/// What kind of entry a vocabulary id is (SentencePiece's piece types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    /// `<0xNN>`: the byte NN (byte fallback).
    Byte(u8),
    /// A special token (HF added token, SentencePiece control / unknown piece).
    Special,
}

/// How merge priority is defined.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeSource {
    /// HF `tokenizer.json`: position in this merge list.
    List(Vec<(u32, u32)>),
    /// SentencePiece `.model`: score of the concatenation (higher first), one per id.
    Scores(Vec<f32>),
}

/// Everything that defines a SentencePiece-style BPE model.
#[derive(Debug, Clone)]
pub struct SpConfig {
    /// piece string of each id (special tokens: their text)
    pub pieces: Vec<String>,
    pub kinds: Vec<PieceKind>,
    pub merges: MergeSource,
    pub unk: Option<u32>,
    pub fuse_unk: bool,
    pub byte_fallback: bool,
    /// byte pieces decode to their byte (HF `ByteFallback` decoder), else to their spelling
    pub byte_decode: bool,
    pub normalizers: Vec<Norm>,
    pub metaspace: Option<Metaspace>,
    /// leading spaces the decoder removes
    pub strip_leading: usize,
    /// whole words that are pieces are emitted without merging (HF `ignore_merges`)
    pub ignore_merges: bool,
    /// words are cut into runs of `\n` and runs of other characters, and a run of `\n` that is
    /// a piece is emitted whole (llama.cpp's Gemma-4 tokenizer, docs/bpe.md §12.2)
    pub split_newlines: bool,
}

/// A SentencePiece-style BPE model; see the module docs.
#[derive(Debug)]
pub struct SpBpe {
    cfg: SpConfig,
    /// surface bytes of each id (what decoding gives)
    surface: Vec<Vec<u8>>,
    /// piece string -> id, for regular pieces (normal and byte pieces)
    piece_ids: FxHashMap<String, u32>,
    /// surface bytes -> id of a regular token (normal pieces win over byte pieces)
    surface_ids: FxHashMap<Vec<u8>, u32>,
    /// (left, right) -> (priority, merged id)
    pairs: FxHashMap<u64, (u32, u32)>,
    /// merges in priority order (derived from scores for `.model` files)
    merge_list: Vec<(u32, u32)>,
    specials: Vec<(String, u32)>,
    byte_ids: Option<[u32; 256]>,
}

#[inline]
fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

fn vocab_err(msg: String) -> Error {
    Error::Vocab(msg)
}

impl SpBpe {
    /// Build and validate a model (see the module docs for what is checked).
    pub fn new(cfg: SpConfig) -> Result<Self> {
        let n = cfg.pieces.len();
        if cfg.kinds.len() != n {
            return Err(vocab_err(format!(
                "{} pieces but {} piece kinds",
                n,
                cfg.kinds.len()
            )));
        }
        if n > u32::MAX as usize / 2 {
            return Err(vocab_err(format!("{n} pieces is too many")));
        }
        let mut piece_ids: FxHashMap<String, u32> = FxHashMap::default();
        let mut specials = Vec::new();
        let mut byte_slots = [u32::MAX; 256];
        let mut surface = Vec::with_capacity(n);
        for (id, (p, k)) in cfg.pieces.iter().zip(&cfg.kinds).enumerate() {
            let id = id as u32;
            match *k {
                PieceKind::Special => {
                    if p.is_empty() {
                        return Err(vocab_err(format!("special token {id} is empty")));
                    }
                    specials.push((p.clone(), id));
                    surface.push(p.as_bytes().to_vec());
                    continue;
                }
                PieceKind::Byte(b) => {
                    byte_slots[b as usize] = id;
                    surface.push(if cfg.byte_decode {
                        vec![b]
                    } else {
                        p.as_bytes().to_vec()
                    });
                }
                PieceKind::Normal => {
                    if p.is_empty() {
                        return Err(vocab_err(format!("piece {id} is the empty string")));
                    }
                    surface.push(p.replace(MARKER, " ").into_bytes());
                }
            }
            if piece_ids.insert(p.clone(), id).is_some() {
                return Err(vocab_err(format!("piece {p:?} has two ids")));
            }
        }
        let byte_ids = if byte_slots.iter().all(|&i| i != u32::MAX) {
            Some(byte_slots)
        } else {
            None
        };
        if cfg.byte_fallback && byte_ids.is_none() {
            let missing = byte_slots.iter().position(|&i| i == u32::MAX).unwrap_or(0);
            return Err(vocab_err(format!(
                "byte fallback is on but piece <0x{missing:02X}> is missing"
            )));
        }
        if let Some(u) = cfg.unk {
            if u as usize >= n {
                return Err(vocab_err(format!("unk id {u} is not below {n}")));
            }
        }
        let mut surface_ids: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
        for pass_bytes in [true, false] {
            for (id, k) in cfg.kinds.iter().enumerate() {
                let is_byte = matches!(k, PieceKind::Byte(_));
                if *k != PieceKind::Special && is_byte == pass_bytes {
                    surface_ids.insert(surface[id].clone(), id as u32);
                }
            }
        }
        let (pairs, merge_list) = match &cfg.merges {
            MergeSource::List(list) => {
                let mut pairs = FxHashMap::default();
                for (rank, &(l, r)) in list.iter().enumerate() {
                    let (Some(a), Some(b)) =
                        (cfg.pieces.get(l as usize), cfg.pieces.get(r as usize))
                    else {
                        return Err(vocab_err(format!("merge {rank} names an id beyond {n}")));
                    };
                    let joined = format!("{a}{b}");
                    let merged = *piece_ids.get(&joined).ok_or_else(|| {
                        vocab_err(format!(
                            "merge {rank} ({a:?}, {b:?}) gives {joined:?}, which is not a piece"
                        ))
                    })?;
                    pairs.entry(pair_key(l, r)).or_insert((rank as u32, merged));
                }
                (pairs, list.clone())
            }
            MergeSource::Scores(scores) => score_pairs(&cfg, scores, &piece_ids)?,
        };
        Ok(Self {
            cfg,
            surface,
            piece_ids,
            surface_ids,
            pairs,
            merge_list,
            specials,
            byte_ids,
        })
    }

    pub fn config(&self) -> &SpConfig {
        &self.cfg
    }
    pub fn vocab_size(&self) -> usize {
        self.cfg.pieces.len()
    }
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.surface.get(id as usize).map(Vec::as_slice)
    }
    pub fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        self.surface_ids.get(bytes).copied()
    }
    /// Id of a piece spelled as in the vocabulary (`▁the`, `<0x0A>`).
    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.piece_ids.get(piece).copied()
    }
    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }
    pub fn is_special(&self, id: u32) -> bool {
        self.cfg.kinds.get(id as usize) == Some(&PieceKind::Special)
    }
    pub fn merges(&self) -> &[(u32, u32)] {
        &self.merge_list
    }

    /// Matcher for the special tokens `ids`.
    pub fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        let mut toks = Vec::with_capacity(ids.len());
        for &id in ids {
            if !self.is_special(id) {
                return Err(vocab_err(format!("id {id} is not a special token")));
            }
            toks.push((self.cfg.pieces[id as usize].as_bytes().to_vec(), id));
        }
        SpecialMatcher::new(toks)
    }

    /// Ids and original byte spans of `text`, special tokens `allowed` recognised.
    pub fn encode_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
        mut spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<Vec<u32>> {
        if let Some(m) = allowed {
            m.check(text)?;
        }
        let mut out = Vec::new();
        let mut at = 0;
        while at <= text.len() {
            let hit = allowed.and_then(|m| m.find(text, at));
            let end = hit.map_or(text.len(), |h| h.0);
            if end > at || hit.is_none() {
                self.encode_segment(text, at, end, &mut out, spans.as_deref_mut())?;
            }
            match hit {
                Some((s, e, id)) => {
                    out.push(id);
                    if let Some(sp) = spans.as_deref_mut() {
                        sp.push((s, e));
                    }
                    at = e;
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Encode `text[start..end]`, a stretch with no special token.
    fn encode_segment(
        &self,
        text: &str,
        start: usize,
        end: usize,
        out: &mut Vec<u32>,
        mut spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<()> {
        let mut n = normalize::normalize(&self.cfg.normalizers, &text[start..end], start);
        let mut words: Vec<(usize, usize)> = Vec::new();
        match &self.cfg.metaspace {
            None => words.push((0, n.text.len())),
            Some(ms) => {
                let mut buf = [0u8; 4];
                let rep: &str = ms.replacement.encode_utf8(&mut buf);
                n = Norm::Replace {
                    from: " ".into(),
                    to: rep.to_string(),
                }
                .apply(n);
                let prepend = match ms.prepend {
                    PrependScheme::Always => true,
                    PrependScheme::First => start == 0,
                    PrependScheme::Never => false,
                };
                if prepend && !n.text.starts_with(ms.replacement) {
                    n = Norm::Prepend(rep.to_string()).apply(n);
                }
                if ms.split {
                    let mut s = 0;
                    for (i, _) in n.text.match_indices(ms.replacement) {
                        if i > s {
                            words.push((s, i));
                        }
                        s = i;
                    }
                    if n.text.len() > s {
                        words.push((s, n.text.len()));
                    }
                } else {
                    words.push((0, n.text.len()));
                }
            }
        }
        if self.cfg.split_newlines {
            let mut runs = Vec::with_capacity(words.len());
            for (ws, we) in words {
                let b = &n.text.as_bytes()[ws..we];
                let mut s = 0;
                for i in 1..=b.len() {
                    if i == b.len() || (b[i] == b'\n') != (b[s] == b'\n') {
                        runs.push((ws + s, ws + i));
                        s = i;
                    }
                }
            }
            words = runs;
        }
        let mut local: Vec<(usize, usize)> = Vec::new();
        for (ws, we) in words {
            if ws == we {
                continue;
            }
            let from = out.len();
            self.encode_word(&n.text[ws..we], out, spans.is_some().then_some(&mut local))?;
            if let Some(sp) = spans.as_deref_mut() {
                debug_assert_eq!(local.len(), out.len() - from);
                for &(a, b) in &local {
                    sp.push((n.original(ws + a, end), n.original(ws + b, end)));
                }
                local.clear();
            }
        }
        Ok(())
    }

    /// BPE on one word (see the module docs); `spans` get word-relative byte ranges.
    fn encode_word(
        &self,
        word: &str,
        out: &mut Vec<u32>,
        spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<()> {
        #[derive(Clone, Copy)]
        struct Sym {
            id: u32,
            start: usize,
            end: usize,
            prev: usize,
            next: usize,
            /// the unk token (never merges)
            frozen: bool,
        }
        const NONE: usize = usize::MAX;
        let newlines = self.cfg.split_newlines && word.bytes().all(|b| b == b'\n');
        if self.cfg.ignore_merges || newlines {
            if let Some(&id) = self.piece_ids.get(word) {
                out.push(id);
                if let Some(sp) = spans {
                    sp.push((0, word.len()));
                }
                return Ok(());
            }
        }
        let mut syms: Vec<Sym> = Vec::with_capacity(word.len());
        fn push(syms: &mut Vec<Sym>, id: u32, start: usize, end: usize, frozen: bool) {
            let k = syms.len();
            syms.push(Sym {
                id,
                start,
                end,
                prev: if k == 0 { NONE } else { k - 1 },
                next: k + 1,
                frozen,
            });
        }
        for (i, c) in word.char_indices() {
            let e = i + c.len_utf8();
            if let Some(&id) = self.piece_ids.get(&word[i..e]) {
                push(&mut syms, id, i, e, false);
            } else if let (true, Some(bytes)) = (self.cfg.byte_fallback, &self.byte_ids) {
                for (j, &b) in word.as_bytes()[i..e].iter().enumerate() {
                    push(&mut syms, bytes[b as usize], i + j, i + j + 1, false);
                }
            } else {
                let unk = self.cfg.unk.ok_or_else(|| {
                    Error::Input(format!(
                        "character {c:?} is not in the vocabulary and the model has no unk token"
                    ))
                })?;
                match syms.last_mut() {
                    Some(last) if self.cfg.fuse_unk && last.frozen => last.end = e,
                    _ => push(&mut syms, unk, i, e, true),
                }
            }
        }
        let n = syms.len();
        if n == 0 {
            return Ok(());
        }
        syms[n - 1].next = NONE;
        // (priority, left position, left index, left id, right id, merged id)
        type Cand = Reverse<(u32, usize, usize, u32, u32, u32)>;
        let mut heap: BinaryHeap<Cand> = BinaryHeap::new();
        let cand = |syms: &[Sym], l: usize| -> Option<Cand> {
            let r = syms[l].next;
            if r == NONE || syms[l].frozen || syms[r].frozen {
                return None;
            }
            let (a, b) = (syms[l].id, syms[r].id);
            self.pairs
                .get(&pair_key(a, b))
                .map(|&(p, m)| Reverse((p, syms[l].start, l, a, b, m)))
        };
        for l in 0..n {
            if let Some(c) = cand(&syms, l) {
                heap.push(c);
            }
        }
        let mut alive = vec![true; n];
        while let Some(Reverse((_, _, l, a, b, m))) = heap.pop() {
            let r = syms[l].next;
            if !alive[l] || r == NONE || syms[l].id != a || syms[r].id != b {
                continue; // stale
            }
            syms[l].id = m;
            syms[l].end = syms[r].end;
            syms[l].next = syms[r].next;
            alive[r] = false;
            if syms[r].next != NONE {
                let nn = syms[r].next;
                syms[nn].prev = l;
            }
            let p = syms[l].prev;
            if p != NONE {
                if let Some(c) = cand(&syms, p) {
                    heap.push(c);
                }
            }
            if let Some(c) = cand(&syms, l) {
                heap.push(c);
            }
        }
        let mut spans = spans;
        let mut i = 0;
        while i != NONE {
            out.push(syms[i].id);
            if let Some(sp) = spans.as_deref_mut() {
                sp.push((syms[i].start, syms[i].end));
            }
            i = syms[i].next;
        }
        Ok(())
    }

    /// Concatenated surface bytes of `ids`, the decoder's leading spaces removed.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for &id in ids {
            let t = self
                .surface
                .get(id as usize)
                .ok_or_else(|| vocab_err(format!("id {id} is not below {}", self.vocab_size())))?;
            out.extend_from_slice(t);
        }
        let lead = out
            .iter()
            .take(self.cfg.strip_leading)
            .take_while(|&&b| b == b' ')
            .count();
        out.drain(..lead);
        Ok(out)
    }
}

/// Pair table of a score-ranked vocabulary: every split of a normal piece into two pieces may
/// merge, with the piece's score rank (equal scores share a rank) as priority.
fn score_pairs(
    cfg: &SpConfig,
    scores: &[f32],
    piece_ids: &FxHashMap<String, u32>,
) -> Result<(FxHashMap<u64, (u32, u32)>, Vec<(u32, u32)>)> {
    if scores.len() != cfg.pieces.len() {
        return Err(vocab_err(format!(
            "{} scores for {} pieces",
            scores.len(),
            cfg.pieces.len()
        )));
    }
    let mut order: Vec<u32> = (0..cfg.pieces.len() as u32)
        .filter(|&i| cfg.kinds[i as usize] == PieceKind::Normal)
        .collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    let mut pairs = FxHashMap::default();
    let mut list = Vec::new();
    let mut rank = 0u32;
    let mut last: Option<f32> = None;
    for &id in &order {
        let s = scores[id as usize];
        if last.is_some_and(|l| l != s) {
            rank += 1;
        }
        last = Some(s);
        let p = &cfg.pieces[id as usize];
        for (i, _) in p.char_indices().skip(1) {
            if let (Some(&l), Some(&r)) = (piece_ids.get(&p[..i]), piece_ids.get(&p[i..])) {
                if cfg.kinds[l as usize] == PieceKind::Normal
                    && cfg.kinds[r as usize] == PieceKind::Normal
                    && pairs.insert(pair_key(l, r), (rank, id)).is_none()
                {
                    list.push((l, r));
                }
            }
        }
    }
    Ok((pairs, list))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny Llama-2-shaped model: bytes, ▁, a, b, ab, ▁ab.
    fn model(merges: MergeSource, metaspace: Option<Metaspace>) -> SpBpe {
        let mut pieces = vec!["<unk>".to_string(), "<s>".to_string()];
        let mut kinds = vec![PieceKind::Special, PieceKind::Special];
        for b in 0..=255u8 {
            pieces.push(format!("<0x{b:02X}>"));
            kinds.push(PieceKind::Byte(b));
        }
        for p in ["▁", "a", "b", "ab", "▁ab"] {
            pieces.push(p.into());
            kinds.push(PieceKind::Normal);
        }
        let normalizers = if metaspace.is_some() {
            vec![]
        } else {
            vec![
                Norm::Prepend("▁".into()),
                Norm::Replace {
                    from: " ".into(),
                    to: "▁".into(),
                },
            ]
        };
        SpBpe::new(SpConfig {
            pieces,
            kinds,
            merges,
            unk: Some(0),
            fuse_unk: true,
            byte_fallback: true,
            byte_decode: true,
            normalizers,
            metaspace,
            strip_leading: 1,
            ignore_merges: false,
            split_newlines: false,
        })
        .unwrap()
    }

    fn ids(m: &SpBpe, names: &[&str]) -> Vec<u32> {
        names.iter().map(|p| m.piece_id(p).unwrap()).collect()
    }

    #[test]
    fn merges_byte_fallback_and_round_trip() {
        let m0 = model(MergeSource::List(vec![]), None);
        let (a, b, ab, sp) = (
            m0.piece_id("a").unwrap(),
            m0.piece_id("b").unwrap(),
            m0.piece_id("ab").unwrap(),
            m0.piece_id("▁").unwrap(),
        );
        let m = model(MergeSource::List(vec![(a, b), (sp, ab)]), None);
        assert_eq!(m.encode_spans("ab", None, None).unwrap(), ids(&m, &["▁ab"]));
        let text = "ab b é";
        let got = m.encode_spans(text, None, None).unwrap();
        assert_eq!(
            got,
            ids(&m, &["▁ab", "▁", "b", "▁", "<0xC3>", "<0xA9>"]),
            "{got:?}"
        );
        assert_eq!(m.decode_bytes(&got).unwrap(), text.as_bytes());
        let mut spans = Vec::new();
        m.encode_spans(text, None, Some(&mut spans)).unwrap();
        assert_eq!(spans[0], (0, 2));
        assert_eq!(spans[4..], [(5, 6), (6, 7)]);
        // scores rank merges the same way here
        let mut scores = vec![0.0; m.vocab_size()];
        scores[ab as usize] = -1.0;
        scores[m.piece_id("▁ab").unwrap() as usize] = -2.0;
        let s = model(MergeSource::Scores(scores), None);
        assert_eq!(s.encode_spans(text, None, None).unwrap(), got);
    }

    #[test]
    fn metaspace_prepend_schemes_and_specials() {
        let ms = |prepend, split| {
            Some(Metaspace {
                replacement: MARKER,
                prepend,
                split,
            })
        };
        let m = model(MergeSource::List(vec![]), ms(PrependScheme::First, true));
        let s = m.special_matcher(&[1]).unwrap();
        let got = m.encode_spans("a<s>a", s.as_ref(), None).unwrap();
        assert_eq!(
            got,
            ids(&m, &["▁", "a"])
                .into_iter()
                .chain([1, m.piece_id("a").unwrap()])
                .collect::<Vec<_>>()
        );
        let m = model(MergeSource::List(vec![]), ms(PrependScheme::Never, true));
        assert_eq!(m.encode_spans("a", None, None).unwrap(), ids(&m, &["a"]));
        assert!(m.special_matcher(&[5]).is_err());
    }
}
