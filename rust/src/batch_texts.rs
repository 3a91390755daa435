//! The texts of one batch, which the thread that starts it may still be making readable while
//! the encoding threads already work on the first ones.
//!
//! A Python str is read as UTF-8, and CPython makes that form of a str with non-ASCII
//! characters on first use, under the interpreter's lock: for a batch of new text it is a
//! serial pass (about a third of a warm one-thread encode of the same text). The thread that
//! starts the batch makes each text arrive, in order ([`BatchTexts::arrive`], from
//! [`crate::model::Caller::feed`]), while the others encode those that have arrived; a thread
//! that takes a text still on its way waits for it ([`BatchTexts::wait_for`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The texts of one batch, arriving in order (or all there from the start).
pub struct BatchTexts<'a> {
    slots: Box<[OnceLock<&'a str>]>,
    /// How many texts have arrived (the first ones).
    arrived: AtomicUsize,
    /// Their bytes.
    bytes: AtomicUsize,
    /// No more texts will arrive: the feed failed or was stopped.
    closed: AtomicBool,
    /// Bounds on the bytes of all the texts, known before they arrive: at least one and at
    /// most four a character.
    least: usize,
    bound: usize,
}

/// Rounds a waiting thread spins before it yields its core, then yields before it sleeps.
const SPINS: u32 = 64;
const YIELDS: u32 = 1024;
/// How long a thread that has waited that long sleeps between looks.
const NAP: std::time::Duration = std::time::Duration::from_micros(50);

impl<'a> BatchTexts<'a> {
    /// `count` texts still to come, of `chars` characters together (UTF-8: one to four
    /// bytes a character).
    pub fn coming(count: usize, chars: usize) -> Self {
        Self {
            slots: (0..count).map(|_| OnceLock::new()).collect(),
            arrived: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            least: chars,
            bound: chars.saturating_mul(4),
        }
    }

    /// `texts`, all there.
    pub fn arrived(texts: &[&'a str]) -> Self {
        let bytes = texts.iter().map(|t| t.len()).sum();
        let mut all = Self::coming(texts.len(), bytes);
        (all.least, all.bound) = (bytes, bytes);
        for t in texts {
            all.arrive(t);
        }
        all
    }

    /// The next text has arrived (one thread makes them arrive, in order); past the last
    /// text, nothing happens.
    pub fn arrive(&self, text: &'a str) {
        let i = self.arrived.load(Ordering::Relaxed);
        if let Some(slot) = self.slots.get(i) {
            let _ = slot.set(text);
            self.bytes.fetch_add(text.len(), Ordering::Relaxed);
            self.arrived.store(i + 1, Ordering::Release);
        }
    }

    /// No more texts will arrive: the threads waiting for one stop waiting.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// How many texts the batch has.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the batch has no text.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A bound on the bytes of all the texts (their bytes once all have arrived).
    pub fn bound(&self) -> usize {
        if self.all_there() {
            self.bytes.load(Ordering::Relaxed)
        } else {
            self.bound
        }
    }

    /// How many bytes the texts have together at least (their bytes once all have arrived).
    pub fn least(&self) -> usize {
        if self.all_there() {
            self.bytes.load(Ordering::Relaxed)
        } else {
            self.least
        }
    }

    /// Whether every text has arrived.
    pub fn all_there(&self) -> bool {
        self.arrived.load(Ordering::Acquire) == self.slots.len()
    }

    /// Every text, once all have arrived.
    pub fn all(&self) -> Option<Vec<&'a str>> {
        if !self.all_there() {
            return None;
        }
        self.slots.iter().map(|s| s.get().copied()).collect()
    }

    /// Text `i`, once it has arrived: waits while it is on its way (spinning briefly, then
    /// yielding, then sleeping a little between looks). `None` when `i` is past the last text,
    /// when it will not arrive ([`BatchTexts::close`]) or once `stop()` holds.
    pub fn wait_for(&self, i: usize, stop: &dyn Fn() -> bool) -> Option<&'a str> {
        let slot = self.slots.get(i)?;
        let mut rounds = 0u32;
        loop {
            if i < self.arrived.load(Ordering::Acquire) {
                return slot.get().copied();
            }
            if self.closed.load(Ordering::Acquire) || stop() {
                return None;
            }
            rounds = rounds.saturating_add(1);
            if rounds < SPINS {
                std::hint::spin_loop();
            } else if rounds < SPINS + YIELDS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(NAP);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_waits_for_each_text_until_it_arrives() {
        let words: Vec<String> = (0..300).map(|k| format!("text {k} ")).collect();
        let coming = BatchTexts::coming(words.len(), 12 * words.len());
        assert_eq!((coming.all_there(), coming.all()), (false, None));
        let read = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                (0..words.len() + 1)
                    .map(|i| coming.wait_for(i, &|| false).map(str::to_string))
                    .collect::<Vec<_>>()
            });
            for (k, w) in words.iter().enumerate() {
                if k % 50 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                coming.arrive(w);
            }
            reader.join().unwrap()
        });
        let want: Vec<Option<String>> = words.iter().cloned().map(Some).chain([None]).collect();
        assert_eq!(read, want);
        let bytes: usize = words.iter().map(String::len).sum();
        assert_eq!(
            (coming.all_there(), coming.least(), coming.bound()),
            (true, bytes, bytes)
        );
        assert_eq!(coming.all().unwrap().concat(), words.concat());
        // past the last text, an arrival changes nothing
        coming.arrive("more");
        assert_eq!(coming.all().unwrap().len(), words.len());
    }

    #[test]
    fn a_closed_feed_or_a_stop_ends_the_wait() {
        let coming = BatchTexts::coming(3, 100);
        coming.arrive("one");
        std::thread::scope(|s| {
            let waiting = s.spawn(|| coming.wait_for(1, &|| false));
            std::thread::sleep(std::time::Duration::from_millis(5));
            coming.close();
            assert_eq!(waiting.join().unwrap(), None);
        });
        // what arrived before the close stays readable
        assert_eq!(coming.wait_for(0, &|| true), Some("one"));
        let open = BatchTexts::coming(2, 10);
        let asked = AtomicUsize::new(0);
        let stop = || asked.fetch_add(1, Ordering::Relaxed) > 100;
        assert_eq!(open.wait_for(0, &stop), None);
        assert_eq!((open.least(), open.bound()), (10, 40));
        let all = BatchTexts::arrived(&["a", "bc"]);
        assert_eq!(
            (all.len(), all.least(), all.bound(), all.all()),
            (2, 3, 3, Some(vec!["a", "bc"]))
        );
    }
}
