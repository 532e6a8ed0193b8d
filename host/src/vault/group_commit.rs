//! Group commit for a long-running front-end (the daemon, `serve`): the
//! rate counts and audit records of concurrent calls are written in one
//! transaction.
//!
//! Every call still waits until its own intent is committed before it
//! sends anything, and until its outcome is before it reports how it went;
//! what changes is that a call arriving while others' records are being
//! written joins the next transaction instead of queueing for a commit of
//! its own. Whichever waiting call finds no transaction under way writes
//! everything queued so far on its own connection (no thread to hand over
//! to and back from). Under 64 clients a commit carries several calls'
//! records: `serve` +55-70% requests per second (BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::thread::Thread;

use super::audit::{Chain, Event};
use super::{Result, Vault, now_ms};
use crate::vault::store::{StoreError, Tx};

/// The sliding window rate limits count over.
const RATE_WINDOW_MS: i64 = 60_000;

/// One record to write.
pub(super) enum Write {
    /// Counts a call against `capability`'s rate limit and records its
    /// intent, unless the last minute already holds `limit` calls.
    Admit { capability: String, limit: Option<i64>, intent: Event },
    /// An audit record on its own (a call's outcome, a refusal).
    Record(Event),
}

/// The intent's (or record's) sequence number, or `Err(count)` when the
/// rate limit refused the call.
pub(super) type Admission = std::result::Result<i64, i64>;

/// The records waiting to be written, shared by a pool's connections.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
    /// How many groups were written (so a test can see records grouped).
    #[cfg(test)]
    groups: std::sync::atomic::AtomicUsize,
}

/// A record and the thread waiting for it to be written.
struct Waiting {
    id: u64,
    write: Write,
    thread: Thread,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    waiting: Vec<Waiting>,
    done: HashMap<u64, Result<Admission>>,
    writing: bool,
}

impl Queue {
    /// Ends a group: its callers learn how it went, and the first of
    /// those who queued meanwhile writes the next. Each waiting thread is
    /// woken only when there is something for it (waking every waiter at
    /// every commit, most to find nothing, cost 4-6% of `serve`'s
    /// requests per second under 64 clients), and only once the queue's
    /// lock is let go: see [`Wake`].
    #[must_use = "the threads must be woken once the lock is let go"]
    fn finish(
        &mut self,
        group: Vec<Waiting>,
        results: impl IntoIterator<Item = (u64, Result<Admission>)>,
    ) -> Wake {
        self.done.extend(results);
        self.writing = false;
        Wake { group, next: self.waiting.first().map(|w| w.thread.clone()) }
    }
}

/// The threads a finished group wakes, woken after the queue's lock is
/// let go. Woken under it, each went straight back to sleep on the lock
/// the writer still held while it made the next wake-up call (under 64
/// clients, 6% of `serve`'s time was threads waiting on the lock and the
/// writer waking them inside it). The records are dropped out of the lock
/// too. A thread woken late finds its result as any woken early would.
struct Wake {
    group: Vec<Waiting>,
    next: Option<Thread>,
}

impl Wake {
    fn send(self) {
        let writer = std::thread::current().id();
        let mut woken = None;
        for waiting in self.group.into_iter().filter(|w| w.thread.id() != writer) {
            // One thread's records are queued side by side: one wake-up.
            if woken != Some(waiting.thread.id()) {
                woken = Some(waiting.thread.id());
                waiting.thread.unpark();
            }
        }
        if let Some(next) = self.next {
            next.unpark();
        }
    }
}

