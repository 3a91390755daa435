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
    /// A text holds the text of a special token it may not hold (tiktoken's
    /// `disallowed_special`); `text`: its index in a batch.
    #[error(
        "encountered the special token '{token}' ({}character {char_at}), which is disallowed. \
         Pass allowed_special={{...}} or 'all' to encode it as a special token, or \
         disallowed_special=() to encode it as plain text",
        text.map_or(String::new(), |i| format!("text {i}, "))
    )]
    Disallowed {
        token: String,
        char_at: usize,
        text: Option<usize>,
    },
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
    /// This error as met in text `i` of a batch (an [`Error::Disallowed`] names it).
    pub fn in_text(self, i: usize) -> Self {
        match self {
            Error::Disallowed {
                token,
                char_at,
                text: None,
            } => Error::Disallowed {
                token,
                char_at,
                text: Some(i),
            },
            e => e,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
