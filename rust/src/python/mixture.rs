//! Bindings of [`crate::mixture`]: replay a merge list on category samples (GIL released, Ctrl-C
//! and the progress callback checked between steps) into a frozen `MixtureCounts` whose arrays
//! come back as numpy arrays. `tokforge.mixture` owns the API, the LP and the docstrings.

use super::errors::InputError;
use super::train::PyProgress;
use crate::bpe::count::Utf8Policy;
use crate::error::Error;
use crate::mixture::separate::{all_rows, violated_rows, SeparateConfig};
use crate::mixture::{replay, Counts, MergeList, MergeOrder, Sample};
use crate::pretokenize::Pretokenizer;
use crate::progress::Progress;
use numpy::{PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the waiting main thread looks for Ctrl-C (Python runs signal handlers only there).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The callback, and a stop flag the main thread raises on Ctrl-C.
struct Watch<'a> {
    inner: &'a PyProgress,
    stop: &'a AtomicBool,
}

impl Progress for Watch<'_> {
    fn report(&self, stage: &str, done: u64, total: u64) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.inner.report(stage, done, total)
    }
}

/// Run `work` on a helper thread with the GIL released; meanwhile poll for signals and raise
/// the stop flag when a handler raises (KeyboardInterrupt), then re-raise it.
fn interruptible<T: Send>(
    py: Python<'_>,
    work: impl FnOnce(&AtomicBool) -> crate::Result<T> + Send,
) -> PyResult<Result<T, Error>> {
    let stop = AtomicBool::new(false);
    let mut pending: Option<PyErr> = None;
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| work(&stop));
        while !h.is_finished() {
            py.detach(|| {
                let start = std::time::Instant::now();
                while !h.is_finished() && start.elapsed() < SIGNAL_POLL {
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            if pending.is_none() {
                if let Err(e) = py.check_signals() {
                    stop.store(true, Ordering::Relaxed);
                    pending = Some(e);
                }
            }
        }
        h.join()
    });
    if let Some(e) = pending {
        return Err(e);
    }
    out.map_err(|_| super::errors::TokforgeError::new_err("the mixture worker thread panicked"))
}

/// Pair counts of every category at every merge step.
#[pyclass(frozen, module = "tokforge._core")]
pub struct MixtureCounts {
    inner: Arc<Counts>,
}

fn id_u32(x: i64, what: &str, bound: usize) -> PyResult<u32> {
    u32::try_from(x)
        .ok()
        .filter(|&v| (v as usize) < bound)
        .ok_or_else(|| InputError::new_err(format!("{what} {x} is outside 0..{bound}")))
}

