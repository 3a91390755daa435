//! tokforge's own JSON for LiB tokenizers (`"format": "tokforge-lib"`, docs/lib.md §8.5): LiB's
//! larger-first segmentation with counterfactual comparison is not BPE and has no HF
//! `tokenizer.json` form.
//!
//! Layout (version [`FORMAT_VERSION`]): `format`, `version`, `model: "LiB"`, `segmenter` (the
//! [`Rule`] name), `pretokenize` (preset name or regex of the "no-supra" mode, or null),
//! `byte_fallback: true`, `id_layout` (a reminder for readers), `special_tokens`
//! (`[{id, content}]`, ids `0..k`), `units` (strings, by priority) and `training` (the settings
//! and seed, kept as given). Ids: special tokens, then the 256 byte tokens, then the units.
//!
//! Cost: linear in the file. Round trip: `from_str(to_string(m))` has the same ids, rule and
//! pre-tokenizer as `m`.

use crate::error::{Error, Result};
use crate::lib_model::{LibModel, Rule};
use crate::pretokenize::Pretokenizer;
use serde_json::{json, Value};

/// Name written in the `"format"` field of tokforge's LiB JSON.
pub const FORMAT: &str = "tokforge-lib";
/// Version of that JSON layout.
pub const FORMAT_VERSION: u64 = 1;

/// The model as tokforge's LiB JSON (pretty-printed, `format` first).
pub fn to_string(m: &LibModel) -> Result<String> {
    let units: Vec<&str> = m
        .units()
        .iter()
        .map(|u| std::str::from_utf8(u).map_err(|_| Error::Vocab("a unit is not UTF-8".into())))
        .collect::<Result<_>>()?;
    let specials: Vec<Value> = m
        .specials()
        .iter()
        .map(|(t, id)| json!({"id": id, "content": t}))
        .collect();
    // the pre-tokenizer as `Pretokenizer::new` takes it back: preset name or regex
    let pretokenize = m.pretokenizer().map(|p| match p.preset() {
        Some(pr) => pr.name().to_string(),
        None => p.pattern().to_string(),
    });
    let doc = json!({
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": "LiB",
        "segmenter": m.rule().name(),
        "pretokenize": pretokenize,
        "byte_fallback": true,
        "id_layout": "special tokens, then 256 byte tokens <0x00>..<0xFF>, then units by priority",
        "special_tokens": specials,
        "units": units,
        "training": m.training(),
    });
    serde_json::to_string_pretty(&doc).map_err(|e| Error::Input(format!("cannot write JSON: {e}")))
}

/// Read tokforge's LiB JSON; `path` is used in error messages. Every problem is an
/// [`Error::Format`] naming `path`.
pub fn from_str(text: &str, path: &str) -> Result<LibModel> {
    let bad = |m: String| Error::Format {
        path: path.to_string(),
        message: m,
    };
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "not a tokforge LiB file (expected \"format\": \"{FORMAT}\")"
        )));
    }
    let version = doc.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "unsupported version {version} (this tokforge reads {FORMAT_VERSION})"
        )));
    }
    let rule = Rule::parse(
        doc.get("segmenter")
            .and_then(Value::as_str)
            .unwrap_or("lib"),
    )
    .map_err(|e| bad(e.to_string()))?;
    let units = doc
        .get("units")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing \"units\" list".into()))?
        .iter()
        .enumerate()
        .map(|(i, u)| {
            u.as_str()
                .map(|s| s.as_bytes().to_vec())
                .ok_or_else(|| bad(format!("units[{i}] is not a string")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut specials: Vec<(u64, String)> = Vec::new();
    for (i, s) in doc
        .get("special_tokens")
        .and_then(Value::as_array)
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let id = s.get("id").and_then(Value::as_u64);
        let content = s.get("content").and_then(Value::as_str);
        match (id, content) {
            (Some(id), Some(c)) => specials.push((id, c.to_string())),
            _ => {
                return Err(bad(format!(
                    "special_tokens[{i}] needs \"id\" and \"content\""
                )))
            }
        }
    }
    specials.sort();
    for (k, (id, _)) in specials.iter().enumerate() {
        if *id != k as u64 {
            return Err(bad(format!(
                "special token ids must be 0..{} in order",
                specials.len()
            )));
        }
    }
    let training = doc.get("training").cloned().unwrap_or(Value::Null);
    let pretok = match doc.get("pretokenize") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(Pretokenizer::new(p).map_err(|e| bad(e.to_string()))?),
        Some(_) => return Err(bad("\"pretokenize\" must be a string or null".into())),
    };
    Ok(LibModel::new(
        units,
        specials.into_iter().map(|(_, s)| s).collect(),
        rule,
        training,
    )
    .map_err(|e| bad(e.to_string()))?
    .with_pretokenizer(pretok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(rule: Rule, pretok: Option<&str>) -> LibModel {
        let units = ["the", " cat", "of the", "ünï", " "]
            .iter()
            .map(|u| u.as_bytes().to_vec())
            .collect();
        let specials = vec!["<|eot|>".to_string(), "<pad>".to_string()];
        LibModel::new(units, specials, rule, json!({"steps": 3, "seed": 42}))
            .unwrap()
            .with_pretokenizer(pretok.map(|p| Pretokenizer::new(p).unwrap()))
    }

    #[test]
    fn round_trip_keeps_ids_rule_pretokenizer_and_training() {
        for (rule, pretok) in [
            (Rule::Fixed, None),
            (Rule::Reference, Some("gpt2")),
            (Rule::Greedy, Some(r"\p{L}+|\s+|.")),
        ] {
            let m = model(rule, pretok);
            let text = to_string(&m).unwrap();
            assert!(text
                .trim_start()
                .starts_with("{\n  \"format\": \"tokforge-lib\""));
            let back = from_str(&text, "m.json").unwrap();
            assert_eq!(back.units(), m.units());
            assert_eq!(back.specials(), m.specials());
            assert_eq!(back.rule(), m.rule());
            assert_eq!(back.training(), m.training());
            assert_eq!(
                back.pretokenizer().map(|p| p.pattern().to_string()),
                m.pretokenizer().map(|p| p.pattern().to_string())
            );
            let t = "of the cat ünïcödé\nthe<|eot|>";
            assert_eq!(
                back.encode_ordinary(t).unwrap(),
                m.encode_ordinary(t).unwrap()
            );
            // writing again gives the same text
            assert_eq!(to_string(&back).unwrap(), text);
        }
    }

    #[test]
    fn bad_files_are_format_errors_naming_the_file() {
        let good: Value =
            serde_json::from_str(&to_string(&model(Rule::Fixed, None)).unwrap()).unwrap();
        let with = |key: &str, v: Value| {
            let mut d = good.clone();
            d[key] = v;
            d.to_string()
        };
        for (text, says) in [
            ("[".to_string(), "not JSON"),
            ("{}".to_string(), "not a tokforge LiB file"),
            (with("version", json!(99)), "unsupported version 99"),
            (with("segmenter", json!("nope")), ""),
            (with("units", json!([1])), "units[0] is not a string"),
            (with("units", json!(["a", "a"])), ""),
            (
                with("special_tokens", json!([{"id": 1, "content": "x"}])),
                "0..1 in order",
            ),
            (with("special_tokens", json!([{"id": 0}])), "needs"),
            (with("pretokenize", json!(3)), "string or null"),
            (with("pretokenize", json!("(")), ""),
        ] {
            let Err(e) = from_str(&text, "m.json") else {
                panic!("{text} loaded")
            };
            assert!(matches!(e, Error::Format { .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with("m.json: ") && msg.contains(says), "{msg}");
        }
    }
}
