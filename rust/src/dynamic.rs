//! # Batch-level dynamic merging ("dynamic tokenization")
//!
//! Feher, Vulić, Minixhofer, *Retrofitting (Large) Language Models with Dynamic Tokenization*
//! (arXiv 2411.18553, ACL 2025), sections 3-4, as written down in docs/dynamic_merging.md §3, §4
//! and §8. A batch already tokenized by a model's own subword tokenizer is
//! re-segmented *inside the batch*: count every adjacent pair of units across all sequences,
//! merge the most frequent pair everywhere, repeat; merges never cross word boundaries.
//!
//! Semantics (docs/dynamic_merging.md §3.1, exactly those of the naive reference `tests/reference/dynamic_ref.py`):
//! - a pair occurrence is two adjacent units of one sequence with equal word id `!= -1`
//!   (and, with `max_unit_constituents`, a merged span no longer than that many base tokens);
//! - `count(p)` counts overlapping occurrences (`x x x` has two `(x, x)`), like a `Counter`;
//! - ties go to the pair whose leftmost occurrence is earliest in (sequence, start) order;
//! - a merge is applied left to right in each sequence, never reusing a unit consumed by the
//!   previous occurrence (`x x x -> xx x`);
//! - stop rules, checked before each merge: `max_merges`, length target (`L <= T`), `count <
//!   min_count`, no pair left.
//!
//! Entry points: [`merge_batch`] takes Rust types (a [`MergeConfig`], word ids per position);
//! [`merge_input`] takes the Python API's arguments as given ([`BatchInput`],
//! [`MergeOptions`]: signed integers, names of modes), checks each of them once with one
//! message per problem, derives the word ids from the boundaries (docs/dynamic_merging.md
//! §3.2) and merges. The bindings only convert types.
//!
//! Data structures (docs/dynamic_merging.md §4.1): flat arrays over all base positions (`unit`, `next`, `prev`, `end`,
//! `alive`); a unit is named by its *left* node, which never moves, so node order is (sequence,
//! start) order. Per pair an ordered set of the left nodes of its occurrences (`OccSet`:
//! inline up to 4, else a `BTreeSet`; `count = len`, tie-break position = `first`), and a
//! max-heap of `(count, Reverse(first), pair)` with lazy invalidation (an entry is fresh iff it
//! matches the pair's set). Applying `p` takes its set out and walks it in order.
//!
//! Complexity: every applied occurrence removes one node and touches O(1) pairs at O(log N), and
//! at most `N - B` occurrences are ever applied, so a whole run is O(N log N) time and O(N +
//! distinct pairs) memory, independent of the number of merges (the reference is O(M N)).
//! Measured (`benches/dynamic.py`, 2-core EPYC): 64 x 1024 tokens of the shipped corpora in
//! about 11 ms with the default `min_count=2` (7,000x the reference); 32 x 4096 to word level
//! in about 25 ms; time per token stays flat from 8 to 64 sequences.
//!
//! Invariants: a pair's set holds exactly the left nodes `i` with `alive[i]`, `(unit[i],
//! unit[next[i]]) == pair` and a valid boundary; linked lists never join two sequences; no new
//! occurrence of `p` appears while `p` is applied (a merged key is strictly longer than both
//! parts), so an occurrence taken from the set is still one iff its node is alive. The random
//! differential test checks the whole against a naive reimplementation; `debug_assert!` the
//! local conditions. Determinism: keys are interned in first-use order and the heap order is
//! total, so no result depends on hash order; `per_sample` runs samples in parallel and
//! combines them in sample order.

use crate::bpe::Bpe;
use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// "No node": end of a linked list.
const NONE: u32 = u32::MAX;

/// Largest base id accepted (outputs are `int32`).
pub const MAX_ID: u32 = i32::MAX as u32;

/// When to stop merging because the batch (or sample) is short enough (docs/dynamic_merging.md §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Absolute reduction `r` in `[0, 1]`: stop once `L <= (1 - r) * L0`.
    Abs(f64),
    /// Reduction relative to word level, `r` in `[0, 1]`: stop once `L <= L0 - r * (L0 - Lw)`.
    RelWord(f64),
    /// Stop once `L <= n` units.
    Len(usize),
}

impl Target {
    fn threshold(self, l0: usize, lw: usize) -> f64 {
        match self {
            Target::Abs(r) => (1.0 - r) * l0 as f64,
            Target::RelWord(r) => l0 as f64 - r * (l0 - lw) as f64,
            Target::Len(n) => n as f64,
        }
    }
}

/// What makes two units "the same unit" (docs/dynamic_merging.md §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The tuple of base ids (exactly invertible).
    Ids,
    /// The byte string (the reference's behaviour; needs token bytes). Special tokens stay
    /// distinct from ordinary units with the same bytes.
    Bytes,
}

/// Options of [`merge_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct MergeConfig {
    /// At most this many merges (per sample with `per_sample`); `None` = unlimited.
    pub max_merges: Option<usize>,
    /// Stop when the best pair occurs fewer times (at least 1).
    pub min_count: u32,
    pub target: Option<Target>,
    /// Run the loop independently on each sequence (docs/dynamic_merging.md §3.3).
    pub per_sample: bool,
    /// Forbid units made of more base tokens than this (the hypernetwork's maxlen).
    pub max_unit_constituents: Option<usize>,
    pub identity: Identity,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            max_merges: None,
            min_count: 1,
            target: None,
            per_sample: false,
            max_unit_constituents: None,
            identity: Identity::Ids,
        }
    }
}

impl MergeConfig {
    /// Check a config built in Rust (the bindings go through [`MergeOptions::config`]).
    fn validate(&self, has_tokens: bool) -> Result<()> {
        if self.min_count == 0 {
            return Err(too_small("min_count", 0, 1));
        }
        if self.max_unit_constituents == Some(0) {
            return Err(too_small("max_unit_constituents", 0, 1));
        }
        if let Some(Target::Abs(r) | Target::RelWord(r)) = self.target {
            if !(0.0..=1.0).contains(&r) {
                return Err(reduction_out_of_range(r));
            }
        }
        if self.identity == Identity::Bytes && !has_tokens {
            return Err(bytes_need_tokens());
        }
        Ok(())
    }
}

/// [`merge_batch`] options as the Python API names them, before any check: what the bindings
/// fill in. [`MergeOptions::config`] checks each one, once, and gives the [`MergeConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeOptions<'a> {
    /// At least 0; `None` = unlimited.
    pub max_merges: Option<i64>,
    /// At least 1.
    pub min_count: i64,
    /// In `[0, 1]`; at most one of `target_reduction` and `target_length`.
    pub target_reduction: Option<f64>,
    /// What `target_reduction` is relative to: `"input"` or `"word_level"`.
    pub relative_to: &'a str,
    /// At least 0.
    pub target_length: Option<i64>,
    pub per_sample: bool,
    /// At least 1.
    pub max_unit_constituents: Option<i64>,
    /// `"ids"` or `"bytes"` (needs token bytes).
    pub identity: &'a str,
}

impl Default for MergeOptions<'_> {
    /// The Python API's defaults.
    fn default() -> Self {
        MergeOptions {
            max_merges: None,
            min_count: 2,
            target_reduction: None,
            relative_to: "input",
            target_length: None,
            per_sample: false,
            max_unit_constituents: None,
            identity: "ids",
        }
    }
}

impl MergeOptions<'_> {
    /// The checked config; `has_tokens` says whether token bytes will be given.
    pub fn config(&self, has_tokens: bool) -> Result<MergeConfig> {
        let count = |name: &str, x: i64, lo: i64| -> Result<usize> {
            if x < lo {
                return Err(too_small(name, x, lo));
            }
            Ok(usize::try_from(x).unwrap_or(usize::MAX))
        };
        let identity = match self.identity {
            "ids" => Identity::Ids,
            "bytes" if has_tokens => Identity::Bytes,
            "bytes" => return Err(bytes_need_tokens()),
            other => {
                return Err(Error::Input(format!(
                    "identity={other:?} is not 'ids' or 'bytes'"
                )))
            }
        };
        let relative_to_words = match self.relative_to {
            "input" => false,
            "word_level" => true,
            other => {
                return Err(Error::Input(format!(
                    "relative_to={other:?} is not 'input' or 'word_level'"
                )))
            }
        };
        let target = match (self.target_reduction, self.target_length) {
            (Some(_), Some(_)) => {
                return Err(Error::Input(
                    "give at most one of target_reduction and target_length".into(),
                ))
            }
            (Some(r), None) if !(0.0..=1.0).contains(&r) => return Err(reduction_out_of_range(r)),
            (Some(r), None) if relative_to_words => Some(Target::RelWord(r)),
            (Some(r), None) => Some(Target::Abs(r)),
            (None, Some(n)) => Some(Target::Len(count("target_length", n, 0)?)),
            (None, None) => None,
        };
        Ok(MergeConfig {
            max_merges: self
                .max_merges
                .map(|m| count("max_merges", m, 0))
                .transpose()?,
            // a count never reaches u32::MAX (a batch holds fewer positions), so saturating
            // keeps the meaning "never merge"
            min_count: u32::try_from(count("min_count", self.min_count, 1)?).unwrap_or(u32::MAX),
            target,
            per_sample: self.per_sample,
            max_unit_constituents: self
                .max_unit_constituents
                .map(|m| count("max_unit_constituents", m, 1))
                .transpose()?,
            identity,
        })
    }
}

