//! HF `tokenizer.json`, SentencePiece-style BPE subset (Llama-2, Mistral-v1, Gemma-style
//! files; docs/bpe.md §11), read and written.
//!
//! Read: `model` BPE with `unk_token`, `fuse_unk`, `byte_fallback`, `ignore_merges`;
//! `normalizer` null or NFC / NFD / NFKC / NFKD / Lowercase / Replace (literal pattern) /
//! Prepend / Strip, alone or in a `Sequence`; `pre_tokenizer` null or `Metaspace` (both the
//! `prepend_scheme` and the older `add_prefix_space` spelling); `decoder` `Metaspace` or a
//! `Sequence` of Replace / ByteFallback / Fuse / Strip; `added_tokens` become special tokens
//! (HF splits every added token out of the text before normalizing). Anything else is an
//! [`Error::Format`] naming the part: tokforge never loads a file whose ids it would get wrong.
//! Cost: O(file size) plus the pair table, O(merges).
//!
//! Written: the same components, from the model's configuration, so a model read from a
//! SentencePiece `.model` file becomes a `tokenizer.json` HF loads with the same ids.

use crate::error::{Error, Result};
use crate::sentencepiece::normalize::Norm;
use crate::sentencepiece::{
    MergeSource, Metaspace, PieceKind, PrependScheme, SpBpe, SpConfig, MARKER,
};
use serde_json::{json, Map, Value};

fn fmt_err(path: &str, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        message: message.into(),
    }
}

fn tname(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("?")
}

/// Whether a parsed `tokenizer.json` is SentencePiece-style (no pre-tokenizer or `Metaspace`)
/// rather than byte-level.
pub fn is_sentencepiece(doc: &Value) -> bool {
    match doc.get("pre_tokenizer") {
        None | Some(Value::Null) => true,
        Some(p) => tname(p) == "Metaspace",
    }
}

fn parse_normalizer(v: &Value, path: &str, out: &mut Vec<Norm>) -> Result<()> {
    let s = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    if *v == norm_json(&Norm::CollapseSpaces) {
        out.push(Norm::CollapseSpaces); // what to_string writes for it
        return Ok(());
    }
    match tname(v) {
        "Sequence" => {
            let list = v
                .get("normalizers")
                .and_then(Value::as_array)
                .ok_or_else(|| fmt_err(path, "normalizer Sequence without a normalizers list"))?;
            for n in list {
                parse_normalizer(n, path, out)?;
            }
        }
        "NFC" => out.push(Norm::Nfc),
        "NFD" => out.push(Norm::Nfd),
        "NFKC" => out.push(Norm::Nfkc),
        "NFKD" => out.push(Norm::Nfkd),
        "Lowercase" => out.push(Norm::Lowercase),
        "Prepend" => {
            out.push(Norm::Prepend(s("prepend").ok_or_else(|| {
                fmt_err(path, "normalizer Prepend without prepend")
            })?))
        }
        "Strip" => out.push(Norm::Strip {
            left: v.get("strip_left").and_then(Value::as_bool).unwrap_or(true),
            right: v
                .get("strip_right")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        }),
        "Replace" => {
            let from = v
                .get("pattern")
                .and_then(|p| p.get("String"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    fmt_err(
                        path,
                        "normalizer Replace with a Regex pattern is not supported (only a \
                         literal String pattern)",
                    )
                })?;
            out.push(Norm::Replace {
                from: from.to_string(),
                to: s("content").unwrap_or_default(),
            });
        }
        other => {
            return Err(fmt_err(
                path,
                format!(
                    "normalizer {other:?} is not supported (tokforge implements NFC, NFD, NFKC, \
                     NFKD, Lowercase, Replace, Prepend, Strip and Sequence)"
                ),
            ))
        }
    }
    Ok(())
}

