//! Bindings of [`crate::dynamic`]: convert numpy arrays, release the GIL, return numpy arrays.
//! The Python class `tokforge.dynamic.MergeResult` owns the API and the docstrings.

use super::errors::InputError;
use super::model::PyTokenModel;
use crate::dynamic::{self, Identity, MergeConfig, Target, TokenSource, WordMode};
use crate::error::Error;
use crate::pretokenize::Pretokenizer;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::sync::Arc;

/// An id -> bytes table for vocabularies that are not tokforge models (tiktoken, HF).
#[pyclass(frozen, module = "tokforge._core")]
pub struct TokenTable {
    inner: Arc<dynamic::TokenTable>,
}

#[pymethods]
impl TokenTable {
    /// `tokens[id]` = bytes of `id` (`None` for a hole); `special_ids` never merge.
    #[new]
    #[pyo3(signature = (tokens, special_ids=Vec::new()))]
    fn new(tokens: Vec<Option<Vec<u8>>>, special_ids: Vec<i64>) -> PyResult<Self> {
        let mut special = vec![false; tokens.len()];
        for id in special_ids {
            match usize::try_from(id).ok().filter(|&i| i < tokens.len()) {
                Some(i) => special[i] = true,
                None => {
                    return Err(InputError::new_err(format!(
                        "special id {id} is outside the table of {} tokens",
                        tokens.len()
                    )))
                }
            }
        }
        Ok(Self {
            inner: Arc::new(dynamic::TokenTable { tokens, special }),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.tokens.len()
    }
}

/// A token source given from Python: a tokforge model or a [`TokenTable`].
#[derive(Clone)]
enum Source {
    Model(Arc<crate::bpe::Bpe>),
    Table(Arc<dynamic::TokenTable>),
}

impl Source {
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(m) = obj.cast::<PyTokenModel>() {
            return Ok(Source::Model(m.get().bpe("dynamic merging")?));
        }
        if let Ok(t) = obj.cast::<TokenTable>() {
            return Ok(Source::Table(t.get().inner.clone()));
        }
        Err(InputError::new_err(
            "tokens must be a tokforge TokenModel or a TokenTable",
        ))
    }

    fn get(&self) -> &dyn TokenSource {
        match self {
            Source::Model(m) => m.as_ref(),
            Source::Table(t) => t.as_ref(),
        }
    }
}

fn to_u32(v: &[i64], what: &str) -> crate::Result<Vec<u32>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            u32::try_from(x)
                .ok()
                .filter(|&y| y <= dynamic::MAX_ID)
                .ok_or_else(|| {
                    Error::Input(format!("{what}[{i}] = {x}: ids must be in [0, 2**31)"))
                })
        })
        .collect()
}

fn to_offsets(v: &[i64]) -> crate::Result<Vec<usize>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            usize::try_from(x).map_err(|_| Error::Input(format!("offsets[{i}] = {x} is negative")))
        })
        .collect()
}

fn to_word_ids(v: &[i64]) -> crate::Result<Vec<i32>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            i32::try_from(x).ok().filter(|&w| w >= -1).ok_or_else(|| {
                Error::Input(format!(
                    "word_ids[{i}] = {x}: word ids must be in [-1, 2**31) (-1 = never merge)"
                ))
            })
        })
        .collect()
}

fn as_i32(v: Vec<u32>) -> Vec<i32> {
    // every value is a base id (< 2**31, checked) or an index below the batch size
    v.into_iter().map(|x| x as i32).collect()
}

fn as_i64(v: Vec<usize>) -> Vec<i64> {
    v.into_iter().map(|x| x as i64).collect()
}

