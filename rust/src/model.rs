//! # One interface over every tokenizer model: [`TokenModel`]
//!
//! tokforge has two model families: byte-level BPE ([`Bpe`]: merges applied inside
//! pre-tokenization pieces, docs/bpe.md §4) and LiB ([`LibModel`]: larger-first segmentation of
//! lines with a counterfactual comparison, docs/lib.md §4 and §8). Everything that only *uses* a tokenizer
//! (the Python `TokenModel` class, batch encoding, analysis) goes through this trait, so it is
//! written once for both. Capabilities that need one family's internals (BPE merges for dynamic
//! merging and byte probabilities, LiB units and segmenter) ask for it with [`TokenModel::as_bpe`]
//! / [`TokenModel::as_lib`] (or [`TokenModel::into_bpe`] for a shared handle) and say clearly
//! when the model is of the other kind.
//!
//! Each method delegates to the model's own implementation: the trait adds no algorithm and no
//! cost beyond one virtual call per text (ids are exactly those of the concrete methods).
//! Complexity is the model's: BPE O(n log n) worst case per piece, O(n) typical with the
//! per-thread piece cache; LiB O(n x match depth).
//!
//! Invariants every implementation keeps (tested below for both models, through `dyn
//! TokenModel`):
//! - ids are `0..vocab_size()`; [`TokenModel::token_bytes`] is `Some` for every id an encoder
//!   emits, and `decode_bytes(encode(t, m)) == t` as bytes for every text `t` (both families
//!   are byte-level: every string encodes, nothing is lost);
//! - `encode(t, None) == encode_ordinary(t)`; `encode_into(t, m, out)` appends `encode(t, m)`
//!   to `out`; `encode_with_spans(t, m).0 == encode(t, m)` and
//!   the spans are in order, tile `t`'s bytes and each is the bytes of its id;
//! - `encode_batch(ts, m)[i] == encode(ts[i], m)` for any rayon thread count;
//! - `is_special(id)` holds exactly for the ids in [`TokenModel::specials`]; for a byte string
//!   `b`, `id_of(b) == Some(id)` implies `token_bytes(id) == Some(b)`;
//! - for `c = stream_cut(t)` (a char boundary, 0 = none): `encode_ordinary(&t[..c])` followed by
//!   the ids of any continuation of `&t[c..]` equals the ids of the whole (what lets
//!   `Tokenizer.encode_stream` hold text back only after the cut; docs/bpe.md §2.3: BPE with a
//!   custom pattern never cuts; docs/lib.md §8.3: LiB cuts after a newline).

use crate::batch_texts::BatchTexts;
use crate::bpe::Bpe;
use crate::error::Result;
use crate::lib_model::LibModel;
use crate::pretokenize::Pretokenizer;
use crate::sentencepiece::SpBpe;
use crate::special::SpecialMatcher;
use rayon::prelude::*;
use std::sync::Arc;

/// The family of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Byte-level BPE ([`Bpe`]).
    Bpe,
    /// Less-is-Better ([`LibModel`]).
    Lib,
    /// SentencePiece-style BPE ([`SpBpe`]: `▁` word marker, byte fallback, normalizers).
    SentencePiece,
}

impl ModelKind {
    /// `"bpe"` or `"lib"`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Bpe => "bpe",
            ModelKind::Lib => "lib",
            ModelKind::SentencePiece => "sentencepiece",
        }
    }
}

/// Who encodes a batch that a thread outside `pool` starts ([`TokenModel::encode_each_here`],
/// [`TokenModel::encode_batch_flat_here`]): `workers` threads of `pool`, and, where the model
/// lets it ([`TokenModel::calling_thread_encodes`]), the calling thread, for the texts shorter
/// than `own` bytes (none when 0). A batch of fewer than `alone_below` bytes is encoded by one
/// thread (the calling thread where it may encode): waking a pool thread and waiting for it
/// would cost more than it saves.
#[derive(Clone, Copy)]
pub struct Split<'a> {
    pub pool: &'a rayon::ThreadPool,
    pub workers: usize,
    pub own: usize,
    pub alone_below: usize,
}

impl Split<'_> {
    /// Whether a batch of `bytes` bytes of text is encoded by one thread ([`Split`]).
    pub fn alone(&self, bytes: usize) -> bool {
        bytes < self.alone_below
    }
}

/// The part of the thread that starts a batch with [`TokenModel::encode_each_here`] (or
/// [`TokenModel::encode_batch_flat_here`], where there is nothing to take care of but Ctrl-C):
/// it takes care of the texts the batch has finished (their ids went to the batch's sink)
/// between the texts it encodes itself, and while it waits for the others.
pub trait Caller {
    /// Take care of the texts finished so far; with `wait`, first wait for one (at most a
    /// short while). `false` stops the batch: the texts not started are skipped.
    fn between(&mut self, wait: bool) -> bool;
    /// Every text is taken care of, or the batch failed.
    fn done(&self) -> bool;
    /// Make every text of the batch arrive ([`BatchTexts::arrive`]), in order, while the other
    /// threads encode those that have; called once, first, when some are still to come.
    /// `false` stops the batch (the texts it could not make are closed off). The default: a
    /// caller whose texts were all there.
    fn feed(&mut self) -> bool {
        true
    }
}

/// [`TokenModel::encode`] of text `i` of a batch: its error names the text
/// ([`crate::Error::in_text`]).
fn encode_nth<M: TokenModel + ?Sized>(
    m: &M,
    i: usize,
    text: &str,
    allowed: Option<&SpecialMatcher>,
) -> Result<Vec<u32>> {
    m.encode(text, allowed).map_err(|e| e.in_text(i))
}

/// Every text of `texts`, `caller` first making those still to come arrive (a model whose pool
/// encodes every text starts once all have); an interruption when they do not.
pub fn all_arrived<'a>(texts: &BatchTexts<'a>, caller: &mut dyn Caller) -> Result<Vec<&'a str>> {
    fed(texts, caller);
    texts.all().ok_or_else(crate::cancel::cancelled)
}