fn parse_metaspace(v: &Value, path: &str) -> Result<Metaspace> {
    let replacement = v.get("replacement").and_then(Value::as_str).unwrap_or("▁");
    let mut chars = replacement.chars();
    let (Some(r), None) = (chars.next(), chars.next()) else {
        return Err(fmt_err(
            path,
            format!("Metaspace replacement {replacement:?} is not one character"),
        ));
    };
    let prepend = match v.get("prepend_scheme").and_then(Value::as_str) {
        Some("always") => PrependScheme::Always,
        Some("first") => PrependScheme::First,
        Some("never") => PrependScheme::Never,
        Some(o) => {
            return Err(fmt_err(
                path,
                format!("Metaspace prepend_scheme {o:?} is unknown"),
            ))
        }
        None => match v.get("add_prefix_space").and_then(Value::as_bool) {
            Some(false) => PrependScheme::Never,
            _ => PrependScheme::Always,
        },
    };
    Ok(Metaspace {
        replacement: r,
        prepend,
        split: v.get("split").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// What the decoder does that changes bytes: `(byte_fallback, replacements, strip_leading)`.
fn parse_decoder(v: &Value, path: &str) -> Result<(bool, Vec<(String, String)>, usize)> {
    let mut fallback = false;
    let mut replace = Vec::new();
    let mut strip = 0;
    let parts: Vec<&Value> = match tname(v) {
        "Sequence" => v
            .get("decoders")
            .and_then(Value::as_array)
            .ok_or_else(|| fmt_err(path, "decoder Sequence without a decoders list"))?
            .iter()
            .collect(),
        _ => vec![v],
    };
    for d in parts {
        match tname(d) {
            "ByteFallback" => fallback = true,
            "Fuse" => {}
            "Replace" => {
                let from = d
                    .get("pattern")
                    .and_then(|p| p.get("String"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| fmt_err(path, "decoder Replace pattern is not a String"))?;
                let to = d.get("content").and_then(Value::as_str).unwrap_or("");
                replace.push((from.to_string(), to.to_string()));
            }
            "Strip" => {
                let content = d.get("content").and_then(Value::as_str).unwrap_or(" ");
                let stop = d.get("stop").and_then(Value::as_u64).unwrap_or(0);
                if content != " " || stop != 0 {
                    return Err(fmt_err(
                        path,
                        format!("decoder Strip content={content:?} stop={stop} is not supported (only leading spaces)"),
                    ));
                }
                strip = d
                    .get("start")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(1 << 16) as usize;
            }
            "Metaspace" => {
                let m = parse_metaspace(d, path)?;
                replace.push((m.replacement.to_string(), " ".into()));
                if m.prepend != PrependScheme::Never {
                    strip = 1;
                }
            }
            other => {
                return Err(fmt_err(
                    path,
                    format!(
                        "decoder {other:?} is not supported for SentencePiece-style BPE (expected \
                         Metaspace or Replace, ByteFallback, Fuse, Strip)"
                    ),
                ))
            }
        }
    }
    Ok((fallback, replace, strip))
}

/// Parse `<0xNN>`.
pub fn byte_piece(p: &str) -> Option<u8> {
    let hex = p.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Read a parsed SentencePiece-style `tokenizer.json` (see the module docs).
pub fn from_value(doc: &Value, path: &str) -> Result<SpBpe> {
    let model = doc
        .get("model")
        .ok_or_else(|| fmt_err(path, "top level: missing field \"model\""))?;
    let mtype = model.get("type").and_then(Value::as_str).unwrap_or("BPE");
    if mtype != "BPE" {
        return Err(fmt_err(
            path,
            format!("model type {mtype:?} is not supported (expected BPE)"),
        ));
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"] {
        if !model.get(key).is_none_or(Value::is_null) {
            return Err(fmt_err(
                path,
                format!("model.{key} is set; tokforge supports only null"),
            ));
        }
    }
    let flag = |k: &str| model.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut normalizers = Vec::new();
    if let Some(n) = doc.get("normalizer").filter(|n| !n.is_null()) {
        parse_normalizer(n, path, &mut normalizers)?;
    }
    let metaspace = match doc.get("pre_tokenizer").filter(|p| !p.is_null()) {
        None => None,
        Some(p) if tname(p) == "Metaspace" => Some(parse_metaspace(p, path)?),
        Some(p) => {
            return Err(fmt_err(
                path,
                format!("pre_tokenizer {:?} is not supported with SentencePiece-style BPE (expected null or Metaspace)", tname(p)),
            ))
        }
    };
    let (dec_fallback, replace, strip_leading) = match doc.get("decoder").filter(|d| !d.is_null()) {
        Some(d) => parse_decoder(d, path)?,
        None => return Err(fmt_err(
            path,
            "decoder is null: HF then joins tokens with spaces, which tokforge does not reproduce",
        )),
    };
    if replace
        .iter()
        .any(|(f, t)| !(f == &MARKER.to_string() && t == " "))
    {
        return Err(fmt_err(
            path,
            "decoder Replace other than ▁ -> space is not supported",
        ));
    }
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| fmt_err(path, "model.vocab is missing or not an object"))?;
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
            for k in ["lstrip", "rstrip", "single_word"] {
                if t.get(k).and_then(Value::as_bool) == Some(true) {
                    return Err(fmt_err(
                        path,
                        format!("added_tokens[{i}] ({content:?}) has {k}=true, which tokforge does not implement"),
                    ));
                }
            }
            specials.push((content.to_string(), id as u32));
        }
    }
    let n = vocab
        .values()
        .filter_map(Value::as_u64)
        .chain(specials.iter().map(|s| s.1 as u64))
        .max()
        .map_or(0, |m| m as usize + 1);
    if n > vocab.len() + specials.len() {
        return Err(fmt_err(
            path,
            format!(
                "ids go up to {} for {} tokens: SentencePiece-style vocabularies have no unused ids",
                n - 1,
                vocab.len() + specials.len()
            ),
        ));
    }
    let mut pieces: Vec<Option<(String, PieceKind)>> = vec![None; n];
    for (text, id) in &specials {
        pieces[*id as usize] = Some((text.clone(), PieceKind::Special));
    }
    for (p, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| fmt_err(path, format!("model.vocab[{p:?}] is not an integer id")))?
            as usize;
        if let Some((_, PieceKind::Special)) = &pieces[id] {
            continue;
        }
        if pieces[id].is_some() {
            return Err(fmt_err(path, format!("model.vocab id {id} is used twice")));
        }
        let kind = match byte_piece(p) {
            Some(b) if dec_fallback || flag("byte_fallback") => PieceKind::Byte(b),
            _ => PieceKind::Normal,
        };
        pieces[id] = Some((p.clone(), kind));
    }
    let mut names = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    for (id, p) in pieces.into_iter().enumerate() {
        let (p, k) = p.ok_or_else(|| fmt_err(path, format!("id {id} has no token")))?;
        names.push(p);
        kinds.push(k);
    }
    let unk = match model.get("unk_token").and_then(Value::as_str) {
        None => None,
        Some(u) => Some(
            vocab
                .get(u)
                .and_then(Value::as_u64)
                .map(|i| i as u32)
                .or_else(|| specials.iter().find(|s| s.0 == u).map(|s| s.1))
                .ok_or_else(|| {
                    fmt_err(
                        path,
                        format!("model.unk_token {u:?} is not in the vocabulary"),
                    )
                })?,
        ),
    };
    let lookup = |s: &str, k: usize| -> Result<u32> {
        vocab
            .get(s)
            .and_then(Value::as_u64)
            .map(|i| i as u32)
            .ok_or_else(|| {
                fmt_err(
                    path,
                    format!("model.merges[{k}] names {s:?}, which is not in model.vocab"),
                )
            })
    };
    let raw = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| fmt_err(path, "model.merges is missing or not a list"))?;
    let mut merges = Vec::with_capacity(raw.len());
    for (k, m) in raw.iter().enumerate() {
        let (l, r) = match m {
            Value::String(s) => s
                .split_once(' ')
                .ok_or_else(|| fmt_err(path, format!("model.merges[{k}] {s:?} is not \"a b\"")))?,
            Value::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some(x), Some(y)) => (x, y),
                _ => {
                    return Err(fmt_err(
                        path,
                        format!("model.merges[{k}] is not two strings"),
                    ))
                }
            },
            _ => return Err(fmt_err(path, format!("model.merges[{k}] is not a pair"))),
        };
        merges.push((lookup(l, k)?, lookup(r, k)?));
    }
    SpBpe::new(SpConfig {
        pieces: names,
        kinds,
        merges: MergeSource::List(merges),
        unk,
        fuse_unk: flag("fuse_unk"),
        byte_fallback: flag("byte_fallback"),
        byte_decode: dec_fallback,
        normalizers,
        metaspace,
        strip_leading,
        ignore_merges: flag("ignore_merges"),
        split_newlines: false,
    })
    .map_err(|e| fmt_err(path, e.to_string()))
}

