//! Mistral "tekken" JSON files (`mistral_common/data/tekken_*.json`): tiktoken ranks with the
//! special tokens in front, so a regular token's id is `rank + default_num_special_tokens`, as
//! mistral-common's `Tekkenizer` numbers them (docs/bpe.md §5.4).
//!
//! Read: `config.pattern` (the pre-tokenizer regex), `config.default_vocab_size` (ids in all),
//! `config.default_num_special_tokens` (ids `0..k` are special), the first
//! `default_vocab_size - k` entries of `vocab` (`{rank, token_bytes}`, base64), and the names of
//! the special tokens from `special_tokens` (`{rank, token_str}`) when the file lists them, else
//! mistral-common's legacy names ([`LEGACY_SPECIALS`]); ids without a name are `<SPECIAL_{id}>`.
//! Other fields (`image`, `token_str` of regular tokens, ...) are ignored.
//!
//! Cost: linear in the file. Sizes taken from the file are bounded before anything is allocated:
//! at most [`MAX_UNUSED_IDS`] more special tokens than vocab entries, and ids at most
//! [`MAX_UNUSED_IDS`] beyond the tokens kept, so a corrupt count gives an error, not an
//! allocation of gigabytes.

use crate::bpe::{Bpe, MAX_UNUSED_IDS};
use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use base64::Engine;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::borrow::Cow;

/// Names of the first special tokens of tekken files that do not list their own
/// (mistral-common's `Tekkenizer.DEPRECATED_SPECIAL_TOKENS`, in id order).
pub const LEGACY_SPECIALS: [&str; 20] = [
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "<pad>",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
];

#[derive(Deserialize)]
struct TekkenFile<'a> {
    #[serde(borrow)]
    config: Config<'a>,
    #[serde(borrow)]
    vocab: Vec<Entry<'a>>,
    #[serde(default)]
    special_tokens: Option<Vec<Listed>>,
}

#[derive(Deserialize)]
struct Config<'a> {
    #[serde(borrow)]
    pattern: Cow<'a, str>,
    default_vocab_size: u64,
    default_num_special_tokens: u64,
}

#[derive(Deserialize)]
struct Entry<'a> {
    rank: u64,
    #[serde(borrow)]
    token_bytes: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Listed {
    rank: u64,
    token_str: String,
}

/// Parse tekken JSON text into a rank-priority [`Bpe`]; `path` is used in error messages.
///
/// Errors: [`Error::Format`] naming the file and the field for everything: a malformed file,
/// sizes out of bounds, a `config.pattern` that does not compile, inconsistent tokens (a
/// missing byte, a duplicate token).
pub fn from_str(text: &str, path: &str) -> Result<Bpe> {
    let bad = |m: String| Error::Format {
        path: path.to_string(),
        message: format!("not a tekken tokenizer file ({m})"),
    };
    let file: TekkenFile =
        serde_json::from_str(text).map_err(|e| bad(diagnose(text).unwrap_or(e.to_string())))?;
    let cfg = &file.config;
    let n_special = cfg.default_num_special_tokens;
    if n_special > cfg.default_vocab_size {
        return Err(bad(format!(
            "config.default_num_special_tokens {n_special} > config.default_vocab_size {}",
            cfg.default_vocab_size
        )));
    }
    if n_special > (file.vocab.len() + MAX_UNUSED_IDS) as u64 {
        return Err(bad(format!(
            "config.default_num_special_tokens {n_special} for {} vocab entries (at most {} more \
             special tokens than entries)",
            file.vocab.len(),
            MAX_UNUSED_IDS
        )));
    }
    let n_regular = usize::try_from(cfg.default_vocab_size - n_special)
        .unwrap_or(usize::MAX)
        .min(file.vocab.len());
    // ids must stay below this: the tokens kept plus a few holes
    let id_limit = n_special + (n_regular + MAX_UNUSED_IDS) as u64;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut ranks = Vec::with_capacity(n_regular);
    for (i, e) in file.vocab[..n_regular].iter().enumerate() {
        let bytes = b64
            .decode(e.token_bytes.as_bytes())
            .map_err(|err| bad(format!("vocab[{i}].token_bytes is not base64: {err}")))?;
        let id = e.rank.saturating_add(n_special);
        if id >= id_limit || id > u64::from(u32::MAX) {
            return Err(bad(format!(
                "vocab[{i}].rank {} for {n_regular} tokens: more than {MAX_UNUSED_IDS} ids would \
                 be unused",
                e.rank
            )));
        }
        ranks.push((bytes, id as u32));
    }
    let names: FxHashMap<u64, String> = match &file.special_tokens {
        Some(listed) if !listed.is_empty() => listed
            .iter()
            .map(|t| (t.rank, t.token_str.clone()))
            .collect(),
        _ => (0u64..)
            .zip(LEGACY_SPECIALS.iter().map(|s| s.to_string()))
            .collect(),
    };
    // n_special <= vocab entries + MAX_UNUSED_IDS < 2^32 here
    let specials = (0..n_special)
        .map(|i| {
            let name = names
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("<SPECIAL_{i}>"));
            (name, i as u32)
        })
        .collect();
    let pretok =
        Pretokenizer::from_regex(&cfg.pattern).map_err(|e| bad(format!("config.pattern: {e}")))?;
    Bpe::from_ranks(ranks, specials, pretok).map_err(|e| Error::Format {
        path: path.to_string(),
        message: e.to_string(),
    })
}