/// Whether every text of `texts` has arrived, `caller` first making those still to come
/// arrive ([`Caller::feed`]); when they have not, `texts` is closed (no thread waits for one).
pub fn fed(texts: &BatchTexts<'_>, caller: &mut dyn Caller) -> bool {
    if texts.all_there() {
        return true;
    }
    let ok = caller.feed() && texts.all_there();
    if !ok {
        texts.close();
    }
    ok
}

/// What every tokforge tokenizer model can do; see the module docs for the invariants.
pub trait TokenModel: Send + Sync {
    /// Which family this model is.
    fn kind(&self) -> ModelKind;

    // ---- vocabulary --------------------------------------------------------------------
    /// Number of ids (one more than the largest id).
    fn vocab_size(&self) -> usize;
    /// Bytes of `id` (a special token's text); `None` for an unknown or unused id.
    fn token_bytes(&self, id: u32) -> Option<&[u8]>;
    /// Id of a regular token given by its bytes.
    fn id_of(&self, bytes: &[u8]) -> Option<u32>;

    // ---- special tokens ----------------------------------------------------------------
    /// `(text, id)` of the special tokens, by id.
    fn specials(&self) -> &[(String, u32)];
    /// Whether `id` is a special token.
    fn is_special(&self, id: u32) -> bool;
    /// A matcher for the special tokens with these ids (`None` if `ids` is empty); an id that
    /// is not special is a [`crate::Error::Vocab`].
    fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>>;
    /// A matcher for the special tokens `allowed` (they become their ids) that refuses the
    /// text of those `refused` ([`SpecialMatcher::check`]: the encoders fail on a text that
    /// holds one); `None` if both are empty.
    fn special_rules(&self, allowed: &[u32], refused: &[u32]) -> Result<Option<SpecialMatcher>> {
        Ok(SpecialMatcher::refusing(
            self.special_matcher(allowed)?,
            self.special_matcher(refused)?,
        ))
    }
    /// Id of the special token spelled `text`.
    fn special_id(&self, text: &str) -> Option<u32> {
        self.specials()
            .iter()
            .find(|(t, _)| t == text)
            .map(|(_, id)| *id)
    }

