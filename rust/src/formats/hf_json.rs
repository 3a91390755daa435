//! HF `tokenizers` `tokenizer.json`, byte-level BPE subset (docs/bpe.md §5.2).
//!
//! Written files use `Split(pattern, "Isolated")` (one per regex of a GGUF pre-tokenizer
//! sequence) + `ByteLevel(use_regex=false)` pre-tokenizers,
//! a ByteLevel decoder, no normalizer, and list special tokens in `added_tokens` (and in the
//! vocab, as HF's trainer does). Read files may also use `ByteLevel(use_regex=true)` (the GPT-2
//! pattern). Any other component is rejected with a [`Error::Format`] naming it: tokforge never
//! loads a file whose ids it would get wrong.

use crate::bpe::Bpe;
use crate::byte_level;
use crate::error::{Error, Result};
use crate::pretokenize::{Preset, Pretokenizer};
use serde_json::{json, Map, Value};

/// Serialize a model to `tokenizer.json` text.
pub fn to_string(bpe: &Bpe) -> Result<String> {
    // spellings in id order (None: an unused id); a special token is listed under its text,
    // unless a regular token is spelled so (it stays in `added_tokens` only, where readers
    // take special tokens from): one key for two ids would lose the regular token
    let spellings: Vec<Option<String>> = (0..bpe.tokens().len() as u32)
        .map(|id| match bpe.token_bytes(id).unwrap_or_default() {
            [] => None,
            t if bpe.is_special(id) => Some(String::from_utf8_lossy(t).into_owned()),
            t => Some(byte_level::encode_bytes(t)),
        })
        .collect();
    let regular: rustc_hash::FxHashSet<&str> = spellings
        .iter()
        .enumerate()
        .filter(|(id, _)| !bpe.is_special(*id as u32))
        .filter_map(|(_, s)| s.as_deref())
        .collect();
    let mut vocab = Map::new();
    for (id, s) in spellings.iter().enumerate() {
        match s {
            Some(s) if !(bpe.is_special(id as u32) && regular.contains(s.as_str())) => {
                vocab.insert(s.clone(), json!(id));
            }
            _ => {}
        }
    }
    let spell = |id: u32| byte_level::encode_bytes(bpe.token_bytes(id).unwrap_or_default());
    let merges: Vec<Value> = bpe
        .merges()
        .iter()
        .map(|&(l, r)| json!([spell(l), spell(r)]))
        .collect();
    let added: Vec<Value> = bpe
        .specials()
        .iter()
        .map(|(text, id)| {
            json!({"id": id, "content": text, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    // one Split per regex (a GGUF pre-tokenizer may be several, applied in turn), then ByteLevel
    let regexes = match bpe.pretokenizer().sequence_patterns() {
        Some(list) => list.into_iter().map(str::to_string).collect(),
        None => vec![bpe.pretokenizer().hf_pattern()],
    };
    let mut pretokenizers: Vec<Value> = regexes
        .into_iter()
        .map(|r| {
            json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated",
                        "invert": false})
        })
        .collect();
    pretokenizers.push(json!({"type": "ByteLevel", "add_prefix_space": false,
                              "trim_offsets": true, "use_regex": false}));
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pretokenizers},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": bpe.ignore_merges(),
            "vocab": vocab, "merges": merges
        }
    });
    serde_json::to_string_pretty(&doc).map_err(|e| Error::Input(e.to_string()))
}

fn fmt_err(path: &str, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        message: message.into(),
    }
}

fn field<'a>(v: &'a Value, key: &str, path: &str, at: &str) -> Result<&'a Value> {
    v.get(key)
        .ok_or_else(|| fmt_err(path, format!("{at}: missing field {key:?}")))
}