fn too_small(name: &str, value: impl std::fmt::Display, lo: i64) -> Error {
    Error::Input(format!("{name} must be an integer >= {lo}, got {value}"))
}

fn reduction_out_of_range(r: f64) -> Error {
    Error::Input(format!(
        "target_reduction must be a number in [0, 1], got {r}"
    ))
}

fn bytes_need_tokens() -> Error {
    Error::Input(
        "identity=\"bytes\" needs token bytes: pass tokenizer=... (a tokenizer or a token_table)"
            .into(),
    )
}

/// Bytes of token ids, for unit strings and `Identity::Bytes`; the pre-tokenizer, for word
/// boundaries.
pub trait TokenSource: Sync {
    /// Bytes of `id` (`None` if the vocabulary has no such id).
    fn token_bytes(&self, id: u32) -> Option<&[u8]>;
    /// Whether `id` is a special (control) token.
    fn is_special(&self, id: u32) -> bool;
    /// The tokenizer's own pre-tokenizer (the `word` boundary mode), if it has one.
    fn pretokenizer(&self) -> Option<&Pretokenizer> {
        None
    }
}

impl TokenSource for Bpe {
    fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        Bpe::token_bytes(self, id)
    }
    fn is_special(&self, id: u32) -> bool {
        Bpe::is_special(self, id)
    }
    fn pretokenizer(&self) -> Option<&Pretokenizer> {
        Some(Bpe::pretokenizer(self))
    }
}

/// A plain id -> bytes table, for vocabularies tokforge cannot load as a tokenizer. `None`
/// entries are holes in the vocabulary. It has no pre-tokenizer.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    pub tokens: Vec<Option<Vec<u8>>>,
    pub special: Vec<bool>,
}

impl TokenTable {
    /// `tokens[id]` = bytes of `id`; `special_ids` never merge and must be ids of the table.
    pub fn new(tokens: Vec<Option<Vec<u8>>>, special_ids: &[i64]) -> Result<Self> {
        let mut special = vec![false; tokens.len()];
        for &id in special_ids {
            match usize::try_from(id).ok().and_then(|i| special.get_mut(i)) {
                Some(s) => *s = true,
                None => {
                    return Err(Error::Input(format!(
                        "special id {id} is outside the table of {} tokens",
                        tokens.len()
                    )))
                }
            }
        }
        Ok(TokenTable { tokens, special })
    }

    /// Number of ids (holes included).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl TokenSource for TokenTable {
    fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).and_then(|t| t.as_deref())
    }
    fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }
}

/// One merge of the log: keys index [`MergeResult::key_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeStep {
    pub left: u32,
    pub right: u32,
    pub new: u32,
    /// `count(p)` when chosen (overlapping occurrences counted).
    pub count: u32,
    /// Occurrences actually merged (the length drop).
    pub applied: u32,
    /// The sample this merge belongs to (`per_sample`), else `None`.
    pub sample: Option<u32>,
}

/// Output of [`merge_batch`] (docs/dynamic_merging.md §5): flat arrays plus offsets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeResult {
    /// Batch-local unit index of each output position.
    pub unit_ids: Vec<u32>,
    /// `B + 1` offsets of the sequences in `unit_ids`.
    pub seq_offsets: Vec<usize>,
    /// `[start, end)` of each output position in its sequence's base positions.
    pub spans: Vec<[u32; 2]>,
    /// Word id of each output position.
    pub word_ids: Vec<i32>,
    /// Per unit (ordered by first appearance): its key, its base ids (of its first appearance),
    /// and the base id when it is a single base token (else -1).
    pub unit_key: Vec<u32>,
    pub unit_offsets: Vec<usize>,
    pub unit_constituents: Vec<u32>,
    pub unit_base_id: Vec<i32>,
    /// Every key interned during the run (base units, then merged units in creation order); base
    /// ids of its first creation.
    pub key_offsets: Vec<usize>,
    pub key_constituents: Vec<u32>,
    /// Bytes of each key when token bytes were given.
    pub key_bytes: Option<Vec<Vec<u8>>>,
    pub merges: Vec<MergeStep>,
    pub len_initial: usize,
    pub len_final: usize,
    pub len_word_level: usize,
}

impl MergeResult {
    /// Base ids of the whole batch again, from the unit table (the inverse of the merge; exact
    /// with `Identity::Ids`, equal bytes with `Identity::Bytes`).
    pub fn expand(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for &u in &self.unit_ids {
            let u = u as usize;
            out.extend_from_slice(
                &self.unit_constituents[self.unit_offsets[u]..self.unit_offsets[u + 1]],
            );
        }
        out
    }

    /// Number of merges applied.
    pub fn num_merges(&self) -> usize {
        self.merges.len()
    }
}

// ---- what callers give: one check, one message per problem --------------------------------

/// Per-sequence values given flat: sequence `s`'s values follow those of `0..s`, and
/// `lengths[s]` says how many it has (checked against the batch's sequences).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ragged<'a> {
    pub values: &'a [i64],
    pub lengths: &'a [i64],
}

/// Where words start, as the Python API's `word_boundaries` gives it (docs/dynamic_merging.md
/// §3.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Boundaries<'a> {
    /// `"word"` (the tokenizer's pre-tokenization pieces), `"whitespace"`,
    /// `"whitespace_hyphen"` (see [`BOUNDARY_PATTERNS`]) or `"none"` (one word per sequence).
    Mode(&'a str),
    /// Word-start flags (0 or 1) of every position; a sequence's first position always
    /// starts a word. With token bytes, special tokens never merge.
    Starts(Ragged<'a>),
}

/// The last positions of each sequence that never merge (the decoder-prefill variant).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepLast<'a> {
    /// The same count for every sequence.
    Each(i64),
    /// One count per sequence.
    PerSequence(&'a [i64]),
}

/// A batch and its word boundaries as a caller outside Rust gives them, before any check:
/// [`merge_input`] checks and converts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchInput<'a> {
    /// All base ids back to back; sequence `s` is `ids[offsets[s]..offsets[s + 1]]`.
    pub ids: &'a [i64],
    pub offsets: &'a [i64],
    pub boundaries: Boundaries<'a>,
    /// The word of every position (`-1` = never merge), instead of `boundaries` (which must
    /// then be the default `Mode("word")`).
    pub word_ids: Option<Ragged<'a>>,
    pub keep_last: KeepLast<'a>,
}

impl Default for BatchInput<'_> {
    fn default() -> Self {
        BatchInput {
            ids: &[],
            offsets: &[0],
            boundaries: Boundaries::Mode("word"),
            word_ids: None,
            keep_last: KeepLast::Each(0),
        }
    }
}

/// Regexes of the boundary modes that do not use the tokenizer's own pre-tokenizer.
/// `whitespace`: a word is an optional whitespace char plus a run of non-whitespace
/// (punctuation stays in the word). `whitespace_hyphen`: as `whitespace`, but punctuation is a
/// word of its own except `-` between letters (`well-known` is one word).
pub const BOUNDARY_PATTERNS: [(&str, &str); 2] = [
    ("whitespace", r"\s?\S+|\s+(?!\S)|\s+"),
    (
        "whitespace_hyphen",
        r"\s?[^\s\p{P}]+(?:-[^\s\p{P}]+)*|\s?\p{P}+|\s+(?!\S)|\s+",
    ),
];

/// Check `input`, `opts` and the ids against `tokens`, derive the word ids, then
/// [`merge_batch`]. Every check of the Python API's arguments happens here, once.
pub fn merge_input(
    input: &BatchInput<'_>,
    opts: &MergeOptions<'_>,
    tokens: Option<&dyn TokenSource>,
) -> Result<MergeResult> {
    let cfg = opts.config(tokens.is_some())?;
    let offsets = offsets_from(input.offsets, input.ids.len())?;
    let ids = ids_from(input.ids, &offsets)?;
    if let Some(t) = tokens {
        check_vocab(&ids, &offsets, t)?;
    }
    let mut word_ids = match (input.word_ids, input.boundaries) {
        (Some(w), Boundaries::Mode("word")) => given_word_ids(w, &offsets)?,
        (Some(_), _) => {
            return Err(Error::Input(
                "give word_ids or word_boundaries, not both".into(),
            ))
        }
        (None, Boundaries::Starts(flags)) => {
            let mut w = word_ids_from_starts(flags, &offsets)?;
            if let Some(t) = tokens {
                for (w, &id) in w.iter_mut().zip(&ids) {
                    if t.is_special(id) {
                        *w = -1;
                    }
                }
            }
            w
        }
        (None, Boundaries::Mode(mode)) => mode_word_ids(mode, &ids, &offsets, tokens)?,
    };
    apply_keep_last(&mut word_ids, &offsets, input.keep_last)?;
    merge_checked(&ids, &offsets, &word_ids, &cfg, tokens)
}

/// `(sequence, position in it)` of flat position `i` (offsets checked).
fn locate(offsets: &[usize], i: usize) -> (usize, usize) {
    let s = offsets.partition_point(|&o| o <= i).saturating_sub(1);
    (s, i - offsets[s])
}

