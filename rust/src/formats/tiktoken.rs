//! tiktoken rank files: one `base64(token) rank` line per token (docs/bpe.md §5.1). They carry no
//! pattern and no special tokens; those come from the caller, or from [`preset_for_stem`] for
//! OpenAI's own files (named `gpt2`, `r50k_base`, `cl100k_base`, `o200k_base`).
//!
//! Parsing is linear in the file (plus a sort by rank). Invariants of a parsed file: ranks are
//! unique and span at most [`MAX_UNUSED_IDS`] more ids than the file has lines.

use crate::bpe::MAX_UNUSED_IDS;
use crate::error::{Error, Result};
use base64::Engine;

/// Pre-tokenizer preset name and special tokens of OpenAI's rank files, as
/// `tiktoken_ext.openai_public` defines them (the files carry neither), keyed by the file's stem
/// (the name up to its first `.`).
pub fn preset_for_stem(stem: &str) -> Option<(&'static str, Vec<(String, u32)>)> {
    let (pattern, specials): (&str, &[(&str, u32)]) = match stem {
        "gpt2" | "r50k_base" => ("gpt2", &[("<|endoftext|>", 50256)]),
        "cl100k_base" => (
            "cl100k",
            &[
                ("<|endoftext|>", 100257),
                ("<|fim_prefix|>", 100258),
                ("<|fim_middle|>", 100259),
                ("<|fim_suffix|>", 100260),
                ("<|endofprompt|>", 100276),
            ],
        ),
        "o200k_base" => (
            "o200k",
            &[("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)],
        ),
        _ => return None,
    };
    let specials = specials
        .iter()
        .map(|&(t, id)| (t.to_string(), id))
        .collect();
    Some((pattern, specials))
}

/// Parse a `.tiktoken` file into `(bytes, rank)` pairs sorted by rank. Ranks must be unique.
pub fn parse(text: &str, path: &str) -> Result<Vec<(Vec<u8>, u32)>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let err = |m: &str| Error::Format {
            path: path.to_string(),
            message: format!("line {}: {m}", i + 1),
        };
        let (tok, rank) = line
            .split_once(' ')
            .ok_or_else(|| err("expected `base64 rank`"))?;
        let bytes = b64
            .decode(tok)
            .map_err(|e| err(&format!("bad base64: {e}")))?;
        let rank: u32 = rank
            .trim()
            .parse()
            .map_err(|_| err("rank is not an integer"))?;
        out.push((bytes, rank));
    }
    out.sort_by_key(|(_, r)| *r);
    for w in out.windows(2) {
        if w[0].1 == w[1].1 {
            return Err(Error::Format {
                path: path.to_string(),
                message: format!("rank {} appears twice", w[0].1),
            });
        }
    }
    if let Some(&(_, last)) = out.last() {
        if last as usize >= out.len() + MAX_UNUSED_IDS {
            return Err(Error::Format {
                path: path.to_string(),
                message: format!(
                    "rank {last} for {} tokens: more than {MAX_UNUSED_IDS} ids would be unused",
                    out.len()
                ),
            });
        }
    }
    Ok(out)
}

/// Write `(bytes, rank)` pairs as a `.tiktoken` file, sorted by rank.
pub fn to_string(ranks: &[(Vec<u8>, u32)]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut v: Vec<&(Vec<u8>, u32)> = ranks.iter().collect();
    v.sort_by_key(|(_, r)| *r);
    let mut s = String::new();
    for (t, r) in v {
        s.push_str(&b64.encode(t));
        s.push(' ');
        s.push_str(&r.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let ranks = vec![(b"a".to_vec(), 0), (b" b".to_vec(), 1)];
        let s = to_string(&ranks);
        assert_eq!(s, "YQ== 0\nIGI= 1\n");
        assert_eq!(parse(&s, "m").unwrap(), ranks);
        assert!(parse("YQ== x\n", "f")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        assert!(parse("YQ== 0\nYg== 0\n", "f").is_err());
    }

    #[test]
    fn far_ranks_are_refused_not_allocated() {
        let e = parse("YQ== 4000000000\n", "f").unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e.to_string().contains("unused"), "{e}");
        // a few holes, as in OpenAI's files, are fine
        assert_eq!(parse("YQ== 20\n", "f").unwrap(), vec![(b"a".to_vec(), 20)]);
    }

    #[test]
    fn openai_presets_match_tiktoken_ext() {
        let (p, s) = preset_for_stem("cl100k_base").unwrap();
        assert_eq!(p, "cl100k");
        assert_eq!(s.len(), 5);
        assert!(s.contains(&("<|endofprompt|>".to_string(), 100276)));
        for stem in ["gpt2", "r50k_base"] {
            assert_eq!(
                preset_for_stem(stem).unwrap(),
                ("gpt2", vec![("<|endoftext|>".to_string(), 50256)])
            );
        }
        let (p, s) = preset_for_stem("o200k_base").unwrap();
        assert_eq!(p, "o200k");
        assert_eq!(
            s,
            vec![
                ("<|endoftext|>".to_string(), 199999),
                ("<|endofprompt|>".to_string(), 200018)
            ]
        );
        assert!(preset_for_stem("p50k_base").is_none());
        assert!(preset_for_stem("cl100k_base.tiktoken").is_none());
        // every preset name is a pattern preset
        for stem in ["gpt2", "r50k_base", "cl100k_base", "o200k_base"] {
            let (p, _) = preset_for_stem(stem).unwrap();
            assert!(crate::pretokenize::Preset::from_name(p).is_some());
        }
    }
}