impl GroupCommit {
    /// Writes `writes` with whatever else is waiting, and returns once they
    /// are committed (or have failed), each one's result in order; if it
    /// is this call's turn to write, on `own`, the caller's connection.
    /// They are queued together, so one group takes them all.
    pub(super) fn write(&self, own: &mut Vault, writes: Vec<Write>) -> Vec<Result<Admission>> {
        if writes.is_empty() {
            return Vec::new();
        }
        let mut queue = lock(&self.queue);
        let ids = queue.next_id..queue.next_id + writes.len() as u64;
        queue.next_id = ids.end;
        let thread = std::thread::current();
        let queued = ids.clone().zip(writes).map(|(id, write)| Waiting { id, write, thread: thread.clone() });
        queue.waiting.extend(queued);
        let results = |queue: &mut Queue| -> Vec<Result<Admission>> {
            let lost = || Err(StoreError::GroupLost.into());
            ids.clone().map(|id| queue.done.remove(&id).unwrap_or_else(lost)).collect()
        };
        loop {
            if queue.done.contains_key(&ids.start) {
                return results(&mut queue);
            }
            if queue.writing {
                // Woken when this record is written, or when it is this
                // thread's turn to write (or spuriously: look again).
                drop(queue);
                std::thread::park();
                queue = lock(&self.queue);
                continue;
            }
            queue.writing = true;
            let mut turn = Turn { group: self, own: ids.clone(), taken: std::mem::take(&mut queue.waiting) };
            drop(queue);
            #[cfg(test)]
            self.groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let written = Self::write_group(own, &turn.taken);
            let group = std::mem::take(&mut turn.taken);
            queue = lock(&self.queue);
            let wake = queue.finish(group, written);
            // The writer's own records were in its group.
            let written = results(&mut queue);
            drop(queue);
            wake.send();
            return written;
        }
    }

    /// Writes `group` in one transaction; if that fails, each record in a
    /// transaction of its own, so each call learns its own fate.
    fn write_group(vault: &mut Vault, group: &[Waiting]) -> Vec<(u64, Result<Admission>)> {
        let writes: Vec<&Write> = group.iter().map(|w| &w.write).collect();
        if writes.len() > 1
            && let Ok(admissions) = vault.write_together(&writes)
        {
            return group.iter().map(|w| w.id).zip(admissions.into_iter().map(Ok)).collect();
        }
        group.iter().map(|w| (w.id, vault.write_together(&[&w.write]).map(|mut one| one.remove(0)))).collect()
    }
}

/// The call writing a group. If it unwinds (a bug), the others whose
/// records it took learn their records were not written (were they put
/// back, one that makes the writer panic would do so again and again).
struct Turn<'a> {
    group: &'a GroupCommit,
    own: std::ops::Range<u64>,
    taken: Vec<Waiting>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        let taken: Vec<Waiting> = self.taken.drain(..).filter(|w| !self.own.contains(&w.id)).collect();
        let lost: Vec<_> = taken.iter().map(|w| (w.id, Err(StoreError::GroupLost.into()))).collect();
        let wake = lock(&self.group.queue).finish(taken, lost);
        wake.send();
    }
}

impl Vault {
    /// Writes `writes` in one transaction: all or none.
    fn write_together(&mut self, writes: &[&Write]) -> Result<Vec<Admission>> {
        let mut tx = self.begin_write()?;
        tx.leave_generation();
        let now = now_ms();
        let mut chain = Chain::head(&tx)?;
        let admissions =
            writes.iter().map(|write| apply(&tx, &mut chain, write, now)).collect::<Result<_>>()?;
        chain.seal(&tx)?;
        tx.commit()?;
        Ok(admissions)
    }

    /// Writes `write` now: with the other calls' records when this
    /// connection belongs to a pool, else in a transaction of its own.
    pub(super) fn write_record(&mut self, write: Write) -> Result<Admission> {
        let lost = || Err(StoreError::GroupLost.into());
        self.write_records(vec![write]).pop().unwrap_or_else(lost)
    }

    /// Writes `writes` now, each one's result in order: with the other
    /// calls' records when this connection belongs to a pool, else each in
    /// a transaction of its own.
    pub(super) fn write_records(&mut self, writes: Vec<Write>) -> Vec<Result<Admission>> {
        // Reads held open end first: a call waiting for another's commit
        // while it held a snapshot could keep the checkpoint that commit
        // waits behind waiting on it in turn.
        self.store.let_go();
        match self.group.clone() {
            Some(group) => group.write(self, writes),
            None => writes.iter().map(|write| Ok(self.write_together(&[write])?.remove(0))).collect(),
        }
    }
}

