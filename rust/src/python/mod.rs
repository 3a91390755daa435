//! PyO3 bindings: convert arguments, release the GIL for heavy work, map errors. No algorithms.

mod byte_probs;
mod convert;
mod counts;
mod dynamic;
mod errors;
mod format;
mod lib_model;
mod metrics;
mod mixture;
mod model;
mod output_pool;
mod train;

use crate::cancel::{self, Cancel};
use pyo3::prelude::*;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[pymodule]
#[pyo3(name = "_core")]
fn tokforge_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<model::PyTokenModel>()?;
    m.add_class::<counts::PyPieceCounts>()?;
    m.add_function(wrap_pyfunction!(train::count_pieces, m)?)?;
    m.add_function(wrap_pyfunction!(train::train_from_counts, m)?)?;
    m.add_function(wrap_pyfunction!(train::check_train_settings, m)?)?;
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
    m.add_function(wrap_pyfunction!(format::format_ids, m)?)?;
    m.add_function(wrap_pyfunction!(batch_output_info, m)?)?;
    m.add_function(wrap_pyfunction!(release_batch_output, m)?)?;
    Ok(())
}

/// How often a thread waiting for native work wakes to run Python's signal handlers: Ctrl-C
/// stops a call within about this interval plus one [`crate::cancel`] check interval (measured
/// by `benches/interrupt.py`). One GIL acquisition per wake-up costs nothing measurable.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Texts shorter than this are encoded on the calling thread without polling for Ctrl-C: they
/// take a few milliseconds at most, less than handing them to a worker would add.
pub(crate) const INTERRUPTIBLE_BYTES: usize = 1 << 20;

/// Run `work` on a worker of `pool` while this thread, with the GIL released, wakes every
/// [`POLL`] to run Python's signal handlers (only the main thread can). When one raises (Ctrl-C:
/// `KeyboardInterrupt`), the work is cancelled (it stops at its next [`cancel::check`]), this
/// thread waits for it to stop, and the handler's exception is raised: nothing the work
/// produced is returned. Called from a rayon worker (a Python callback inside native work),
/// `work` runs in place instead, so a pool can never wait on itself.
pub(crate) fn interruptible<T: Send, E: Into<PyErr> + Send>(
    py: Python<'_>,
    pool: &rayon::ThreadPool,
    work: impl FnOnce() -> Result<T, E> + Send,
) -> PyResult<T> {
    if rayon::current_thread_index().is_some() {
        return py.detach(work).map_err(Into::into);
    }
    let stop = Cancel::new();
    let (tx, rx) = mpsc::channel();
    let rx = Mutex::new(rx); // waited on with the GIL released, so shared with `detach`
    let recv = |timeout: Option<Duration>| {
        let rx = rx.lock().map_err(|_| RecvTimeoutError::Disconnected)?;
        match timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        }
    };
    pool.in_place_scope(|s| {
        let stop_w = stop.clone();
        s.spawn(move |_| {
            // a closed receiver means the caller gave up: nothing to report to
            let _ = tx.send(cancel::scope(&stop_w, work));
        });
        loop {
            match py.detach(|| recv(Some(POLL))) {
                Ok(r) => return r.map_err(Into::into),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        stop.set();
                        // wait (GIL released: the work may be calling back into Python)
                        let _ = py.detach(|| recv(None));
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(errors::TokforgeError::new_err("a worker thread stopped"))
                }
            }
        }
    })
}

/// Most threads a call may ask for: 4 per core, and at least 64. More cost start-up time and
/// memory without speed (measured on 2 cores: a pool of 64 threads starts in 3 ms, 1024 in
/// 2.4 s, 4096 in 30 s), and `num_threads=100000` would hang for minutes.
pub(crate) fn max_threads() -> usize {
    (4 * cores()).max(64)
}

/// The cores this process may use, asked once: `available_parallelism` reads the cgroup's
/// files on every call (30 µs, 3 % of a batch call on 100 documents of 13 kB).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |p| p.get()))
}

/// Pools kept for reuse; the least recently used beyond this many are dropped (their threads
/// end once no call uses them), so asking for many different sizes cannot pile up threads.
const KEPT_POOLS: usize = 4;

/// A rayon pool with `n` threads (default: one per core; `1..=max_threads()`, else an
/// `InputError` naming the value). Pools are kept and reused, so worker threads (and their
/// per-thread encoder caches) survive from one call to the next.
pub(crate) fn pool(n: Option<convert::Int>) -> PyResult<Arc<rayon::ThreadPool>> {
    pool_of(threads_wanted(n)?)
}

/// The thread count a `num_threads=` argument asks for (see [`pool`]).
pub(crate) fn threads_wanted(n: Option<convert::Int>) -> PyResult<usize> {
    Ok(match n {
        Some(n) => match n.size("num_threads", 1, max_threads()) {
            Ok(n) => n,
            Err(_) if n.below(1) => {
                return Err(errors::InputError::new_err(format!(
                    "num_threads must be at least 1, got {n}"
                )))
            }
            Err(_) => {
                return Err(errors::InputError::new_err(format!(
                    "num_threads={n} is more than the {} threads tokforge starts (4 per core, at \
                     least 64; this machine has {} cores)",
                    max_threads(),
                    cores()
                )))
            }
        },
        None => cores(),
    })
}

/// The kept pools of one process: its id, and the pools with their sizes.
type Pools = (u32, Vec<(usize, Arc<rayon::ThreadPool>)>);

/// The kept pool of `n` threads (see [`pool`]), started if there is none (`n >= 1`).
///
/// A child forked from a process that kept pools (`os.fork`, `multiprocessing`'s fork start,
/// a data loader's workers) has the pools but not their threads: work sent to them would wait
/// forever. So the pools are kept with the id of their process, and a child starts its own,
/// leaving the parent's untouched (dropping them would signal threads that are not there).
pub(crate) fn pool_of(n: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Pools> = Mutex::new((0, Vec::new()));
    let mut kept = POOLS
        .lock()
        .map_err(|_| errors::TokforgeError::new_err("thread pool registry is poisoned"))?;
    let pid = std::process::id();
    if kept.0 != pid {
        std::mem::forget(std::mem::take(&mut kept.1));
        kept.0 = pid;
    }
    let pools = &mut kept.1;
    if let Some(k) = pools.iter().position(|(m, _)| *m == n) {
        let hit = pools.remove(k);
        let p = hit.1.clone();
        pools.push(hit);
        return Ok(p);
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| errors::TokforgeError::new_err(format!("cannot start threads: {e}")))?;
    let p = Arc::new(p);
    pools.push((n, p.clone()));
    if pools.len() > KEPT_POOLS {
        pools.remove(0);
    }
    Ok(p)
}

/// The memory `encode_batch_numpy` keeps for its next call: the flat arrays numpy freed
/// (`output_pool`; `buffers`, `bytes`, `limit`: the largest kept).
#[pyfunction]
fn batch_output_info() -> std::collections::BTreeMap<&'static str, usize> {
    let (buffers, bytes) = output_pool::FREE.kept();
    std::collections::BTreeMap::from([
        ("buffers", buffers),
        ("bytes", bytes),
        ("limit", output_pool::MAX_BYTES),
    ])
}

/// Free the memory kept for `encode_batch_numpy`'s next call; returns the bytes freed.
#[pyfunction]
fn release_batch_output() -> usize {
    output_pool::FREE.release()
}
