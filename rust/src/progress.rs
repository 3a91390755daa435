//! A plain progress interface for long work. The Python bindings adapt a callback to it, the CLI
//! draws a bar with it; the core never prints.

/// Receives `(stage, done, total)` now and then; `total` is 0 when unknown. Returning `false`
/// asks the work to stop with [`crate::Error::Interrupted`].
pub trait Progress: Sync {
    fn report(&self, stage: &str, done: u64, total: u64) -> bool;
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn report(&self, _stage: &str, _done: u64, _total: u64) -> bool {
        true
    }
}
