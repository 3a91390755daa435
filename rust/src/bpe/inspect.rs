//! Read-only helpers on a [`Bpe`] for code outside `bpe/` (the validity checks of byte-level
//! probabilities, docs/byte_probs.md §4): encoding of arbitrary bytes, which need not be valid
//! UTF-8 (docs/bpe.md §4.5).
//!
//! The encoder proper takes `&str`; intermediate states of a byte sampler end inside a character.
//! [`Bpe::encode_bytes_into`] splits the input into maximal valid-UTF-8 runs, pre-tokenizes each
//! run, and glues every invalid byte run onto the piece before it (or the one after it when the
//! input starts invalid), so `" \xe4"` stays one piece as it would inside `" 中"`. For valid UTF-8
//! input the result equals [`Bpe::encode_ordinary`]. Cost: one pre-tokenizer pass plus BPE.

use super::Bpe;
use crate::error::Result;

impl Bpe {
    /// Pre-token pieces of valid UTF-8 `text` as `[start, end)` ranges, into `out` (cleared
    /// first, its capacity kept).
    pub fn str_piece_ranges_into(&self, text: &str, out: &mut Vec<(usize, usize)>) -> Result<()> {
        out.clear();
        let base = text.as_ptr() as usize;
        self.pretokenizer().for_each_piece(text, |p| {
            let s = p.as_ptr() as usize - base;
            out.push((s, s + p.len()));
        })
    }

    /// Pre-token pieces of arbitrary bytes as `[start, end)` ranges (see the module docs).
    pub fn piece_ranges(&self, bytes: &[u8]) -> Result<Vec<(usize, usize)>> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        if let Ok(text) = std::str::from_utf8(bytes) {
            self.str_piece_ranges_into(text, &mut ranges)?;
            return Ok(ranges);
        }
        let mut pos = 0usize;
        let mut pending_invalid: Option<usize> = None;
        for chunk in bytes.utf8_chunks() {
            let valid = chunk.valid();
            let base = pos;
            let mut first = true;
            self.pretokenizer().for_each_piece(valid, |p| {
                let s = p.as_ptr() as usize - valid.as_ptr() as usize + base;
                let e = s + p.len();
                match (first, pending_invalid.take()) {
                    (true, Some(start)) => ranges.push((start, e)),
                    _ => ranges.push((s, e)),
                }
                first = false;
            })?;
            pos += valid.len();
            let inv = chunk.invalid().len();
            if inv > 0 {
                if let Some(last) = ranges.last_mut().filter(|r| r.1 == pos) {
                    last.1 = pos + inv;
                } else if pending_invalid.is_none() {
                    pending_invalid = Some(pos);
                }
                pos += inv;
            }
        }
        if let Some(start) = pending_invalid {
            ranges.push((start, pos));
        }
        Ok(ranges)
    }

    /// Canonical ids of arbitrary bytes (see the module docs), appended to `out`.
    pub fn encode_bytes_into(&self, bytes: &[u8], out: &mut Vec<u32>) -> Result<()> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return self.encode_ordinary_into(text, out);
        }
        let mut enc = self.piece_encoder();
        for (s, e) in self.piece_ranges(bytes)? {
            enc.encode(&bytes[s..e], out);
        }
        Ok(())
    }

    /// Canonical ids of arbitrary bytes.
    pub fn encode_bytes(&self, bytes: &[u8]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(bytes.len() / 3 + 1);
        self.encode_bytes_into(bytes, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::bpe::Bpe;
    use crate::pretokenize::Pretokenizer;

    #[test]
    fn encode_bytes_round_trips_and_matches_valid_utf8() {
        let ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let bpe = Bpe::from_ranks(ranks, vec![], Pretokenizer::new("gpt2").unwrap()).unwrap();
        for s in [
            &b"hello world"[..],
            b" \xe4\xb8",
            b"\xb8\xad ab",
            b"a\xffb c\xc3",
        ] {
            let ids = bpe.encode_bytes(s).unwrap();
            assert_eq!(bpe.decode_bytes(&ids).unwrap(), s);
        }
        assert_eq!(
            bpe.encode_bytes(b"hi there").unwrap(),
            bpe.encode_ordinary("hi there").unwrap()
        );
    }
}