fn bad_id(offsets: &[usize], i: usize, x: impl std::fmt::Display) -> Error {
    let (s, k) = locate(offsets, i);
    Error::Input(format!("batch[{s}][{k}] = {x}: ids must be in [0, 2**31)"))
}

/// Offsets start at 0, never decrease and end at `n`, which fits the node type.
fn check_layout(n: usize, offsets: &[usize]) -> Result<()> {
    if n >= NONE as usize {
        return Err(Error::Input(format!(
            "a batch holds at most {} tokens, got {n}",
            NONE - 1
        )));
    }
    match (offsets.first(), offsets.last()) {
        (Some(0), Some(&last)) if last == n => {}
        (first, last) => {
            return Err(Error::Input(format!(
                "offsets must start at 0 and end at the number of ids ({n}); got {}",
                match (first, last) {
                    (Some(a), Some(b)) => format!("{} offsets from {a} to {b}", offsets.len()),
                    _ => "no offsets (a batch of B sequences has B + 1)".to_string(),
                }
            )))
        }
    }
    if let Some(s) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::Input(format!(
            "offsets decrease at sequence {s}: {} > {}",
            offsets[s],
            offsets[s + 1]
        )));
    }
    Ok(())
}

// The conversions below find the first bad value, then cast: a plain `map` that vectorizes
// (collecting `Result`s per element cost 67 instructions per token, measured with cachegrind).
fn offsets_from(raw: &[i64], n: usize) -> Result<Vec<usize>> {
    if let Some(i) = raw.iter().position(|&x| x < 0) {
        return Err(Error::Input(format!(
            "offsets[{i}] = {} is negative",
            raw[i]
        )));
    }
    let offsets: Vec<usize> = raw.iter().map(|&x| x as usize).collect();
    check_layout(n, &offsets)?;
    Ok(offsets)
}

fn ids_from(raw: &[i64], offsets: &[usize]) -> Result<Vec<u32>> {
    if let Some(i) = raw
        .iter()
        .position(|&x| !(0..=i64::from(MAX_ID)).contains(&x))
    {
        return Err(bad_id(offsets, i, raw[i]));
    }
    Ok(raw.iter().map(|&x| x as u32).collect())
}

fn check_vocab(ids: &[u32], offsets: &[usize], tokens: &dyn TokenSource) -> Result<()> {
    match ids.iter().position(|&x| tokens.token_bytes(x).is_none()) {
        Some(i) => {
            let (s, k) = locate(offsets, i);
            Err(Error::Vocab(format!(
                "batch[{s}][{k}] = {} is not in the vocabulary",
                ids[i]
            )))
        }
        None => Ok(()),
    }
}

/// One entry per sequence, each as long as its sequence.
fn check_ragged(r: Ragged<'_>, offsets: &[usize], name: &str) -> Result<()> {
    let b = offsets.len() - 1;
    if r.lengths.len() != b {
        return Err(Error::Input(format!(
            "{name} must have one entry per sequence: {b} sequences, {} entries",
            r.lengths.len()
        )));
    }
    for (s, (&got, w)) in r.lengths.iter().zip(offsets.windows(2)).enumerate() {
        let want = w[1] - w[0];
        if usize::try_from(got).ok() != Some(want) {
            return Err(Error::Input(format!(
                "{name}[{s}] has {got} entries but sequence {s} has {want} tokens"
            )));
        }
    }
    if r.values.len() != offsets[b] {
        return Err(Error::Input(format!(
            "{name} holds {} values but its lengths add up to {}",
            r.values.len(),
            offsets[b]
        )));
    }
    Ok(())
}

fn given_word_ids(w: Ragged<'_>, offsets: &[usize]) -> Result<Vec<i32>> {
    check_ragged(w, offsets, "word_ids")?;
    if let Some(i) = w
        .values
        .iter()
        .position(|&x| !(-1..=i64::from(i32::MAX)).contains(&x))
    {
        let (s, k) = locate(offsets, i);
        return Err(Error::Input(format!(
            "word_ids[{s}][{k}] = {}: word ids must be in [-1, 2**31) (-1 = never merge)",
            w.values[i]
        )));
    }
    Ok(w.values.iter().map(|&x| x as i32).collect())
}

/// Word ids numbered from 0 in each sequence: one more at every start flag.
fn word_ids_from_starts(flags: Ragged<'_>, offsets: &[usize]) -> Result<Vec<i32>> {
    check_ragged(flags, offsets, "word_boundaries")?;
    let mut out = Vec::with_capacity(flags.values.len());
    for (s, w) in offsets.windows(2).enumerate() {
        let mut word: i32 = -1;
        for (k, &f) in flags.values[w[0]..w[1]].iter().enumerate() {
            if f != 0 && f != 1 {
                return Err(Error::Input(format!(
                    "word_boundaries[{s}][{k}] = {f}: word-start flags must be booleans (or 0/1)"
                )));
            }
            if k == 0 || f == 1 {
                word = word.checked_add(1).ok_or_else(|| {
                    Error::Input(format!("sequence {s} has more than 2**31 words"))
                })?;
            }
            out.push(word);
        }
    }
    Ok(out)
}

fn mode_word_ids(
    mode: &str,
    ids: &[u32],
    offsets: &[usize],
    tokens: Option<&dyn TokenSource>,
) -> Result<Vec<i32>> {
    let own = match mode {
        "word" | "none" => None,
        _ => match BOUNDARY_PATTERNS.iter().find(|(m, _)| *m == mode) {
            Some((_, p)) => Some(Pretokenizer::new(p)?),
            None => {
                return Err(Error::Input(format!(
                    "word_boundaries={mode:?} is not one of 'word', 'whitespace', \
                     'whitespace_hyphen', 'none', word-start flags or a callable"
                )))
            }
        },
    };
    let Some(t) = tokens else {
        if mode == "none" {
            return Ok(vec![0; ids.len()]);
        }
        return Err(Error::Input(format!(
            "word_boundaries={mode:?} needs tokenizer=...; or pass word-start flags, \
             word_ids=..., or word_boundaries='none' to merge across words"
        )));
    };
    let word_mode =
        match (&own, t.pretokenizer()) {
            _ if mode == "none" => WordMode::None,
            (Some(p), _) | (None, Some(p)) => WordMode::Pieces(p),
            (None, None) => return Err(Error::Input(
                "word_boundaries='word' needs the tokenizer's pre-tokenizer and a token table has \
                 none: pass word_ids=... or word-start flags, or use 'whitespace' or \
                 'whitespace_hyphen'"
                    .into(),
            )),
        };
    word_ids_checked(ids, offsets, t, word_mode)
}

fn apply_keep_last(word_ids: &mut [i32], offsets: &[usize], keep: KeepLast<'_>) -> Result<()> {
    let b = offsets.len() - 1;
    match keep {
        KeepLast::Each(k) if k < 0 => {
            return Err(Error::Input(format!(
                "keep_last must be non-negative, got {k}"
            )))
        }
        KeepLast::PerSequence(ks) if ks.len() != b => {
            return Err(Error::Input(format!(
                "keep_last must be an int or one int per sequence ({b}), got {}",
                ks.len()
            )))
        }
        KeepLast::PerSequence(ks) => {
            if let Some(s) = ks.iter().position(|&k| k < 0) {
                return Err(Error::Input(format!(
                    "keep_last must be non-negative, got {} for sequence {s}",
                    ks[s]
                )));
            }
        }
        KeepLast::Each(_) => {}
    }
    for (s, w) in offsets.windows(2).enumerate() {
        let k = match keep {
            KeepLast::Each(k) => k,
            KeepLast::PerSequence(ks) => ks[s],
        };
        let lo = w[1]
            .saturating_sub(usize::try_from(k).unwrap_or(usize::MAX))
            .max(w[0]);
        word_ids[lo..w[1]].fill(-1);
    }
    Ok(())
}

/// Check a batch given in Rust types (what [`merge_batch`] and [`word_ids`] take).
fn validate_batch(
    ids: &[u32],
    offsets: &[usize],
    word_ids: &[i32],
    tokens: Option<&dyn TokenSource>,
) -> Result<()> {
    let n = ids.len();
    check_layout(n, offsets)?;
    if let Some(i) = ids.iter().position(|&x| x > MAX_ID) {
        return Err(bad_id(offsets, i, ids[i]));
    }
    if word_ids.len() != n {
        return Err(Error::Input(format!(
            "word ids must have one entry per id: {} ids, {} word ids",
            n,
            word_ids.len()
        )));
    }
    if let Some(i) = word_ids.iter().position(|&w| w < -1) {
        let (s, k) = locate(offsets, i);
        return Err(Error::Input(format!(
            "word_ids[{s}][{k}] = {}: word ids must be in [-1, 2**31) (-1 = never merge)",
            word_ids[i]
        )));
    }
    if let Some(t) = tokens {
        check_vocab(ids, offsets, t)?;
    }
    Ok(())
}

/// Key of a unit: a tag byte (1 for a special token, so that it stays apart from ordinary units
/// with the same bytes; 0 otherwise) followed by the payload (ids as little-endian `u32`s, or
/// bytes). Concatenating two units' payloads gives the merged unit's.
type Key = Box<[u8]>;

/// Interned keys of one run, with the flat base span of each key's first creation.
#[derive(Default)]
struct Interner {
    map: FxHashMap<Key, u32>,
    keys: Vec<Key>,
    prov: Vec<(u32, u32)>,
}

