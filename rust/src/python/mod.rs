//! PyO3 bindings: convert arguments, release the GIL for heavy work, map errors. No algorithms.

mod byte_probs;
mod convert;
mod dynamic;
mod errors;
mod lib_model;
mod metrics;
mod mixture;
mod model;
mod train;

use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

#[pymodule]
#[pyo3(name = "_core")]
fn tokforge_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<model::PyTokenModel>()?;
    m.add_function(wrap_pyfunction!(train::train_bpe, m)?)?;
    m.add_function(wrap_pyfunction!(model::pretokenize, m)?)?;
    m.add_function(wrap_pyfunction!(model::preset_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(model::tiktoken_preset, m)?)?;
    m.add_function(wrap_pyfunction!(model::hf_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(model::byte_level_decode, m)?)?;
    dynamic::register(m)?;
    byte_probs::register(m)?;
    lib_model::register(m)?;
    mixture::register(m)?;
    metrics::register(m)?;
    Ok(())
}

/// A rayon pool with `n` threads (default: one per core). Pools are kept and reused, so worker
/// threads (and their per-thread encoder caches) survive from one call to the next.
pub(crate) fn pool(n: Option<usize>) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    let n = match n {
        Some(0) => {
            return Err(errors::InputError::new_err(
                "num_threads must be at least 1",
            ))
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |p| p.get()),
    };
    let mut pools = POOLS
        .lock()
        .map_err(|_| errors::TokforgeError::new_err("thread pool registry is poisoned"))?;
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| errors::TokforgeError::new_err(format!("cannot start threads: {e}")))?;
    let p = Arc::new(p);
    pools.push((n, p.clone()));
    Ok(p)
}
