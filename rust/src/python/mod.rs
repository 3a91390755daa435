//! PyO3 bindings: convert arguments, release the GIL for heavy work, map errors. No algorithms.

mod byte_probs;
mod dynamic;
mod errors;
mod lib_model;
mod model;
mod train;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_core")]
fn tokforge_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<model::BpeModel>()?;
    m.add_function(wrap_pyfunction!(train::train_bpe, m)?)?;
    m.add_function(wrap_pyfunction!(model::pretokenize, m)?)?;
    m.add_function(wrap_pyfunction!(model::preset_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(model::hf_pattern, m)?)?;
    dynamic::register(m)?;
    byte_probs::register(m)?;
    lib_model::register(m)?;
    Ok(())
}

/// A rayon pool with `n` threads (or the global pool's size when `None`).
pub(crate) fn pool(n: Option<usize>) -> PyResult<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = n {
        if n == 0 {
            return Err(errors::InputError::new_err(
                "num_threads must be at least 1",
            ));
        }
        b = b.num_threads(n);
    }
    b.build()
        .map_err(|e| errors::TokforgeError::new_err(format!("cannot start threads: {e}")))
}
