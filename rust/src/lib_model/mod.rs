//! # LiB: the Less-is-Better vocabulary learner as an LLM tokenizer
//!
//! Yang, Frank & van den Bosch (2020, CogALex), Yang, van den Bosch & Frank (2022, Frontiers in
//! AI), Yang (2024, arXiv 2403.00417); normative behaviour = the v2023 reference code as
//! docs/lib.md describes it. A learner reads the corpus article by article, keeps one
//! ordered lexicon of subwords, words and multiword expressions, memorises joins of adjacent
//! chunks, promotes units that save tokens and forgets those that do not pay their way.
//!
//! - [`learn`]: the training loop (docs/lib.md §3), deterministic for a seed, byte-for-byte the
//!   reference's lexicon with `protect_chars = false` (golden vectors TV5/TV6, docs/lib.md §11).
//! - [`lexicon`]: the ordered list + byte trie it works on; [`rng`]: CPython's MT19937.
//! - [`segment`]: segmenting new text with a fixed lexicon (docs/lib.md §4).
//! - [`LibModel`] (this file): the tokenizer (docs/lib.md §8): ids = special tokens, then the 256
//!   byte tokens `<0x00>..<0xFF>` (fallback for characters no unit covers, so every string
//!   encodes and `decode(encode(s)) == s`), then the units by priority. Lines are segmented
//!   independently (units never cross `\n`). Saved as tokforge's own JSON
//!   ([`crate::formats::lib_json`]): the larger-first segmentation with counterfactual
//!   comparison is not BPE and has no HF `tokenizer.json` form.
//!
//! Complexity: training O(bytes read x match depth + rewards x step) per article, sequential;
//! encoding O(n x match depth), lines of a batch in parallel (rayon), results independent of
//! the thread count. Invariant of [`LibModel`]: units are distinct, non-empty, valid UTF-8.

pub mod learn;
pub mod lexicon;
pub mod rng;
pub mod segment;

use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
pub use crate::special::SpecialMatcher;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde_json::{json, Value};

pub use learn::{LearnConfig, Learner};
pub use segment::{Piece, Rule, Segmenter};

use lexicon::NONE;

/// The pieces a LiB model segments independently: lines and newlines.
pub const LINE_PATTERN: &str = "[^\\n]+|\\n";

/// Byte `b` at index `b`: the bytes of the 256 byte tokens, borrowed by [`LibModel::token_bytes`].
static ALL_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// A trained LiB tokenizer.
#[derive(Clone)]
pub struct LibModel {
    units: Vec<Vec<u8>>,
    unit_of: FxHashMap<Vec<u8>, u32>,
    specials: Vec<(String, u32)>,
    seg: Segmenter,
    training: Value,
    /// "No-supra" mode: each pre-tokenization piece is segmented on its own.
    pretok: Option<Pretokenizer>,
}

impl LibModel {
    /// A model from units in priority order and special tokens (ids `0..k`).
    pub fn new(
        units: Vec<Vec<u8>>,
        special_tokens: Vec<String>,
        rule: Rule,
        training: Value,
    ) -> Result<Self> {
        let seg = Segmenter::new(&units, rule)?;
        let mut specials = Vec::with_capacity(special_tokens.len());
        for (i, s) in special_tokens.into_iter().enumerate() {
            if s.is_empty() {
                return Err(Error::Vocab(format!("special token {i} is empty")));
            }
            if specials.iter().any(|(t, _)| *t == s) {
                return Err(Error::Vocab(format!("special token {s:?} is listed twice")));
            }
            specials.push((s, i as u32));
        }
        let unit_of = units
            .iter()
            .enumerate()
            .map(|(r, u)| (u.clone(), r as u32))
            .collect();
        Ok(LibModel {
            units,
            unit_of,
            specials,
            seg,
            training,
            pretok: None,
        })
    }

    /// Segment each piece of this pre-tokenizer on its own (units never cross pieces), as a
    /// model trained with the same `pretokenize` option must.
    pub fn with_pretokenizer(mut self, pretok: Option<Pretokenizer>) -> Self {
        self.pretok = pretok;
        self
    }

    /// The pre-tokenizer of the "no-supra" mode, if any.
    pub fn pretokenizer(&self) -> Option<&Pretokenizer> {
        self.pretok.as_ref()
    }

    #[inline]
    fn n_special(&self) -> u32 {
        self.specials.len() as u32
    }