impl Interner {
    fn intern(&mut self, key: &[u8], prov: (u32, u32)) -> u32 {
        if let Some(&k) = self.map.get(key) {
            return k;
        }
        let k = self.keys.len() as u32;
        self.map.insert(Box::from(key), k);
        self.keys.push(Box::from(key));
        self.prov.push(prov);
        k
    }
}

#[inline]
fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// Result of one run (the whole batch, or one sample) before keys are made batch-global.
struct RunOut {
    interner: Interner,
    /// `(flat start, flat end, local key)` of each final unit, in order.
    units: Vec<(u32, u32, u32)>,
    merges: Vec<MergeStep>,
    l0: usize,
    lw: usize,
}

/// Inline capacity of [`OccSet`]: most pairs of a batch occur once or twice, so most sets never
/// allocate (measured on the shipped corpora: allocation was a quarter of the run time with a
/// `BTreeSet` per pair).
const INLINE: usize = 4;

/// Ordered set of the left nodes of one pair's occurrences: inline while small, a `BTreeSet`
/// once it outgrows [`INLINE`] (it stays one, so a set never moves back and forth).
#[derive(Debug)]
enum OccSet {
    Small { len: u8, items: [u32; INLINE] },
    Large(BTreeSet<u32>),
}

impl Default for OccSet {
    fn default() -> Self {
        OccSet::Small {
            len: 0,
            items: [0; INLINE],
        }
    }
}

impl OccSet {
    fn len(&self) -> usize {
        match self {
            OccSet::Small { len, .. } => *len as usize,
            OccSet::Large(s) => s.len(),
        }
    }

    fn first(&self) -> Option<u32> {
        match self {
            OccSet::Small { len: 0, .. } => None,
            OccSet::Small { items, .. } => Some(items[0]),
            OccSet::Large(s) => s.first().copied(),
        }
    }

    fn insert(&mut self, x: u32) {
        match self {
            OccSet::Small { len, items } if (*len as usize) < INLINE => {
                let n = *len as usize;
                let at = items[..n].partition_point(|&y| y < x);
                debug_assert!(at == n || items[at] != x);
                items.copy_within(at..n, at + 1);
                items[at] = x;
                *len += 1;
            }
            OccSet::Small { items, .. } => {
                let mut s: BTreeSet<u32> = items.iter().copied().collect();
                s.insert(x);
                *self = OccSet::Large(s);
            }
            OccSet::Large(s) => {
                s.insert(x);
            }
        }
    }

    fn remove(&mut self, x: u32) -> bool {
        match self {
            OccSet::Small { len, items } => {
                let n = *len as usize;
                match items[..n].iter().position(|&y| y == x) {
                    Some(at) => {
                        items.copy_within(at + 1..n, at);
                        *len -= 1;
                        true
                    }
                    None => false,
                }
            }
            OccSet::Large(s) => s.remove(&x),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in increasing order.
    fn into_sorted(self) -> OccIter {
        match self {
            OccSet::Small { len, items } => OccIter::Small(items.into_iter().take(len as usize)),
            OccSet::Large(s) => OccIter::Large(s.into_iter()),
        }
    }
}

enum OccIter {
    Small(std::iter::Take<std::array::IntoIter<u32, INLINE>>),
    Large(std::collections::btree_set::IntoIter<u32>),
}

impl Iterator for OccIter {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match self {
            OccIter::Small(it) => it.next(),
            OccIter::Large(it) => it.next(),
        }
    }
}

/// The linked-list state of one run over the flat positions `base..base + n` (whole sequences).
struct Run<'a> {
    base: u32,
    wid: &'a [i32],
    maxlen: u32,
    unit: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    end: Vec<u32>,
    alive: Vec<bool>,
    pairs: FxHashMap<u64, OccSet>,
    heap: BinaryHeap<(u32, Reverse<u32>, u64)>,
    touched: Vec<u64>,
}

impl<'a> Run<'a> {
    #[inline]
    fn valid(&self, x: u32, y: u32) -> bool {
        let (w, v) = (self.wid[x as usize], self.wid[y as usize]);
        w != -1 && w == v && self.end[y as usize] - x <= self.maxlen
    }

    /// Record the pair starting at node `x`, if any and valid.
    fn add_occ(&mut self, x: u32) {
        let y = self.next[x as usize];
        if y != NONE && self.valid(x, y) {
            let p = pair_key(self.unit[x as usize], self.unit[y as usize]);
            self.pairs.entry(p).or_default().insert(x);
            self.touched.push(p);
        }
    }

    /// Forget the pair starting at node `x`, if it is recorded.
    fn remove_occ(&mut self, x: u32) {
        let y = self.next[x as usize];
        if y == NONE {
            return;
        }
        let p = pair_key(self.unit[x as usize], self.unit[y as usize]);
        if let Some(set) = self.pairs.get_mut(&p) {
            if set.remove(x) {
                if set.is_empty() {
                    self.pairs.remove(&p);
                }
                self.touched.push(p);
            }
        }
    }

    /// Push a fresh heap entry for every pair touched since the last call.
    fn flush_touched(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for &p in &touched {
            if let Some(set) = self.pairs.get(&p) {
                if let Some(first) = set.first() {
                    self.heap.push((set.len() as u32, Reverse(first), p));
                }
            }
        }
        touched.clear();
        self.touched = touched;
    }

    /// Pop until the top entry describes the pair's current state; `None` when no pair is left.
    fn pop_best(&mut self) -> Option<(u32, u32, u64)> {
        while let Some((c, Reverse(f), p)) = self.heap.pop() {
            if let Some(set) = self.pairs.get(&p) {
                if set.len() as u32 == c && set.first() == Some(f) {
                    return Some((c, f, p));
                }
            }
        }
        None
    }
}

/// Merge the sequences `offsets` (local, starting at 0) of the flat slice starting at `base`.
/// `bytes` is given for `Identity::Bytes` only: units are then keyed by their bytes.
fn run(
    ids: &[u32],
    wid: &[i32],
    offsets: &[usize],
    base: u32,
    cfg: &MergeConfig,
    bytes: Option<&dyn TokenSource>,
    sample: Option<u32>,
) -> Result<RunOut> {
    let n = ids.len();
    let mut interner = Interner::default();
    let mut unit = Vec::with_capacity(n);
    // base id -> key, so that each distinct id is looked up by its bytes once
    let mut base_keys: FxHashMap<u32, u32> = FxHashMap::default();
    let mut key: Vec<u8> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let g = base + i as u32;
        if let Some(&k) = base_keys.get(&id) {
            // an empty key (bytes mode) is checked again below at each mergeable position
            if interner.keys[k as usize].len() > 1 || wid[i] == -1 {
                unit.push(k);
                continue;
            }
        }
        key.clear();
        match bytes {
            None => {
                key.push(0);
                key.extend_from_slice(&id.to_le_bytes());
            }
            Some(t) => {
                let b = t.token_bytes(id).unwrap_or_default();
                if b.is_empty() && wid[i] != -1 {
                    return Err(Error::Input(format!(
                        "token {id} has no bytes, so identity=\"bytes\" cannot tell its units apart; \
                         use identity=\"ids\" or mark the position as never-merge (word id -1)"
                    )));
                }
                key.push(u8::from(t.is_special(id)));
                key.extend_from_slice(b);
            }
        }
        let k = interner.intern(&key, (g, g + 1));
        base_keys.insert(id, k);
        unit.push(k);
    }
    let mut next = vec![NONE; n];
    let mut prev = vec![NONE; n];
    let mut lw = 0usize;
    for w in offsets.windows(2) {
        for i in w[0]..w[1] {
            if i + 1 < w[1] {
                next[i] = (i + 1) as u32;
            }
            if i > w[0] {
                prev[i] = (i - 1) as u32;
            }
            if wid[i] == -1 || i == w[0] || wid[i] != wid[i - 1] {
                lw += 1;
            }
        }
    }
    let maxlen = cfg
        .max_unit_constituents
        .map_or(u32::MAX, |m| m.min(u32::MAX as usize) as u32);
    let mut r = Run {
        base,
        wid,
        maxlen,
        unit,
        next,
        prev,
        end: (1..=n as u32).collect(),
        alive: vec![true; n],
        pairs: FxHashMap::default(),
        heap: BinaryHeap::new(),
        touched: Vec::new(),
    };
    for i in 0..n as u32 {
        r.add_occ(i);
    }
    r.flush_touched();

    let l0 = n;
    let mut len = n;
    let threshold = cfg.target.map(|t| t.threshold(l0, lw));
    let mut merges = Vec::new();
    loop {
        crate::cancel::check()?;
        if cfg.max_merges.is_some_and(|m| merges.len() >= m) {
            break;
        }
        if threshold.is_some_and(|t| len as f64 <= t) {
            break;
        }
        let Some((count, first, p)) = r.pop_best() else {
            break;
        };
        if count < cfg.min_count {
            break;
        }
        let (a, b) = ((p >> 32) as u32, p as u32);
        let j0 = r.next[first as usize];
        let prov = (base + first, base + r.end[j0 as usize]);
        let ka = &interner.keys[a as usize];
        let kb = &interner.keys[b as usize];
        // a special token merges only if the caller gave it a word id; the result is ordinary
        key.clear();
        key.push(0);
        key.extend_from_slice(&ka[1..]);
        key.extend_from_slice(&kb[1..]);
        let new = interner.intern(&key, prov);
        debug_assert!(new != a && new != b);

        // Take the occurrence set out: occurrences that overlap an applied one die (their node
        // is absorbed), and no new occurrence of `p` can appear, so `alive` is the whole check.
        let occ = r.pairs.remove(&p).unwrap_or_default().into_sorted();
        let mut applied = 0u32;
        for i in occ {
            let iu = i as usize;
            if !r.alive[iu] {
                continue; // consumed by the previous occurrence (x x x)
            }
            let j = r.next[iu];
            let h = r.prev[iu];
            debug_assert!(j != NONE && r.unit[iu] == a && r.unit[j as usize] == b);
            let k = r.next[j as usize];
            if h != NONE {
                r.remove_occ(h);
            }
            r.remove_occ(j);
            r.unit[iu] = new;
            r.end[iu] = r.end[j as usize];
            r.alive[j as usize] = false;
            r.next[iu] = k;
            r.next[j as usize] = NONE;
            if k != NONE {
                r.prev[k as usize] = i;
            }
            if h != NONE {
                r.add_occ(h);
            }
            r.add_occ(i);
            applied += 1;
        }
        debug_assert!(!r.pairs.contains_key(&p));
        r.flush_touched();
        len -= applied as usize;
        merges.push(MergeStep {
            left: a,
            right: b,
            new,
            count,
            applied,
            sample,
        });
    }

    let mut units = Vec::with_capacity(len);
    for w in offsets.windows(2) {
        let mut i = w[0];
        while i < w[1] {
            units.push((r.base + i as u32, r.base + r.end[i], r.unit[i]));
            i = r.end[i] as usize;
        }
    }
    debug_assert_eq!(units.len(), len);
    Ok(RunOut {
        interner,
        units,
        merges,
        l0,
        lw,
    })
}