    // ---- encoding ----------------------------------------------------------------------
    /// Ids of `text`; special-token text is ordinary text.
    fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>>;
    /// Ids of `text`; the special tokens `allowed` matches become their ids.
    fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>>;
    /// [`TokenModel::encode`] appended to `out` (a buffer reused across calls saves the
    /// allocation, and the copies of its growth).
    fn encode_into(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        out.extend(self.encode(text, allowed)?);
        Ok(())
    }
    /// Ids with the byte span `(start, end)` of each in `text`.
    fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<(usize, usize)>)>;
    /// [`TokenModel::encode`] of each text, in parallel on the current rayon pool; the same
    /// result for any thread count.
    fn encode_batch(
        &self,
        texts: &[&str],
        allowed: Option<&SpecialMatcher>,
    ) -> Result<Vec<Vec<u32>>> {
        let cancel = crate::cancel::current();
        texts
            .par_iter()
            .enumerate()
            .map(|(i, t)| crate::cancel::scope(&cancel, || encode_nth(self, i, t, allowed)))
            .collect()
    }
    /// [`TokenModel::encode_batch`] as one flat buffer and offsets (`ids[off[i]..off[i + 1]]`
    /// are text `i`'s); `flat(n)` gives the buffer for `n` ids (its contents are replaced).
    fn encode_batch_flat(
        &self,
        texts: &[&str],
        allowed: Option<&SpecialMatcher>,
        flat: &mut dyn FnMut(usize) -> Vec<u32>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        let parts = self.encode_batch(texts, allowed)?;
        let parts: Vec<&[u32]> = parts.iter().map(Vec::as_slice).collect();
        Ok(crate::bpe::concat(&parts, flat))
    }
    /// Whether [`TokenModel::encode_each_here`] and [`TokenModel::encode_batch_flat_here`] let
    /// the calling thread encode (BPE); otherwise the pool encodes every text.
    fn calling_thread_encodes(&self) -> bool {
        false
    }
    /// [`TokenModel::encode_batch_flat`] on `pool`, called from a thread outside it that calls
    /// `caller` meanwhile (its `false` stops the batch); `caller` takes care of no text, so its
    /// `done` may stay `false`. BPE: the threads of `split` encode, this one between calls of
    /// `caller` ([`Bpe::encode_batch_flat_here`]). Others: the pool encodes, this thread only
    /// calls `caller` (with `wait`; it is unparked when the pool is done), then copies the ids
    /// into the flat buffer.
    fn encode_batch_flat_here(
        &self,
        split: Split<'_>,
        texts: &BatchTexts<'_>,
        allowed: Option<&SpecialMatcher>,
        flat: &mut (dyn FnMut(usize) -> Vec<u32> + Send),
        caller: &mut dyn Caller,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        let arrived = all_arrived(texts, caller)?;
        // every text is there: `least` is their bytes, counted as they arrived
        let alone = split.alone(texts.least());
        let texts = &arrived;
        if alone {
            let parts = texts
                .iter()
                .enumerate()
                .map(|(i, t)| encode_nth(self, i, t, allowed))
                .collect::<Result<Vec<_>>>()?;
            let mut ids = flat(parts.iter().map(Vec::len).sum());
            ids.clear();
            let mut ends = vec![0i64];
            for p in &parts {
                ids.extend_from_slice(p);
                ends.push(ids.len() as i64);
            }
            return Ok((ids, ends));
        }
        let (outer, stop) = (crate::cancel::current(), crate::cancel::Cancel::new());
        let parts = std::sync::Mutex::new(None);
        let finished = std::sync::atomic::AtomicBool::new(false);
        let waiter = std::thread::current();
        let pool = split.pool;
        pool.in_place_scope(|s| {
            s.spawn(|_| {
                let r = crate::cancel::scope(&stop, || self.encode_batch(texts, allowed));
                if let Ok(mut p) = parts.lock() {
                    *p = Some(r);
                }
                finished.store(true, std::sync::atomic::Ordering::Release);
                waiter.unpark();
            });
            while !finished.load(std::sync::atomic::Ordering::Acquire) {
                if outer.is_set() || !caller.between(true) {
                    stop.set();
                    break;
                }
            }
        });
        let parts = parts
            .into_inner()
            .ok()
            .flatten()
            .ok_or_else(crate::cancel::cancelled)??;
        if stop.is_set() {
            return Err(crate::cancel::cancelled());
        }
        let parts: Vec<&[u32]> = parts.iter().map(Vec::as_slice).collect();
        let buffer = flat(parts.iter().map(|p| p.len()).sum());
        Ok(pool.install(|| crate::bpe::concat(&parts, |_| buffer)))
    }
    /// [`TokenModel::encode`] of each text, in parallel on the current rayon pool, handing
    /// `(index, ids)` to `sink` as each text is done (in no particular order). After an error
    /// the texts not yet started may be skipped.
    fn encode_each(
        &self,
        texts: &[&str],
        allowed: Option<&SpecialMatcher>,
        sink: &(dyn Fn(usize, Result<Vec<u32>>) + Sync),
    ) {
        let cancel = crate::cancel::current();
        texts.par_iter().enumerate().for_each(|(i, t)| {
            if cancel.is_set() {
                return;
            }
            sink(
                i,
                crate::cancel::scope(&cancel, || encode_nth(self, i, t, allowed)),
            );
        });
    }
    /// [`TokenModel::encode_each`] on `pool`, called from a thread outside it that takes care
    /// of the results through `caller` (see [`Caller`]). BPE: the threads of `split` encode,
    /// this one between calls of `caller` ([`Bpe::encode_each_here`]). Others: the pool encodes,
    /// this thread only calls `caller`.
    fn encode_each_here(
        &self,
        split: Split<'_>,
        texts: &BatchTexts<'_>,
        allowed: Option<&SpecialMatcher>,
        sink: &(dyn Fn(usize, Result<Vec<u32>>) + Sync),
        caller: &mut dyn Caller,
    ) {
        let Ok(arrived) = all_arrived(texts, caller) else {
            return;
        };
        let alone = split.alone(texts.least());
        let texts = &arrived;
        if alone {
            for (i, t) in texts.iter().enumerate() {
                sink(i, encode_nth(self, i, t, allowed));
                if !caller.between(false) {
                    return;
                }
            }
            return;
        }
        // the pool's own handle: set when the caller stops or this thread's handle is set
        let (outer, stop) = (crate::cancel::current(), crate::cancel::Cancel::new());
        split.pool.in_place_scope(|s| {
            s.spawn(|_| crate::cancel::scope(&stop, || self.encode_each(texts, allowed, sink)));
            while !caller.done() {
                if outer.is_set() || !caller.between(true) {
                    stop.set();
                    break;
                }
            }
        });
    }
    /// Concatenated bytes of `ids`; an unknown id is a [`crate::Error::Vocab`] naming it.
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>>;
    /// Byte length of the longest prefix of `text` whose ids cannot depend on what follows
    /// (0 if none); always a char boundary.
    fn stream_cut(&self, text: &str) -> usize;

    // ---- structure ---------------------------------------------------------------------
    /// The regex pre-tokenizer applied before the model, if any (BPE: always; LiB: in its
    /// "no-supra" mode only).
    fn pretokenizer(&self) -> Option<&Pretokenizer>;
    /// The regex whose pieces are encoded independently of each other.
    fn pattern(&self) -> &str;
    /// Short name of [`TokenModel::pattern`]: a preset name, `"custom"` or `"lib"`.
    fn pattern_name(&self) -> &str;
    /// The merge list `(left, right)` in priority order; `None` for models without merges.
    fn merges(&self) -> Option<&[(u32, u32)]> {
        None
    }
    /// The model in its own file format: HF `tokenizer.json` for BPE, tokforge's LiB JSON for
    /// LiB (see [`crate::formats`]).
    fn to_json(&self) -> Result<String>;

    /// The table of piece encodings kept across calls (docs/bpe.md §13), for models that have
    /// one.
    fn piece_cache(&self) -> Option<&crate::bpe::piece_table::PieceCache> {
        None
    }

    // ---- downcasts ---------------------------------------------------------------------
    /// The BPE model, if this is one.
    fn as_bpe(&self) -> Option<&Bpe> {
        None
    }
    /// The LiB model, if this is one.
    fn as_lib(&self) -> Option<&LibModel> {
        None
    }
    /// The SentencePiece-style BPE model, if this is one.
    fn as_sentencepiece(&self) -> Option<&SpBpe> {
        None
    }
    /// A shared handle on the BPE model, if this is one (for structures that keep it).
    fn into_bpe(self: Arc<Self>) -> Option<Arc<Bpe>> {
        None
    }
}

