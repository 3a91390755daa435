//! GGUF files (llama.cpp's model format): the tokenizer in the metadata section, read without
//! touching tensor data (docs/bpe.md §12).
//!
//! Layout (little-endian, versions 2 and 3): `b"GGUF"`, `u32` version, `u64` tensor count,
//! `u64` key/value count, then the pairs: key (a string: `u64` byte length + UTF-8), `u32` value
//! type, value. Types 0..=12: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64; an array
//! is a `u32` element type, a `u64` count and the elements. Tensor infos and data follow the
//! metadata and are never read: [`read_metadata`] stops after the last pair, so a 10 GB model
//! costs only its metadata.
//!
//! Bounded: every string length and array count is checked against the bytes left in the file
//! (each element takes at least its minimal encoded size) before anything is allocated, and so
//! is the key/value count; arrays nest at most [`MAX_DEPTH`] deep. A truncated or corrupt file
//! is an [`Error::Format`] naming the file, the key and the byte offset.
//!
//! Tokenizers ([`build`]), by `tokenizer.ggml.model`:
//! - `gpt2`: byte-level BPE ([`Bpe`]). `tokens` are byte-level spellings, `merges` are
//!   `"left right"` strings ranked by position; `token_type` control / user-defined / unknown
//!   entries are special tokens (their text as it is), unused ones are holes. The pre-tokenizer
//!   comes from `tokenizer.ggml.pre` through [`pre_regexes`], llama.cpp's regexes for that name
//!   (several apply in sequence, [`Pretokenizer::sequence`]); some names also look a whole
//!   piece up before merging (llama.cpp's `ignore_merges`). A single byte the file has no token
//!   for (many lack the bytes UTF-8 never uses) gets an id after the file's last one, so every
//!   string still encodes; llama.cpp silently drops such a byte.
//! - `llama`: SentencePiece-style BPE ([`SpBpe`]) merging by `scores`, byte fallback through
//!   the `<0xNN>` byte pieces, spaces as `▁` and, with `add_space_prefix` (default true), a `▁`
//!   before the text and after each special token, as llama.cpp's SPM tokenizer does.
//! - `gemma4`: SentencePiece-style BPE ranked by `merges` on raw UTF-8 pieces, spaces as `▁`,
//!   words cut at runs of newlines, byte fallback (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_GEMMA4`).
//! - `bert` (WordPiece), `t5` (Unigram) and anything else: an [`Error::Format`] naming it.
//!
//! llama.cpp's `encode(add_special=false, parse_special=false)` is what `encode` reproduces
//! when the user-defined tokens are allowed as specials and the control tokens are not
//! (tests/test_gguf.py runs llama.cpp's own test vectors). BOS is never added: `add_bos_token`
//! and `bos_token_id` are kept in [`GgufInfo`]. Cost: O(metadata) to read, then the model build.

use crate::bpe::Bpe;
use crate::byte_level;
use crate::error::{Error, Result};
use crate::pretokenize::{Preset, Pretokenizer};
use crate::sentencepiece::normalize::Norm;
use crate::sentencepiece::{MergeSource, PieceKind, SpBpe, SpConfig, MARKER};
use rustc_hash::FxHashMap;
use std::io::Read;
use std::path::Path;

/// Deepest nesting of arrays accepted (llama.cpp writes none deeper than 1).
pub const MAX_DEPTH: usize = 8;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::UInt(_) => "an unsigned integer",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a bool",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
        }
    }
    fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::UInt(u) => i64::try_from(u).ok(),
            Value::Int(i) => Some(i),
            _ => None,
        }
    }
}

/// The metadata section of a GGUF file.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub version: u32,
    pub tensor_count: u64,
    /// key/value pairs in file order
    pub kv: Vec<(String, Value)>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// What a GGUF tokenizer says beyond its model: llama.cpp adds BOS itself when asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GgufInfo {
    /// `tokenizer.ggml.model`
    pub model: String,
    /// `tokenizer.ggml.pre` (`default` when absent)
    pub pre: String,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
}

fn fmt_err(path: &str, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Reads values from `r`, knowing how many bytes are left.
struct Reader<'a, R: Read> {
    r: R,
    pos: u64,
    size: u64,
    path: &'a str,
    /// the key being read, for messages
    key: String,
}

