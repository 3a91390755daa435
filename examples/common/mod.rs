//! Helpers the timing examples share (each example includes this module with `mod common;`).
#![allow(dead_code)] // each example uses its own subset

use std::path::Path;

/// Seconds of the clock `id` (`libc::CLOCK_THREAD_CPUTIME_ID`, `CLOCK_PROCESS_CPUTIME_ID`...).
pub fn clock(id: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds of this thread.
pub fn thread_cpu() -> f64 {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// A vocabulary file's name up to its first dot (`cl100k_base` of `.../cl100k_base.tiktoken`),
/// for the examples' output lines.
pub fn vocab_stem(path: &str) -> Result<&str, &'static str> {
    Path::new(path)
        .file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.split('.').next())
        .ok_or("vocab name")
}