/// Merge a flat batch; see `tokforge.dynamic.merge_batch`. Returns a dict of numpy arrays.
#[pyfunction]
#[pyo3(signature = (ids, offsets, word_ids, *, max_merges=None, min_count=2, target=None,
                    per_sample=false, max_unit_constituents=None, identity="ids", tokens=None,
                    num_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn merge_batch<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    word_ids: PyReadonlyArray1<'py, i64>,
    max_merges: Option<i64>,
    min_count: i64,
    target: Option<(String, f64)>,
    per_sample: bool,
    max_unit_constituents: Option<i64>,
    identity: &str,
    tokens: Option<Bound<'py, PyAny>>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let nonneg = |x: i64, name: &str| {
        usize::try_from(x)
            .map_err(|_| InputError::new_err(format!("{name} must be non-negative, got {x}")))
    };
    let target = match target {
        None => None,
        Some((kind, v)) => Some(match kind.as_str() {
            "absolute" => Target::Abs(v),
            "word_level" => Target::RelWord(v),
            "length" if v >= 0.0 && v.fract() == 0.0 => Target::Len(v as usize),
            _ => {
                return Err(InputError::new_err(format!(
                    "target ({kind:?}, {v}) is not one of ('absolute', r), ('word_level', r), ('length', n >= 0)"
                )))
            }
        }),
    };
    let cfg = MergeConfig {
        max_merges: max_merges.map(|m| nonneg(m, "max_merges")).transpose()?,
        min_count: u32::try_from(min_count)
            .ok()
            .filter(|&c| c >= 1)
            .ok_or_else(|| {
                InputError::new_err(format!(
                    "min_count must be a positive integer, got {min_count}"
                ))
            })?,
        target,
        per_sample,
        max_unit_constituents: max_unit_constituents
            .map(|m| nonneg(m, "max_unit_constituents"))
            .transpose()?,
        identity: match identity {
            "ids" => Identity::Ids,
            "bytes" => Identity::Bytes,
            _ => {
                return Err(InputError::new_err(format!(
                    "identity={identity:?} is not 'ids' or 'bytes'"
                )))
            }
        },
    };
    let source = tokens.as_ref().map(Source::from_py).transpose()?;
    let pool = super::pool(num_threads)?;
    let (ids, offsets, word_ids) = (ids.as_slice()?, offsets.as_slice()?, word_ids.as_slice()?);
    let r = py.detach(|| -> crate::Result<dynamic::MergeResult> {
        let ids = to_u32(ids, "ids")?;
        let offsets = to_offsets(offsets)?;
        let word_ids = to_word_ids(word_ids)?;
        pool.install(|| {
            dynamic::merge_batch(
                &ids,
                &offsets,
                &word_ids,
                &cfg,
                source.as_ref().map(Source::get),
            )
        })
    })?;

    let d = PyDict::new(py);
    let n_out = r.spans.len();
    let spans: Vec<i32> = r
        .spans
        .iter()
        .flat_map(|s| [s[0] as i32, s[1] as i32])
        .collect();
    d.set_item("unit_ids", PyArray1::from_vec(py, as_i32(r.unit_ids)))?;
    d.set_item("seq_offsets", PyArray1::from_vec(py, as_i64(r.seq_offsets)))?;
    d.set_item("spans", PyArray1::from_vec(py, spans).reshape([n_out, 2])?)?;
    d.set_item("word_ids", PyArray1::from_vec(py, r.word_ids))?;
    d.set_item("unit_key", PyArray1::from_vec(py, as_i32(r.unit_key)))?;
    d.set_item(
        "unit_offsets",
        PyArray1::from_vec(py, as_i64(r.unit_offsets)),
    )?;
    d.set_item(
        "unit_constituents",
        PyArray1::from_vec(py, as_i32(r.unit_constituents)),
    )?;
    d.set_item("unit_base_id", PyArray1::from_vec(py, r.unit_base_id))?;
    d.set_item("key_offsets", PyArray1::from_vec(py, as_i64(r.key_offsets)))?;
    d.set_item(
        "key_constituents",
        PyArray1::from_vec(py, as_i32(r.key_constituents)),
    )?;
    match r.key_bytes {
        Some(kb) => d.set_item(
            "key_bytes",
            PyList::new(py, kb.iter().map(|b| PyBytes::new(py, b)))?,
        )?,
        None => d.set_item("key_bytes", py.None())?,
    }
    let col = |f: &dyn Fn(&dynamic::MergeStep) -> i64| r.merges.iter().map(f).collect::<Vec<i64>>();
    d.set_item(
        "merge_left",
        PyArray1::from_vec(py, col(&|m| m.left as i64)),
    )?;
    d.set_item(
        "merge_right",
        PyArray1::from_vec(py, col(&|m| m.right as i64)),
    )?;
    d.set_item("merge_new", PyArray1::from_vec(py, col(&|m| m.new as i64)))?;
    d.set_item(
        "merge_count",
        PyArray1::from_vec(py, col(&|m| m.count as i64)),
    )?;
    d.set_item(
        "merge_applied",
        PyArray1::from_vec(py, col(&|m| m.applied as i64)),
    )?;
    d.set_item(
        "merge_sample",
        PyArray1::from_vec(py, col(&|m| m.sample.map_or(-1, |s| s as i64))),
    )?;
    d.set_item("len_initial", r.len_initial)?;
    d.set_item("len_final", r.len_final)?;
    d.set_item("len_word_level", r.len_word_level)?;
    Ok(d)
}

