//! The flat id arrays of `encode_batch_numpy`, kept for the next call once numpy frees them.
//!
//! A batch's flat array is tens of megabytes (4 bytes an id). Allocated afresh, every call pays
//! the kernel for new pages on the first write: glibc maps such a buffer on its own and unmaps
//! it when numpy frees it. On the development machine, a VM whose balloon takes freed memory
//! back, that cost moved a two-thread batch by up to 1.4x between runs (docs/bpe.md §13.4).
//! Here the array's memory belongs to a [`PooledIds`] object (the numpy array's base): when the
//! array is freed its buffer returns to a small pool, and the next batch of about the same size
//! writes into pages that are already mapped. The pool is bounded: at most [`KEEP_BYTES`] of
//! buffers of [`MIN_BYTES`]..=[`MAX_BYTES`] bytes (and [`KEEP`] buffers), the oldest freed
//! first, a buffer is reused only for a request of at least 4/5 of its capacity, and
//! `FREE.release()` empties it. A loop whose caller keeps every call's array until the loop
//! ends (a pass of 100-document calls) gets all of them back for its next pass. (A batch asks
//! for room for one id per byte of its texts, a bound on its ids, and writes only the pages its
//! ids need; the rest of the room is not written, and not mapped unless an earlier use wrote
//! it.)

use crate::kept_buffers::KeptBuffers;
use numpy::ndarray::ArrayView1;
use numpy::PyArray1;
use pyo3::prelude::*;

/// Most free buffers kept. It was 2: a pass of 100-document batches whose arrays the caller
/// kept got 2 of its 20 arrays' memory back, the others new memory each pass, whose first
/// writes cost CPU (the bench sample on 2 threads: the numpy batch 590-829 MB/s with 2,
/// 872 with 64; docs/bpe.md §13.5, twenty-first round).
const KEEP: usize = 64;
/// Smaller buffers come from the heap, which reuses memory on its own.
const MIN_BYTES: usize = 1 << 20;
/// Larger buffers are not kept (a batch's array of more than 256 MiB is 64 M ids).
pub const MAX_BYTES: usize = 256 << 20;
/// Most bytes of free buffers kept (their capacity; only the pages their ids were written to
/// are mapped).
const KEEP_BYTES: usize = 2 * MAX_BYTES;

/// The free buffers.
pub static FREE: KeptBuffers = KeptBuffers::new(KEEP, KEEP_BYTES);

/// An empty buffer for `n` ids: a kept one whose capacity is `n..=n * 5 / 4`, else a new one.
/// A new one is not backed by huge pages: the ids are written once, in order, so the TLB gains
/// little, and on a virtual machine whose balloon takes freed memory back, the first writes
/// to 2 MiB pages the host has to supply again cost 5-9 times those to 4 KiB pages (64 MiB in
/// a new process: 124-200 ms against 22-25 ms). A fresh process's first batch of the bench
/// sample on 2 threads took 95-156 ms (median 106.5) with them, 97-123 ms (median 99.5)
/// without (docs/bpe.md §13.5, twenty-second round).
pub fn take(n: usize) -> Vec<u32> {
    if n * 4 >= MIN_BYTES {
        let fits = |v: &Vec<u32>| v.capacity() >= n && v.capacity() - n <= n / 4;
        if let Some(v) = FREE.take(|free| free.iter().rposition(fits)) {
            return v;
        }
    }
    Vec::with_capacity(n)
}

/// Keep `v`'s memory for a later [`take`] when it is in the kept size range.
fn give_back(v: Vec<u32>) {
    if (MIN_BYTES..=MAX_BYTES).contains(&(v.capacity() * 4)) {
        FREE.keep(v);
    }
}

/// The owner of a numpy array's ids: its buffer goes back to the pool when numpy frees the array.
#[pyclass(frozen, module = "tokforge._core")]
pub struct PooledIds(Vec<u32>);

impl Drop for PooledIds {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// `ids` as a `uint32` numpy array over the same memory (no copy), owned by a [`PooledIds`].
pub fn into_numpy(py: Python<'_>, ids: Vec<u32>) -> PyResult<Bound<'_, PyArray1<u32>>> {
    let owner = Bound::new(py, PooledIds(ids))?;
    let view = ArrayView1::from(owner.get().0.as_slice());
    // SAFETY: the array reads the buffer of `owner`, which is its base object: the buffer is
    // neither moved nor freed (nor returned to the pool) before numpy drops the array's base.
    Ok(unsafe { PyArray1::borrow_from_array(&view, owner.clone().into_any()) })
}