impl<R: Read> Reader<'_, R> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        let at = if self.key.is_empty() {
            String::new()
        } else {
            format!("key {:?}: ", self.key)
        };
        fmt_err(
            self.path,
            format!("GGUF metadata: {at}{what} (byte offset {})", self.pos),
        )
    }

    fn left(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        if self.left() < N as u64 {
            return Err(self.err(format!("truncated: {N} bytes needed, the file ends")));
        }
        self.r
            .read_exact(&mut b)
            .map_err(|e| self.err(format!("truncated ({e})")))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    /// A count of items that take at least `min` bytes each, checked against the bytes left.
    fn count(&mut self, what: &str, min: u64) -> Result<usize> {
        let n = self.u64()?;
        if n.saturating_mul(min.max(1)) > self.left() {
            return Err(self.err(format!(
                "{what} of {n} cannot fit in the {} bytes left",
                self.left()
            )));
        }
        usize::try_from(n).map_err(|_| self.err(format!("{what} of {n} is too large")))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.count("string length", 1)?;
        let mut buf = vec![0u8; n];
        self.r
            .read_exact(&mut buf)
            .map_err(|e| self.err(format!("truncated string ({e})")))?;
        let at = self.pos;
        self.pos += n as u64;
        String::from_utf8(buf).map_err(|e| {
            self.pos = at + e.utf8_error().valid_up_to() as u64;
            self.err("a string is not UTF-8")
        })
    }

    /// Smallest encoding of a value of type `t`; `None` for an unknown type.
    fn min_size(t: u32) -> Option<u64> {
        Some(match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => 8,
            9 => 12,
            _ => return None,
        })
    }

    fn value(&mut self, t: u32, depth: usize) -> Result<Value> {
        Ok(match t {
            0 => Value::UInt(self.bytes::<1>()?[0] as u64),
            1 => Value::Int(self.bytes::<1>()?[0] as i8 as i64),
            2 => Value::UInt(u16::from_le_bytes(self.bytes()?) as u64),
            3 => Value::Int(i16::from_le_bytes(self.bytes()?) as i64),
            4 => Value::UInt(self.u32()? as u64),
            5 => Value::Int(i32::from_le_bytes(self.bytes()?) as i64),
            6 => Value::Float(f32::from_le_bytes(self.bytes()?) as f64),
            7 => match self.bytes::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.err(format!("bool value {b} is neither 0 nor 1"))),
            },
            8 => Value::Str(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(self.err(format!("arrays nested deeper than {MAX_DEPTH}")));
                }
                let elem = self.u32()?;
                let min = Self::min_size(elem)
                    .ok_or_else(|| self.err(format!("unknown array element type {elem}")))?;
                let n = self.count("array length", min)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::UInt(self.u64()?),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            _ => return Err(self.err(format!("unknown value type {t}"))),
        })
    }
}

/// Whether `data` starts like a GGUF file.
pub fn looks_like(data: &[u8]) -> bool {
    data.starts_with(b"GGUF")
}

/// Read the metadata of a GGUF stream of `size` bytes (`path` names it in messages).
pub fn read_metadata<R: Read>(r: R, size: u64, path: &str) -> Result<Metadata> {
    let mut rd = Reader {
        r,
        pos: 0,
        size,
        path,
        key: String::new(),
    };
    if &rd.bytes::<4>()? != b"GGUF" {
        return Err(fmt_err(path, "not a GGUF file (no \"GGUF\" magic)"));
    }
    let version = rd.u32()?;
    if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
        return Err(rd.err("big-endian GGUF files are not supported"));
    }
    if version != 2 && version != 3 {
        return Err(rd.err(format!(
            "GGUF version {version} is not supported (versions 2 and 3 are)"
        )));
    }
    let tensor_count = rd.u64()?;
    // a pair takes at least 8 (key length) + 4 (type) + 1 bytes
    let n = rd.count("key/value count", 13)?;
    let mut kv = Vec::with_capacity(n);
    for i in 0..n {
        rd.key = format!("#{i}");
        let key = rd.string()?;
        rd.key = key.clone();
        let t = rd.u32()?;
        let v = rd.value(t, 0)?;
        kv.push((key, v));
    }
    Ok(Metadata {
        version,
        tensor_count,
        kv,
    })
}

/// Read the metadata of a GGUF file, not its tensors.
pub fn read_file(path: &Path) -> Result<Metadata> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    read_metadata(
        std::io::BufReader::new(f),
        size,
        &path.display().to_string(),
    )
}