#[pymethods]
impl MixtureCounts {
    #[getter]
    fn categories(&self) -> Vec<String> {
        self.inner.names.clone()
    }
    #[getter]
    fn num_steps(&self) -> usize {
        self.inner.num_steps()
    }
    #[getter]
    fn num_pairs(&self) -> usize {
        self.inner.num_pairs()
    }
    #[getter]
    fn top_k(&self) -> usize {
        self.inner.top_k
    }
    /// Merges removed when a split list was reduced to one merge per token.
    #[getter]
    fn merges_dropped(&self) -> usize {
        self.inner.merges.dropped
    }
    /// Recorded count changes over all categories.
    #[getter]
    fn num_changes(&self) -> usize {
        self.inner.cats.iter().map(|c| c.num_changes()).sum()
    }
    /// Bytes held by the transcripts.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.memory()
    }
    /// `N_i`: adjacent-pair count of each category before any merge.
    #[getter]
    fn pairs_total<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_vec(py, self.inner.cats.iter().map(|c| c.pairs_total).collect())
    }
    /// `B_i`: bytes of each category's sample.
    #[getter]
    fn sample_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_vec(py, self.inner.cats.iter().map(|c| c.bytes).collect())
    }
    /// `(categories, steps)`: count of merge `t`'s pair before step `t`.
    #[getter]
    fn chosen<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let c = &self.inner;
        let flat: Vec<u32> = c
            .cats
            .iter()
            .flat_map(|t| t.chosen.iter().copied())
            .collect();
        PyArray1::from_vec(py, flat).reshape([c.cats.len(), c.num_steps()])
    }
    /// Pair id of each merge.
    #[getter]
    fn merge_pair<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_vec(py, self.inner.merge_pair.clone())
    }
    /// `(categories, steps, top_k)` pair ids of the strongest competitors (count 0 = padding).
    #[getter]
    fn top_pairs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<u32>>> {
        self.top(py, |t| &t.top_pair)
    }
    /// `(categories, steps, top_k)` counts of the competitors in `top_pairs`.
    #[getter]
    fn top_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<u32>>> {
        self.top(py, |t| &t.top_count)
    }
    /// Steps whose merge no category has: they give no constraint.
    fn missing_steps<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_vec(
            py,
            self.inner.missing().into_iter().map(|t| t as i64).collect(),
        )
    }
    /// The merges replayed, as byte pairs.
    fn merges<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.inner
            .merges
            .pairs()
            .into_iter()
            .map(|(a, b)| (PyBytes::new(py, &a), PyBytes::new(py, &b)))
            .collect()
    }
    /// The two parts of pair `p` as bytes.
    fn pair_tokens<'py>(
        &self,
        py: Python<'py>,
        p: i64,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let p = id_u32(p, "pair id", self.inner.num_pairs())?;
        let (a, b) = self
            .inner
            .pair_bytes(p)
            .ok_or_else(|| InputError::new_err("unknown pair"))?;
        Ok((PyBytes::new(py, a), PyBytes::new(py, b)))
    }
    /// Pair id of `(left, right)`, or `None` if no category and no merge has it.
    fn pair_id(&self, left: &[u8], right: &[u8]) -> Option<u32> {
        let m = &self.inner.merges;
        let sym = |b: &[u8]| {
            if b.len() == 1 {
                return Some(b[0] as u32);
            }
            m.merges()
                .iter()
                .map(|&(_, _, c)| c)
                .find(|&c| m.symbol_bytes(c) == b)
        };
        self.inner.pair_id(sym(left)?, sym(right)?)
    }
    /// `(len(steps), categories)`: count of `pairs[j]` before step `steps[j]` in each category.
    fn counts_at<'py>(
        &self,
        py: Python<'py>,
        steps: PyReadonlyArray1<'py, i64>,
        pairs: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let (steps, pairs) = (steps.as_array().to_vec(), pairs.as_array().to_vec());
        if steps.len() != pairs.len() {
            return Err(InputError::new_err("steps and pairs differ in length"));
        }
        let c = &self.inner;
        let q: Vec<(usize, u32)> = steps
            .iter()
            .zip(&pairs)
            .map(|(&t, &p)| {
                Ok((
                    id_u32(t, "step", c.num_steps() + 1)? as usize,
                    id_u32(p, "pair id", c.num_pairs())?,
                ))
            })
            .collect::<PyResult<_>>()?;
        let n = c.cats.len();
        let flat: Vec<u32> = py.detach(|| {
            q.par_iter()
                .flat_map_iter(|&(t, p)| c.cats.iter().map(move |cat| cat.count(t, p)))
                .collect()
        });
        PyArray1::from_vec(py, flat).reshape([q.len(), n])
    }
    /// `(pair ids, signed changes)` recorded for merge `step` in `category`.
    fn changes<'py>(
        &self,
        py: Python<'py>,
        category: i64,
        step: i64,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i32>>)> {
        let c = &self.inner;
        let i = id_u32(category, "category", c.cats.len())? as usize;
        let t = id_u32(step, "step", c.num_steps())? as usize;
        let cat = &c.cats[i];
        let (lo, hi) = (cat.step_off[t] as usize, cat.step_off[t + 1] as usize);
        Ok((
            PyArray1::from_slice(py, &cat.d_pair[lo..hi]),
            PyArray1::from_slice(py, &cat.d_diff[lo..hi]),
        ))
    }
    /// `(pair ids, counts)` of `category` before any merge.
    fn snapshot<'py>(
        &self,
        py: Python<'py>,
        category: i64,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>)> {
        let i = id_u32(category, "category", self.inner.cats.len())? as usize;
        let cat = &self.inner.cats[i];
        Ok((
            PyArray1::from_slice(py, &cat.snap_pair),
            PyArray1::from_slice(py, &cat.snap_count),
        ))
    }
    /// `(rows, 2)` int64 `(step, pair)` rows violated by the solution and not in `rows`.
    #[pyo3(signature = (alpha, v_step, v_pair_ids, v_pair_values, row_steps, row_pairs, *,
                        scale, tol, k, max_add))]
    #[allow(clippy::too_many_arguments)]
    fn violated_rows<'py>(
        &self,
        py: Python<'py>,
        alpha: PyReadonlyArray1<'py, f64>,
        v_step: PyReadonlyArray1<'py, f64>,
        v_pair_ids: PyReadonlyArray1<'py, i64>,
        v_pair_values: PyReadonlyArray1<'py, f64>,
        row_steps: PyReadonlyArray1<'py, i64>,
        row_pairs: PyReadonlyArray1<'py, i64>,
        scale: f64,
        tol: f64,
        k: usize,
        max_add: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let c = &self.inner;
        let (ids, vals) = (
            v_pair_ids.as_array().to_vec(),
            v_pair_values.as_array().to_vec(),
        );
        let (rs, rp) = (row_steps.as_array().to_vec(), row_pairs.as_array().to_vec());
        if ids.len() != vals.len() || rs.len() != rp.len() {
            return Err(InputError::new_err("paired arrays differ in length"));
        }
        let v_pair = ids
            .iter()
            .zip(&vals)
            .map(|(&p, &v)| Ok((id_u32(p, "pair id", c.num_pairs())?, v)))
            .collect::<PyResult<Vec<_>>>()?;
        let rows = rs
            .iter()
            .zip(&rp)
            .map(|(&t, &p)| {
                Ok((
                    id_u32(t, "step", c.num_steps())?,
                    id_u32(p, "pair id", c.num_pairs())?,
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let cfg = SeparateConfig {
            scale,
            tol,
            k,
            max_add,
        };
        let (alpha, v_step) = (alpha.as_slice()?, v_step.as_slice()?);
        let found = interruptible(py, |_| {
            violated_rows(c, alpha, v_step, &v_pair, &rows, &cfg)
        })??;
        rows_array(py, found)
    }
    /// `(rows, 2)` int64: every row of the full LP (small instances only).
    #[pyo3(signature = (*, limit=20_000_000))]
    fn all_rows<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyArray2<i64>>> {
        rows_array(py, all_rows(&self.inner, limit)?)
    }
    fn __repr__(&self) -> String {
        format!(
            "MixtureCounts(categories={}, steps={}, pairs={})",
            self.inner.cats.len(),
            self.inner.num_steps(),
            self.inner.num_pairs()
        )
    }
}

impl MixtureCounts {
    fn top<'py>(
        &self,
        py: Python<'py>,
        f: impl Fn(&crate::mixture::Transcript) -> &Vec<u32>,
    ) -> PyResult<Bound<'py, PyArray3<u32>>> {
        let c = &self.inner;
        let flat: Vec<u32> = c.cats.iter().flat_map(|t| f(t).iter().copied()).collect();
        PyArray1::from_vec(py, flat).reshape([c.cats.len(), c.num_steps(), c.top_k])
    }
}