fn norm_json(n: &Norm) -> Value {
    match n {
        Norm::Nfc => json!({"type": "NFC"}),
        Norm::Nfd => json!({"type": "NFD"}),
        Norm::Nfkc => json!({"type": "NFKC"}),
        Norm::Nfkd => json!({"type": "NFKD"}),
        Norm::Lowercase => json!({"type": "Lowercase"}),
        Norm::Replace { from, to } => {
            json!({"type": "Replace", "pattern": {"String": from}, "content": to})
        }
        Norm::Prepend(p) => json!({"type": "Prepend", "prepend": p}),
        Norm::Strip { left, right } => {
            json!({"type": "Strip", "strip_left": left, "strip_right": right})
        }
        // leading/trailing spaces dropped, runs of spaces collapsed: HF spells it with regexes
        Norm::CollapseSpaces => json!({"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            {"type": "Replace", "pattern": {"Regex": "^ | $"}, "content": ""}]}),
    }
}

/// Serialize a SentencePiece-style model to `tokenizer.json` text.
pub fn to_string(m: &SpBpe) -> Result<String> {
    let cfg = m.config();
    if cfg.split_newlines {
        return Err(Error::Input(
            "this model splits words at newlines (llama.cpp's Gemma-4 tokenizer), which tokforge \
             does not write as tokenizer.json yet"
                .into(),
        ));
    }
    let mut vocab = Map::new();
    for (id, p) in cfg.pieces.iter().enumerate() {
        vocab.insert(p.clone(), json!(id));
    }
    let merges: Vec<Value> = m
        .merges()
        .iter()
        .map(|&(l, r)| json!([cfg.pieces[l as usize], cfg.pieces[r as usize]]))
        .collect();
    let added: Vec<Value> = m
        .specials()
        .iter()
        .map(|(text, id)| {
            json!({"id": id, "content": text, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let normalizer = match cfg.normalizers.as_slice() {
        [] => Value::Null,
        [one] => norm_json(one),
        many => {
            json!({"type": "Sequence", "normalizers": many.iter().map(norm_json).collect::<Vec<_>>()})
        }
    };
    let pre = cfg.metaspace.as_ref().map_or(Value::Null, |ms| {
        json!({"type": "Metaspace", "replacement": ms.replacement.to_string(),
               "prepend_scheme": ms.prepend.name(), "split": ms.split})
    });
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": MARKER.to_string()}, "content": " "}),
        json!({"type": "Fuse"}),
    ];
    if cfg.byte_decode {
        decoders.insert(1, json!({"type": "ByteFallback"}));
    }
    if cfg.strip_leading > 0 {
        decoders
            .push(json!({"type": "Strip", "content": " ", "start": cfg.strip_leading, "stop": 0}));
    }
    let unk = cfg.unk.map(|u| cfg.pieces[u as usize].clone());
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": cfg.fuse_unk, "byte_fallback": cfg.byte_fallback,
            "ignore_merges": cfg.ignore_merges, "vocab": vocab, "merges": merges
        }
    });
    serde_json::to_string_pretty(&doc).map_err(|e| Error::Input(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(normalizer: Value, pre: Value, decoder: Value) -> Value {
        let mut vocab = Map::new();
        vocab.insert("<unk>".into(), json!(0));
        for b in 0..=255u32 {
            vocab.insert(format!("<0x{b:02X}>"), json!(1 + b));
        }
        for (i, p) in ["▁", "a", "b", "ab", "▁ab"].iter().enumerate() {
            vocab.insert(p.to_string(), json!(257 + i));
        }
        json!({"added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
               "normalizer": normalizer, "pre_tokenizer": pre, "decoder": decoder,
               "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
                         "fuse_unk": true, "vocab": vocab, "merges": ["a b", "▁ ab"]}})
    }

    fn llama_decoder() -> Value {
        json!({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})
    }

    #[test]
    fn reads_and_writes_back() {
        let d = doc(
            json!({"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}),
            Value::Null,
            llama_decoder(),
        );
        assert!(is_sentencepiece(&d));
        let m = from_value(&d, "t.json").unwrap();
        let ids = m.encode_spans("ab ab", None, None).unwrap();
        assert_eq!(ids, vec![261, 261]);
        assert_eq!(m.decode_bytes(&ids).unwrap(), b"ab ab");
        let back: Value = serde_json::from_str(&to_string(&m).unwrap()).unwrap();
        let m2 = from_value(&back, "back.json").unwrap();
        assert_eq!(
            m2.encode_spans("ab ab é", None, None).unwrap(),
            m.encode_spans("ab ab é", None, None).unwrap()
        );
        assert_eq!(m2.config().normalizers, m.config().normalizers);
        // SentencePiece's whitespace collapsing is written as two regex Replaces, read back
        let mut cfg = m.config().clone();
        cfg.normalizers.insert(0, Norm::CollapseSpaces);
        let m3 = SpBpe::new(cfg).unwrap();
        let back: Value = serde_json::from_str(&to_string(&m3).unwrap()).unwrap();
        let m4 = from_value(&back, "back.json").unwrap();
        assert_eq!(m4.config().normalizers, m3.config().normalizers);
        assert_eq!(
            m4.encode_spans("  ab   ab ", None, None).unwrap(),
            vec![261, 261]
        );
    }

    #[test]
    fn unsupported_parts_are_named() {
        let bad = [
            (
                doc(
                    json!({"type": "BertNormalizer"}),
                    Value::Null,
                    llama_decoder(),
                ),
                "BertNormalizer",
            ),
            (
                doc(Value::Null, json!({"type": "Whitespace"}), llama_decoder()),
                "Whitespace",
            ),
            (
                doc(Value::Null, Value::Null, json!({"type": "WordPiece"})),
                "WordPiece",
            ),
            (
                doc(
                    json!({"type": "Replace", "pattern": {"Regex": " +"}, "content": "▁"}),
                    Value::Null,
                    llama_decoder(),
                ),
                "Regex",
            ),
            (
                doc(
                    Value::Null,
                    json!({"type": "Metaspace", "prepend_scheme": "sometimes"}),
                    llama_decoder(),
                ),
                "sometimes",
            ),
        ];
        for (d, name) in bad {
            let e = from_value(&d, "t.json").unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