/// A loaded GGUF tokenizer.
// made once per file load and moved into its owner right away
#[allow(clippy::large_enum_variant)]
pub enum GgufModel {
    Bpe(Bpe),
    SentencePiece(SpBpe),
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const NORMAL: i64 = 1;
const UNKNOWN: i64 = 2;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;
const UNUSED: i64 = 5;
const BYTE: i64 = 6;

/// llama.cpp's pre-tokenizer regexes for a `tokenizer.ggml.pre` name (`llama-vocab.cpp`,
/// `llm_tokenizer_bpe`) and whether the name sets `ignore_merges`; `None` for a name tokforge
/// does not know. Names whose splitting llama.cpp does in custom code rather than by regex
/// (kimi-k2, afmoe, tiny_aya, superbpe) and the raw-UTF-8 ones (sarvam-moe, whitespace) are not
/// here; gemma4 is a model of its own ([`build`]).
pub fn pre_regexes(name: &str) -> Option<(&'static [&'static str], bool)> {
    const GPT2: &str = LLAMA_CPP_GPT2;
    const PORO: &str = r" ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+";
    const LLAMA3: &str = concat!(
        r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
        r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    );
    const QWEN2: &str = concat!(
        r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
        r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    );
    Some(match name {
        "default" => (
            &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
            false,
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (&[LLAMA3], true),
        "dbrx" | "smaug-bpe" => (&[LLAMA3], false),
        "chatglm-bpe" => (&[LLAMA3], false),
        "glm4" | "glm5" => (&[LLAMA3], true),
        "deepseek-llm" => (
            &[
                r"[\r\n]",
                r"\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+",
                r"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+",
                r"\s+$",
                r"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+",
                r"\p{N}+",
            ],
            false,
        ),
        "deepseek-coder" => (
            &[
                r"[\r\n]",
                r"\s?\p{L}+",
                r"\s?\p{P}+",
                r"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+",
                r"\p{N}",
            ],
            false,
        ),
        "deepseek-v3" | "hunyuan-dense" | "hy_v4" | "joyai-llm" => (
            &[
                r"\p{N}{1,3}",
                r"[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+",
                r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
            ],
            false,
        ),
        "falcon" => (&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"], false),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => (&[r"\p{N}", GPT2], false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "exaone4" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling" => (&[GPT2], false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "stablelm2" | "hunyuan"
        | "solar-open" | "megrez" | "grok-2" => (&[QWEN2], false),
        "qwen35" => (
            &[concat!(
                r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
                r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
            )],
            false,
        ),
        "poro-chat" | "bloom" | "gpt3-finnish" => (&[PORO], false),
        "viking" => (&[PORO, r"\p{N}"], false),
        "seed-coder" => (
            &[concat!(
                r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
                r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"
            )],
            false,
        ),
        "ufakzeka" => (
            &[r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
            false,
        ),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => (
            &[concat!(
                r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}",
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"
            )],
            false,
        ),
        "minicpm5" => (
            &[
                r"\p{N}{1,3}",
                concat!(
                    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
                    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
                ),
            ],
            true,
        ),
        _ => return None,
    })
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` name. llama.cpp's GPT-2 regex (without the
/// final `\s+` branch, the text between matches kept as pieces) splits exactly like the `gpt2`
/// preset, so it runs on the preset's scanner (tested below on random text).
fn pretokenizer_for(regexes: &[&str]) -> Result<Pretokenizer> {
    match regexes {
        [one] if *one == LLAMA_CPP_GPT2 => Pretokenizer::new(Preset::Gpt2.name()),
        _ => Pretokenizer::sequence(regexes),
    }
}

use crate::pretokenize::LLAMA_CPP_GPT2;

struct Fields<'a> {
    md: &'a Metadata,
    path: &'a str,
}

impl Fields<'_> {
    fn err(&self, key: &str, what: impl std::fmt::Display) -> Error {
        fmt_err(self.path, format!("GGUF key {key:?}: {what}"))
    }
    fn get(&self, key: &str) -> Result<&Value> {
        self.md
            .get(key)
            .ok_or_else(|| self.err(key, "missing (needed for the tokenizer)"))
    }
    fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("is {}, not a string", v.type_name()))),
        }
    }
    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(key, format!("is {}, not a bool", v.type_name()))),
        }
    }
    /// A token id, checked against the vocabulary size.
    fn id(&self, key: &str, n: usize) -> Result<Option<u32>> {
        let Some(v) = self.md.get(key) else {
            return Ok(None);
        };
        let i = v
            .as_i64()
            .ok_or_else(|| self.err(key, format!("is {}, not a token id", v.type_name())))?;
        if i < 0 || i as u64 >= n as u64 {
            // llama.cpp treats -1 as "none"; any other id outside the vocabulary is corrupt
            return if i == -1 {
                Ok(None)
            } else {
                Err(self.err(key, format!("id {i} is outside the vocabulary of {n}")))
            };
        }
        Ok(Some(i as u32))
    }
    fn array(&self, key: &str) -> Result<&[Value]> {
        match self.get(key)? {
            Value::Array(a) => Ok(a),
            v => Err(self.err(key, format!("is {}, not an array", v.type_name()))),
        }
    }
    fn strings(&self, key: &str) -> Result<Vec<&str>> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Str(s) => Ok(s.as_str()),
                v => Err(self.err(key, format!("[{i}] is {}, not a string", v.type_name()))),
            })
            .collect()
    }
    /// `tokenizer.ggml.token_type`, every entry NORMAL when absent; its length must be `n`.
    fn token_types(&self, n: usize) -> Result<Vec<i64>> {
        const KEY: &str = "tokenizer.ggml.token_type";
        if self.md.get(KEY).is_none() {
            return Ok(vec![NORMAL; n]);
        }
        let a = self.array(KEY)?;
        if a.len() != n {
            return Err(self.err(KEY, format!("{} entries for {n} tokens", a.len())));
        }
        a.iter()
            .enumerate()
            .map(|(i, v)| match v.as_i64() {
                Some(t @ NORMAL..=BYTE) => Ok(t),
                _ => Err(self.err(KEY, format!("[{i}] = {v:?} is not a token type (1..=6)"))),
            })
            .collect()
    }
}

/// Build the tokenizer a GGUF file's metadata describes (see the module docs).
pub fn build(md: &Metadata, path: &str) -> Result<(GgufModel, GgufInfo)> {
    let f = Fields { md, path };
    const MODEL: &str = "tokenizer.ggml.model";
    let model = f
        .str(MODEL)?
        .ok_or_else(|| f.err(MODEL, "missing: the file has no tokenizer"))?;
    let pre = f.str("tokenizer.ggml.pre")?.unwrap_or("default");
    match model {
        "gpt2" => build_bpe(&f, pre),
        "llama" => build_spm(&f),
        "gemma4" => build_gemma4(&f),
        "bert" => Err(f.err(
            MODEL,
            "\"bert\" is a WordPiece vocabulary, which tokforge does not implement (it reads \
             the BPE ones: \"gpt2\" byte-level BPE, \"llama\" and \"gemma4\" \
             SentencePiece-style BPE)",
        )),
        "t5" => Err(f.err(
            MODEL,
            "\"t5\" is a Unigram vocabulary, which tokforge does not implement (it reads the \
             BPE ones: \"gpt2\" byte-level BPE, \"llama\" and \"gemma4\" SentencePiece-style \
             BPE)",
        )),
        other => Err(f.err(
            MODEL,
            format!(
                "tokenizer model {other:?} is not supported (tokforge reads \"gpt2\" byte-level \
                 BPE, \"llama\" and \"gemma4\" SentencePiece-style BPE)"
            ),
        )),
    }
    .map(|(m, mut info)| {
        info.model = model.to_string();
        info.pre = pre.to_string();
        (m, info)
    })
}

fn info(f: &Fields, n: usize, add_bos_default: bool) -> Result<GgufInfo> {
    Ok(GgufInfo {
        bos: f.id("tokenizer.ggml.bos_token_id", n)?,
        eos: f.id("tokenizer.ggml.eos_token_id", n)?,
        add_bos: f
            .bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(add_bos_default),
        ..GgufInfo::default()
    })
}

fn build_bpe(f: &Fields, pre: &str) -> Result<(GgufModel, GgufInfo)> {
    const PRE: &str = "tokenizer.ggml.pre";
    let (regexes, ignore_merges) = pre_regexes(pre).ok_or_else(|| {
        f.err(
            PRE,
            format!(
                "pre-tokenizer {pre:?} is not one tokforge knows (it implements llama.cpp's \
                 regex-based ones: gpt-2, llama-bpe, qwen2, qwen35, deepseek-llm, \
                 deepseek-coder, deepseek-v3, falcon, mpt, starcoder, refact, command-r, \
                 smollm, default, ...; see docs/bpe.md §12)"
            ),
        )
    })?;
    let pretok = pretokenizer_for(regexes).map_err(|e| f.err(PRE, e))?;
    const TOKENS: &str = "tokenizer.ggml.tokens";
    let texts = f.strings(TOKENS)?;
    let n = texts.len();
    let types = f.token_types(n)?;
    let mut tokens: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut specials = Vec::new();
    for (id, (&t, &ty)) in texts.iter().zip(&types).enumerate() {
        match ty {
            CONTROL | USER_DEFINED | UNKNOWN => {
                if t.is_empty() {
                    return Err(f.err(TOKENS, format!("special token {id} is empty")));
                }
                specials.push((t.to_string(), id as u32));
                tokens.push(t.as_bytes().to_vec());
            }
            UNUSED => tokens.push(Vec::new()),
            // a spelling outside the byte-level alphabet (command-r has "\u{200d}") can never
            // be formed from byte-level text: llama.cpp never produces it, nor does tokforge
            _ => tokens.push(byte_level::decode_str(t).unwrap_or_default()),
        }
    }
    // merges name tokens by spelling; llama.cpp keeps the first rank of a repeated pair
    let by_text: FxHashMap<&str, u32> = texts
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(id, (_, &ty))| (ty == NORMAL || ty == BYTE) && !tokens[*id].is_empty())
        .map(|(id, (&t, _))| (t, id as u32))
        .collect();
    const MERGES: &str = "tokenizer.ggml.merges";
    let raw = f.strings(MERGES)?;
    let mut merges = Vec::with_capacity(raw.len());
    for (k, m) in raw.iter().enumerate() {
        let (l, r) = split_merge(f, k, m)?;
        let unreachable = |s: &str| byte_level::decode_str(s).is_none();
        match (by_text.get(l), by_text.get(r)) {
            (Some(&a), Some(&b)) => merges.push((a, b)),
            // a pair of spellings byte-level text never holds never merges in llama.cpp either
            _ if unreachable(l) || unreachable(r) => {}
            _ => {
                let missing = if by_text.contains_key(l) { r } else { l };
                return Err(f.err(
                    MERGES,
                    format!("[{k}] {m:?} names {missing:?}, which is not a token"),
                ));
            }
        }
    }
    // a byte the vocabulary lacks (0xC0, 0xC1, 0xF5..=0xFF, which UTF-8 text never holds;
    // falcon also lacks some control bytes) gets an id after the file's: tokforge encodes
    // every string, where llama.cpp drops such a byte
    let mut have = [false; 256];
    for (t, &ty) in tokens.iter().zip(&types) {
        if let ([b], NORMAL | BYTE) = (t.as_slice(), ty) {
            have[*b as usize] = true;
        }
    }
    for b in 0..=255u8 {
        if !have[b as usize] {
            tokens.push(vec![b]);
        }
    }
    let info = info(f, n, false)?;
    let bpe = Bpe::new(tokens, specials, merges, pretok, ignore_merges)
        .map_err(|e| fmt_err(f.path, format!("GGUF tokenizer: {e}")))?;
    Ok((GgufModel::Bpe(bpe), info))
}

/// The byte of a `<0xNN>` piece.
fn byte_piece(p: &str) -> Option<u8> {
    let hex = p.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

fn build_spm(f: &Fields) -> Result<(GgufModel, GgufInfo)> {
    const TOKENS: &str = "tokenizer.ggml.tokens";
    const SCORES: &str = "tokenizer.ggml.scores";
    let texts = f.strings(TOKENS)?;
    let n = texts.len();
    let types = f.token_types(n)?;
    let scores = f.array(SCORES)?;
    if scores.len() != n {
        return Err(f.err(SCORES, format!("{} scores for {n} tokens", scores.len())));
    }
    let scores: Vec<f32> = scores
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Float(x) => Ok(*x as f32),
            v => Err(f.err(SCORES, format!("[{i}] is {}, not a float", v.type_name()))),
        })
        .collect::<Result<_>>()?;
    let mut kinds = Vec::with_capacity(n);
    for (id, (&t, &ty)) in texts.iter().zip(&types).enumerate() {
        kinds.push(match ty {
            CONTROL | USER_DEFINED | UNKNOWN => PieceKind::Special,
            BYTE => PieceKind::Byte(byte_piece(t).ok_or_else(|| {
                f.err(
                    TOKENS,
                    format!("[{id}] {t:?} has the byte type but is not <0xNN>"),
                )
            })?),
            _ => PieceKind::Normal,
        });
    }
    let mut seen = [false; 256];
    for k in &kinds {
        if let PieceKind::Byte(b) = k {
            seen[*b as usize] = true;
        }
    }
    let byte_fallback = seen.iter().all(|&s| s);
    let add_space_prefix = f.bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let marker = MARKER.to_string();
    let mut normalizers = vec![Norm::Replace {
        from: " ".into(),
        to: marker.clone(),
    }];
    if add_space_prefix {
        normalizers.push(Norm::Prepend(marker));
    }
    let unk = f
        .id("tokenizer.ggml.unknown_token_id", n)?
        .or((n > 0).then_some(0));
    let cfg = SpConfig {
        pieces: texts.iter().map(|t| t.to_string()).collect(),
        kinds,
        merges: MergeSource::Scores(scores),
        unk,
        fuse_unk: false,
        byte_fallback,
        byte_decode: true,
        normalizers,
        metaspace: None,
        strip_leading: add_space_prefix as usize,
        ignore_merges: false,
        split_newlines: false,
    };
    let info = info(f, n, true)?;
    let m = SpBpe::new(cfg).map_err(|e| fmt_err(f.path, format!("GGUF tokenizer: {e}")))?;
    Ok((GgufModel::SentencePiece(m), info))
}

/// Split a GGUF merge `"left right"` at the first space after the first byte, as llama.cpp does.
fn split_merge<'m>(f: &Fields, k: usize, m: &'m str) -> Result<(&'m str, &'m str)> {
    let cut = m
        .as_bytes()
        .iter()
        .skip(1)
        .position(|&b| b == b' ')
        .map(|i| i + 1)
        .ok_or_else(|| {
            f.err(
                "tokenizer.ggml.merges",
                format!("[{k}] {m:?} is not \"left right\""),
            )
        })?;
    Ok((&m[..cut], &m[cut + 1..]))
}

/// Gemma-4: SentencePiece-style BPE ranked by a merge list on raw UTF-8 pieces, spaces as `▁`
/// (no prefix unless `add_space_prefix`), words cut at newline runs, byte fallback.
fn build_gemma4(f: &Fields) -> Result<(GgufModel, GgufInfo)> {
    const TOKENS: &str = "tokenizer.ggml.tokens";
    const MERGES: &str = "tokenizer.ggml.merges";
    let texts = f.strings(TOKENS)?;
    let n = texts.len();
    let types = f.token_types(n)?;
    let mut kinds = Vec::with_capacity(n);
    let mut seen = [false; 256];
    for (id, (&t, &ty)) in texts.iter().zip(&types).enumerate() {
        kinds.push(match ty {
            CONTROL | USER_DEFINED | UNKNOWN => PieceKind::Special,
            BYTE => {
                let b = byte_piece(t).ok_or_else(|| {
                    f.err(
                        TOKENS,
                        format!("[{id}] {t:?} has the byte type but is not <0xNN>"),
                    )
                })?;
                seen[b as usize] = true;
                PieceKind::Byte(b)
            }
            _ => PieceKind::Normal,
        });
    }
    let by_text: FxHashMap<&str, u32> = texts
        .iter()
        .zip(&kinds)
        .enumerate()
        .filter(|(_, (_, k))| **k == PieceKind::Normal)
        .map(|(id, (&t, _))| (t, id as u32))
        .collect();
    let raw = f.strings(MERGES)?;
    let mut merges = Vec::with_capacity(raw.len());
    for (k, m) in raw.iter().enumerate() {
        let (l, r) = split_merge(f, k, m)?;
        let id = |s: &str| {
            by_text.get(s).copied().ok_or_else(|| {
                f.err(
                    MERGES,
                    format!("[{k}] {m:?} names {s:?}, which is not a token"),
                )
            })
        };
        merges.push((id(l)?, id(r)?));
    }
    let add_space_prefix = f.bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(false);
    let marker = MARKER.to_string();
    let mut normalizers = vec![Norm::Replace {
        from: " ".into(),
        to: marker.clone(),
    }];
    if add_space_prefix {
        normalizers.push(Norm::Prepend(marker));
    }
    let cfg = SpConfig {
        pieces: texts.iter().map(|t| t.to_string()).collect(),
        kinds,
        merges: MergeSource::List(merges),
        unk: f.id("tokenizer.ggml.unknown_token_id", n)?,
        fuse_unk: false,
        byte_fallback: seen.iter().all(|&s| s),
        byte_decode: true,
        normalizers,
        metaspace: None,
        strip_leading: add_space_prefix as usize,
        ignore_merges: false,
        split_newlines: true,
    };
    // llama.cpp always adds BOS for Gemma-4
    let info = GgufInfo {
        add_bos: true,
        ..info(f, n, true)?
    };
    let m = SpBpe::new(cfg).map_err(|e| fmt_err(f.path, format!("GGUF tokenizer: {e}")))?;
    Ok((GgufModel::SentencePiece(m), info))
}

/// Load the tokenizer of a GGUF file (metadata only).
pub fn load_file(path: &Path) -> Result<(GgufModel, GgufInfo)> {
    let md = read_file(path)?;
    build(&md, &path.display().to_string())
}

/// Load the tokenizer of GGUF bytes held in memory.
pub fn from_bytes(data: &[u8], name: &str) -> Result<(GgufModel, GgufInfo)> {
    let md = read_metadata(data, data.len() as u64, name)?;
    build(&md, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF writer for tests: `(key, type, encoded value)`.
    fn gguf(version: u32, kv: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(version.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((kv.len() as u64).to_le_bytes());
        for (k, t, v) in kv {
            out.extend(s(k));
            out.extend(t.to_le_bytes());
            out.extend(v);
        }
        out
    }
    fn s(x: &str) -> Vec<u8> {
        let mut v = (x.len() as u64).to_le_bytes().to_vec();
        v.extend(x.as_bytes());
        v
    }
    fn arr(elem: u32, items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = elem.to_le_bytes().to_vec();
        v.extend((items.len() as u64).to_le_bytes());
        for i in items {
            v.extend(i);
        }
        v
    }

    /// A tiny byte-level GGUF vocabulary: 256 bytes, `ab`, `<|eot|>`, merge `a b`.
    fn tiny_bpe(pre: &str) -> Vec<u8> {
        let mut toks: Vec<Vec<u8>> = (0..=255u8)
            .map(|b| s(&byte_level::encode_bytes(&[b])))
            .collect();
        toks.push(s("ab"));
        toks.push(s("<|eot|>"));
        let mut types: Vec<Vec<u8>> = vec![1i32.to_le_bytes().to_vec(); 257];
        types.push(3i32.to_le_bytes().to_vec());
        gguf(
            3,
            &[
                ("general.architecture", 8, s("gpt2")),
                ("tokenizer.ggml.model", 8, s("gpt2")),
                ("tokenizer.ggml.pre", 8, s(pre)),
                ("tokenizer.ggml.tokens", 9, arr(8, &toks)),
                ("tokenizer.ggml.token_type", 9, arr(5, &types)),
                ("tokenizer.ggml.merges", 9, arr(8, &[s("a b")])),
                (
                    "tokenizer.ggml.bos_token_id",
                    4,
                    257u32.to_le_bytes().to_vec(),
                ),
                ("tokenizer.ggml.add_bos_token", 7, vec![1]),
            ],
        )
    }

    #[test]
    fn a_byte_level_vocabulary_loads_with_its_specials_and_merges() {
        let (m, info) = from_bytes(&tiny_bpe("gpt-2"), "t.gguf").unwrap();
        let GgufModel::Bpe(b) = m else {
            panic!("not BPE")
        };
        assert_eq!(b.encode_ordinary("ab a").unwrap(), vec![256, 32, 97]);
        assert_eq!(b.specials(), &[("<|eot|>".to_string(), 257)]);
        assert_eq!(b.pretokenizer().name(), "gpt2");
        assert_eq!(info.bos, Some(257));
        assert!(info.add_bos);
        assert_eq!(info.pre, "gpt-2");
    }

    #[test]
    fn truncation_anywhere_is_a_format_error_naming_the_file() {
        let data = tiny_bpe("gpt-2");
        for cut in (0..data.len()).step_by(97).chain([data.len() - 1]) {
            let e = from_bytes(&data[..cut], "cut.gguf")
                .err()
                .expect("must fail");
            assert!(matches!(e, Error::Format { .. }), "{cut}: {e}");
            assert!(e.to_string().starts_with("cut.gguf: "), "{e}");
        }
        // a key named in the message
        let e = from_bytes(&data[..data.len() - 3], "cut.gguf")
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("tokenizer.ggml.add_bos_token"),
            "{e}"
        );
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        let mut data = gguf(3, &[]);
        data.truncate(16);
        data.extend(u64::MAX.to_le_bytes());
        let e = from_bytes(&data, "x.gguf").err().unwrap().to_string();
        assert!(e.contains("key/value count"), "{e}");
        let mut bad = s("k");
        bad.extend(9u32.to_le_bytes());
        bad.extend(8u32.to_le_bytes());
        bad.extend((1u64 << 60).to_le_bytes());
        let mut data = gguf(3, &[]);
        data.truncate(16);
        data.extend(1u64.to_le_bytes());
        data.extend(bad);
        let e = from_bytes(&data, "x.gguf").err().unwrap().to_string();
        assert!(e.contains("array length") && e.contains("\"k\""), "{e}");
    }

    #[test]
    fn unsupported_models_and_pre_tokenizers_are_named() {
        for (model, word) in [("bert", "WordPiece"), ("t5", "Unigram"), ("rwkv", "rwkv")] {
            let data = gguf(3, &[("tokenizer.ggml.model", 8, s(model))]);
            let e = from_bytes(&data, "m.gguf").err().unwrap().to_string();
            assert!(e.contains(word), "{e}");
        }
        let e = from_bytes(&tiny_bpe("kimi-k2"), "m.gguf")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("\"kimi-k2\"") && e.contains("tokenizer.ggml.pre"),
            "{e}"
        );
        let e = from_bytes(&gguf(1, &[]), "v.gguf")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("version 1"), "{e}");
        let e = from_bytes(&[b'G', b'G', b'U', b'F', 0, 0, 0, 3], "b.gguf")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("big-endian"), "{e}");
    }

    #[test]
    fn every_known_pre_tokenizer_compiles() {
        for name in [
            "default",
            "llama-bpe",
            "dbrx",
            "deepseek-llm",
            "deepseek-coder",
            "deepseek-v3",
            "falcon",
            "starcoder",
            "gpt-2",
            "qwen2",
            "qwen35",
            "poro-chat",
            "viking",
            "seed-coder",
            "ufakzeka",
            "bailingmoe",
            "minicpm5",
        ] {
            let (regexes, _) = pre_regexes(name).unwrap();
            let p = pretokenizer_for(regexes).unwrap();
            let text = "Hello, world! 1234567 \n\n  x  éà 你好 'll";
            assert_eq!(p.pieces(text).unwrap().concat(), text, "{name}");
        }
    }

    #[test]
    fn llama_cpp_gpt2_regex_splits_like_the_gpt2_preset() {
        let regex = Pretokenizer::from_regex(LLAMA_CPP_GPT2).unwrap();
        assert_eq!(regex.name(), "custom");
        let preset = Pretokenizer::new("gpt2").unwrap();
        let alphabet: Vec<char> = "ab Z1 2\t\n\r'sllvemdt.,!é中\u{a0}\u{2003}\u{300}٣_-"
            .chars()
            .collect();
        let mut state = 0x9e3779b97f4a7c15u64;
        for _ in 0..3000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            assert_eq!(
                regex.pieces(&text).unwrap(),
                preset.pieces(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_sentencepiece_vocabulary_loads_with_byte_fallback() {
        let mut toks = vec![s("<unk>"), s("<s>")];
        let mut types = vec![2i32.to_le_bytes().to_vec(), 3i32.to_le_bytes().to_vec()];
        let mut scores = vec![0f32.to_le_bytes().to_vec(); 2];
        for b in 0..=255u8 {
            toks.push(s(&format!("<0x{b:02X}>")));
            types.push(6i32.to_le_bytes().to_vec());
            scores.push(0f32.to_le_bytes().to_vec());
        }
        for (p, sc) in [
            ("▁", -1f32),
            ("a", -2.0),
            ("b", -3.0),
            ("ab", -0.5),
            ("▁ab", -0.1),
        ] {
            toks.push(s(p));
            types.push(1i32.to_le_bytes().to_vec());
            scores.push(sc.to_le_bytes().to_vec());
        }
        let data = gguf(
            2,
            &[
                ("tokenizer.ggml.model", 8, s("llama")),
                ("tokenizer.ggml.tokens", 9, arr(8, &toks)),
                ("tokenizer.ggml.scores", 9, arr(6, &scores)),
                ("tokenizer.ggml.token_type", 9, arr(5, &types)),
            ],
        );
        let (m, info) = from_bytes(&data, "s.gguf").unwrap();
        let GgufModel::SentencePiece(m) = m else {
            panic!("not SentencePiece")
        };
        assert!(info.add_bos);
        let ids = m.encode_spans("ab c", None, None).unwrap();
        // ▁ab, ▁, then c by byte fallback
        assert_eq!(ids, vec![262, 258, 2 + b'c' as u32]);
        assert_eq!(m.decode_bytes(&ids).unwrap(), b"ab c");
    }
}