fn rows_array(py: Python<'_>, rows: Vec<(u32, u32)>) -> PyResult<Bound<'_, PyArray2<i64>>> {
    let n = rows.len();
    let flat: Vec<i64> = rows
        .into_iter()
        .flat_map(|(t, p)| [t as i64, p as i64])
        .collect();
    PyArray1::from_vec(py, flat).reshape([n, 2])
}

/// Replay `merges` (byte pairs in priority order) on each category's sample, pre-tokenized with
/// `pattern`. `categories` holds `(name, text, files)` with exactly one of text / files. The
/// first `num_merges` merges are used (an error if the list is shorter), else the first `limit`
/// (or all).
#[pyfunction]
#[pyo3(signature = (merges, pattern, categories, *, merge_order="auto", num_merges=None,
                    limit=None, top_k=10, errors="strict", progress=None, num_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn replay_merges(
    py: Python<'_>,
    merges: Vec<(Vec<u8>, Vec<u8>)>,
    pattern: &str,
    categories: Vec<(String, Option<String>, Vec<PathBuf>)>,
    merge_order: &str,
    num_merges: Option<usize>,
    limit: Option<usize>,
    top_k: usize,
    errors: &str,
    progress: Option<Py<PyAny>>,
    num_threads: Option<super::convert::Int>,
) -> PyResult<MixtureCounts> {
    let order = MergeOrder::parse(merge_order)?;
    let policy = Utf8Policy::parse(errors)?;
    let pretok = Pretokenizer::new(pattern)?;
    let samples = categories
        .into_iter()
        .map(|(name, text, files)| match (text, files.is_empty()) {
            (Some(t), true) => Ok((name, Sample::Text(t))),
            (None, false) => Ok((name, Sample::Files(files))),
            _ => Err(InputError::new_err(format!(
                "category {name:?}: give either a text or files"
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    let pool = super::pool(num_threads)?;
    let prog = PyProgress::new(progress);
    let result = interruptible(py, |stop| {
        let mut list = MergeList::with_order(&merges, order)?;
        if let Some(n) = num_merges {
            if n > list.len() {
                return Err(Error::Input(format!(
                    "num_merges={n} is beyond the {} merges of the list",
                    list.len()
                )));
            }
            list.truncate(n);
        } else if let Some(n) = limit {
            list.truncate(n);
        }
        let watch = Watch { inner: &prog, stop };
        pool.install(|| replay(list, &pretok, &samples, top_k, policy, &watch))
    })?;
    match result {
        Ok(counts) => Ok(MixtureCounts {
            inner: Arc::new(counts),
        }),
        Err(e) => Err(prog.take_error().unwrap_or_else(|| e.into())),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MixtureCounts>()?;
    m.add_function(wrap_pyfunction!(replay_merges, m)?)?;
    Ok(())
}
