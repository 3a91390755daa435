//! SentencePiece `.model` files (a `ModelProto` protobuf), BPE type, read without the
//! `sentencepiece` library (docs/bpe.md §11).
//!
//! A hand-written protobuf reader takes the fields that define encoding: `pieces` (1: piece
//! string 1, score 2, type 3), `trainer_spec` (2: `model_type` 3, `byte_fallback` 35) and
//! `normalizer_spec` (3: name 1, `precompiled_charsmap` 2, `add_dummy_prefix` 3,
//! `remove_extra_whitespaces` 4, `escape_whitespaces` 5); other fields are skipped by wire
//! type. The model merges by piece score ([`MergeSource::Scores`]); normalization is
//! `remove_extra_whitespaces` ([`Norm::CollapseSpaces`]), the dummy prefix `▁` and spaces as
//! `▁`; control and unknown pieces are special tokens (never produced from text).
//!
//! Refused with an [`Error::Format`] naming the part: a truncated or malformed message (the
//! byte offset is given), a model type other than BPE (Unigram, Word, Char), a non-identity
//! normalization rule (a precompiled character map such as `nmt_nfkc`), unused pieces.
//! Every length is checked against the bytes left before anything is allocated. Cost: O(file).

use crate::error::{Error, Result};
use crate::sentencepiece::normalize::Norm;
use crate::sentencepiece::{MergeSource, PieceKind, SpBpe, SpConfig, MARKER};

fn fmt_err(path: &str, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A protobuf reader over one message's bytes; `base` is its offset in the file.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    path: &'a str,
    what: &'static str,
}

enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8], usize),
    Other,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], base: usize, path: &'a str, what: &'static str) -> Self {
        Self {
            data,
            pos: 0,
            base,
            path,
            what,
        }
    }

    fn err(&self, msg: &str) -> Error {
        fmt_err(
            self.path,
            format!(
                "SentencePiece model: {} {msg} at byte offset {}",
                self.what,
                self.base + self.pos
            ),
        )
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let &b = self
                .data
                .get(self.pos)
                .ok_or_else(|| self.err("is truncated inside a varint"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err("has a varint longer than 64 bits"));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("has a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(self.err(&format!(
                "is truncated: a field of {n} bytes with {left} left"
            )));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// Next `(field number, value)`, or `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Other
            }
            2 => {
                let n = self.varint()?;
                let at = self.base + self.pos;
                Field::Bytes(self.take(n)?, at)
            }
            5 => {
                let b = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => return Err(self.err(&format!("has wire type {wire}, which is not valid here"))),
        };
        if num == 0 {
            return Err(self.err("has field number 0"));
        }
        Ok(Some((num, f)))
    }
}

/// Whether `data` starts like a `ModelProto`: field 1 (a piece) holding field 1 (its string).
pub fn looks_like(data: &[u8]) -> bool {
    let mut r = Reader::new(data, 0, "", "");
    matches!(r.next(), Ok(Some((1, Field::Bytes(p, _)))) if p.first() == Some(&0x0a))
}

/// SentencePiece piece types (`SentencePiece.Type`).
const NORMAL: u64 = 1;
const UNKNOWN: u64 = 2;
const CONTROL: u64 = 3;
const USER_DEFINED: u64 = 4;
const UNUSED: u64 = 5;
const BYTE: u64 = 6;

fn model_type_name(t: u64) -> String {
    match t {
        1 => "Unigram".into(),
        2 => "BPE".into(),
        3 => "Word".into(),
        4 => "Char".into(),
        o => format!("unknown ({o})"),
    }
}