/// Word id of every position of a flat batch from the tokens' pre-tokenization (`mode="pieces"`,
/// with the model's own pattern unless `pattern` is given) or `mode="none"` (0, specials -1).
#[pyfunction]
#[pyo3(signature = (ids, offsets, tokens, *, mode="pieces", pattern=None, num_threads=None))]
pub fn word_ids<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    tokens: Bound<'py, PyAny>,
    mode: &str,
    pattern: Option<&str>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<i32>>> {
    let source = Source::from_py(&tokens)?;
    let pretok: Option<Pretokenizer> = match (mode, pattern, &source) {
        ("none", _, _) => None,
        ("pieces", Some(p), _) => Some(Pretokenizer::new(p)?),
        ("pieces", None, Source::Model(m)) => Some(m.pretokenizer().clone()),
        ("pieces", None, Source::Table(_)) => {
            return Err(InputError::new_err(
                "a TokenTable has no pre-tokenizer: pass pattern=...",
            ))
        }
        _ => {
            return Err(InputError::new_err(format!(
                "mode={mode:?} is not 'pieces' or 'none'"
            )))
        }
    };
    let pool = super::pool(num_threads)?;
    let (ids, offsets) = (ids.as_slice()?, offsets.as_slice()?);
    let w = py.detach(|| -> crate::Result<Vec<i32>> {
        let ids = to_u32(ids, "ids")?;
        let offsets = to_offsets(offsets)?;
        let mode = match &pretok {
            Some(p) => WordMode::Pieces(p),
            None => WordMode::None,
        };
        pool.install(|| dynamic::word_ids(&ids, &offsets, source.get(), mode))
    })?;
    Ok(PyArray1::from_vec(py, w))
}

/// Encode each byte string with the model's merges only (no pre-tokenizer): the reference's
/// surface form of a unit (zett `get_surface_form_matrix`). Returns `(flat ids, offsets)`.
#[pyfunction]
pub fn retokenize<'py>(
    py: Python<'py>,
    model: PyRef<'py, PyTokenModel>,
    units: Vec<Vec<u8>>,
) -> PyResult<(Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<i64>>)> {
    let bpe = model.bpe("retokenize")?;
    let (flat, offsets) = py.detach(|| {
        let mut flat = Vec::new();
        let mut offsets = vec![0i64];
        for u in &units {
            if !u.is_empty() {
                bpe.encode_piece(u, &mut flat);
            }
            offsets.push(flat.len() as i64);
        }
        (flat, offsets)
    });
    Ok((
        PyArray1::from_vec(py, as_i32(flat)),
        PyArray1::from_vec(py, offsets),
    ))
}

/// Add this module's class and functions to `tokforge._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TokenTable>()?;
    m.add_function(wrap_pyfunction!(merge_batch, m)?)?;
    m.add_function(wrap_pyfunction!(word_ids, m)?)?;
    m.add_function(wrap_pyfunction!(retokenize, m)?)?;
    Ok(())
}
