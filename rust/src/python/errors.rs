//! One mapping from [`crate::Error`] to Python exceptions, all under `TokforgeError(ValueError)`.

use crate::error::Error;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    tokforge,
    TokforgeError,
    PyValueError,
    "Base class of tokforge's errors."
);
pyo3::create_exception!(
    tokforge,
    FormatError,
    TokforgeError,
    "A tokenizer file that tokforge cannot read exactly."
);
pyo3::create_exception!(
    tokforge,
    PatternError,
    TokforgeError,
    "A pre-tokenization regex that does not compile or run."
);
pyo3::create_exception!(
    tokforge,
    TrainingError,
    TokforgeError,
    "Training settings or input that cannot work."
);
pyo3::create_exception!(
    tokforge,
    VocabError,
    TokforgeError,
    "An inconsistent vocabulary, or an id/token it does not have."
);
pyo3::create_exception!(
    tokforge,
    InputError,
    TokforgeError,
    "Input text or arguments that cannot be used (e.g. invalid UTF-8)."
);
pyo3::create_exception!(
    tokforge,
    StoppedError,
    TokforgeError,
    "Work stopped by the progress callback (it returned False)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TokforgeError", py.get_type::<TokforgeError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("PatternError", py.get_type::<PatternError>())?;
    m.add("TrainingError", py.get_type::<TrainingError>())?;
    m.add("VocabError", py.get_type::<VocabError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("StoppedError", py.get_type::<StoppedError>())?;
    Ok(())
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::Format { .. } => FormatError::new_err(msg),
            Error::Utf8 { .. } | Error::Input(_) | Error::Disallowed { .. } => {
                InputError::new_err(msg)
            }
            Error::Regex { .. } => PatternError::new_err(msg),
            Error::Training(_) => TrainingError::new_err(msg),
            Error::Vocab(_) => VocabError::new_err(msg),
            Error::Interrupted(_) => StoppedError::new_err(msg),
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
                _ => PyOSError::new_err(msg),
            },
        }
    }
}