/// Read a SentencePiece `.model` file's bytes; `path` names it in errors.
pub fn from_bytes(data: &[u8], path: &str) -> Result<SpBpe> {
    let mut pieces = Vec::new();
    let mut kinds = Vec::new();
    let mut scores = Vec::new();
    let mut model_type = 1u64; // the proto default: Unigram
    let mut byte_fallback = false;
    let (mut add_dummy_prefix, mut remove_extra, mut escape) = (true, true, true);
    let mut charsmap_rule: Option<String> = None;
    let mut top = Reader::new(data, 0, path, "ModelProto");
    while let Some((num, f)) = top.next()? {
        match (num, f) {
            (1, Field::Bytes(b, at)) => {
                let mut r = Reader::new(b, at, path, "piece");
                let (mut piece, mut score, mut ty) = (None, 0f32, NORMAL);
                while let Some((n, f)) = r.next()? {
                    match (n, f) {
                        (1, Field::Bytes(s, _)) => {
                            piece =
                                Some(String::from_utf8(s.to_vec()).map_err(|_| {
                                    r.err(&format!("{} is not UTF-8", pieces.len()))
                                })?)
                        }
                        (2, Field::Fixed32(v)) => score = f32::from_bits(v),
                        (3, Field::Varint(v)) => ty = v,
                        _ => {}
                    }
                }
                let piece =
                    piece.ok_or_else(|| r.err(&format!("{} has no string", pieces.len())))?;
                let kind = match ty {
                    NORMAL | USER_DEFINED => PieceKind::Normal,
                    UNKNOWN | CONTROL => PieceKind::Special,
                    BYTE => PieceKind::Byte(super::sp_json::byte_piece(&piece).ok_or_else(|| {
                        r.err(&format!("{piece:?} is a byte piece not spelled <0xNN>"))
                    })?),
                    UNUSED => {
                        return Err(fmt_err(
                            path,
                            format!("SentencePiece model: piece {} ({piece:?}) is of type UNUSED, which tokforge does not implement", pieces.len()),
                        ))
                    }
                    o => return Err(r.err(&format!("{} has unknown type {o}", pieces.len()))),
                };
                pieces.push(piece);
                kinds.push(kind);
                scores.push(score);
            }
            (2, Field::Bytes(b, at)) => {
                let mut r = Reader::new(b, at, path, "trainer_spec");
                while let Some((n, f)) = r.next()? {
                    match (n, f) {
                        (3, Field::Varint(v)) => model_type = v,
                        (35, Field::Varint(v)) => byte_fallback = v != 0,
                        _ => {}
                    }
                }
            }
            (3, Field::Bytes(b, at)) => {
                let mut r = Reader::new(b, at, path, "normalizer_spec");
                let mut name = String::new();
                let mut has_map = false;
                while let Some((n, f)) = r.next()? {
                    match (n, f) {
                        (1, Field::Bytes(s, _)) => name = String::from_utf8_lossy(s).into_owned(),
                        (2, Field::Bytes(s, _)) => has_map = !s.is_empty(),
                        (3, Field::Varint(v)) => add_dummy_prefix = v != 0,
                        (4, Field::Varint(v)) => remove_extra = v != 0,
                        (5, Field::Varint(v)) => escape = v != 0,
                        _ => {}
                    }
                }
                if has_map || !(name.is_empty() || name == "identity") {
                    charsmap_rule = Some(name);
                }
            }
            _ => {}
        }
    }
    if model_type != 2 {
        return Err(fmt_err(
            path,
            format!(
                "SentencePiece model type is {} (trainer_spec.model_type); tokforge reads BPE models only",
                model_type_name(model_type)
            ),
        ));
    }
    if let Some(rule) = charsmap_rule {
        return Err(fmt_err(
            path,
            format!(
                "SentencePiece normalizer_spec {rule:?} uses a precompiled character map, which \
                 tokforge does not implement (only the identity rule)"
            ),
        ));
    }
    if pieces.is_empty() {
        return Err(fmt_err(path, "SentencePiece model has no pieces"));
    }
    let mut normalizers = Vec::new();
    if remove_extra {
        normalizers.push(Norm::CollapseSpaces);
    }
    if add_dummy_prefix {
        normalizers.push(Norm::Prepend(MARKER.to_string()));
    }
    if escape {
        normalizers.push(Norm::Replace {
            from: " ".into(),
            to: MARKER.to_string(),
        });
    }
    let unk = find_unk(data, path)?;
    SpBpe::new(SpConfig {
        pieces,
        kinds,
        merges: MergeSource::Scores(scores),
        unk,
        fuse_unk: true,
        byte_fallback,
        byte_decode: true,
        normalizers,
        metaspace: None,
        strip_leading: usize::from(add_dummy_prefix),
        ignore_merges: false,
        split_newlines: false,
    })
    .map_err(|e| fmt_err(path, e.to_string()))
}

