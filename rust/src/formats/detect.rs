//! Loading a tokenizer file whose format is not given: the format is detected from the content
//! (never from the extension), then read by its module.
//!
//! Detection looks at the first 256 bytes, leading ASCII whitespace stripped ([`detect`]):
//! - the magic `GGUF` -> a llama.cpp GGUF file, of which only the metadata is read
//!   ([`super::gguf`]);
//! - a JSON object naming `"tokforge-lib"` -> tokforge's LiB JSON ([`super::lib_json`]);
//! - a JSON object naming `"config"` -> a Mistral tekken file ([`super::tekken`]);
//! - any other JSON object -> HF `tokenizer.json` ([`super::hf_json`]);
//! - a first line `TOKEN RANK` (two fields, the second all digits) -> a `.tiktoken` rank file
//!   ([`super::tiktoken`]). It has no pattern and no special tokens: they come from
//!   [`LoadOptions`], else from the OpenAI preset of the file's stem
//!   ([`super::tiktoken::preset_for_stem`]).
//!
//! Options apply to rank files only; given for another format they are an [`Error::Input`]
//! rather than silently ignored. Cost: detection O(1), then the cost of the reader.

use super::{gguf, hf_json, lib_json, sp_json, sp_model, tekken, tiktoken};
use crate::bpe::Bpe;
use crate::error::{Error, Result};
use crate::lib_model::LibModel;
use crate::pretokenize::Pretokenizer;
use crate::sentencepiece::SpBpe;
use std::path::Path;

/// A loaded tokenizer model: BPE (tokenizer.json, .tiktoken, tekken) or LiB.
// made once per file load and moved into its owner right away: the size difference is moot
#[allow(clippy::large_enum_variant)]
pub enum Loaded {
    Bpe(Bpe),
    Lib(LibModel),
    SentencePiece(SpBpe),
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loaded::Bpe(b) => write!(f, "Loaded::Bpe(vocab_size={})", b.vocab_size()),
            Loaded::Lib(m) => write!(f, "Loaded::Lib(vocab_size={})", m.vocab_size()),
            Loaded::SentencePiece(m) => {
                write!(f, "Loaded::SentencePiece(vocab_size={})", m.vocab_size())
            }
        }
    }
}

impl Loaded {
    /// The byte-level BPE model, or an input error naming what was loaded instead.
    pub fn into_bpe(self) -> Result<Bpe> {
        match self {
            Loaded::Bpe(b) => Ok(b),
            other => Err(Error::Input(format!(
                "a byte-level BPE model is needed, the file holds {other:?}"
            ))),
        }
    }
}

impl From<gguf::GgufModel> for Loaded {
    fn from(m: gguf::GgufModel) -> Self {
        match m {
            gguf::GgufModel::Bpe(b) => Loaded::Bpe(b),
            gguf::GgufModel::SentencePiece(s) => Loaded::SentencePiece(s),
        }
    }
}

/// What a `.tiktoken` rank file does not carry.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Pre-tokenizer: preset name (`gpt2`, `cl100k`, `o200k`) or regex.
    pub pattern: Option<String>,
    /// `(text, id)` of the special tokens.
    pub special_tokens: Option<Vec<(String, u32)>>,
}

/// The formats [`detect`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// tokforge's LiB JSON.
    LibJson,
    /// Mistral tekken JSON.
    Tekken,
    /// HF `tokenizer.json`.
    HfJson,
    /// tiktoken `base64 rank` lines.
    Tiktoken,
    /// SentencePiece `.model` protobuf.
    SpModel,
    /// llama.cpp GGUF.
    Gguf,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::LibJson => "tokforge LiB JSON",
            Kind::Tekken => "tekken JSON",
            Kind::HfJson => "tokenizer.json",
            Kind::Tiktoken => ".tiktoken files",
            Kind::SpModel => "SentencePiece .model files",
            Kind::Gguf => "GGUF files",
        }
    }
}