/// Merge the most frequent adjacent pairs of a batch (docs/dynamic_merging.md §3-§5).
///
/// `ids` holds all sequences back to back, sequence `s` at `ids[offsets[s]..offsets[s+1]]`;
/// `word_ids[i]` is the word of position `i` (`-1` = never merge). `tokens` supplies bytes for
/// `Identity::Bytes` and for [`MergeResult::key_bytes`]. Callers outside Rust use
/// [`merge_input`], which checks their arguments and derives the word ids.
pub fn merge_batch(
    ids: &[u32],
    offsets: &[usize],
    word_ids: &[i32],
    cfg: &MergeConfig,
    tokens: Option<&dyn TokenSource>,
) -> Result<MergeResult> {
    cfg.validate(tokens.is_some())?;
    validate_batch(ids, offsets, word_ids, tokens)?;
    merge_checked(ids, offsets, word_ids, cfg, tokens)
}

/// [`merge_batch`] on arguments already checked.
fn merge_checked(
    ids: &[u32],
    offsets: &[usize],
    word_ids: &[i32],
    cfg: &MergeConfig,
    tokens: Option<&dyn TokenSource>,
) -> Result<MergeResult> {
    let bytes = match cfg.identity {
        Identity::Ids => None,
        Identity::Bytes => tokens,
    };
    debug_assert!(cfg.identity == Identity::Ids || bytes.is_some());
    let runs: Vec<RunOut> = if cfg.per_sample {
        let cancel = crate::cancel::current();
        offsets
            .par_windows(2)
            .enumerate()
            .map(|(s, w)| {
                let (lo, hi) = (w[0], w[1]);
                cancel.check()?;
                run(
                    &ids[lo..hi],
                    &word_ids[lo..hi],
                    &[0, hi - lo],
                    lo as u32,
                    cfg,
                    bytes,
                    Some(s as u32),
                )
            })
            .collect::<Result<_>>()?
    } else {
        vec![run(ids, word_ids, offsets, 0, cfg, bytes, None)?]
    };
    Ok(assemble(ids, offsets, word_ids, runs, tokens))
}

/// Make keys batch-global (first-use order over runs in sample order) and build the unit table.
fn assemble(
    ids: &[u32],
    offsets: &[usize],
    word_ids: &[i32],
    runs: Vec<RunOut>,
    tokens: Option<&dyn TokenSource>,
) -> MergeResult {
    let mut global = Interner::default();
    let mut out = MergeResult::default();
    let mut final_units: Vec<(u32, u32, u32)> = Vec::new();
    for r in runs {
        let map: Vec<u32> = r
            .interner
            .keys
            .into_iter()
            .zip(r.interner.prov)
            .map(|(k, prov)| global.intern(&k, prov))
            .collect();
        out.merges.extend(r.merges.into_iter().map(|m| MergeStep {
            left: map[m.left as usize],
            right: map[m.right as usize],
            new: map[m.new as usize],
            ..m
        }));
        final_units.extend(r.units.into_iter().map(|(s, e, k)| (s, e, map[k as usize])));
        out.len_initial += r.l0;
        out.len_word_level += r.lw;
    }
    out.len_final = final_units.len();

    out.key_offsets.push(0);
    for &(s, e) in &global.prov {
        out.key_constituents
            .extend_from_slice(&ids[s as usize..e as usize]);
        out.key_offsets.push(out.key_constituents.len());
    }
    if let Some(t) = tokens {
        out.key_bytes = Some(
            global
                .prov
                .iter()
                .map(|&(s, e)| {
                    ids[s as usize..e as usize]
                        .iter()
                        .flat_map(|&x| t.token_bytes(x).unwrap_or_default())
                        .copied()
                        .collect()
                })
                .collect(),
        );
    }

    let mut local = vec![NONE; global.keys.len()];
    out.unit_offsets.push(0);
    out.seq_offsets.push(0);
    let mut it = final_units.into_iter().peekable();
    for w in offsets.windows(2) {
        while let Some(&(s, e, k)) = it.peek() {
            if s as usize >= w[1] {
                break;
            }
            it.next();
            if local[k as usize] == NONE {
                local[k as usize] = out.unit_key.len() as u32;
                out.unit_key.push(k);
                let c = &ids[s as usize..e as usize];
                out.unit_constituents.extend_from_slice(c);
                out.unit_offsets.push(out.unit_constituents.len());
                out.unit_base_id
                    .push(if c.len() == 1 { c[0] as i32 } else { -1 });
            }
            out.unit_ids.push(local[k as usize]);
            out.spans.push([s - w[0] as u32, e - w[0] as u32]);
            out.word_ids.push(word_ids[s as usize]);
        }
        out.seq_offsets.push(out.unit_ids.len());
    }
    out
}

/// Which positions share a word (docs/dynamic_merging.md §3.2), for [`word_ids`].
pub enum WordMode<'a> {
    /// Word = pre-tokenization piece of the decoded text (the `word` boundary mode).
    Pieces(&'a Pretokenizer),
    /// Every non-special position of a sequence is in word 0 (the `none` mode).
    None,
}

/// Word id of every position: the index (per sequence, from 0) of the piece holding the token's
/// first byte, or -1 for special tokens. Runs of ordinary tokens between
/// specials are decoded and pre-tokenized separately; bytes that are not UTF-8 form pieces of
/// their own. Cost: one pre-tokenization of the decoded batch, O(N + bytes).
pub fn word_ids(
    ids: &[u32],
    offsets: &[usize],
    tokens: &dyn TokenSource,
    mode: WordMode<'_>,
) -> Result<Vec<i32>> {
    validate_batch(ids, offsets, &vec![0; ids.len()], Some(tokens))?;
    word_ids_checked(ids, offsets, tokens, mode)
}

/// [`word_ids`] on arguments already checked.
fn word_ids_checked(
    ids: &[u32],
    offsets: &[usize],
    tokens: &dyn TokenSource,
    mode: WordMode<'_>,
) -> Result<Vec<i32>> {
    let seqs: Vec<(usize, usize)> = offsets.windows(2).map(|w| (w[0], w[1])).collect();
    let parts: Vec<Vec<i32>> = seqs
        .par_iter()
        .map(|&(lo, hi)| seq_word_ids(&ids[lo..hi], tokens, &mode))
        .collect::<Result<_>>()?;
    Ok(parts.concat())
}