/// Index of the piece of type UNKNOWN (a second pass over the top-level pieces).
fn find_unk(data: &[u8], path: &str) -> Result<Option<u32>> {
    let mut top = Reader::new(data, 0, path, "ModelProto");
    let mut i = 0u32;
    while let Some((num, f)) = top.next()? {
        if let (1, Field::Bytes(b, at)) = (num, f) {
            let mut r = Reader::new(b, at, path, "piece");
            while let Some((n, f)) = r.next()? {
                if let (3, Field::Varint(UNKNOWN)) = (n, f) {
                    return Ok(Some(i));
                }
            }
            i += 1;
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    /// A `.model` file with these `(piece, score, type)` entries.
    pub(crate) fn model_file(
        pieces: &[(&str, f32, u64)],
        model_type: u64,
        byte_fallback: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        for (p, s, t) in pieces {
            let mut m = Vec::new();
            bytes_field(1, p.as_bytes(), &mut m);
            m.push(2 << 3 | 5);
            m.extend_from_slice(&s.to_le_bytes());
            varint(3 << 3, &mut m);
            varint(*t, &mut m);
            bytes_field(1, &m, &mut out);
        }
        let mut ts = Vec::new();
        varint(3 << 3, &mut ts);
        varint(model_type, &mut ts);
        varint(35 << 3, &mut ts);
        varint(byte_fallback as u64, &mut ts);
        bytes_field(2, &ts, &mut out);
        let mut ns = Vec::new();
        bytes_field(1, b"identity", &mut ns);
        varint(4 << 3, &mut ns);
        varint(0, &mut ns);
        bytes_field(3, &ns, &mut out);
        out
    }

    fn pieces() -> Vec<(String, f32, u64)> {
        let mut v = vec![
            ("<unk>".to_string(), 0.0, UNKNOWN),
            ("<s>".into(), 0.0, CONTROL),
        ];
        for b in 0..=255u8 {
            v.push((format!("<0x{b:02X}>"), 0.0, BYTE));
        }
        for (i, p) in ["▁a", "bc", "▁", "a", "b", "c"].iter().enumerate() {
            v.push((p.to_string(), -(i as f32), NORMAL));
        }
        v
    }

    fn file(model_type: u64) -> Vec<u8> {
        let p = pieces();
        let refs: Vec<(&str, f32, u64)> = p.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        model_file(&refs, model_type, true)
    }

    #[test]
    fn reads_a_bpe_model_and_merges_by_score() {
        let data = file(2);
        assert!(looks_like(&data));
        let m = from_bytes(&data, "m.model").unwrap();
        assert_eq!(m.specials().len(), 2);
        let ids = m.encode_spans("abc  x", None, None).unwrap();
        let name = |i: &u32| m.config().pieces[*i as usize].clone();
        let names: Vec<String> = ids.iter().map(name).collect();
        // ▁a first (score 0), then bc; x falls back to its byte (the file keeps extra spaces)
        assert_eq!(names, ["▁a", "bc", "▁", "▁", "<0x78>"]);
        assert_eq!(m.decode_bytes(&ids).unwrap(), b"abc  x");
    }

    #[test]
    fn bad_files_are_named() {
        let e = from_bytes(&file(1), "u.model").unwrap_err();
        assert!(e.to_string().contains("Unigram"), "{e}");
        let data = file(2);
        for cut in [1, 7, data.len() / 2, data.len() - 3] {
            let e = from_bytes(&data[..cut], "t.model").unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e}");
            // a cut between two pieces leaves a valid message without a trainer_spec
            let at_boundary = e.to_string().contains("type is Unigram");
            assert!(
                at_boundary || e.to_string().contains("byte offset"),
                "{cut}: {e}"
            );
        }
        let e = from_bytes(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], "big.model").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(!looks_like(b"{\"a\": 1}"));
    }
}