    #[inline]
    fn unit_base(&self) -> u32 {
        self.n_special() + 256
    }

    pub fn vocab_size(&self) -> usize {
        self.units.len() + 256 + self.specials.len()
    }

    pub fn units(&self) -> &[Vec<u8>] {
        &self.units
    }

    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }

    pub fn rule(&self) -> Rule {
        self.seg.rule()
    }

    pub fn training(&self) -> &Value {
        &self.training
    }

    /// The same units segmented with another rule.
    pub fn with_rule(&self, rule: Rule) -> Result<Self> {
        let mut m = self.clone();
        m.seg = Segmenter::new(&self.units, rule)?;
        Ok(m)
    }

    pub fn is_special(&self, id: u32) -> bool {
        id < self.n_special()
    }

    /// Bytes of token `id` (special tokens: their text; byte tokens: one byte).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        let s = self.n_special();
        if id < s {
            return Some(self.specials[id as usize].0.as_bytes());
        }
        if id < s + 256 {
            return Some(std::slice::from_ref(&ALL_BYTES[(id - s) as usize]));
        }
        self.units.get((id - s - 256) as usize).map(Vec::as_slice)
    }

    /// Id of a unit given by its bytes, else of the byte token for a single byte.
    pub fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        if let Some(&r) = self.unit_of.get(bytes) {
            return Some(self.unit_base() + r);
        }
        match bytes {
            [b] => Some(self.n_special() + *b as u32),
            _ => None,
        }
    }

    /// A matcher for the special tokens with these ids (`None` if empty).
    pub fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids {
            if !self.is_special(id) {
                return Err(Error::Vocab(format!("id {id} is not a special token")));
            }
            tokens.push((self.specials[id as usize].0.clone().into_bytes(), id));
        }
        SpecialMatcher::new(tokens)
    }

    /// Pieces of one line (no `\n`) appended to `out`, offsets relative to the line.
    fn segment_line(
        &self,
        line: &str,
        out: &mut Vec<Piece>,
        paths: &mut (Vec<Piece>, Vec<Piece>),
    ) -> Result<()> {
        let Some(pt) = &self.pretok else {
            self.seg.segment_into(line.as_bytes(), out, paths);
            return Ok(());
        };
        let mut at = 0usize;
        pt.for_each_piece(line, |piece| {
            let from = out.len();
            self.seg.segment_into(piece.as_bytes(), out, paths);
            for p in &mut out[from..] {
                p.start += at;
                p.end += at;
            }
            at += piece.len();
        })
    }

    /// Ids and byte spans of ordinary text starting at byte `base`.
    fn encode_ordinary_spans(
        &self,
        text: &str,
        base: usize,
        ids: &mut Vec<u32>,
        spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<()> {
        let mut pieces = Vec::new();
        let mut paths = (Vec::new(), Vec::new());
        let bytes = text.as_bytes();
        let mut start = 0usize;
        // lines, then each newline on its own: units never cross '\n'
        for (k, part) in text.split('\n').enumerate() {
            if k % 1024 == 0 {
                crate::cancel::check()?;
            }
            if k > 0 {
                self.seg.segment_into(b"\n", &mut pieces, &mut paths);
                if let Some(p) = pieces.last_mut() {
                    p.start = start - 1;
                    p.end = start;
                }
            }
            let from = pieces.len();
            self.segment_line(part, &mut pieces, &mut paths)?;
            for p in &mut pieces[from..] {
                p.start += start;
                p.end += start;
            }
            start += part.len() + 1;
        }
        let s = self.n_special();
        let ub = self.unit_base();
        let mut spans = spans;
        for p in &pieces {
            if p.rank != NONE {
                ids.push(ub + p.rank);
                if let Some(sp) = spans.as_deref_mut() {
                    sp.push((base + p.start, base + p.end));
                }
            } else {
                for (k, &b) in bytes[p.start..p.end].iter().enumerate() {
                    ids.push(s + b as u32);
                    if let Some(sp) = spans.as_deref_mut() {
                        sp.push((base + p.start + k, base + p.start + k + 1));
                    }
                }
            }
        }
        Ok(())
    }

    /// Ids of `text`; special-token text is ordinary text. Errors only when a custom
    /// pre-tokenization regex fails to run.
    pub fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_ordinary_spans(text, 0, &mut ids, None)?;
        Ok(ids)
    }

    fn encode_impl(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
        mut spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        let Some(m) = allowed else {
            self.encode_ordinary_spans(text, 0, &mut ids, spans)?;
            return Ok(ids);
        };
        m.check(text)?;
        let mut pos = 0;
        while let Some((s, e, id)) = m.find(text, pos) {
            self.encode_ordinary_spans(&text[pos..s], pos, &mut ids, spans.as_deref_mut())?;
            ids.push(id);
            if let Some(sp) = spans.as_deref_mut() {
                sp.push((s, e));
            }
            pos = e;
        }
        self.encode_ordinary_spans(&text[pos..], pos, &mut ids, spans)?;
        Ok(ids)
    }

    /// Ids of `text`; the special tokens `allowed` matches become their ids.
    pub fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>> {
        self.encode_impl(text, allowed, None)
    }

    /// Ids and the byte span of each in `text`.
    pub fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let mut spans = Vec::new();
        let ids = self.encode_impl(text, allowed, Some(&mut spans))?;
        Ok((ids, spans))
    }

    /// Bytes of `ids`.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        let s = self.n_special();
        for (k, &id) in ids.iter().enumerate() {
            if id < s {
                out.extend_from_slice(self.specials[id as usize].0.as_bytes());
            } else if id < s + 256 {
                out.push((id - s) as u8);
            } else {
                match self.units.get((id - s - 256) as usize) {
                    Some(u) => out.extend_from_slice(u),
                    None => {
                        return Err(Error::Vocab(format!(
                            "ids[{k}] = {id} is outside the vocabulary of {}",
                            self.vocab_size()
                        )))
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Settings of [`train`].
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub learn: LearnConfig,
    /// Articles to read.
    pub steps: u64,
    /// Final vocabulary size (specials + 256 bytes + units); `None` keeps every unit of the
    /// cleaned lexicon.
    pub vocab_size: Option<usize>,
    pub special_tokens: Vec<String>,
    pub rule: Rule,
    /// "No-supra" mode: a preset name or regex; units never cross its pieces.
    pub pretokenize: Option<String>,
}

/// What the learner reports after an article.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    pub step: u64,
    pub steps: u64,
    /// `|L|`, probation included.
    pub lexicon: usize,
    pub probation: usize,
    /// Chunks read / bytes read in the last article.
    pub tokens_per_byte: f64,
}

/// Facts about a finished training run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub steps: u64,
    pub lexicon: usize,
    pub probation: usize,
    /// Units after `clean_lexicon` (before cutting to the vocabulary size).
    pub clean: usize,
    /// Units kept in the model.
    pub kept: usize,
    /// Kept units the model never emits on the training sentences (verification pass).
    pub unused_on_train: usize,
    /// Share of kept units with an inner space (multiword units).
    pub multiword_share: f64,
    /// Training sentences read.
    pub sentences: usize,
}

/// Train a LiB tokenizer on `sentences` (one line each; `\n` never occurs inside a unit).
/// `on_step` is called after some articles (about 200 times per run and after the last);
/// returning `false` stops with [`Error::Interrupted`].
pub fn train<S: AsRef<str> + Sync>(
    sentences: &[S],
    opts: &TrainOptions,
    on_step: &mut dyn FnMut(&StepReport) -> bool,
) -> Result<(LibModel, TrainSummary)> {
    if sentences.iter().all(|s| s.as_ref().is_empty()) {
        return Err(Error::Training(
            "no text to train on (every sentence is empty)".into(),
        ));
    }
    if sentences.iter().any(|s| s.as_ref().contains('\n')) {
        return Err(Error::Input(
            "sentences must not contain '\\n' (split lines first)".into(),
        ));
    }
    let fixed = 256 + opts.special_tokens.len();
    if let Some(v) = opts.vocab_size {
        if v <= fixed {
            return Err(Error::Training(format!(
                "vocab_size {v} leaves no room for units: {fixed} ids go to {} special tokens and 256 byte tokens",
                opts.special_tokens.len()
            )));
        }
    }
    let pretok = opts
        .pretokenize
        .as_deref()
        .map(Pretokenizer::new)
        .transpose()?;
    let mut learner = Learner::new(opts.learn.clone())?.with_pretokenizer(pretok.clone());
    let every = (opts.steps / 200).max(1);
    for step in 1..=opts.steps {
        crate::cancel::check()?;
        learner.learn(sentences)?;
        if step % every == 0 || step == opts.steps {
            let a = learner.last_article();
            let rep = StepReport {
                step,
                steps: opts.steps,
                lexicon: learner.lexicon().len(),
                probation: learner.probation_len(),
                tokens_per_byte: if a.bytes > 0 {
                    a.tokens as f64 / a.bytes as f64
                } else {
                    0.0
                },
            };
            if !on_step(&rep) {
                return Err(Error::Interrupted(format!(
                    "stopped at step {step} of {}",
                    opts.steps
                )));
            }
        }
    }
    let mut units = learner.clean_units();
    let clean = units.len();
    if let Some(v) = opts.vocab_size {
        let k = v - fixed;
        if clean < k {
            return Err(Error::Training(format!(
                "LiB's lexicon holds {clean} units after {} steps and clean-up, fewer than the {k} that \
                 vocab_size={v} needs ({fixed} ids are special/byte tokens). Train longer (steps), raise \
                 in_rate, lower out_rate or raise life, or pass vocab_size=None to keep the {clean} units \
                 (vocab {}).",
                opts.steps,
                clean + fixed
            )));
        }
        units.truncate(k);
    }
    let kept = units.len();
    let cfg = &opts.learn;
    let training = json!({
        "in_rate": cfg.in_rate,
        "out_rate": cfg.out_rate,
        "life": cfg.life,
        "update_rate": cfg.update_rate,
        "max_chunk_len": cfg.max_chunk_len,
        "inspect_context": cfg.inspect_context,
        "article_len": cfg.article_len,
        "seed": cfg.seed,
        "protect_chars": cfg.protect_chars,
        "steps": opts.steps,
        "lexicon_size": learner.lexicon().len(),
        "clean_size": clean,
        "pretokenize": opts.pretokenize,
    });
    let model = LibModel::new(units, opts.special_tokens.clone(), opts.rule, training)?
        .with_pretokenizer(pretok);
    // verification pass: which kept units does the segmenter never emit on the training text?
    let cancel = crate::cancel::current();
    let used = sentences
        .par_iter()
        .try_fold(
            || vec![false; kept],
            |mut used, s| -> Result<Vec<bool>> {
                cancel.check()?;
                let mut pieces = Vec::new();
                model.segment_line(s.as_ref(), &mut pieces, &mut (Vec::new(), Vec::new()))?;
                for p in pieces {
                    if p.rank != NONE {
                        used[p.rank as usize] = true;
                    }
                }
                Ok(used)
            },
        )
        .try_reduce(
            || vec![false; kept],
            |a, b| Ok(a.iter().zip(&b).map(|(x, y)| *x || *y).collect()),
        )?;
    let summary = TrainSummary {
        steps: opts.steps,
        lexicon: learner.lexicon().len(),
        probation: learner.probation_len(),
        clean,
        kept,
        unused_on_train: used.iter().filter(|u| !**u).count(),
        multiword_share: multiword_share(&model.units),
        sentences: sentences.len(),
    };
    Ok((model, summary))
}

/// A unit with whitespace (Unicode `White_Space`, [`char::is_whitespace`]) strictly inside, not
/// only at its ends: a multiword unit. Invalid UTF-8 is never multiword.
pub fn is_multiword(u: &[u8]) -> bool {
    let t = std::str::from_utf8(u).unwrap_or("");
    let t = t.trim_matches(|c: char| c.is_whitespace());
    t.chars().any(char::is_whitespace)
}

/// Share of `units` that are multiword ([`is_multiword`]); 0 for no units.
pub fn multiword_share<U: AsRef<[u8]>>(units: &[U]) -> f64 {
    if units.is_empty() {
        return 0.0;
    }
    let multi = units.iter().filter(|u| is_multiword(u.as_ref())).count();
    multi as f64 / units.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (LibModel, TrainSummary) {
        let sents = [
            "the cat sat on the mat",
            "the dog sat on the log",
            "the cat and the dog sat",
        ];
        let opts = TrainOptions {
            learn: LearnConfig {
                out_rate: 0.01,
                life: 3,
                article_len: 3,
                protect_chars: true,
                ..LearnConfig::default()
            },
            steps: 30,
            vocab_size: None,
            special_tokens: vec!["<|eot|>".into()],
            rule: Rule::Fixed,
            pretokenize: None,
        };
        train(&sents, &opts, &mut |_| true).unwrap()
    }

    #[test]
    fn round_trip_any_text_with_byte_fallback() {
        let (m, _) = small();
        for s in [
            "the cat sat on the log",
            "",
            "\n\n",
            "ünïcödé 🙂 the\r\ncat\n",
            "<|eot|>the",
        ] {
            let ids = m.encode_ordinary(s).unwrap();
            assert_eq!(m.decode_bytes(&ids).unwrap(), s.as_bytes());
        }
    }

    #[test]
    fn specials_are_matched_when_allowed_and_spans_tile() {
        let (m, _) = small();
        let mm = m.special_matcher(&[0]).unwrap();
        let text = "the cat<|eot|>dog\nlog";
        let (ids, spans) = m.encode_with_spans(text, mm.as_ref()).unwrap();
        assert!(ids.contains(&0));
        assert_eq!(ids.len(), spans.len());
        let mut pos = 0;
        for (s, e) in spans {
            assert_eq!(s, pos);
            pos = e;
        }
        assert_eq!(pos, text.len());
        assert_eq!(m.decode_bytes(&ids).unwrap(), text.as_bytes());
    }

    #[test]
    fn vocab_size_cuts_to_k_units_or_reports_saturation() {
        let sents = ["the cat sat on the mat", "the dog sat on the log"];
        let mut opts = TrainOptions {
            learn: LearnConfig {
                out_rate: 0.01,
                life: 3,
                article_len: 2,
                ..LearnConfig::default()
            },
            steps: 20,
            vocab_size: Some(256 + 5),
            special_tokens: vec![],
            rule: Rule::Fixed,
            pretokenize: None,
        };
        let (m, s) = train(&sents, &opts, &mut |_| true).unwrap();
        assert_eq!(m.vocab_size(), 261);
        assert_eq!(s.kept, 5);
        opts.vocab_size = Some(256 + 100_000);
        assert!(matches!(
            train(&sents, &opts, &mut |_| true),
            Err(Error::Training(_))
        ));
        opts.vocab_size = Some(100);
        assert!(train(&sents, &opts, &mut |_| true).is_err());
    }

    #[test]
    fn no_supra_mode_keeps_units_inside_pieces_and_survives_json() {
        let sents = [
            "the cat sat on the mat",
            "the dog sat on the log",
            "of the cat of the dog",
        ];
        let opts = TrainOptions {
            learn: LearnConfig {
                article_len: 3,
                ..LearnConfig::default()
            },
            steps: 40,
            vocab_size: None,
            special_tokens: vec![],
            rule: Rule::Fixed,
            pretokenize: Some("gpt2".into()),
        };
        let (m, _) = train(&sents, &opts, &mut |_| true).unwrap();
        for u in m.units() {
            // a gpt2 piece has at most a leading space
            assert!(
                !u[1..].contains(&b' ') || u.iter().all(|&b| b == b' '),
                "{u:?}"
            );
        }
        let json = crate::formats::lib_json::to_string(&m).unwrap();
        let m2 = crate::formats::lib_json::from_str(&json, "x").unwrap();
        assert!(m2.pretokenizer().is_some());
        let t = "of the cat sat on the log";
        assert_eq!(
            m.encode_ordinary(t).unwrap(),
            m2.encode_ordinary(t).unwrap()
        );
        assert_eq!(
            m.decode_bytes(&m.encode_ordinary(t).unwrap()).unwrap(),
            t.as_bytes()
        );
    }

    #[test]
    fn decode_rejects_unknown_ids() {
        let (m, _) = small();
        assert!(m.decode_bytes(&[u32::MAX]).is_err());
    }

    #[test]
    fn multiword_means_inner_space() {
        assert!(is_multiword(b"of the"));
        assert!(!is_multiword(b" the "));
        assert!(!is_multiword(b"the"));
        // U+001C..U+001F are not White_Space (Python's str.isspace says they are)
        for c in ['\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}'] {
            assert!(!is_multiword(format!("a{c}b").as_bytes()));
        }
        assert!(is_multiword("a\u{a0}b".as_bytes()));
        assert_eq!(multiword_share(&[b"of the".to_vec(), b"the".to_vec()]), 0.5);
        assert_eq!(multiword_share::<Vec<u8>>(&[]), 0.0);
    }
}