/// The field at fault in a file the typed reader refused, e.g. `"vocab[7].rank is a string, not
/// an integer >= 0"` (serde's own message names only a line and column). Runs on the error path
/// only; `None` if the file is not JSON at all (serde's message then says where).
fn diagnose(text: &str) -> Option<String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).ok()?;
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_u64() => "an integer",
            Value::Number(n) if n.is_i64() => "a negative integer",
            Value::Number(_) => "a non-integer number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }
    let check = |v: Option<&Value>, at: &str, want: &str| -> Option<String> {
        let ok = match (v, want) {
            (Some(Value::Object(_)), "an object") => true,
            (Some(Value::Array(_)), "a list") => true,
            (Some(Value::String(_)), "a string") => true,
            (Some(Value::Number(n)), "an integer >= 0") => n.is_u64(),
            _ => false,
        };
        if ok {
            return None;
        }
        Some(match v {
            None => format!("{at} is missing ({want} expected)"),
            Some(v) => format!("{at} is {}, not {want}", kind(v)),
        })
    };
    if !doc.is_object() {
        return Some(format!("the file is {}, not an object", kind(&doc)));
    }
    let cfg = doc.get("config");
    if let Some(m) = check(cfg, "config", "an object") {
        return Some(m);
    }
    for (key, want) in [
        ("pattern", "a string"),
        ("default_vocab_size", "an integer >= 0"),
        ("default_num_special_tokens", "an integer >= 0"),
    ] {
        let v = cfg.and_then(|c| c.get(key));
        if let Some(m) = check(v, &format!("config.{key}"), want) {
            return Some(m);
        }
    }
    let lists = [
        (
            "vocab",
            [("rank", "an integer >= 0"), ("token_bytes", "a string")],
        ),
        (
            "special_tokens",
            [("rank", "an integer >= 0"), ("token_str", "a string")],
        ),
    ];
    for (list, fields) in lists {
        let v = doc.get(list);
        if list == "special_tokens" && v.is_none_or(Value::is_null) {
            continue;
        }
        if let Some(m) = check(v, list, "a list") {
            return Some(m);
        }
        for (i, e) in v
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(m) = check(Some(e), &format!("{list}[{i}]"), "an object") {
                return Some(m);
            }
            for (key, want) in fields {
                if let Some(m) = check(e.get(key), &format!("{list}[{i}].{key}"), want) {
                    return Some(m);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A tekken document: the 256 bytes, then `extra` tokens, ranks in order; `n_special`
    /// special ids in front; `cut` vocab entries beyond `default_vocab_size` that must be ignored.
    fn doc(n_special: u64, extra: &[&[u8]], cut: &[&[u8]]) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.extend(extra.iter().map(|t| t.to_vec()));
        let kept = tokens.len() as u64;
        tokens.extend(cut.iter().map(|t| t.to_vec()));
        let vocab: Vec<Value> = tokens
            .iter()
            .enumerate()
            .map(|(r, t)| json!({"rank": r, "token_bytes": b64.encode(t), "token_str": null}))
            .collect();
        json!({
            "config": {"pattern": r"\s+|\S+", "num_vocab_tokens": tokens.len(),
                       "default_vocab_size": kept + n_special,
                       "default_num_special_tokens": n_special, "version": "v3"},
            "vocab": vocab,
            "image": {}
        })
    }

    fn load(v: &Value) -> Result<Bpe> {
        from_str(&v.to_string(), "t.json")
    }

    #[test]
    fn ids_are_rank_plus_specials_and_cut_entries_are_dropped() {
        let bpe = load(&doc(3, &[b"ab", b"abc"], &[b"zz"])).unwrap();
        assert_eq!(bpe.vocab_size(), 3 + 258);
        assert_eq!(bpe.id_of(b"a"), Some(3 + 97));
        assert_eq!(bpe.id_of(b"ab"), Some(3 + 256));
        assert_eq!(bpe.id_of(b"zz"), None);
        assert_eq!(
            bpe.encode_ordinary("abc ab").unwrap(),
            vec![3 + 257, 3 + 32, 3 + 256]
        );
        let names: Vec<&str> = bpe.specials().iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(names, ["<unk>", "<s>", "</s>"]);
    }

    #[test]
    fn listed_special_tokens_win_and_the_rest_are_numbered() {
        let mut v = doc(22, &[], &[]);
        let bpe = load(&v).unwrap();
        let specials = bpe.specials();
        assert_eq!(specials[19], ("[TOOL_CONTENT]".to_string(), 19));
        assert_eq!(specials[20], ("<SPECIAL_20>".to_string(), 20));
        assert_eq!(specials[21], ("<SPECIAL_21>".to_string(), 21));
        v["special_tokens"] = json!([
            {"rank": 0, "token_str": "<unk>", "is_control": true},
            {"rank": 1, "token_str": "<s>", "is_control": true},
            {"rank": 5, "token_str": "[MINE]", "is_control": true},
            {"rank": 40, "token_str": "[BEYOND]", "is_control": true}
        ]);
        let bpe = load(&v).unwrap();
        let specials = bpe.specials();
        assert_eq!(specials.len(), 22);
        assert_eq!(specials[1].0, "<s>");
        assert_eq!(specials[2].0, "<SPECIAL_2>");
        assert_eq!(specials[5].0, "[MINE]");
        assert!(specials.iter().all(|(t, _)| t != "[BEYOND]"));
        // an empty list means the legacy names
        v["special_tokens"] = json!([]);
        assert_eq!(load(&v).unwrap().specials()[2].0, "</s>");
    }

    #[test]
    fn huge_counts_and_ranks_are_errors_not_allocations() {
        let mut v = doc(3, &[], &[]);
        v["config"]["default_num_special_tokens"] = json!(1_000_000_000u64);
        v["config"]["default_vocab_size"] = json!(2_000_000_000u64);
        let e = load(&v).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e.to_string().contains("default_num_special_tokens"), "{e}");

        let mut v = doc(3, &[b"ab"], &[]);
        v["vocab"][256]["rank"] = json!(4_000_000_000u64);
        let e = load(&v).unwrap_err();
        assert!(e.to_string().contains("vocab[256].rank"), "{e}");
        v["vocab"][256]["rank"] = json!(u64::MAX);
        assert!(matches!(load(&v), Err(Error::Format { .. })));

        let mut v = doc(3, &[], &[]);
        v["config"]["default_vocab_size"] = json!(2);
        assert!(matches!(load(&v), Err(Error::Format { .. })));
    }

    #[test]
    fn malformed_files_name_the_field() {
        let cases: [(&dyn Fn(&mut Value), &str); 8] = [
            (
                &|v| v["config"]["default_num_special_tokens"] = json!(-1),
                "config.default_num_special_tokens is a negative integer, not an integer >= 0",
            ),
            (
                &|v| v["config"]["default_vocab_size"] = json!("3"),
                "config.default_vocab_size is a string, not an integer >= 0",
            ),
            (
                &|v| v["config"]["default_vocab_size"] = json!(1e30),
                "config.default_vocab_size is a non-integer number",
            ),
            (
                &|v| {
                    v["config"]
                        .as_object_mut()
                        .unwrap()
                        .remove("pattern")
                        .map(drop)
                        .unwrap_or(())
                },
                "config.pattern is missing (a string expected)",
            ),
            (&|v| v["vocab"] = json!(null), "vocab is null, not a list"),
            (
                &|v| v["vocab"][3]["rank"] = json!(1.5),
                "vocab[3].rank is a non-integer number",
            ),
            (
                &|v| v["vocab"][4] = json!(7),
                "vocab[4] is an integer, not an object",
            ),
            (
                &|v| v["special_tokens"] = json!([{"rank": 0}]),
                "special_tokens[0].token_str is missing (a string expected)",
            ),
        ];
        for (edit, says) in cases {
            let mut v = doc(3, &[], &[]);
            edit(&mut v);
            let e = load(&v).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e}");
            assert!(e.to_string().contains(says), "{e}");
            assert!(e.to_string().starts_with("t.json: "), "{e}");
        }
    }

    #[test]
    fn malformed_files_are_format_errors_naming_the_file() {
        for bad in [
            "{}".to_string(),
            "[".to_string(),
            r#"{"config": {"pattern": "x"}, "vocab": []}"#.to_string(),
            {
                let mut v = doc(3, &[], &[]);
                v["vocab"][7]["token_bytes"] = json!("not base64!");
                v.to_string()
            },
            {
                let mut v = doc(3, &[], &[]);
                v["vocab"][7]["rank"] = json!("7");
                v.to_string()
            },
        ] {
            let e = from_str(&bad, "t.json").unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e}");
            assert!(e.to_string().starts_with("t.json: not a tekken"), "{e}");
        }
        // inconsistent vocabularies and patterns are the file's fault too: named
        let mut v = doc(3, &[], &[]);
        v["config"]["pattern"] = json!("(");
        let e = load(&v).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e
            .to_string()
            .contains("t.json: not a tekken tokenizer file (config.pattern: "));
        let mut v = doc(3, &[b"a"], &[]);
        v["config"]["default_vocab_size"] = json!(3 + 257);
        let e = load(&v).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e.to_string().starts_with("t.json: "), "{e}");
    }
}
