//! Open connections to one vault, kept by a long-running front-end (the
//! daemon, `serve`) so a call does not pay for opening the database, and
//! SQLite for parsing its schema, every time. A connection holds no state
//! between uses beyond SQLite's own (every read and write is its own
//! transaction, and the key lives in the shared [`KeyCache`]), so any call
//! may use any of them. They share one writers' queue, and a thread of the
//! pool takes the WAL checkpoints (see [`WriteGate`]); calls' audit records
//! are written together (see [`GroupCommit`]), and the checked rows calls
//! are decided on are kept while the vault stands still (see
//! [`ConfigCache`]).

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::config_cache::ConfigCache;
use super::group_commit::GroupCommit;
use super::store::{Location, Store, WriteGate};
use super::{KeyCache, Result, Vault};

/// How many idle connections are kept by default; more are opened while
/// calls need them and closed when given back to a full pool.
const KEEP: usize = 16;

/// How often the log is checkpointed: often enough that it stays a few
/// megabytes under full load.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// A log longer than this many pages (16 MiB) is copied back whole and
/// started again from its beginning, with this process's writers held
/// back for the moment it takes.
const RESTART_PAST_PAGES: i64 = 4096;

pub struct VaultPool {
    dir: PathBuf,
    location: Location,
    keys: KeyCache,
    idle: Mutex<Vec<Vault>>,
    /// How many idle connections are kept.
    keep: usize,
    gate: Arc<WriteGate>,
    /// Whether the checkpoint thread runs (else connections checkpoint as
    /// SQLite does by default).
    checkpointing: AtomicBool,
    /// Where the connections' audit records are written together.
    group: Arc<GroupCommit>,
    /// The checked rows calls are decided on, while the vault stands still.
    cache: Arc<ConfigCache>,
}

impl VaultPool {
    /// A pool of connections to the vault of `dir`, wherever its rows are.
    pub fn new(dir: PathBuf, keys: KeyCache) -> Result<Arc<Self>> {
        Self::keeping(dir, keys, KEEP)
    }

    /// As [`new`](Self::new), keeping up to `keep` idle connections (never
    /// fewer than the default): as many as calls can be made at once, so
    /// a server under full load does not open and close connections call
    /// after call.
    pub fn keeping(dir: PathBuf, keys: KeyCache, keep: usize) -> Result<Arc<Self>> {
        let location = Vault::location_of(&dir)?;
        let pool = Arc::new(VaultPool {
            dir,
            location,
            keys,
            idle: Mutex::new(Vec::new()),
            keep: keep.max(KEEP),
            gate: Arc::default(),
            checkpointing: AtomicBool::new(false),
            group: Arc::default(),
            cache: Arc::default(),
        });
        // A server checkpoints its own log.
        if let Location::Sqlite(dir) = &pool.location {
            let (weak, dir, gate) = (Arc::downgrade(&pool), dir.clone(), Arc::clone(&pool.gate));
            // If this thread cannot start, the connections checkpoint themselves.
            let checkpoints = std::thread::Builder::new()
                .name("aivault-checkpoint".into())
                .spawn(move || checkpoint_while_alive(&weak, &dir, &gate));
            pool.checkpointing.store(checkpoints.is_ok(), Ordering::Relaxed);
        }
        Ok(pool)
    }

    /// Whether its connections may be used on an async runtime's own
    /// thread: SQLite's calls are plain blocking ones, while the PostgreSQL
    /// client drives a runtime of its own, which cannot be entered from a
    /// thread that drives another.
    pub fn usable_on_async_threads(&self) -> bool {
        matches!(self.location, Location::Sqlite(_))
    }

    /// An idle connection, or a new one.
    pub fn get(self: &Arc<Self>) -> Result<PooledVault> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let vault = match idle {
            Some(vault) => vault,
            None => {
                let mut vault = Vault::open_at(&self.dir, self.location.clone(), self.keys.clone())?;
                vault.store.share(Arc::clone(&self.gate), self.checkpointing.load(Ordering::Relaxed))?;
                vault.group = Some(Arc::clone(&self.group));
                vault.cache = Some(Arc::clone(&self.cache));
                vault
            }
        };
        Ok(PooledVault { pool: Arc::clone(self), vault: Some(vault) })
    }
}

