//! # tokforge core
//!
//! Byte-level BPE as GPT-2/GPT-4/Llama-3 use it: pre-tokenize ([`pretokenize`]), count unique
//! pieces and learn merges ([`bpe::train`]); LiB vocabularies ([`lib_model`]). Every tokenizer
//! file format lives in [`formats`]: HF `tokenizer.json`, `.tiktoken` rank files (with OpenAI's
//! presets), Mistral tekken JSON and tokforge's LiB JSON, read and, where the format allows,
//! written; [`formats::detect::load_file`] loads any of them, telling them apart by content.
//! LiB is the second model family; both implement [`TokenModel`] ([`model`]), the one
//! interface encoding, analysis and the bindings use. [`mixture`] replays a merge list over
//! category samples for data-mixture inference; [`dynamic`] merges across a batch;
//! [`byte_probs`] turns a token LM into exact next-byte distributions.
//!
//! The core has no Python in it: the PyO3 bindings live in `python/`, behind the `python`
//! feature, so `cargo test` needs no interpreter.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod batch_texts;
pub mod bpe;
pub mod byte_level;
pub mod byte_probs;
pub mod cancel;
pub mod dynamic;
pub mod error;
pub mod formats;
pub mod huge_pages;
pub mod kept_buffers;
pub mod lib_model;
pub mod metrics;
pub mod mixture;
pub mod model;
pub mod pretokenize;
pub mod progress;
pub mod scratch_ids;
pub mod sentencepiece;
pub mod simd;
pub mod special;

#[cfg(feature = "python")]
mod python;

pub use bpe::Bpe;
pub use error::{Error, Result};
pub use lib_model::LibModel;
pub use model::{ModelKind, TokenModel};
pub use pretokenize::{Preset, Pretokenizer};
pub use sentencepiece::SpBpe;
