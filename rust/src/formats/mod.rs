//! Reading and writing tokenizer files: HF `tokenizer.json` ([`hf_json`]) and tiktoken rank
//! files ([`tiktoken`]). Errors name the file and the field or line at fault.

pub mod hf_json;
pub mod tiktoken;