/// Bytes Python's `bytes.strip()` removes (ASCII whitespace, vertical tab included).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The format of a file from its first bytes (see the module docs); `None` if none fits.
pub fn detect(data: &[u8]) -> Option<Kind> {
    if gguf::looks_like(data) {
        return Some(Kind::Gguf);
    }
    if sp_model::looks_like(data) {
        return Some(Kind::SpModel);
    }
    let head = &data[..data.len().min(256)];
    let start = head
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(head.len());
    let head = &head[start..];
    if head.first() == Some(&b'{') {
        return Some(if contains(head, b"\"tokforge-lib\"") {
            Kind::LibJson
        } else if contains(head, b"\"config\"") {
            Kind::Tekken
        } else {
            Kind::HfJson
        });
    }
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut fields = first.split(|&b| b == b' ');
    if let (Some(_), Some(rank), None) = (fields.next(), fields.next(), fields.next()) {
        let a = rank
            .iter()
            .position(|&b| !is_space(b))
            .unwrap_or(rank.len());
        let b = rank
            .iter()
            .rposition(|&b| !is_space(b))
            .map_or(a, |i| i + 1);
        let rank = &rank[a..b];
        if !rank.is_empty() && rank.iter().all(u8::is_ascii_digit) {
            return Some(Kind::Tiktoken);
        }
    }
    None
}

