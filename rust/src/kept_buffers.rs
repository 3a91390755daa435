//! Buffers of ids kept from one call to the next (the memory of freed numpy arrays), so that a
//! loop over batches does not ask the system for fresh pages every time.
//! Bounded by a count and by bytes; the oldest buffer makes room for a new one.

use std::sync::Mutex;

/// A bounded set of empty buffers of ids, oldest first.
pub struct KeptBuffers {
    free: Mutex<Vec<Vec<u32>>>,
    most: usize,
    most_bytes: usize,
}

fn bytes_of(buffers: &[Vec<u32>]) -> usize {
    buffers.iter().map(|v| v.capacity() * 4).sum()
}

impl KeptBuffers {
    /// At most `most` buffers and `most_bytes` bytes together.
    pub const fn new(most: usize, most_bytes: usize) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            most,
            most_bytes,
        }
    }

    /// The kept buffer that `pick` chooses (an index into the kept ones), taken out.
    pub fn take(&self, pick: impl FnOnce(&[Vec<u32>]) -> Option<usize>) -> Option<Vec<u32>> {
        let mut free = self.free.lock().ok()?;
        let k = pick(&free)?;
        (k < free.len()).then(|| free.remove(k))
    }

    /// Keep `v`'s memory (emptied), the oldest kept buffers freed to make room; a buffer larger
    /// than the bound is freed.
    pub fn keep(&self, mut v: Vec<u32>) {
        let bytes = v.capacity() * 4;
        if bytes > self.most_bytes || self.most == 0 {
            return;
        }
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        while free.len() >= self.most || bytes_of(&free) + bytes > self.most_bytes {
            free.remove(0);
        }
        v.clear();
        free.push(v);
    }

    /// The number of kept buffers and their bytes.
    pub fn kept(&self) -> (usize, usize) {
        self.free
            .lock()
            .map_or((0, 0), |free| (free.len(), bytes_of(&free)))
    }

    /// Free every kept buffer; returns the bytes freed.
    pub fn release(&self) -> usize {
        let Ok(mut free) = self.free.lock() else {
            return 0;
        };
        let bytes = bytes_of(&free);
        free.clear();
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_and_the_oldest_goes_first() {
        let kept = KeptBuffers::new(2, 1000);
        kept.keep(Vec::with_capacity(100)); // 400 bytes
        kept.keep(vec![7; 50]); // 200 bytes, emptied
        assert_eq!(kept.kept(), (2, 600));
        kept.keep(Vec::with_capacity(60)); // a third: the oldest (400 bytes) goes
        assert_eq!(kept.kept(), (2, 440));
        kept.keep(Vec::with_capacity(200)); // 800 bytes: both others go
        assert_eq!(kept.kept(), (1, 800));
        kept.keep(Vec::with_capacity(300)); // over the byte bound: not kept
        assert_eq!(kept.kept(), (1, 800));
        let v = kept.take(|b| b.iter().position(|v| v.capacity() >= 150));
        assert!(v.is_some_and(|v| v.is_empty() && v.capacity() >= 200));
        assert_eq!(kept.take(|_| Some(0)), None);
        kept.keep(vec![1; 10]);
        assert_eq!(kept.release(), 40);
        assert_eq!(kept.kept(), (0, 0));
    }
}