fn apply(tx: &Tx<'_>, chain: &mut Chain, write: &Write, now: i64) -> Result<Admission> {
    match write {
        Write::Admit { capability, limit, intent } => {
            match *limit {
                Some(limit) => {
                    let recent = tx.count_invocations(capability, now - RATE_WINDOW_MS)?;
                    if recent >= limit {
                        return Ok(Err(recent));
                    }
                    tx.record_invocation(capability, now, now - RATE_WINDOW_MS)?;
                }
                // Only calls under a limit are counted (a limit counts from
                // when it is set): an entry is six pages of the log to write
                // and, under load, a table of a minute's calls to keep. What
                // a lifted limit counted is still forgotten in time.
                None => tx.forget_invocations(now - RATE_WINDOW_MS)?,
            }
            Ok(Ok(chain.append(tx, intent, now)?))
        }
        Write::Record(event) => Ok(Ok(chain.append(tx, event, now)?)),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::*;
    use crate::vault::{KeyCache, VaultPool};

    // Eight threads admitting calls at once under a limit of 50: exactly
    // 50 get in, each with its own sequence number, the chain verifies,
    // and records were written several to a commit. A ninth queues
    // outcomes five at a time (as `serve`'s recorder does): each is
    // written, in the same chain.
    #[test]
    fn calls_written_together_keep_their_limit_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let pool = VaultPool::new(dir.path().to_path_buf(), KeyCache::default()).unwrap();
        // The first write sets the vault's key up (and says so in the log).
        pool.get().unwrap().record("test.started", "test", json!({})).unwrap();
        let before = pool.get().unwrap().verify_audit().unwrap().events;
        // Another process holds the write lock while the threads start, so
        // their records queue up behind the first writer whatever else
        // the machine is doing.
        let other = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let admitted: Vec<i64> = std::thread::scope(|s| {
            let recorder = s.spawn(|| {
                for _ in 0..10 {
                    let outcomes = (0..5).map(|_| Event::new("invoke", "x/y", json!({}))).collect();
                    let written = pool.get().unwrap().record_all(outcomes);
                    assert_eq!(written.len(), 5);
                    assert!(written.iter().all(Result::is_ok), "{written:?}");
                }
            });
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let mut seqs = Vec::new();
                        for _ in 0..25 {
                            let mut vault = pool.get().unwrap();
                            let intent = Event::new("invoke.intent", "x/y", json!({}));
                            if let Ok(seq) = vault.admit("x/y", Some(50), intent).unwrap() {
                                seqs.push(seq);
                                vault.record("invoke", "x/y", json!({})).unwrap();
                            }
                        }
                        seqs
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
            recorder.join().unwrap();
            threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        let mut unique = admitted.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((admitted.len(), unique.len()), (50, 50));
        let verification = pool.get().unwrap().verify_audit().unwrap();
        assert_eq!((verification.events, verification.first_problem), (before + 150, None));
        let group = pool.get().unwrap().group.clone().unwrap();
        // 200 admissions, 50 outcomes and 10 queued by five.
        assert!(group.groups.load(Ordering::Relaxed) < 260, "no two records were ever written together");
    }

    // Calls of a capability without a limit are not counted, so a limit
    // set later counts from when it was set.
    #[test]
    fn only_calls_under_a_limit_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = Vault::open(dir.path()).unwrap();
        let admit = |vault: &mut Vault, limit| {
            vault.admit("x/y", limit, Event::new("invoke.intent", "x/y", json!({}))).unwrap()
        };
        for _ in 0..3 {
            assert!(admit(&mut vault, None).is_ok());
        }
        let counted = |vault: &mut Vault| vault.store.read().unwrap().count_invocations("x/y", 0).unwrap();
        assert_eq!(counted(&mut vault), 0);
        assert!(admit(&mut vault, Some(2)).is_ok());
        assert!(admit(&mut vault, Some(2)).is_ok());
        assert_eq!(admit(&mut vault, Some(2)), Err(2));
        assert_eq!(counted(&mut vault), 2);
    }

    // A writer that panics (a bug) leaves the others it took told so, not
    // waiting forever, and the queue open to the next writer.
    #[test]
    fn a_writer_that_panics_fails_the_others_it_took() {
        let group = Arc::new(GroupCommit::default());
        let record = || Write::Record(Event::new("invoke", "x/y", json!({})));
        let unwound = std::panic::catch_unwind(|| {
            lock(&group.queue).writing = true;
            let me = std::thread::current();
            let taken = [1, 2].map(|id| Waiting { id, write: record(), thread: me.clone() });
            let _turn = Turn { group: &group, own: 1..2, taken: taken.into() };
            panic!("a bug while writing");
        });
        assert!(unwound.is_err());
        let mut queue = lock(&group.queue);
        assert!(!queue.writing);
        assert!(!queue.done.contains_key(&1));
        assert!(matches!(
            queue.done.remove(&2),
            Some(Err(crate::vault::VaultError::Store(StoreError::GroupLost)))
        ));
    }
}