/// Load a tokenizer file of any format tokforge reads (see the module docs).
///
/// Errors: [`Error::Io`] if the file cannot be read; [`Error::Input`] for a pipe or a device;
/// [`Error::Format`] if it is none of the formats or not UTF-8 text; otherwise those of
/// [`load_str`].
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Loaded> {
    // a FIFO without a writer would block forever, a device such as /dev/zero never ends
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(Error::Input(format!(
            "{}: not a regular file (a pipe or a device); copy the tokenizer to a file first",
            path.display()
        )));
    }
    let name = path.display().to_string();
    // a GGUF model may be gigabytes of tensors: read its metadata only
    let mut magic = [0u8; 4];
    let head = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut magic))
        .map_err(|e| Error::io(path, e))?;
    if gguf::looks_like(&magic[..head]) {
        no_options(Kind::Gguf, &name, opts)?;
        return gguf::load_file(path).map(|(m, _)| m.into());
    }
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let kind = detect(&data).ok_or_else(|| neither(&name))?;
    if kind == Kind::SpModel {
        no_options(kind, &name, opts)?;
        return sp_model::from_bytes(&data, &name).map(Loaded::SentencePiece);
    }
    let text = String::from_utf8(data).map_err(|e| Error::Format {
        path: name.clone(),
        message: format!(
            "not UTF-8 text (byte offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    load_kind(kind, &text, &name, opts)
}

/// Load tokenizer text of any format tokforge reads; `name` stands for the file in messages,
/// and its stem (up to the first `.`) selects the OpenAI preset of a rank file.
///
/// Errors: [`Error::Format`] if the text is none of the formats or the reader rejects it;
/// [`Error::Input`] if options are given for a format other than a rank file, or a rank file
/// has neither a `pattern` nor a known stem; [`Error::Regex`] for a `pattern` option that does
/// not compile.
pub fn load_str(text: &str, name: &str, opts: &LoadOptions) -> Result<Loaded> {
    let kind = detect(text.as_bytes()).ok_or_else(|| neither(name))?;
    load_kind(kind, text, name, opts)
}

fn neither(name: &str) -> Error {
    Error::Format {
        path: name.to_string(),
        message: "neither a tokenizer.json, a .tiktoken rank file, a SentencePiece .model file \
                  nor a GGUF file"
            .into(),
    }
}

fn no_options(kind: Kind, name: &str, opts: &LoadOptions) -> Result<()> {
    if kind != Kind::Tiktoken && (opts.pattern.is_some() || opts.special_tokens.is_some()) {
        return Err(Error::Input(format!(
            "{name}: pattern/special_tokens apply to .tiktoken files, not {}",
            kind.describe()
        )));
    }
    Ok(())
}

fn load_kind(kind: Kind, text: &str, name: &str, opts: &LoadOptions) -> Result<Loaded> {
    no_options(kind, name, opts)?;
    match kind {
        Kind::Gguf => gguf::from_bytes(text.as_bytes(), name).map(|(m, _)| m.into()),
        Kind::SpModel => sp_model::from_bytes(text.as_bytes(), name).map(Loaded::SentencePiece),
        Kind::LibJson => lib_json::from_str(text, name).map(Loaded::Lib),
        Kind::Tekken => tekken::from_str(text, name).map(Loaded::Bpe),
        Kind::HfJson => {
            let doc = hf_json::parse(text, name)?;
            if sp_json::is_sentencepiece(&doc) {
                sp_json::from_value(&doc, name).map(Loaded::SentencePiece)
            } else {
                hf_json::from_value(&doc, name).map(Loaded::Bpe)
            }
        }
        Kind::Tiktoken => load_tiktoken(text, name, opts).map(Loaded::Bpe),
    }
}

fn load_tiktoken(text: &str, name: &str, opts: &LoadOptions) -> Result<Bpe> {
    let file_name = Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let stem = file_name.split('.').next().unwrap_or_default();
    let preset = tiktoken::preset_for_stem(stem);
    let pattern = match (&opts.pattern, &preset) {
        (Some(p), _) => p.as_str(),
        (None, Some((p, _))) => p,
        (None, None) => {
            return Err(Error::Input(format!(
                "{name}: a .tiktoken file carries no pre-tokenization pattern; pass pattern=\
                 'gpt2' | 'cl100k' | 'o200k' | REGEX"
            )))
        }
    };
    let pretok = Pretokenizer::new(pattern)?;
    let specials = match (&opts.special_tokens, preset) {
        (Some(s), _) => s.clone(),
        (None, Some((_, s))) => s,
        (None, None) => Vec::new(),
    };
    let ranks = tiktoken::parse(text, name)?;
    // an inconsistent vocabulary (a missing byte, a duplicate token) is the file's fault
    Bpe::from_ranks(ranks, specials, pretok).map_err(|e| match e {
        Error::Vocab(message) => Error::Format {
            path: name.to_string(),
            message,
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lib_model::Rule;
    use base64::Engine;
    use serde_json::json;

    /// A byte-level rank file with the 256 bytes and `extra` tokens, ranks in order.
    fn rank_file(extra: &[&[u8]]) -> String {
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in extra.iter().enumerate() {
            ranks.push((t.to_vec(), 256 + i as u32));
        }
        tiktoken::to_string(&ranks)
    }

    fn bpe(l: Result<Loaded>) -> Bpe {
        l.and_then(Loaded::into_bpe)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn tekken_doc() -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let vocab: Vec<_> = (0..=255u8)
            .map(|b| json!({"rank": b, "token_bytes": b64.encode([b])}))
            .collect();
        json!({"config": {"pattern": "gpt2", "default_vocab_size": 258,
                          "default_num_special_tokens": 2},
               "vocab": vocab})
        .to_string()
    }

    #[test]
    fn each_format_is_detected_by_content() {
        let no = LoadOptions::default();
        // LiB JSON
        let lib = LibModel::new(vec![b"ab".to_vec()], vec![], Rule::Fixed, json!(null)).unwrap();
        let text = lib_json::to_string(&lib).unwrap();
        assert_eq!(detect(text.as_bytes()), Some(Kind::LibJson));
        match load_str(&text, "x.tiktoken", &no) {
            Ok(Loaded::Lib(m)) => assert_eq!(m.units(), lib.units()),
            _ => panic!("not loaded as LiB"),
        }
        // asked for BPE, a LiB file is an input error that says what it holds
        let e = load_str(&text, "x.json", &no)
            .and_then(Loaded::into_bpe)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Input(m) if m.contains("Loaded::Lib")),
            "{e}"
        );
        // tekken
        let text = tekken_doc();
        assert_eq!(detect(text.as_bytes()), Some(Kind::Tekken));
        let b = bpe(load_str(&text, "tokenizer.json", &no));
        assert_eq!(b.id_of(b"a"), Some(2 + 97));
        assert_eq!(b.specials()[1].0, "<s>");
        // HF tokenizer.json
        let hf = hf_json::to_string(&b).unwrap();
        let padded = format!(" \n\t{hf}");
        assert_eq!(detect(padded.as_bytes()), Some(Kind::HfJson));
        let back = bpe(load_str(&padded, "model.tiktoken", &no));
        assert_eq!(back.tokens(), b.tokens());
        // rank file, pattern and special tokens given
        let text = rank_file(&[b"ab"]);
        assert_eq!(detect(text.as_bytes()), Some(Kind::Tiktoken));
        let opts = LoadOptions {
            pattern: Some("cl100k".into()),
            special_tokens: Some(vec![("<|eot|>".into(), 257)]),
        };
        let b = bpe(load_str(&text, "vocab.json", &opts));
        assert_eq!(b.vocab_size(), 258);
        assert_eq!(b.encode_ordinary("ab").unwrap(), vec![256]);
        assert_eq!(b.pretokenizer().name(), "cl100k");
        assert_eq!(b.specials(), &[("<|eot|>".to_string(), 257)]);
    }

    #[test]
    fn rank_files_named_like_openai_use_their_presets() {
        // gpt2's <|endoftext|> is id 50256: fill the ranks up to it
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for i in 256..50256u32 {
            ranks.push((format!("t{i}").into_bytes(), i));
        }
        let text = tiktoken::to_string(&ranks);
        for name in ["gpt2.tiktoken", "/some/dir/r50k_base.tiktoken.v2", "gpt2"] {
            let b = bpe(load_str(&text, name, &LoadOptions::default()));
            assert_eq!(b.pretokenizer().name(), "gpt2", "{name}");
            assert_eq!(b.specials(), &[("<|endoftext|>".to_string(), 50256)]);
        }
        // an explicit pattern keeps the preset's special tokens; explicit specials replace them
        let opts = LoadOptions {
            pattern: Some("o200k".into()),
            special_tokens: None,
        };
        let b = bpe(load_str(&text, "gpt2.tiktoken", &opts));
        assert_eq!(b.pretokenizer().name(), "o200k");
        assert_eq!(b.specials().len(), 1);
        let opts = LoadOptions {
            pattern: None,
            special_tokens: Some(vec![]),
        };
        assert!(bpe(load_str(&text, "gpt2.tiktoken", &opts))
            .specials()
            .is_empty());
    }

    #[test]
    fn errors_have_the_right_kind_and_message() {
        let no = LoadOptions::default();
        // a rank file without pattern or known stem
        let e = load_str(&rank_file(&[]), "dir/mine.tiktoken", &no).unwrap_err();
        assert!(matches!(e, Error::Input(_)), "{e}");
        assert!(e.to_string().contains("pass pattern="), "{e}");
        assert!(e.to_string().starts_with("dir/mine.tiktoken: "), "{e}");
        // options for JSON formats
        let with_pattern = LoadOptions {
            pattern: Some("gpt2".into()),
            special_tokens: None,
        };
        let hf = hf_json::to_string(&bpe(load_str(&tekken_doc(), "t", &no))).unwrap();
        let e = load_str(&hf, "t.json", &with_pattern).unwrap_err();
        assert!(matches!(e, Error::Input(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "t.json: pattern/special_tokens apply to .tiktoken files, not tokenizer.json"
        );
        let with_specials = LoadOptions {
            pattern: None,
            special_tokens: Some(vec![]),
        };
        for text in [tekken_doc(), hf] {
            assert!(matches!(
                load_str(&text, "t.json", &with_specials),
                Err(Error::Input(_))
            ));
        }
        // neither format
        for text in ["", "hello world\n", "YQ== x\n", "[1, 2]", "a b c\n"] {
            let e = load_str(text, "f.bin", &no).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{text:?}: {e}");
            assert_eq!(
                e.to_string(),
                "f.bin: neither a tokenizer.json, a .tiktoken rank file, a SentencePiece .model \
                 file nor a GGUF file"
            );
        }
        // a bad pattern is a regex error, a bad rank line a format error naming the line
        let bad_pattern = LoadOptions {
            pattern: Some("(".into()),
            special_tokens: None,
        };
        assert!(matches!(
            load_str(&rank_file(&[]), "m.tiktoken", &bad_pattern),
            Err(Error::Regex { .. })
        ));
        let e = load_str("YQ== 0\nYg== x\n", "gpt2.tiktoken", &no).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn detection_follows_the_first_256_bytes() {
        assert_eq!(detect(b"\x0b\x0c {}"), Some(Kind::HfJson));
        assert_eq!(detect(b"YQ== 12\r\nrest"), Some(Kind::Tiktoken));
        assert_eq!(detect(b"YQ== 12 \r\nrest"), None);
        assert_eq!(detect(b"YQ== \n"), None);
        // a marker beyond the head does not count
        let late = format!("{{\"pad\": \"{}\", \"config\": {{}}}}", "x".repeat(300));
        assert_eq!(detect(late.as_bytes()), Some(Kind::HfJson));
        // a first line cut by the head is judged by what fits
        let long = format!("{} 0\n", "A".repeat(300));
        assert_eq!(detect(long.as_bytes()), None);
    }

    #[test]
    fn files_are_read_and_problems_named() {
        let dir = std::env::temp_dir().join(format!("tokforge-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cl100k_base.tiktoken");
        // cl100k's specials start at 100257: fill the ranks up to there
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for i in 256..100256u32 {
            ranks.push((format!("t{i}").into_bytes(), i));
        }
        std::fs::write(&p, tiktoken::to_string(&ranks)).unwrap();
        let b = bpe(load_file(&p, &LoadOptions::default()));
        assert_eq!(b.pretokenizer().name(), "cl100k");
        assert_eq!(b.vocab_size(), 100277);
        let missing = dir.join("missing.json");
        assert!(matches!(
            load_file(&missing, &LoadOptions::default()),
            Err(Error::Io { .. })
        ));
        let binary = dir.join("b.json");
        std::fs::write(&binary, b"{\"model\": \"\xff\"}").unwrap();
        let e = load_file(&binary, &LoadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
