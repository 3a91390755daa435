//! tiktoken rank files: one `base64(token) rank` line per token (spec bpe.md 5.1). They carry no
//! pattern and no special tokens; those come from the caller.

use crate::error::{Error, Result};
use base64::Engine;

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
}