impl TokenModel for Bpe {
    fn kind(&self) -> ModelKind {
        ModelKind::Bpe
    }
    fn vocab_size(&self) -> usize {
        Bpe::vocab_size(self)
    }
    fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        Bpe::token_bytes(self, id)
    }
    fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        Bpe::id_of(self, bytes)
    }
    fn specials(&self) -> &[(String, u32)] {
        Bpe::specials(self)
    }
    fn is_special(&self, id: u32) -> bool {
        Bpe::is_special(self, id)
    }
    fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        Bpe::special_matcher(self, ids)
    }
    fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        Bpe::encode_ordinary(self, text)
    }
    fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>> {
        Bpe::encode(self, text, allowed)
    }
    fn encode_into(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        Bpe::encode_into(self, text, allowed, out)
    }
    /// The threads share one piece table ([`Bpe::encode_each`]).
    fn encode_each(
        &self,
        texts: &[&str],
        allowed: Option<&SpecialMatcher>,
        sink: &(dyn Fn(usize, Result<Vec<u32>>) + Sync),
    ) {
        Bpe::encode_each(self, texts, allowed, sink)
    }
    fn calling_thread_encodes(&self) -> bool {
        true
    }
    /// This thread encodes too ([`Bpe::encode_each_here`]).
    fn encode_each_here(
        &self,
        split: Split<'_>,
        texts: &BatchTexts<'_>,
        allowed: Option<&SpecialMatcher>,
        sink: &(dyn Fn(usize, Result<Vec<u32>>) + Sync),
        caller: &mut dyn Caller,
    ) {
        Bpe::encode_each_here(self, split, texts, allowed, sink, caller)
    }
    /// The threads share one piece table ([`Bpe::encode_each`]).
    fn encode_batch(
        &self,
        texts: &[&str],
        allowed: Option<&SpecialMatcher>,
    ) -> Result<Vec<Vec<u32>>> {
        Bpe::encode_batch(self, texts, allowed)
    }
    /// Each thread copies a text's ids to their place ([`Bpe::encode_batch_flat`]).
    fn encode_batch_flat(
        &self,
        texts: &[&str],
        allowed: Option<&SpecialMatcher>,
        flat: &mut dyn FnMut(usize) -> Vec<u32>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        Bpe::encode_batch_flat(self, texts, allowed, flat)
    }
    /// This thread encodes too ([`Bpe::encode_batch_flat_here`]).
    fn encode_batch_flat_here(
        &self,
        split: Split<'_>,
        texts: &BatchTexts<'_>,
        allowed: Option<&SpecialMatcher>,
        flat: &mut (dyn FnMut(usize) -> Vec<u32> + Send),
        caller: &mut dyn Caller,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        Bpe::encode_batch_flat_here(self, split, texts, allowed, flat, caller)
    }
    fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let (ids, spans) = Bpe::encode_with_spans(self, text, allowed)?;
        Ok((ids, spans.into_iter().map(|s| (s.start, s.end)).collect()))
    }
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        Bpe::decode_bytes(self, ids)
    }
    fn stream_cut(&self, text: &str) -> usize {
        Bpe::pretokenizer(self).last_safe_cut(text).unwrap_or(0)
    }
    fn pretokenizer(&self) -> Option<&Pretokenizer> {
        Some(Bpe::pretokenizer(self))
    }
    fn pattern(&self) -> &str {
        Bpe::pretokenizer(self).pattern()
    }
    fn pattern_name(&self) -> &str {
        Bpe::pretokenizer(self).name()
    }
    fn merges(&self) -> Option<&[(u32, u32)]> {
        Some(Bpe::merges(self))
    }
    fn to_json(&self) -> Result<String> {
        crate::formats::hf_json::to_string(self)
    }
    fn piece_cache(&self) -> Option<&crate::bpe::piece_table::PieceCache> {
        Some(Bpe::piece_cache(self))
    }
    fn as_bpe(&self) -> Option<&Bpe> {
        Some(self)
    }
    fn into_bpe(self: Arc<Self>) -> Option<Arc<Bpe>> {
        Some(self)
    }
}

impl TokenModel for LibModel {
    fn kind(&self) -> ModelKind {
        ModelKind::Lib
    }
    fn vocab_size(&self) -> usize {
        LibModel::vocab_size(self)
    }
    fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        LibModel::token_bytes(self, id)
    }
    fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        LibModel::id_of(self, bytes)
    }
    fn specials(&self) -> &[(String, u32)] {
        LibModel::specials(self)
    }
    fn is_special(&self, id: u32) -> bool {
        LibModel::is_special(self, id)
    }
    fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        LibModel::special_matcher(self, ids)
    }
    fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        LibModel::encode_ordinary(self, text)
    }
    fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>> {
        LibModel::encode(self, text, allowed)
    }
    fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        LibModel::encode_with_spans(self, text, allowed)
    }
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        LibModel::decode_bytes(self, ids)
    }
    /// Lines are segmented independently: a stream can be cut after its last newline.
    fn stream_cut(&self, text: &str) -> usize {
        text.rfind('\n').map_or(0, |b| b + 1)
    }
    fn pretokenizer(&self) -> Option<&Pretokenizer> {
        LibModel::pretokenizer(self)
    }
    fn pattern(&self) -> &str {
        crate::lib_model::LINE_PATTERN
    }
    fn pattern_name(&self) -> &str {
        "lib"
    }
    fn to_json(&self) -> Result<String> {
        crate::formats::lib_json::to_string(self)
    }
    fn as_lib(&self) -> Option<&LibModel> {
        Some(self)
    }
}