/// Checkpoints the log every [`CHECKPOINT_EVERY`] while the pool lives.
fn checkpoint_while_alive(pool: &Weak<VaultPool>, dir: &std::path::Path, gate: &WriteGate) {
    let mut store = None;
    while pool.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        if store.is_none() {
            store = Store::open(dir).ok();
        }
        let Some(store) = &store else { continue };
        if store.checkpoint().is_ok_and(|pages| pages > RESTART_PAST_PAGES) {
            let _turn = gate.enter(CHECKPOINT_EVERY);
            let _ = store.checkpoint_and_restart();
        }
    }
}

/// A connection lent by a [`VaultPool`], given back when dropped.
pub struct PooledVault {
    pool: Arc<VaultPool>,
    vault: Option<Vault>,
}

impl Deref for PooledVault {
    type Target = Vault;
    fn deref(&self) -> &Vault {
        self.vault.as_ref().expect("held until dropped")
    }
}

impl DerefMut for PooledVault {
    fn deref_mut(&mut self) -> &mut Vault {
        self.vault.as_mut().expect("held until dropped")
    }
}

impl Drop for PooledVault {
    fn drop(&mut self) {
        // A thread that panicked mid-call may leave a transaction open:
        // that connection is closed (rolling it back), not reused.
        if std::thread::panicking() {
            return;
        }
        // Nor one whose server hung up (restarted, or ended the session).
        if self.vault.as_ref().is_some_and(|v| v.store.is_closed()) {
            return;
        }
        if let Some(vault) = self.vault.as_mut() {
            vault.store.let_go();
        }
        if let (Some(vault), Ok(mut idle)) = (self.vault.take(), self.pool.idle.lock())
            && idle.len() < self.pool.keep
        {
            idle.push(vault);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Reads held for a call's checks see one snapshot and end at the
    // call's first write, which sees what others committed meanwhile; a
    // connection given back to the pool holds no transaction (a snapshot
    // left open would keep the write-ahead log from ever starting again).
    #[test]
    fn held_reads_end_at_the_first_write_and_when_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let pool = VaultPool::new(dir.path().to_path_buf(), KeyCache::default()).unwrap();
        pool.get().unwrap().record("test.started", "test", json!({})).unwrap();
        let events = |vault: &mut Vault| vault.store.read().unwrap().count_audit().unwrap();
        let mut vault = pool.get().unwrap();
        vault.hold_reads();
        let before = events(&mut vault);
        pool.get().unwrap().record("test.other", "test", json!({})).unwrap();
        assert_eq!(events(&mut vault), before, "a held read saw another connection's commit");
        assert!(vault.store.holds_transaction());
        vault.record("test.own", "test", json!({})).unwrap();
        assert!(!vault.store.holds_transaction());
        assert_eq!(events(&mut vault), before + 2);
        vault.hold_reads();
        assert!(vault.store.holds_transaction());
        drop(vault);
        let idle = pool.idle.lock().unwrap();
        assert!(!idle.is_empty() && idle.iter().all(|v| !v.store.holds_transaction()));
    }

    // The checkpoint thread's full checkpoint starts the log again without
    // emptying the file: the next commit overwrites its beginning (pages
    // the kernel holds) instead of growing a file cut to nothing.
    #[test]
    fn a_full_checkpoint_starts_the_log_again_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let pool = VaultPool::new(dir.path().to_path_buf(), KeyCache::default()).unwrap();
        for i in 0..200 {
            pool.get().unwrap().record("test.filled", "test", json!({ "i": i })).unwrap();
        }
        let log = || std::fs::metadata(dir.path().join("vault.db-wal")).unwrap().len();
        let filled = log();
        let events = || pool.get().unwrap().store.read().unwrap().count_audit().unwrap();
        let before = events();
        let checkpointer = Store::open(dir.path()).unwrap();
        checkpointer.checkpoint_and_restart().unwrap();
        assert_eq!(log(), filled, "the log file was cut");
        pool.get().unwrap().record("test.after", "test", json!({})).unwrap();
        assert_eq!(log(), filled, "the commit after it did not write at the log's start");
        assert_eq!(events(), before + 1, "a record was lost");
    }
}
