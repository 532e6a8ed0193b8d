//! What the connections of one long-running process share (the daemon's and
//! `serve`'s pools): a queue for writers, and checkpoints taken off the
//! path of a call.
//!
//! SQLite lets one writer in at a time; a connection that finds the write
//! lock taken sleeps in its busy handler (1 ms, then 2, 5, 10 …) and tries
//! again, so under concurrent calls a writer often slept for milliseconds
//! after the lock was free. Writers of one process queue here instead and
//! the next is woken the moment the previous commits. Other processes (the
//! CLI) still meet SQLite's own lock and busy timeout.
//!
//! A WAL checkpoint copies the log back into the database and syncs both
//! files; left to SQLite, every few hundred commits one call paid for it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A writers' queue shared by the connections of one process.
#[derive(Debug, Default)]
pub struct WriteGate {
    busy: Mutex<bool>,
    freed: Condvar,
}

/// A place in the [`WriteGate`], held by a write transaction until it ends.
pub struct Entered<'a> {
    gate: &'a WriteGate,
}

impl WriteGate {
    /// Waits for the other writers of this process, at most `patience`; past
    /// that the writer goes ahead anyway and meets SQLite's lock (so a
    /// thread that forgot a transaction can slow others, never hang them).
    pub fn enter(&self, patience: Duration) -> Option<Entered<'_>> {
        let deadline = Instant::now() + patience;
        let mut busy = lock(&self.busy);
        while *busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            busy = self.freed.wait_timeout(busy, left).map_or_else(|e| e.into_inner().0, |(b, _)| b);
        }
        *busy = true;
        Some(Entered { gate: self })
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        *lock(&self.gate.busy) = false;
        self.gate.freed.notify_one();
    }
}

fn lock(busy: &Mutex<bool>) -> MutexGuard<'_, bool> {
    busy.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // One writer at a time, and each waiter gets in once the previous
    // leaves.
    #[test]
    fn one_writer_at_a_time() {
        let gate = Arc::new(WriteGate::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside) = (gate.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let entered = gate.enter(Duration::from_secs(30)).expect("a turn");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(entered);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    // A writer that never leaves delays the next by the patience, no more.
    #[test]
    fn patience_runs_out() {
        let gate = WriteGate::default();
        let _held = gate.enter(Duration::ZERO).expect("free");
        let started = Instant::now();
        assert!(gate.enter(Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