/// SentencePiece-style BPE: text is normalized before merging, so the byte-level invariants of
/// the module docs hold only for lossless normalization (see [`crate::sentencepiece`]).
impl TokenModel for SpBpe {
    fn kind(&self) -> ModelKind {
        ModelKind::SentencePiece
    }
    fn vocab_size(&self) -> usize {
        SpBpe::vocab_size(self)
    }
    fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        SpBpe::token_bytes(self, id)
    }
    fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        SpBpe::id_of(self, bytes)
    }
    fn specials(&self) -> &[(String, u32)] {
        SpBpe::specials(self)
    }
    fn is_special(&self, id: u32) -> bool {
        SpBpe::is_special(self, id)
    }
    fn special_matcher(&self, ids: &[u32]) -> Result<Option<SpecialMatcher>> {
        SpBpe::special_matcher(self, ids)
    }
    fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_spans(text, None, None)
    }
    fn encode(&self, text: &str, allowed: Option<&SpecialMatcher>) -> Result<Vec<u32>> {
        self.encode_spans(text, allowed, None)
    }
    fn encode_with_spans(
        &self,
        text: &str,
        allowed: Option<&SpecialMatcher>,
    ) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let mut spans = Vec::new();
        let ids = self.encode_spans(text, allowed, Some(&mut spans))?;
        Ok((ids, spans))
    }
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        SpBpe::decode_bytes(self, ids)
    }
    /// Words may span the whole text (no pre-tokenizer): no cut is safe.
    fn stream_cut(&self, _text: &str) -> usize {
        0
    }
    fn pretokenizer(&self) -> Option<&Pretokenizer> {
        None
    }
    /// What is merged independently, on the normalized text: `▁`-words with a splitting
    /// Metaspace, else the whole text.
    fn pattern(&self) -> &str {
        match &self.config().metaspace {
            Some(m) if m.split => "▁?[^▁]+|▁",
            _ => "(?s).+",
        }
    }
    fn pattern_name(&self) -> &str {
        "sentencepiece"
    }
    fn merges(&self) -> Option<&[(u32, u32)]> {
        Some(SpBpe::merges(self))
    }
    fn to_json(&self) -> Result<String> {
        crate::formats::sp_json::to_string(self)
    }
    fn as_sentencepiece(&self) -> Option<&SpBpe> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::count::PieceCounts;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::lib_model::Rule;
    use crate::progress::Silent;
    use std::sync::atomic::{AtomicBool, Ordering};

    const TEXTS: [&str; 6] = [
        "the cat sat on the mat<|eot|>the dog",
        "",
        "\n\nlow lower lowest\r\n",
        "ünïcödé 🙂 the\ncat <|eot|>",
        "<|eot|><|eot|>",
        "a",
    ];

    fn bpe() -> Bpe {
        let pretok = Pretokenizer::new("gpt2").unwrap();
        let mut counts = PieceCounts::new();
        let docs = ["the cat sat on the mat, the dog sat on the log; low lower lowest"; 4];
        counts.add_docs(&pretok, &docs).unwrap();
        let cfg = TrainConfig {
            vocab_size: 300,
            min_frequency: 0,
            special_tokens: vec!["<|eot|>".into()],
            tie_order: TieOrder::Hf,
        };
        train(counts, pretok, &cfg, &Silent).unwrap().bpe
    }

    fn lib() -> LibModel {
        let units = ["the ", "cat", " sat", "the", "lo", "low", "ow"];
        LibModel::new(
            units.iter().map(|u| u.as_bytes().to_vec()).collect(),
            vec!["<|eot|>".into()],
            Rule::Fixed,
            serde_json::Value::Null,
        )
        .unwrap()
    }

    fn models() -> Vec<Arc<dyn TokenModel>> {
        vec![Arc::new(bpe()), Arc::new(lib())]
    }

    #[test]
    fn round_trip_spans_and_batch_agree_through_the_trait() {
        for m in models() {
            let eot = m.special_id("<|eot|>").unwrap();
            assert!(m.is_special(eot));
            let matcher = m.special_matcher(&[eot]).unwrap();
            for allowed in [None, matcher.as_ref()] {
                let batch = m.encode_batch(&TEXTS, allowed).unwrap();
                for (t, from_batch) in TEXTS.iter().zip(&batch) {
                    let ids = m.encode(t, allowed).unwrap();
                    assert_eq!(&ids, from_batch, "{:?} {t:?}", m.kind());
                    // appended after what the buffer holds, which it keeps
                    let mut into = vec![7, 7];
                    m.encode_into(t, allowed, &mut into).unwrap();
                    assert_eq!((&into[..2], &into[2..]), (&[7, 7][..], &ids[..]));
                    assert_eq!(m.decode_bytes(&ids).unwrap(), t.as_bytes());
                    let (ids2, spans) = m.encode_with_spans(t, allowed).unwrap();
                    assert_eq!(ids2, ids);
                    let mut at = 0;
                    for (&id, &(s, e)) in ids.iter().zip(&spans) {
                        assert_eq!(s, at);
                        assert_eq!(&t.as_bytes()[s..e], m.token_bytes(id).unwrap());
                        at = e;
                    }
                    assert_eq!(at, t.len());
                    if allowed.is_none() {
                        assert_eq!(m.encode_ordinary(t).unwrap(), ids);
                    }
                }
            }
            assert!(m.special_matcher(&[eot + 1]).is_err());
        }
    }

    /// The flat batch puts each text's ids at its place whichever thread finishes first:
    /// texts of very different lengths on two threads, specials allowed or not, one group or
    /// groups of one text or a few (the buffer grows between them), give the ids of single
    /// calls and offsets that tile the buffer. A set handle ends the batch with an error.
    #[test]
    fn the_flat_batch_places_every_text_in_order() {
        use crate::bpe::Crew::Pool;
        let b = bpe();
        let eot = b.special_id("<|eot|>").unwrap();
        let matcher = TokenModel::special_matcher(&b, &[eot]).unwrap();
        let long = "the cat sat on the mat lower ".repeat(300);
        let texts = with_long(&long, 90, 7, 3);
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for allowed in [None, matcher.as_ref()] {
            for group in [usize::MAX, 1, 500] {
                let mut asked = 0;
                let flat = |n| {
                    asked = n;
                    vec![7; n / 2]
                };
                let (ids, ends) = pool
                    .install(|| b.encode_flat_in_groups(&texts, allowed, flat, group, Pool))
                    .unwrap();
                assert!(
                    asked <= bytes && (group < bytes || asked == bytes),
                    "{group}"
                );
                assert_eq!((ends.len(), ends[0]), (texts.len() + 1, 0));
                assert_eq!(ends[texts.len()] as usize, ids.len());
                for (i, t) in texts.iter().enumerate() {
                    let got = &ids[ends[i] as usize..ends[i + 1] as usize];
                    assert_eq!(got, b.encode(t, allowed).unwrap(), "{group} {i}");
                }
            }
        }
        let cancel = crate::cancel::Cancel::new();
        cancel.set();
        let stopped = pool.install(|| {
            crate::cancel::scope(&cancel, || {
                b.encode_batch_flat(&texts, None, Vec::with_capacity)
            })
        });
        let e = stopped.err();
        assert!(
            matches!(e, Some(crate::error::Error::Interrupted(_))),
            "{e:?}"
        );
    }

    /// `n` texts: `long` at every `every`-th place from `at`, the short `TEXTS` between.
    fn with_long(long: &str, n: usize, every: usize, at: usize) -> Vec<&str> {
        (0..n)
            .map(|k| {
                if k % every == at {
                    long
                } else {
                    TEXTS[k % TEXTS.len()]
                }
            })
            .collect()
    }

    /// Splits of a batch as `(pool threads, workers, own)`; workers 0: this thread alone, the
    /// texts of `own` bytes or more on the pool.
    const SPLITS: [(usize, usize, usize); 5] = [
        (1, 1, 0),
        (1, 0, 100),
        (2, 1, 100),
        (2, 1, usize::MAX),
        (3, 2, 100),
    ];

    /// A caller of a flat batch: counts its rounds and stops the batch at round `stop_at`.
    struct Rounds {
        rounds: usize,
        stop_at: usize,
    }

    impl Caller for Rounds {
        fn between(&mut self, wait: bool) -> bool {
            if wait {
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
            self.rounds += 1;
            self.rounds < self.stop_at
        }
        fn done(&self) -> bool {
            false
        }
    }

    /// The flat batch with the calling thread taking part (BPE) or waiting (LiB): every text's
    /// ids in place for any split between the pool and the caller; a caller that stops at
    /// once ends a long batch with an interruption and no ids.
    #[test]
    fn the_flat_batch_with_the_calling_thread_gives_every_text_its_ids() {
        let long = "the cat sat on the mat lower ".repeat(300);
        let texts = with_long(&long, 60, 7, 3);
        for m in models() {
            for (threads, workers, own) in SPLITS {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut caller = Rounds {
                    rounds: 0,
                    stop_at: usize::MAX,
                };
                let (ids, ends) = m
                    .encode_batch_flat_here(
                        Split {
                            pool: &pool,
                            workers,
                            own,
                            alone_below: 0,
                        },
                        &BatchTexts::arrived(&texts),
                        None,
                        &mut Vec::with_capacity,
                        &mut caller,
                    )
                    .unwrap();
                assert_eq!(ends.len(), texts.len() + 1);
                for (i, t) in texts.iter().enumerate() {
                    let got = &ids[ends[i] as usize..ends[i + 1] as usize];
                    assert_eq!(got, m.encode(t, None).unwrap(), "{:?} {own} {i}", m.kind());
                }
            }
            let many = vec!["the cat sat on the mat"; 200_000];
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let mut caller = Rounds {
                rounds: 0,
                stop_at: 1,
            };
            let split = Split {
                pool: &pool,
                workers: 1,
                own: 100,
                alone_below: 0,
            };
            let many = BatchTexts::arrived(&many);
            let stopped =
                m.encode_batch_flat_here(split, &many, None, &mut Vec::with_capacity, &mut caller);
            let e = stopped.err();
            assert!(
                matches!(e, Some(crate::error::Error::Interrupted(_))),
                "{:?} {e:?}",
                m.kind()
            );
        }
    }

    /// A caller that keeps what the batch sends it, and stops after `stop_after` rounds.
    /// (Which thread encoded each text: the sink runs on it.)
    struct Keep {
        rx: std::sync::mpsc::Receiver<(usize, Result<Vec<u32>>, std::thread::ThreadId)>,
        got: Vec<Option<Vec<u32>>>,
        rounds: usize,
        stop_after: usize,
        on_this_thread: usize,
        /// Set when it stops the batch.
        stopped: std::sync::Arc<AtomicBool>,
    }

    impl Caller for Keep {
        fn between(&mut self, wait: bool) -> bool {
            let mut got: Vec<_> = self.rx.try_iter().collect();
            if got.is_empty() && wait {
                got.extend(self.rx.recv_timeout(std::time::Duration::from_millis(50)));
            }
            for (i, ids, thread) in got {
                self.got[i] = Some(ids.unwrap());
                self.on_this_thread += usize::from(thread == std::thread::current().id());
            }
            self.rounds += 1;
            let go_on = self.rounds < self.stop_after;
            if !go_on {
                self.stopped.store(true, Ordering::Release);
            }
            go_on
        }
        fn done(&self) -> bool {
            self.got.iter().all(Option::is_some)
        }
    }

    fn each_here(
        m: &dyn TokenModel,
        texts: &[&str],
        workers: usize,
        own: usize,
        stop_after: usize,
    ) -> Keep {
        each_here_how(m, texts, workers, own, stop_after, How::default())
    }

    /// How [`each_here_how`] runs its batch.
    #[derive(Default)]
    struct How {
        /// [`Split::alone_below`]
        alone_below: usize,
        /// A pool thread that has encoded a text waits (10 s at most from the batch's start)
        /// until this has happened, so that what a test checks does not hang on how the
        /// machine schedules the threads.
        hold_pool: Option<Until>,
    }

    /// What a held pool thread waits for ([`How::hold_pool`]).
    #[derive(Clone, Copy)]
    enum Until {
        /// The calling thread has encoded a text.
        CallingEncoded,
        /// The caller has stopped the batch.
        Stopped,
    }

    fn each_here_how(
        m: &dyn TokenModel,
        texts: &[&str],
        workers: usize,
        own: usize,
        stop_after: usize,
        How {
            alone_below,
            hold_pool,
        }: How,
    ) -> Keep {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stopped = std::sync::Arc::new(AtomicBool::new(false));
        let mut keep = Keep {
            rx,
            got: vec![None; texts.len()],
            rounds: 0,
            stop_after,
            on_this_thread: 0,
            stopped: std::sync::Arc::clone(&stopped),
        };
        let cancel = crate::cancel::Cancel::new();
        let calling = std::thread::current().id();
        let calling_went = AtomicBool::new(false);
        let (start, deadline) = (
            std::time::Instant::now(),
            std::time::Duration::from_secs(10),
        );
        let sink = |i, ids| {
            let thread = std::thread::current().id();
            if thread == calling {
                calling_went.store(true, Ordering::Release);
            } else if let Some(until) = hold_pool {
                let flag = match until {
                    Until::CallingEncoded => &calling_went,
                    Until::Stopped => &*stopped,
                };
                while !flag.load(Ordering::Acquire) && start.elapsed() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            tx.send((i, ids, thread)).unwrap();
        };
        crate::cancel::scope(&cancel, || {
            let split = Split {
                pool: &pool,
                workers,
                own,
                alone_below,
            };
            m.encode_each_here(split, &BatchTexts::arrived(texts), None, &sink, &mut keep)
        });
        keep
    }

    #[test]
    fn a_batch_with_the_calling_thread_taking_part_gives_every_text_its_ids() {
        let long = "the cat sat on the mat lower ".repeat(40);
        let mut texts: Vec<&str> = TEXTS.to_vec();
        texts.extend(std::iter::repeat_n(long.as_str(), 5));
        texts.extend(TEXTS);
        for m in models() {
            let want: Vec<Vec<u32>> = texts.iter().map(|t| m.encode(t, None).unwrap()).collect();
            // own = 0: the pool encodes alone; 100: the long texts are left to the pool
            for (workers, own) in [(1, 0), (0, 100), (1, 100), (2, 100), (1, usize::MAX)] {
                let keep = each_here(m.as_ref(), &texts, workers, own, usize::MAX);
                let got: Vec<Vec<u32>> = keep.got.into_iter().map(Option::unwrap).collect();
                assert_eq!(got, want, "{:?} {workers} {own}", m.kind());
                if m.kind() == ModelKind::Lib || own == 0 {
                    assert_eq!(keep.on_this_thread, 0, "{:?} {own}", m.kind());
                }
            }
        }
        // BPE: the calling thread encodes texts itself when it may
        let how = How {
            hold_pool: Some(Until::CallingEncoded),
            ..How::default()
        };
        let keep = each_here_how(&bpe(), &texts, 1, usize::MAX, usize::MAX, how);
        assert!(keep.on_this_thread > 0);
        // a batch smaller than `alone_below`: every model encodes it on the calling thread
        // (a larger one: the pool, with BPE's calling thread taking part)
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        for m in models() {
            let want: Vec<Vec<u32>> = texts.iter().map(|t| m.encode(t, None).unwrap()).collect();
            for alone_below in [bytes, bytes + 1] {
                let how = How {
                    alone_below,
                    ..How::default()
                };
                let keep = each_here_how(m.as_ref(), &texts, 2, usize::MAX, usize::MAX, how);
                let here = keep.on_this_thread;
                let got: Vec<Vec<u32>> = keep.got.into_iter().map(Option::unwrap).collect();
                assert_eq!(got, want, "{:?}", m.kind());
                if alone_below > bytes {
                    assert_eq!(here, texts.len(), "{:?}", m.kind());
                } else if m.kind() != ModelKind::Bpe {
                    assert_eq!(here, 0, "{:?}", m.kind());
                }
            }
        }
    }

    /// The pool's thread is held after its first text until the caller has stopped the batch:
    /// on a busy machine it could otherwise encode every text before the calling thread's
    /// first round (it did once in CI, beside a build).
    #[test]
    fn a_caller_that_stops_ends_the_batch() {
        let texts = vec!["the cat sat on the mat"; 200_000];
        let how = || How {
            hold_pool: Some(Until::Stopped),
            ..How::default()
        };
        for m in models() {
            let keep = each_here_how(m.as_ref(), &texts, 1, 100, 1, how());
            assert_eq!(keep.rounds, 1, "{:?}", m.kind());
            // the texts not started were skipped
            let sent = keep.got.iter().flatten().count() + keep.rx.try_iter().count();
            assert!(sent < texts.len() / 2, "{:?} {sent}", m.kind());
        }
    }

    /// A caller whose texts arrive while the batch runs: its feed makes them arrive one by
    /// one, pausing every few, and stops the batch at text `fail_at`. With `rx` it keeps the
    /// ids a batch of one `Vec` per text sends it.
    struct Feeding<'a> {
        all: &'a [&'a str],
        texts: &'a BatchTexts<'a>,
        fail_at: usize,
        feeds: usize,
        rx: Option<std::sync::mpsc::Receiver<(usize, Result<Vec<u32>>)>>,
        got: Vec<Option<Vec<u32>>>,
    }

    impl Caller for Feeding<'_> {
        fn between(&mut self, wait: bool) -> bool {
            if let Some(rx) = &self.rx {
                let mut got: Vec<_> = rx.try_iter().collect();
                if got.is_empty() && wait {
                    got.extend(rx.recv_timeout(std::time::Duration::from_millis(5)));
                }
                for (i, ids) in got {
                    self.got[i] = Some(ids.unwrap());
                }
            } else if wait {
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
            true
        }
        fn done(&self) -> bool {
            self.rx.is_some() && self.got.iter().all(Option::is_some)
        }
        fn feed(&mut self) -> bool {
            self.feeds += 1;
            for (k, t) in self.all.iter().enumerate() {
                if k == self.fail_at {
                    return false;
                }
                if k % 10 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
                self.texts.arrive(t);
            }
            true
        }
    }

    /// Texts that arrive while the batch runs (the calling thread makes them arrive as the
    /// others encode) get the ids of single calls, in both batch forms, for every model and
    /// split, and with a bound too large to encode them as they arrive (they all arrive
    /// first); a feed that stops half-way ends the batch with no ids, and no thread waits on.
    #[test]
    fn texts_that_arrive_while_the_batch_runs_get_their_ids() {
        let long = "the cat sat on the mat lower ".repeat(300);
        let all = with_long(&long, 120, 11, 5);
        let bytes: usize = all.iter().map(|t| t.len()).sum();
        for m in models() {
            let want: Vec<Vec<u32>> = all.iter().map(|t| m.encode(t, None).unwrap()).collect();
            for (threads, workers, own) in SPLITS {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let split = Split {
                    pool: &pool,
                    workers,
                    own,
                    alone_below: 0,
                };
                let what = format!("{:?} {threads} {own}", m.kind());
                for (chars, fail_at) in [
                    (bytes, usize::MAX),
                    (usize::MAX / 8, usize::MAX),
                    (bytes, 60),
                ] {
                    let coming = BatchTexts::coming(all.len(), chars);
                    let mut caller = Feeding {
                        all: &all,
                        texts: &coming,
                        fail_at,
                        feeds: 0,
                        rx: None,
                        got: Vec::new(),
                    };
                    let mut asked = 0;
                    let mut flat = |n| {
                        asked = n;
                        Vec::with_capacity(n)
                    };
                    let out =
                        m.encode_batch_flat_here(split, &coming, None, &mut flat, &mut caller);
                    assert_eq!(caller.feeds, 1, "{what}");
                    if fail_at < all.len() {
                        let e = out.err();
                        assert!(
                            matches!(e, Some(crate::error::Error::Interrupted(_))),
                            "{what} {e:?}"
                        );
                        continue;
                    }
                    let (ids, ends) = out.unwrap();
                    if m.kind() == ModelKind::Bpe {
                        assert_eq!(asked, bytes, "{what}");
                    }
                    assert_eq!(ends.len(), all.len() + 1, "{what}");
                    for (i, w) in want.iter().enumerate() {
                        assert_eq!(
                            &ids[ends[i] as usize..ends[i + 1] as usize],
                            w,
                            "{what} {i}"
                        );
                    }
                }
                for fail_at in [usize::MAX, 60] {
                    let coming = BatchTexts::coming(all.len(), bytes);
                    let (tx, rx) = std::sync::mpsc::channel();
                    let mut caller = Feeding {
                        all: &all,
                        texts: &coming,
                        fail_at,
                        feeds: 0,
                        rx: Some(rx),
                        got: vec![None; all.len()],
                    };
                    let sink = move |i, ids| tx.send((i, ids)).unwrap();
                    m.encode_each_here(split, &coming, None, &sink, &mut caller);
                    assert_eq!(caller.feeds, 1, "{what}");
                    if fail_at < all.len() {
                        assert!(!caller.done(), "{what}");
                        continue;
                    }
                    let got: Vec<Vec<u32>> = caller.got.into_iter().map(Option::unwrap).collect();
                    assert_eq!(got, want, "{what}");
                }
            }
        }
    }

    /// A caller that never sees its texts done and sets the batch's handle on its first round.
    struct CancelAtOnce(crate::cancel::Cancel);

    impl Caller for CancelAtOnce {
        fn between(&mut self, _: bool) -> bool {
            self.0.set();
            true
        }
        fn done(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_batch_whose_handle_is_set_returns() {
        let texts = vec!["the cat sat on the mat"; 200_000];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        for m in models() {
            for own in [0, 100] {
                let cancel = crate::cancel::Cancel::new();
                let mut caller = CancelAtOnce(cancel.clone());
                let split = Split {
                    pool: &pool,
                    workers: 1,
                    own,
                    alone_below: 0,
                };
                crate::cancel::scope(&cancel, || {
                    let texts = BatchTexts::arrived(&texts);
                    m.encode_each_here(split, &texts, None, &|_, _| {}, &mut caller)
                });
                assert!(cancel.is_set());
            }
        }
    }

    #[test]
    fn the_trait_gives_the_concrete_models_ids() {
        let (b, l) = (bpe(), lib());
        for t in TEXTS {
            assert_eq!(
                TokenModel::encode_ordinary(&b, t).unwrap(),
                b.encode_ordinary(t).unwrap()
            );
            assert_eq!(
                TokenModel::encode_ordinary(&l, t).unwrap(),
                l.encode_ordinary(t).unwrap()
            );
        }
    }

    #[test]
    fn vocabulary_lookups_agree() {
        for m in models() {
            for id in 0..m.vocab_size() as u32 {
                let Some(b) = m.token_bytes(id) else { continue };
                assert_eq!(m.is_special(id), m.specials().iter().any(|s| s.1 == id));
                if let Some(j) = m.id_of(b) {
                    assert_eq!(m.token_bytes(j), Some(b));
                }
            }
            assert_eq!(m.token_bytes(m.vocab_size() as u32), None);
            assert!(m.decode_bytes(&[m.vocab_size() as u32]).is_err());
        }
    }

    #[test]
    fn stream_cut_prefix_encodes_alone() {
        let text = "the cat sat on the mat\nthe dog sat on the log\nlow lower lowest and the";
        for m in models() {
            let cut = m.stream_cut(text);
            assert!(cut > 0 && text.is_char_boundary(cut), "{:?}", m.kind());
            let mut ids = m.encode_ordinary(&text[..cut]).unwrap();
            ids.extend(m.encode_ordinary(&text[cut..]).unwrap());
            assert_eq!(ids, m.encode_ordinary(text).unwrap());
        }
    }

    #[test]
    fn downcasts_name_the_family() {
        let [b, l]: [Arc<dyn TokenModel>; 2] = [Arc::new(bpe()), Arc::new(lib())];
        assert_eq!(b.kind().name(), "bpe");
        assert_eq!(l.kind().name(), "lib");
        assert!(b.as_bpe().is_some() && b.as_lib().is_none() && b.merges().is_some());
        assert!(l.as_lib().is_some() && l.as_bpe().is_none() && l.merges().is_none());
        assert!(l.pretokenizer().is_none());
        assert_eq!(l.pattern_name(), "lib");
        assert_eq!(b.pattern_name(), "gpt2");
        assert!(b.clone().into_bpe().is_some());
        assert!(l.into_bpe().is_none());
    }

    #[test]
    fn to_json_writes_each_familys_format() {
        let b: Arc<dyn TokenModel> = Arc::new(bpe());
        let l: Arc<dyn TokenModel> = Arc::new(lib());
        let bj = b.to_json().unwrap();
        let b2 = crate::formats::hf_json::from_str(&bj, "x").unwrap();
        let lj = l.to_json().unwrap();
        let l2 = crate::formats::lib_json::from_str(&lj, "x").unwrap();
        for t in TEXTS {
            assert_eq!(
                b2.encode_ordinary(t).unwrap(),
                b.encode_ordinary(t).unwrap()
            );
            assert_eq!(
                l2.encode_ordinary(t).unwrap(),
                l.encode_ordinary(t).unwrap()
            );
        }
    }
}
