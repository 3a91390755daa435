//! The walk memo of a pair row (docs/byte_probs.md §15.7): one answer per walk state
//! `(spine level i, token b)`, kept per thread and reused across pair rows without clearing.
//!
//! Each entry is one byte, `stamp << 1 | valid`, where `stamp` is the generation of the pair row
//! that wrote it (1..=[`MAX_STAMP`]); an entry counts only when its stamp is the current one, so
//! starting a new pair row is a counter bump, not a zero fill of a vocabulary-sized row per spine
//! level. All rows are zeroed together only when the stamp wraps (once per [`MAX_STAMP`] pair rows).
//! A pair row takes the thread's rows ([`WalkMemo::fresh`], sized once to its spine levels and
//! the vocabulary) and hands them back when dropped.
//! Cost: one byte per token per spine level ever reached on the thread (the same footprint as a
//! fresh memo per row), no per-row allocation.

use std::cell::RefCell;

/// Largest stamp: seven bits above the answer bit; stamp 0 marks a never-written entry.
const MAX_STAMP: u8 = 0x7f;

/// Per-level rows of stamped answers, and the stamp of the pair row in progress.
#[derive(Default)]
struct Rows {
    rows: Vec<Vec<u8>>,
    stamp: u8,
}

thread_local! {
    static SPARE: RefCell<Rows> = RefCell::new(Rows::default());
}

/// One pair row's memo: this thread's rows under a new stamp, handed back to the thread when
/// dropped (a nested use on the same thread meanwhile gets empty rows of its own).
pub(crate) struct WalkMemo(Rows);

impl WalkMemo {
    /// This thread's memo with no answers in it, with `levels` rows of at least `n` entries.
    pub(crate) fn fresh(levels: usize, n: usize) -> WalkMemo {
        let mut m = SPARE
            .try_with(|c| c.try_borrow_mut().map(|mut r| std::mem::take(&mut *r)).ok())
            .ok()
            .flatten()
            .unwrap_or_default();
        if m.stamp >= MAX_STAMP {
            for row in &mut m.rows {
                row.fill(0);
            }
            m.stamp = 0;
        }
        m.stamp += 1;
        if m.rows.len() < levels {
            m.rows.resize_with(levels, Vec::new);
        }
        for row in m.rows.iter_mut().take(levels) {
            if row.len() < n {
                row.resize(n, 0);
            }
        }
        WalkMemo(m)
    }

    /// The answer recorded for state `(i, b)` in this pair row, if any.
    #[inline]
    pub(crate) fn get(&self, i: usize, b: u32) -> Option<bool> {
        let e = *self.0.rows.get(i)?.get(b as usize)?;
        (e >> 1 == self.0.stamp).then_some(e & 1 == 1)
    }

    /// Records `ok` for state `(i, b)` (`i < levels`, `b < n` of [`WalkMemo::fresh`]; other
    /// states are not recorded).
    #[inline]
    pub(crate) fn set(&mut self, i: usize, b: u32, ok: bool) {
        let stamp = self.0.stamp;
        if let Some(e) = self.0.rows.get_mut(i).and_then(|r| r.get_mut(b as usize)) {
            *e = stamp << 1 | u8::from(ok);
        }
    }
}

impl Drop for WalkMemo {
    fn drop(&mut self) {
        let rows = std::mem::take(&mut self.0);
        // at thread exit or while a nested memo is out, the rows are simply freed
        let _ = SPARE.try_with(|c| {
            if let Ok(mut spare) = c.try_borrow_mut() {
                if spare.rows.is_empty() {
                    *spare = rows;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_last_only_for_their_pair_row_across_wraps() {
        // more pair rows than stamps: every row sees only its own answers
        for round in 0..(3 * MAX_STAMP as u32 + 5) {
            let mut m = WalkMemo::fresh(3, 8);
            for i in 0..3 {
                assert_eq!(m.get(i, round % 6), None);
                assert_eq!(m.get(i, 6), None);
            }
            m.set(round as usize % 3, round % 6, round % 2 == 0);
            m.set(1, 6, true);
            assert_eq!(m.get(round as usize % 3, round % 6), Some(round % 2 == 0));
            assert_eq!(m.get(1, 6), Some(true));
            // beyond the rows: not recorded
            m.set(0, 9, true);
            m.set(3, 1, true);
            assert_eq!(m.get(0, 9), None);
            assert_eq!(m.get(3, 1), None);
        }
    }

    #[test]
    fn nested_use_gets_its_own_memo() {
        let mut outer = WalkMemo::fresh(1, 4);
        outer.set(0, 1, true);
        {
            let mut inner = WalkMemo::fresh(1, 4);
            assert_eq!(inner.get(0, 1), None);
            inner.set(0, 1, false);
        }
        assert_eq!(outer.get(0, 1), Some(true));
        drop(outer);
        assert_eq!(WalkMemo::fresh(1, 4).get(0, 1), None);
    }
}
