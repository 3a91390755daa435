//! One error type for the whole crate. Every variant says what went wrong and where (file,
//! line, byte offset, token) so that the Python bindings can raise a message a user can act on.

use std::path::PathBuf;

/// Errors of tokforge's core. The Python bindings map each variant to a `TokforgeError` subclass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or a piece of text that is not in the expected format.
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    /// Input text that is not valid UTF-8 (`errors="strict"`).
    #[error("{source_name}: invalid UTF-8 at byte offset {offset} (pass errors=\"replace\" or errors=\"ignore\" to accept it)")]
    Utf8 { source_name: String, offset: u64 },
    /// A pre-tokenization pattern that does not compile.
    #[error("invalid pre-tokenization regex {pattern:?}: {message}")]
    Regex { pattern: String, message: String },
    /// Training settings that cannot work (vocab too small, duplicate special tokens, ...).
    #[error("{0}")]
    Training(String),
    /// Vocabulary inconsistencies (unknown token, id out of range, ...).
    #[error("{0}")]
    Vocab(String),
    /// Anything else the caller passed that cannot be used.
    #[error("{0}")]
    Input(String),
    /// The progress callback asked to stop (or raised).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