fn is_false(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

fn parse_pretokenizer(v: &Value, path: &str) -> Result<Pretokenizer> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("null");
    let bytelevel_ok = |b: &Value, want_regex: bool| -> Result<()> {
        if !is_false(b.get("add_prefix_space")) {
            return Err(fmt_err(
                path,
                "pre_tokenizer ByteLevel has add_prefix_space=true, which tokforge does not \
                 implement (expected false)",
            ));
        }
        let uses_regex = b.get("use_regex").and_then(Value::as_bool).unwrap_or(true);
        if uses_regex != want_regex {
            return Err(fmt_err(
                path,
                format!("pre_tokenizer ByteLevel use_regex={uses_regex} is not supported here (expected {want_regex})"),
            ));
        }
        Ok(())
    };
    match kind {
        "ByteLevel" => {
            bytelevel_ok(v, true)?;
            Pretokenizer::new(Preset::Gpt2.name())
        }
        "Sequence" => {
            let parts = v
                .get("pretokenizers")
                .and_then(Value::as_array)
                .ok_or_else(|| fmt_err(path, "pre_tokenizer Sequence without a pretokenizers list"))?;
            let Some((bl, splits)) = parts.split_last().filter(|(_, s)| !s.is_empty()) else {
                return Err(fmt_err(
                    path,
                    format!("pre_tokenizer Sequence of {} parts; tokforge reads [Split, ..., ByteLevel]", parts.len()),
                ));
            };
            if splits.iter().any(|s| s.get("type").and_then(Value::as_str) != Some("Split"))
                || bl.get("type").and_then(Value::as_str) != Some("ByteLevel")
            {
                return Err(fmt_err(path, "pre_tokenizer Sequence is not [Split, ..., ByteLevel]"));
            }
            bytelevel_ok(bl, false)?;
            let mut regexes = Vec::with_capacity(splits.len());
            for split in splits {
                let behavior = split.get("behavior").and_then(Value::as_str).unwrap_or("");
                if behavior != "Isolated" || !is_false(split.get("invert")) {
                    return Err(fmt_err(
                        path,
                        format!("pre_tokenizer Split behavior={behavior:?} invert={}: only Isolated, invert=false is supported",
                            split.get("invert").unwrap_or(&Value::Null)),
                    ));
                }
                let pat = split.get("pattern").unwrap_or(&Value::Null);
                regexes.push(match (pat.get("Regex"), pat.get("String")) {
                    (Some(Value::String(r)), _) => r.clone(),
                    (_, Some(Value::String(s))) => fancy_regex::escape(s).into_owned(),
                    _ => return Err(fmt_err(path, "pre_tokenizer Split pattern is neither Regex nor String")),
                });
            }
            let regexes: Vec<&str> = regexes.iter().map(String::as_str).collect();
            Pretokenizer::sequence(&regexes)
                .map_err(|e| fmt_err(path, format!("pre_tokenizer Split pattern: {e}")))
        }
        other => Err(fmt_err(
            path,
            format!("pre_tokenizer type {other:?} is not supported (expected ByteLevel or Sequence[Split, ByteLevel])"),
        )),
    }
}

/// Parse `tokenizer.json` text; `path` is used in error messages.
pub fn from_str(text: &str, path: &str) -> Result<Bpe> {
    from_value(&parse(text, path)?, path)
}

/// Parse JSON text; a syntax error is a [`Error::Format`] naming the line.
pub fn parse(text: &str, path: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| fmt_err(path, format!("not valid JSON: {e} (line {})", e.line())))
}

