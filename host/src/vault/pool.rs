//! Open connections to one vault, kept by a long-running front-end (the
//! daemon, `serve`) so a call does not pay for opening the database, and
//! SQLite for parsing its schema, every time. A connection holds no state
//! between uses beyond SQLite's own (every read and write is its own
//! transaction, and the key lives in the shared [`KeyCache`]), so any call
//! may use any of them.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{KeyCache, Result, Vault};

/// How many idle connections are kept; more are opened while calls need
/// them and closed when given back to a full pool.
const KEEP: usize = 16;

pub struct VaultPool {
    dir: PathBuf,
    keys: KeyCache,
    idle: Mutex<Vec<Vault>>,
}

impl VaultPool {
    pub fn new(dir: PathBuf, keys: KeyCache) -> Arc<Self> {
        Arc::new(VaultPool { dir, keys, idle: Mutex::new(Vec::new()) })
    }

    /// An idle connection, or a new one.
    pub fn get(self: &Arc<Self>) -> Result<PooledVault> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let vault = match idle {
            Some(vault) => vault,
            None => Vault::open_with(&self.dir, self.keys.clone())?,
        };
        Ok(PooledVault { pool: Arc::clone(self), vault: Some(vault) })
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
        if let (Some(vault), Ok(mut idle)) = (self.vault.take(), self.pool.idle.lock())
            && idle.len() < KEEP
        {
            idle.push(vault);
        }
    }
}
