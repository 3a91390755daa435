//! Binding of [`PieceCounts`]: a frozen table with the pre-tokenizer that cut its pieces,
//! written and read in the `.tfpc` format (`crate::formats::piece_counts`), pickled through it
//! (how Ray ships tables between workers), and merged into new tables. `tokforge.counts` owns
//! the API and the docstrings.

use super::convert::Int;
use super::errors::InputError;
use crate::bpe::count::{Documents, PieceCounts};
use crate::formats::piece_counts;
use crate::pretokenize::Pretokenizer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

/// Unique pre-tokenized pieces with u64 counts, and the pattern that cut them.
#[pyclass(frozen, name = "PieceCounts", module = "tokforge._core")]
pub struct PyPieceCounts {
    pretok: Pretokenizer,
    counts: PieceCounts,
}

impl PyPieceCounts {
    pub(crate) fn new(pretok: Pretokenizer, counts: PieceCounts) -> Self {
        Self { pretok, counts }
    }

    pub(crate) fn parts(&self) -> (&Pretokenizer, &PieceCounts) {
        (&self.pretok, &self.counts)
    }
}

#[pymethods]
impl PyPieceCounts {
    /// Read a table from the bytes of a `.tfpc` file; `name` names it in errors.
    #[staticmethod]
    #[pyo3(signature = (data, name="<bytes>".to_string()))]
    fn from_bytes(py: Python<'_>, data: &[u8], name: String) -> PyResult<Self> {
        let (pattern, counts) = py.detach(|| piece_counts::read(data, &name))?;
        let pretok = Pretokenizer::from_regex(&pattern).map_err(|e| crate::Error::Format {
            path: name.clone(),
            message: format!("piece-count table: its pattern does not compile: {e}"),
        })?;
        Ok(Self { pretok, counts })
    }

    /// The table in the `.tfpc` format (canonical: equal tables give equal bytes).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let data = py.detach(|| piece_counts::write(&self.counts, self.pretok.pattern()));
        PyBytes::new(py, &data)
    }

    /// A new table: this one plus `others` (same pattern), kept within `max_pieces`.
    #[pyo3(signature = (others, *, max_pieces=None, prune=false))]
    fn merge(
        &self,
        py: Python<'_>,
        others: Vec<PyRef<'_, PyPieceCounts>>,
        max_pieces: Option<Int>,
        prune: bool,
    ) -> PyResult<Self> {
        let limit = super::train::limit(max_pieces, prune)?;
        for (i, o) in others.iter().enumerate() {
            if o.pretok.pattern() != self.pretok.pattern() {
                return Err(InputError::new_err(format!(
                    "others[{i}] was counted with pattern {:?}, this table with {:?}: tables \
                     merge only when cut the same way",
                    o.pretok.name(),
                    self.pretok.name()
                )));
            }
        }
        let tables: Vec<&PieceCounts> = std::iter::once(&self.counts)
            .chain(others.iter().map(|o| &o.counts))
            .collect();
        let counts = py.detach(|| {
            let mut out = PieceCounts::with_options(Documents::File, limit)?;
            for t in tables {
                out.merge(t)?;
            }
            Ok::<_, crate::Error>(out)
        })?;
        Ok(Self {
            pretok: self.pretok.clone(),
            counts,
        })
    }

    /// The count of `piece` (UTF-8 bytes), 0 if absent.
    fn get(&self, piece: &[u8]) -> u64 {
        self.counts.get(piece)
    }

    /// The `n` most frequent pieces as `(bytes, count)`, ties by bytes.
    fn most_common<'py>(
        &self,
        py: Python<'py>,
        n: Int,
    ) -> PyResult<Vec<(Bound<'py, PyBytes>, u64)>> {
        let n = n.size("n", 0, usize::MAX)?;
        let mut v = self.counts.sorted();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.truncate(n);
        Ok(v.into_iter()
            .map(|(p, c)| (PyBytes::new(py, p), c))
            .collect())
    }

    /// The regex the pieces were cut with.
    #[getter]
    fn pattern(&self) -> &str {
        self.pretok.pattern()
    }
    /// Preset name of the pattern (`gpt2`, `cl100k`, `o200k`) or `custom`.
    #[getter]
    fn pattern_name(&self) -> &str {
        self.pretok.name()
    }
    #[getter]
    fn docs(&self) -> u64 {
        self.counts.docs
    }
    #[getter]
    fn bytes(&self) -> u64 {
        self.counts.bytes
    }
    #[getter]
    fn pruned_below(&self) -> u64 {
        self.counts.pruned_below
    }
    /// Sum of all counts: the pieces of the input.
    #[getter]
    fn total(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c).sum()
    }
    fn __len__(&self) -> usize {
        self.counts.len()
    }
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let from = slf.get_type().getattr("from_bytes")?;
        let data = slf.get().to_bytes(py);
        (from, (data,)).into_pyobject(py)
    }
}