fn seq_word_ids(ids: &[u32], tokens: &dyn TokenSource, mode: &WordMode<'_>) -> Result<Vec<i32>> {
    let mut out = vec![-1i32; ids.len()];
    let pretok = match mode {
        WordMode::None => {
            for (o, &id) in out.iter_mut().zip(ids) {
                if !tokens.is_special(id) {
                    *o = 0;
                }
            }
            return Ok(out);
        }
        WordMode::Pieces(p) => p,
    };
    let mut next_word: i32 = 0;
    let mut i = 0;
    let mut text: Vec<u8> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut piece_starts: Vec<usize> = Vec::new();
    while i < ids.len() {
        if tokens.is_special(ids[i]) {
            i += 1;
            continue;
        }
        // a run of ordinary tokens [i, j)
        let mut j = i;
        text.clear();
        starts.clear();
        while j < ids.len() && !tokens.is_special(ids[j]) {
            starts.push(text.len());
            text.extend_from_slice(tokens.token_bytes(ids[j]).unwrap_or_default());
            j += 1;
        }
        piece_starts.clear();
        let mut at = 0usize;
        for chunk in text.utf8_chunks() {
            let valid = chunk.valid();
            pretok.for_each_piece(valid, |p| {
                piece_starts.push(at + (p.as_ptr() as usize - valid.as_ptr() as usize))
            })?;
            at += valid.len();
            if !chunk.invalid().is_empty() {
                piece_starts.push(at);
                at += chunk.invalid().len();
            }
        }
        // word of a token = last piece starting at or before its first byte
        let mut piece = 0usize;
        for (k, &s) in starts.iter().enumerate() {
            while piece + 1 < piece_starts.len() && piece_starts[piece + 1] <= s {
                piece += 1;
            }
            out[i + k] = next_word + piece as i32;
        }
        next_word += piece_starts.len().max(1) as i32;
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UN: u32 = 0;
    const BELIEV: u32 = 1;
    const ABLE: u32 = 2;
    const THE: u32 = 3;
    const RE: u32 = 4;
    const DO: u32 = 5;
    const DO2: u32 = 6;

    /// The worked example of docs/dynamic_merging.md §9.
    fn example() -> (Vec<u32>, Vec<usize>, Vec<i32>) {
        let ids = vec![
            UN, BELIEV, ABLE, THE, RE, DO, RE, DO, UN, BELIEV, ABLE, DO2, ABLE, THE,
        ];
        let words = vec![0, 0, 0, 1, 2, 2, 0, 0, 1, 1, 1, 0, 0, 1];
        (ids, vec![0, 6, 11, 14], words)
    }

    fn go(cfg: &MergeConfig) -> MergeResult {
        let (ids, off, w) = example();
        merge_batch(&ids, &off, &w, cfg, None).expect("valid input")
    }

    fn keys(r: &MergeResult, k: u32) -> Vec<u32> {
        r.key_constituents[r.key_offsets[k as usize]..r.key_offsets[k as usize + 1]].to_vec()
    }

    #[test]
    fn worked_example_full_merge() {
        let r = go(&MergeConfig::default());
        assert_eq!((r.len_initial, r.len_word_level, r.len_final), (14, 7, 7));
        let log: Vec<(Vec<u32>, Vec<u32>, u32)> = r
            .merges
            .iter()
            .map(|m| (keys(&r, m.left), keys(&r, m.right), m.count))
            .collect();
        assert_eq!(
            log,
            vec![
                (vec![UN], vec![BELIEV], 2),
                (vec![UN, BELIEV], vec![ABLE], 2),
                (vec![RE], vec![DO], 2),
                (vec![DO2], vec![ABLE], 1),
            ]
        );
        assert_eq!(r.unit_ids, vec![0, 1, 2, 2, 0, 3, 1]);
        assert_eq!(r.seq_offsets, vec![0, 3, 5, 7]);
        assert_eq!(
            r.spans,
            vec![[0, 3], [3, 4], [4, 6], [0, 2], [2, 5], [0, 2], [2, 3]]
        );
        assert_eq!(r.unit_offsets, vec![0, 3, 4, 6, 8]);
        assert_eq!(
            r.unit_constituents,
            vec![UN, BELIEV, ABLE, THE, RE, DO, DO2, ABLE]
        );
        assert_eq!(r.unit_base_id, vec![-1, THE as i32, -1, -1]);
        assert_eq!(r.expand(), example().0);
    }

    #[test]
    fn worked_example_stop_rules() {
        let r = go(&MergeConfig {
            min_count: 2,
            ..Default::default()
        });
        assert_eq!((r.merges.len(), r.len_final), (3, 8));
        let r = go(&MergeConfig {
            target: Some(Target::RelWord(0.4)),
            ..Default::default()
        });
        assert_eq!((r.merges.len(), r.len_final), (2, 10));
        let r = go(&MergeConfig {
            target: Some(Target::Abs(0.25)),
            ..Default::default()
        });
        assert_eq!((r.merges.len(), r.len_final), (2, 10));
        let r = go(&MergeConfig {
            max_merges: Some(0),
            ..Default::default()
        });
        assert_eq!(
            (r.merges.len(), r.len_final, r.unit_offsets.len()),
            (0, 14, 8)
        );
        assert_eq!(r.expand(), example().0);
    }

    #[test]
    fn runs_of_one_token_merge_left_to_right() {
        let one = |n: usize| {
            let r = merge_batch(
                &vec![7; n],
                &[0, n],
                &vec![0; n],
                &MergeConfig::default(),
                None,
            )
            .expect("ok");
            let log: Vec<(u32, u32)> = r.merges.iter().map(|m| (m.count, m.applied)).collect();
            (log, r.len_final)
        };
        assert_eq!(one(3), (vec![(2, 1), (1, 1)], 1));
        assert_eq!(one(4), (vec![(3, 2), (1, 1)], 1));
    }

    #[test]
    fn ties_go_to_the_earliest_occurrence() {
        // [[c,d],[a,b]] each one word -> (c,d) first
        let r = merge_batch(
            &[3, 4, 1, 2],
            &[0, 2, 4],
            &[0, 0, 0, 0],
            &MergeConfig::default(),
            None,
        )
        .expect("ok");
        assert_eq!(keys(&r, r.merges[0].new), vec![3, 4]);
    }

    #[test]
    fn specials_never_merge() {
        let r = merge_batch(
            &[1, 9, 1, 1, 9, 1],
            &[0, 3, 6],
            &[0, -1, 0, 0, -1, 0],
            &MergeConfig::default(),
            None,
        )
        .expect("ok");
        assert!(r.merges.is_empty());
        assert_eq!(r.len_word_level, 6);
    }

    #[test]
    fn max_unit_constituents_blocks_long_units() {
        let cfg = MergeConfig {
            max_unit_constituents: Some(2),
            ..Default::default()
        };
        let r = merge_batch(&[5; 5], &[0, 5], &[0; 5], &cfg, None).expect("ok");
        assert_eq!(r.len_final, 3);
        assert!(r.spans.iter().all(|s| s[1] - s[0] <= 2));
    }

    #[test]
    fn bytes_identity_joins_equal_strings() {
        let table = TokenTable {
            tokens: vec![
                Some(b"a".to_vec()),
                Some(b"b".to_vec()),
                Some(b"ab".to_vec()),
                Some(b"<s>".to_vec()),
            ],
            special: vec![false, false, false, true],
        };
        let cfg = MergeConfig {
            identity: Identity::Bytes,
            ..Default::default()
        };
        // "ab" as [a, b] in two words merges to the same unit as token "ab"
        let r = merge_batch(
            &[0, 1, 2, 3, 0, 1],
            &[0, 6],
            &[0, 0, 1, -1, 2, 2],
            &cfg,
            Some(&table),
        )
        .expect("ok");
        assert_eq!(r.unit_ids, vec![0, 0, 1, 0]);
        assert_eq!(r.unit_constituents, vec![0, 1, 3]);
        let kb = r.key_bytes.expect("bytes given");
        assert_eq!(kb[r.unit_key[0] as usize], b"ab");
    }

    #[test]
    fn per_sample_runs_each_sequence_alone() {
        let cfg = MergeConfig {
            per_sample: true,
            max_merges: Some(1),
            ..Default::default()
        };
        let r = merge_batch(
            &[1, 2, 1, 2, 3, 4],
            &[0, 4, 6],
            &[0, 0, 1, 1, 0, 0],
            &cfg,
            None,
        )
        .expect("ok");
        assert_eq!(r.merges.len(), 2);
        assert_eq!(r.merges[1].sample, Some(1));
        assert_eq!(r.len_final, 3);
    }

    #[test]
    fn bad_input_is_an_error() {
        let cfg = MergeConfig::default();
        assert!(merge_batch(&[1, 2], &[0, 3], &[0, 0], &cfg, None).is_err());
        assert!(merge_batch(&[1, 2], &[0, 2], &[0], &cfg, None).is_err());
        assert!(merge_batch(&[1, 2], &[1, 2], &[0, 0], &cfg, None).is_err());
        assert!(merge_batch(&[1, 2], &[0, 2, 1, 2], &[0, 0], &cfg, None).is_err());
        assert!(merge_batch(&[1, 2], &[0, 2], &[0, -2], &cfg, None).is_err());
        assert!(merge_batch(&[u32::MAX, 2], &[0, 2], &[0, 0], &cfg, None).is_err());
        assert!(merge_batch(&[1], &[], &[0], &cfg, None).is_err());
        let bad = MergeConfig {
            min_count: 0,
            ..Default::default()
        };
        assert!(merge_batch(&[1], &[0, 1], &[0], &bad, None).is_err());
        let bad = MergeConfig {
            target: Some(Target::Abs(f64::NAN)),
            ..Default::default()
        };
        assert!(merge_batch(&[1], &[0, 1], &[0], &bad, None).is_err());
        let bad = MergeConfig {
            identity: Identity::Bytes,
            ..Default::default()
        };
        assert!(merge_batch(&[1], &[0, 1], &[0], &bad, None).is_err());
    }

    #[test]
    fn empty_batches_and_sequences() {
        let r = merge_batch(&[], &[0], &[], &MergeConfig::default(), None).expect("ok");
        assert_eq!((r.len_initial, r.seq_offsets.clone()), (0, vec![0]));
        let r = merge_batch(
            &[1, 1],
            &[0, 0, 2, 2],
            &[0, 0],
            &MergeConfig::default(),
            None,
        )
        .expect("ok");
        assert_eq!(r.seq_offsets, vec![0, 0, 1, 1]);
    }

    #[test]
    fn word_ids_follow_pretokenization_and_specials() {
        let pre = Pretokenizer::new("gpt2").expect("preset");
        let table = TokenTable {
            tokens: ["he", "llo", " wor", "ld", "<s>", "\u{e9}"]
                .iter()
                .map(|s| Some(s.as_bytes().to_vec()))
                .chain([Some(vec![0xc3]), Some(vec![0xa9])])
                .collect(),
            special: vec![false, false, false, false, true, false, false, false],
        };
        let w = word_ids(
            &[0, 1, 2, 3, 4, 0, 6, 7, 2],
            &[0, 9],
            &table,
            WordMode::Pieces(&pre),
        )
        .expect("ok");
        assert_eq!(w, vec![0, 0, 1, 1, -1, 2, 2, 2, 3]);
        let w = word_ids(&[0, 1, 4, 2], &[0, 4], &table, WordMode::None).expect("ok");
        assert_eq!(w, vec![0, 0, -1, 0]);
        assert!(word_ids(&[99], &[0, 1], &table, WordMode::None).is_err());
    }

    type Pair = (Vec<u32>, Vec<u32>);
    type Log = Vec<(Vec<u32>, Vec<u32>, u32)>;

    /// Naive reference (docs/dynamic_merging.md §3.1): recount all pairs after each merge.
    fn naive(seqs: &[Vec<(u32, i32)>], cfg: &MergeConfig) -> (Vec<Vec<Vec<u32>>>, Log) {
        let mut units: Vec<Vec<(Vec<u32>, i32)>> = seqs
            .iter()
            .map(|s| s.iter().map(|&(x, w)| (vec![x], w)).collect())
            .collect();
        let mut log = Vec::new();
        let maxlen = cfg.max_unit_constituents.unwrap_or(usize::MAX);
        let l0: usize = seqs.iter().map(Vec::len).sum();
        let lw: usize = seqs
            .iter()
            .map(|s| {
                (0..s.len())
                    .filter(|&i| s[i].1 == -1 || i == 0 || s[i].1 != s[i - 1].1)
                    .count()
            })
            .sum();
        let threshold = cfg.target.map(|t| t.threshold(l0, lw));
        let ok = |a: &(Vec<u32>, i32), b: &(Vec<u32>, i32)| {
            a.1 != -1 && a.1 == b.1 && a.0.len() + b.0.len() <= maxlen
        };
        loop {
            if cfg.max_merges.is_some_and(|m| log.len() >= m) {
                break;
            }
            let len: usize = units.iter().map(Vec::len).sum();
            if threshold.is_some_and(|t| len as f64 <= t) {
                break;
            }
            let mut order: Vec<Pair> = Vec::new();
            let mut counts: FxHashMap<Pair, u32> = FxHashMap::default();
            for s in &units {
                for w in s.windows(2) {
                    if ok(&w[0], &w[1]) {
                        let p = (w[0].0.clone(), w[1].0.clone());
                        let c = counts.entry(p.clone()).or_insert(0);
                        if *c == 0 {
                            order.push(p);
                        }
                        *c += 1;
                    }
                }
            }
            let mut best: Option<(&Pair, u32)> = None;
            for p in &order {
                let c = counts[p];
                if best.is_none_or(|(_, bc)| c > bc) {
                    best = Some((p, c));
                }
            }
            let Some(((a, b), c)) = best else { break };
            if c < cfg.min_count {
                break;
            }
            let (a, b) = (a.clone(), b.clone());
            for s in units.iter_mut() {
                let mut out = Vec::new();
                let mut i = 0;
                while i < s.len() {
                    if i + 1 < s.len() && s[i].0 == a && s[i + 1].0 == b && ok(&s[i], &s[i + 1]) {
                        out.push(([a.clone(), b.clone()].concat(), s[i].1));
                        i += 2;
                    } else {
                        out.push(s[i].clone());
                        i += 1;
                    }
                }
                *s = out;
            }
            log.push((a, b, c));
        }
        (
            units
                .into_iter()
                .map(|s| s.into_iter().map(|u| u.0).collect())
                .collect(),
            log,
        )
    }

    #[test]
    fn equals_naive_reference_on_random_batches() {
        // xorshift, fixed seed: deterministic
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for _ in 0..2000 {
            let b = rnd(5) as usize;
            let mut seqs = Vec::new();
            for _ in 0..b {
                let len = rnd(41) as usize;
                let mut w = 0i32;
                let s: Vec<(u32, i32)> = (0..len)
                    .map(|_| {
                        if rnd(4) == 0 {
                            w += 1;
                        }
                        (rnd(3) as u32, if rnd(10) == 0 { -1 } else { w })
                    })
                    .collect();
                seqs.push(s);
            }
            let cfg = MergeConfig {
                max_merges: if rnd(2) == 0 {
                    None
                } else {
                    Some(rnd(6) as usize)
                },
                min_count: 1 + rnd(2) as u32,
                max_unit_constituents: if rnd(3) == 0 {
                    Some(1 + rnd(4) as usize)
                } else {
                    None
                },
                target: match rnd(4) {
                    0 => Some(Target::Abs(rnd(11) as f64 / 10.0)),
                    1 => Some(Target::RelWord(rnd(11) as f64 / 10.0)),
                    2 => Some(Target::Len(rnd(20) as usize)),
                    _ => None,
                },
                ..Default::default()
            };
            let ids: Vec<u32> = seqs.iter().flatten().map(|x| x.0).collect();
            let wid: Vec<i32> = seqs.iter().flatten().map(|x| x.1).collect();
            let mut off = vec![0];
            for s in &seqs {
                off.push(off[off.len() - 1] + s.len());
            }
            let r = merge_batch(&ids, &off, &wid, &cfg, None).expect("ok");
            let (want_units, want_log) = naive(&seqs, &cfg);
            let log: Vec<(Vec<u32>, Vec<u32>, u32)> = r
                .merges
                .iter()
                .map(|m| (keys(&r, m.left), keys(&r, m.right), m.count))
                .collect();
            assert_eq!(log, want_log, "{seqs:?} {cfg:?}");
            let got: Vec<Vec<Vec<u32>>> = off
                .windows(2)
                .enumerate()
                .map(|(s, _)| {
                    (r.seq_offsets[s]..r.seq_offsets[s + 1])
                        .map(|q| {
                            let u = r.unit_ids[q] as usize;
                            r.unit_constituents[r.unit_offsets[u]..r.unit_offsets[u + 1]].to_vec()
                        })
                        .collect()
                })
                .collect();
            assert_eq!(got, want_units, "{seqs:?} {cfg:?}");
            assert_eq!(r.expand(), ids);
        }
    }

    // ---- merge_input: the Python API's arguments ------------------------------------------

    fn input_example() -> (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) {
        let (ids, off, w) = example();
        let ids = ids.into_iter().map(i64::from).collect();
        let off: Vec<i64> = off.into_iter().map(|o| o as i64).collect();
        let lens = off.windows(2).map(|w| w[1] - w[0]).collect();
        (ids, off, w.into_iter().map(i64::from).collect(), lens)
    }

    #[test]
    fn merge_input_with_word_ids_equals_merge_batch() {
        let (ids, off, w, lens) = input_example();
        let input = BatchInput {
            ids: &ids,
            offsets: &off,
            word_ids: Some(Ragged {
                values: &w,
                lengths: &lens,
            }),
            ..Default::default()
        };
        for min_count in [1, 2] {
            let opts = MergeOptions {
                min_count,
                ..Default::default()
            };
            let cfg = MergeConfig {
                min_count: min_count as u32,
                ..Default::default()
            };
            assert_eq!(merge_input(&input, &opts, None).unwrap(), go(&cfg));
        }
    }

    #[test]
    fn start_flags_number_words_from_zero_and_keep_specials_apart() {
        let table =
            TokenTable::new(vec![Some(b"a".to_vec()), Some(b"<s>".to_vec())], &[1]).unwrap();
        let ids = [0, 0, 1, 0, 0, 0];
        let flags = [0, 0, 0, 0, 1, 0];
        let input = BatchInput {
            ids: &ids,
            offsets: &[0, 4, 6],
            boundaries: Boundaries::Starts(Ragged {
                values: &flags,
                lengths: &[4, 2],
            }),
            ..Default::default()
        };
        let opts = MergeOptions {
            max_merges: Some(0),
            ..Default::default()
        };
        let r = merge_input(&input, &opts, Some(&table)).unwrap();
        assert_eq!(r.word_ids, vec![0, 0, -1, 0, 0, 0]);
        let r = merge_input(&input, &opts, None).unwrap();
        assert_eq!(r.word_ids, vec![0, 0, 0, 0, 0, 0]);
        let flags = [1, 0, 1, 1, 1, 1];
        let input = BatchInput {
            boundaries: Boundaries::Starts(Ragged {
                values: &flags,
                lengths: &[4, 2],
            }),
            ..input
        };
        assert_eq!(
            merge_input(&input, &opts, None).unwrap().word_ids,
            vec![0, 0, 1, 2, 0, 1]
        );
    }

    #[test]
    fn keep_last_marks_the_last_positions_never_merge() {
        let ids = [1i64; 5];
        let opts = MergeOptions {
            max_merges: Some(0),
            ..Default::default()
        };
        let base = BatchInput {
            ids: &ids,
            offsets: &[0, 3, 3, 5],
            boundaries: Boundaries::Mode("none"),
            ..Default::default()
        };
        let wid = |keep| {
            merge_input(
                &BatchInput {
                    keep_last: keep,
                    ..base
                },
                &opts,
                None,
            )
            .unwrap()
            .word_ids
        };
        assert_eq!(wid(KeepLast::Each(0)), vec![0; 5]);
        assert_eq!(wid(KeepLast::Each(2)), vec![0, -1, -1, -1, -1]);
        assert_eq!(wid(KeepLast::Each(i64::MAX)), vec![-1; 5]);
        assert_eq!(wid(KeepLast::PerSequence(&[1, 7, 0])), vec![0, 0, -1, 0, 0]);
    }

    #[test]
    fn boundary_modes_come_from_the_tokens() {
        let table = TokenTable::new(
            ["well", "-", "known", " x", ",", "<s>"]
                .iter()
                .map(|t| Some(t.as_bytes().to_vec()))
                .collect(),
            &[5],
        )
        .unwrap();
        let ids = [0, 1, 2, 3, 4, 5, 3];
        let opts = MergeOptions {
            max_merges: Some(0),
            ..Default::default()
        };
        let wid = |mode| {
            let input = BatchInput {
                ids: &ids,
                offsets: &[0, 7],
                boundaries: Boundaries::Mode(mode),
                ..Default::default()
            };
            merge_input(&input, &opts, Some(&table)).map(|r| r.word_ids)
        };
        assert_eq!(wid("whitespace").unwrap(), vec![0, 0, 0, 1, 1, -1, 2]);
        assert_eq!(
            wid("whitespace_hyphen").unwrap(),
            vec![0, 0, 0, 1, 2, -1, 3]
        );
        assert_eq!(wid("none").unwrap(), vec![0, 0, 0, 0, 0, -1, 0]);
        let e = wid("word").unwrap_err().to_string();
        assert!(e.contains("a token table has none"), "{e}");
    }

    /// Every bad argument of the Python API fails in `merge_input` with its own message.
    #[test]
    fn each_bad_argument_has_one_message() {
        let (ids, off, w, lens) = input_example();
        let table = TokenTable::new(vec![Some(b"a".to_vec()); 3], &[]).unwrap();
        let good = BatchInput {
            ids: &ids,
            offsets: &off,
            word_ids: Some(Ragged {
                values: &w,
                lengths: &lens,
            }),
            ..Default::default()
        };
        let opts = MergeOptions::default();
        let err = |input: BatchInput<'_>, o: MergeOptions<'_>, t: Option<&dyn TokenSource>| {
            merge_input(&input, &o, t).unwrap_err().to_string()
        };
        let bad_ids = [1, 2, -2];
        let wrong_lens = [6, 5, 2];
        let bad_w = [-2; 14];
        let flags = [2i64; 14];
        let cases: Vec<(String, &str)> = vec![
            (
                err(BatchInput { ids: &bad_ids, offsets: &[0, 1, 3], word_ids: None, boundaries: Boundaries::Mode("none"), ..good }, opts, None),
                "batch[1][1] = -2: ids must be in [0, 2**31)",
            ),
            (
                err(BatchInput { ids: &[1 << 31], offsets: &[0, 1], word_ids: None, boundaries: Boundaries::Mode("none"), ..good }, opts, None),
                "batch[0][0] = 2147483648: ids must be in [0, 2**31)",
            ),
            (
                err(BatchInput { offsets: &[0, 6, 5, 14], ..good }, opts, None),
                "offsets decrease at sequence 1: 6 > 5",
            ),
            (
                err(BatchInput { offsets: &[0, -6, 14], ..good }, opts, None),
                "offsets[1] = -6 is negative",
            ),
            (
                err(BatchInput { offsets: &[], ..good }, opts, None),
                "offsets must start at 0 and end at the number of ids (14); got no offsets (a batch of B sequences has B + 1)",
            ),
            (
                err(BatchInput { word_ids: Some(Ragged { values: &w, lengths: &lens[..1] }), ..good }, opts, None),
                "word_ids must have one entry per sequence: 3 sequences, 1 entries",
            ),
            (
                err(BatchInput { word_ids: Some(Ragged { values: &w, lengths: &wrong_lens }), ..good }, opts, None),
                "word_ids[2] has 2 entries but sequence 2 has 3 tokens",
            ),
            (
                err(BatchInput { word_ids: Some(Ragged { values: &bad_w, lengths: &lens }), ..good }, opts, None),
                "word_ids[0][0] = -2: word ids must be in [-1, 2**31) (-1 = never merge)",
            ),
            (
                err(BatchInput { word_ids: None, boundaries: Boundaries::Starts(Ragged { values: &flags, lengths: &lens }), ..good }, opts, None),
                "word_boundaries[0][0] = 2: word-start flags must be booleans (or 0/1)",
            ),
            (
                err(BatchInput { boundaries: Boundaries::Mode("none"), ..good }, opts, None),
                "give word_ids or word_boundaries, not both",
            ),
            (
                err(BatchInput { word_ids: None, boundaries: Boundaries::Mode("sentences"), ..good }, opts, None),
                "word_boundaries=\"sentences\" is not one of 'word', 'whitespace', 'whitespace_hyphen', 'none', word-start flags or a callable",
            ),
            (
                err(BatchInput { word_ids: None, ..good }, opts, None),
                "word_boundaries=\"word\" needs tokenizer=...; or pass word-start flags, word_ids=..., or word_boundaries='none' to merge across words",
            ),
            (
                err(BatchInput { keep_last: KeepLast::Each(-1), ..good }, opts, None),
                "keep_last must be non-negative, got -1",
            ),
            (
                err(BatchInput { keep_last: KeepLast::PerSequence(&[1, 2]), ..good }, opts, None),
                "keep_last must be an int or one int per sequence (3), got 2",
            ),
            (
                err(good, MergeOptions { min_count: 0, ..opts }, None),
                "min_count must be an integer >= 1, got 0",
            ),
            (
                err(good, MergeOptions { max_merges: Some(-1), ..opts }, None),
                "max_merges must be an integer >= 0, got -1",
            ),
            (
                err(good, MergeOptions { max_unit_constituents: Some(0), ..opts }, None),
                "max_unit_constituents must be an integer >= 1, got 0",
            ),
            (
                err(good, MergeOptions { target_length: Some(-3), ..opts }, None),
                "target_length must be an integer >= 0, got -3",
            ),
            (
                err(good, MergeOptions { target_reduction: Some(f64::NAN), ..opts }, None),
                "target_reduction must be a number in [0, 1], got NaN",
            ),
            (
                err(good, MergeOptions { target_reduction: Some(0.5), target_length: Some(3), ..opts }, None),
                "give at most one of target_reduction and target_length",
            ),
            (
                err(good, MergeOptions { relative_to: "words", ..opts }, None),
                "relative_to=\"words\" is not 'input' or 'word_level'",
            ),
            (
                err(good, MergeOptions { identity: "strings", ..opts }, None),
                "identity=\"strings\" is not 'ids' or 'bytes'",
            ),
            (
                err(good, MergeOptions { identity: "bytes", ..opts }, None),
                "identity=\"bytes\" needs token bytes: pass tokenizer=... (a tokenizer or a token_table)",
            ),
            (
                err(good, opts, Some(&table)),
                "batch[0][3] = 3 is not in the vocabulary",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        // the typed path says the same for the same problems
        let bad = MergeConfig {
            min_count: 0,
            ..Default::default()
        };
        let e = merge_batch(&[1], &[0, 1], &[0], &bad, None).unwrap_err();
        assert_eq!(e.to_string(), "min_count must be an integer >= 1, got 0");
        let e = merge_batch(
            &[1, u32::MAX],
            &[0, 1, 2],
            &[0, 0],
            &MergeConfig::default(),
            None,
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "batch[1][0] = 4294967295: ids must be in [0, 2**31)"
        );
        assert!(TokenTable::new(vec![None], &[1]).is_err());
        assert!(TokenTable::new(vec![None], &[-1]).is_err());
    }

    #[test]
    fn merge_input_never_panics_on_inconsistent_ragged_input() {
        let ids = [1i64, 2, 3];
        for (values, lengths) in [
            (&[0i64, 0][..], &[3i64][..]),
            (&[0, 0, 0, 0][..], &[3][..]),
            (&[0, 0, 0][..], &[-1][..]),
            (&[0, 0, 0][..], &[i64::MAX][..]),
        ] {
            let r = Ragged { values, lengths };
            for input in [
                BatchInput {
                    ids: &ids,
                    offsets: &[0, 3],
                    word_ids: Some(r),
                    ..Default::default()
                },
                BatchInput {
                    ids: &ids,
                    offsets: &[0, 3],
                    boundaries: Boundaries::Starts(r),
                    ..Default::default()
                },
            ] {
                assert!(merge_input(&input, &MergeOptions::default(), None).is_err());
            }
        }
    }
}
