//! The thread that stores a batch's tables after its call returns
//! (`PieceCache::merge_apart`): one per process, made at the first such store and kept, the
//! stores run in the order they are sent. Making a thread for each store took 100-200 µs
//! before it started, on every call of a loop of batches of new text, and the next call waits
//! for the store.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

/// A store to run.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// The merge thread of process `pid` and where its jobs go.
struct Merger {
    pid: u32,
    jobs: Sender<Job>,
}

static MERGER: Mutex<Option<Merger>> = Mutex::new(None);

/// `job` run on the merge thread (made now when there is none, or when it is another process's:
/// a forked child has not its parent's threads); `Err(job)` when no thread can be had, or
/// another thread is handing over a job at this moment (then the caller makes a thread of its
/// own, as a child forked at that moment must: the lock stays taken there).
pub(super) fn run(mut job: Job) -> Result<(), Job> {
    let Ok(mut merger) = MERGER.try_lock() else {
        return Err(job);
    };
    let pid = std::process::id();
    if let Some(m) = merger.as_ref().filter(|m| m.pid == pid) {
        match m.jobs.send(job) {
            Ok(()) => return Ok(()),
            // the thread is gone: make another
            Err(back) => job = back.0,
        }
    }
    let (jobs, todo) = channel::<Job>();
    let made = std::thread::Builder::new()
        .name("tokforge-merge".into())
        .spawn(move || {
            for job in todo {
                // a job that panics ends its merge itself (its guard); the thread goes on
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
        });
    if made.is_err() {
        *merger = None;
        return Err(job);
    }
    let sent = jobs.send(job);
    *merger = Some(Merger { pid, jobs });
    sent.map_err(|back| back.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs run on one kept thread, in the order sent, and one that panics does not stop the
    /// ones after it.
    #[test]
    fn jobs_run_in_order_on_one_thread_past_a_panic() {
        let (tx, rx) = channel::<(usize, std::thread::ThreadId)>();
        for k in 0..20usize {
            let tx = tx.clone();
            let job: Job = Box::new(move || {
                let _ = tx.send((k, std::thread::current().id()));
                if k == 7 {
                    panic!("a store that fails");
                }
            });
            // another test's merge may be handing over its job at this moment: retry
            let mut job = Some(job);
            while let Some(j) = job.take() {
                if let Err(back) = run(j) {
                    job = Some(back);
                    std::thread::yield_now();
                }
            }
        }
        drop(tx);
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|g| g.1 == got[0].1), "one thread");
        assert_ne!(got[0].1, std::thread::current().id());
    }
}
