//! Every tokenizer file format tokforge reads and writes, one module each; errors name the file
//! and the field or line at fault, and sizes read from a file are bounded before allocation.
//!
//! - [`hf_json`]: HF `tokenizer.json` (byte-level BPE subset), read and write.
//! - [`tiktoken`]: `.tiktoken` rank files, read and write, and the pattern + special tokens of
//!   OpenAI's own files ([`tiktoken::preset_for_stem`]).
//! - [`sp_json`]: HF `tokenizer.json`, SentencePiece-style BPE subset, read and write.
//! - [`sp_model`]: SentencePiece `.model` protobuf files of type BPE, read.
//! - [`gguf`]: GGUF files (llama.cpp), the tokenizer in the metadata, read (tensors never).
//! - [`tekken`]: Mistral tekken JSON, read (ids = rank + number of special tokens).
//! - [`lib_json`]: tokforge's LiB JSON (`"format": "tokforge-lib"`), read and write.
//! - [`piece_counts`]: tokforge's piece-count tables (`.tfpc`), read and write.
//! - [`detect`]: load a file of any of these formats, told apart by content
//!   ([`detect::load_file`], [`detect::load_str`]).

pub mod detect;
pub mod gguf;
pub mod hf_json;
pub mod lib_json;
pub mod piece_counts;
pub mod sp_json;
pub mod sp_model;
pub mod tekken;
pub mod tiktoken;