/// Read a parsed byte-level `tokenizer.json`.
pub fn from_value(doc: &Value, path: &str) -> Result<Bpe> {
    if !doc.get("normalizer").is_none_or(Value::is_null) {
        let t = doc["normalizer"]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("?");
        return Err(fmt_err(
            path,
            format!("normalizer {t:?} is not supported (expected null)"),
        ));
    }
    let model = field(doc, "model", path, "top level")?;
    let mtype = model.get("type").and_then(Value::as_str).unwrap_or("BPE");
    if mtype != "BPE" {
        return Err(fmt_err(
            path,
            format!("model type {mtype:?} is not supported (expected BPE)"),
        ));
    }
    for key in [
        "continuing_subword_prefix",
        "end_of_word_suffix",
        "dropout",
        "unk_token",
    ] {
        if !model.get(key).is_none_or(Value::is_null) {
            return Err(fmt_err(
                path,
                format!("model.{key} is set; tokforge supports only null"),
            ));
        }
    }
    if !is_false(model.get("byte_fallback")) {
        return Err(fmt_err(path, "model.byte_fallback=true is not supported"));
    }
    let ignore_merges = !is_false(model.get("ignore_merges"));
    if let Some(d) = doc.get("decoder").filter(|d| !d.is_null()) {
        let t = d.get("type").and_then(Value::as_str).unwrap_or("?");
        if t != "ByteLevel" {
            return Err(fmt_err(
                path,
                format!("decoder {t:?} is not supported (expected ByteLevel)"),
            ));
        }
    }
    let pretok = parse_pretokenizer(doc.get("pre_tokenizer").unwrap_or(&Value::Null), path)?;

    let mut specials: Vec<(String, u32)> = Vec::new();
    if let Some(list) = doc.get("added_tokens").and_then(Value::as_array) {
        for (i, t) in list.iter().enumerate() {
            let content = t.get("content").and_then(Value::as_str);
            let id = t.get("id").and_then(Value::as_u64);
            let (Some(content), Some(id)) = (content, id) else {
                return Err(fmt_err(
                    path,
                    format!("added_tokens[{i}] lacks content or id"),
                ));
            };
            let id = u32::try_from(id).map_err(|_| {
                fmt_err(
                    path,
                    format!("added_tokens[{i}].id = {id} is not a token id (< 2^32)"),
                )
            })?;
            specials.push((content.to_string(), id));
        }
    }
    let vocab = field(model, "vocab", path, "model")?
        .as_object()
        .ok_or_else(|| fmt_err(path, "model.vocab is not an object"))?;
    let max_id = vocab
        .values()
        .filter_map(Value::as_u64)
        .chain(specials.iter().map(|(_, id)| *id as u64))
        .max();
    let n = max_id.map_or(0, |m| {
        usize::try_from(m).map_or(usize::MAX, |m| m.saturating_add(1))
    });
    let entries = vocab.len() + specials.len();
    if n > entries + crate::bpe::MAX_UNUSED_IDS {
        return Err(fmt_err(
            path,
            format!(
                "ids go up to {} for {entries} tokens: more than {} ids would be unused",
                max_id.unwrap_or(0),
                crate::bpe::MAX_UNUSED_IDS
            ),
        ));
    }
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; n];
    for (text, id) in &specials {
        tokens[*id as usize] = Some(text.as_bytes().to_vec());
    }
    for (spelling, id) in vocab {
        let id = id.as_u64().ok_or_else(|| {
            fmt_err(
                path,
                format!("model.vocab[{spelling:?}] is not an integer id"),
            )
        })? as usize;
        if specials.iter().any(|(_, s)| *s as usize == id) {
            continue;
        }
        let bytes = byte_level::decode_str(spelling).ok_or_else(|| {
            fmt_err(
                path,
                format!("model.vocab token {spelling:?} is not spelled in the byte-level alphabet"),
            )
        })?;
        if tokens[id].is_some() {
            return Err(fmt_err(path, format!("model.vocab id {id} is used twice")));
        }
        tokens[id] = Some(bytes);
    }
    // ids no token uses stay unused (empty), as in tiktoken-derived vocabularies
    let tokens: Vec<Vec<u8>> = tokens.into_iter().map(Option::unwrap_or_default).collect();
    let lookup: rustc_hash::FxHashMap<&str, u32> = vocab
        .iter()
        .filter_map(|(s, id)| id.as_u64().map(|i| (s.as_str(), i as u32)))
        .collect();
    let raw_merges = field(model, "merges", path, "model")?
        .as_array()
        .ok_or_else(|| fmt_err(path, "model.merges is not a list"))?;
    let mut merges = Vec::with_capacity(raw_merges.len());
    for (k, m) in raw_merges.iter().enumerate() {
        let (l, r) = match m {
            Value::String(s) => s
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| fmt_err(path, format!("model.merges[{k}] {s:?} is not \"a b\"")))?,
            Value::Array(a) if a.len() == 2 => match (&a[0], &a[1]) {
                (Value::String(x), Value::String(y)) => (x.clone(), y.clone()),
                _ => {
                    return Err(fmt_err(
                        path,
                        format!("model.merges[{k}] is not two strings"),
                    ))
                }
            },
            _ => return Err(fmt_err(path, format!("model.merges[{k}] is not a pair"))),
        };
        let id = |s: &str| {
            lookup.get(s).copied().ok_or_else(|| {
                fmt_err(
                    path,
                    format!("model.merges[{k}] names {s:?}, which is not in model.vocab"),
                )
            })
        };
        merges.push((id(&l)?, id(&r)?));
    }
    Bpe::new(tokens, specials, merges, pretok, ignore_merges)
        .map_err(|e| fmt_err(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::count::PieceCounts;
    use crate::bpe::train::{train, TieOrder, TrainConfig};
    use crate::progress::Silent;

    #[test]
    fn written_file_reads_back_identically() {
        let p = Pretokenizer::new("cl100k").unwrap();
        let mut c = PieceCounts::new();
        c.add_docs(&p, &["hello hello world, héllo 世界 world\n\n  x"])
            .unwrap();
        let cfg = TrainConfig {
            vocab_size: 270,
            min_frequency: 0,
            special_tokens: vec!["<|endoftext|>".into()],
            tie_order: TieOrder::Hf,
        };
        let t = train(c, p, &cfg, &Silent).unwrap();
        let text = to_string(&t.bpe).unwrap();
        let back = from_str(&text, "mem").unwrap();
        assert_eq!(back.tokens(), t.bpe.tokens());
        assert_eq!(back.merges(), t.bpe.merges());
        assert_eq!(back.specials(), t.bpe.specials());
        assert_eq!(
            back.pretokenizer().pattern(),
            t.bpe.pretokenizer().pattern()
        );
    }

    #[test]
    fn a_special_token_spelled_like_a_regular_token_survives_the_round_trip() {
        // found by tests/test_fuzz.py: special "(" next to the byte token "(" wrote one vocab
        // key for both ids, and the file no longer loaded ("byte 0x28 is not a token")
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        ranks.push((b"ab".to_vec(), 256));
        let p = Pretokenizer::new("gpt2").unwrap();
        let specials = vec![("(".to_string(), 257), ("<s>".to_string(), 258)];
        let bpe = Bpe::from_ranks(ranks, specials, p).unwrap();
        let back = from_str(&to_string(&bpe).unwrap(), "mem").unwrap();
        assert_eq!(back.tokens(), bpe.tokens());
        assert_eq!(back.specials(), bpe.specials());
        assert_eq!(back.id_of(b"("), Some(b'(' as u32));
    }

    #[test]
    fn unsupported_parts_are_named() {
        let e = from_str(r#"{"normalizer": {"type": "NFKC"}, "model": {}}"#, "x.json").unwrap_err();
        assert!(e.to_string().contains("NFKC"), "{e}");
        let e = from_str(r#"{"model": {"type": "Unigram"}}"#, "x.json").unwrap_err();
        assert!(e.to_string().contains("Unigram"), "{e}");
        let e = from_str("{", "x.json").unwrap_err();
        assert!(e.to_string().contains("x.json"), "{e}");
    }

    #[test]
    fn far_ids_are_refused_not_allocated() {
        for id in ["4000000000", "18446744073709551615"] {
            let doc = format!(
                r#"{{"model": {{"type": "BPE", "vocab": {{"a": {id}}}, "merges": []}},
                    "pre_tokenizer": {{"type": "ByteLevel", "add_prefix_space": false}}}}"#
            );
            let e = from_str(&doc, "x.json").unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e}");
            assert!(e.to_string().contains("unused"), "{e}");
        }
        // a special token id of 2^32 is refused, not truncated to 0
        let doc = r#"{"added_tokens": [{"id": 4294967296, "content": "<s>"}],
                      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
                      "model": {"type": "BPE", "vocab": {}, "merges": []}}"#;
        let e = from_str(doc, "x.json").unwrap_err();
        assert!(
            e.to_string().contains("added_tokens[0].id = 4294967296"),
            "{e}"
        );
    }
}
