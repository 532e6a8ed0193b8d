//! Transactions that hold the vault's keys: unlocking the master key once per
//! process (a passphrase is stretched once, not per transaction), creating
//! the default key on a vault's first write, and authenticating an old
//! vault's rows on its first write with the key.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::audit::{self, Event};
use super::integrity::KeySet;
use super::keys::{self, KeyError, KeyProvider, Purpose};
use super::store::{KeyConfigRow, StoreError, Tx};
use super::{Result, Vault, VaultError, now_ms};

/// The unlocked keys of a vault, shared by every [`Vault`] opened with the
/// same cache (the commands of one process, or a daemon's connections).
#[derive(Clone, Default)]
pub struct KeyCache(Arc<Mutex<Slot>>);

#[derive(Default)]
enum Slot {
    /// Nothing yet: unlock from the key provider when needed.
    #[default]
    Empty,
    Held(Arc<KeySet>),
    /// Locked on purpose (`aivault lock`): nothing unlocks until
    /// [`Vault::unlock_with`] hands the key back.
    Locked,
}

impl KeyCache {
    fn get(&self) -> Result<Option<Arc<KeySet>>> {
        match &*self.0.lock().map_err(|_| KeyError::DaemonLocked)? {
            Slot::Empty => Ok(None),
            Slot::Held(keys) => Ok(Some(keys.clone())),
            Slot::Locked => Err(KeyError::DaemonLocked.into()),
        }
    }

    pub(super) fn put(&self, keys: Arc<KeySet>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Slot::Held(keys);
        }
    }

    /// Forgets the keys (wiped once no transaction holds them) and refuses
    /// to unlock again until a key is handed back.
    pub fn lock(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Slot::Locked;
        }
    }

    /// Whether [`KeyCache::lock`] was called and no key handed back since.
    pub fn is_locked(&self) -> bool {
        self.0.lock().map(|slot| matches!(*slot, Slot::Locked)).unwrap_or(true)
    }
}

/// How a read transaction uses the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyUse {
    /// Not at all: the rows read decide nothing (counts, the audit listing).
    Skip,
    /// Check rows when the key can be had without asking anyone; a locked
    /// vault's metadata is still listed.
    IfAvailable,
    /// Always: the rows read decide what is sent where.
    Required,
}

impl Vault {
    /// A write transaction holding the vault's keys. The first write to a
    /// new vault sets up the default file key; the first write to a vault
    /// that predates row authentication authenticates every row.
    pub(super) fn begin_write(&mut self) -> Result<Tx<'_>> {
        let mut tx = self.store.write()?;
        match tx.key_config()? {
            Some(config) => {
                let keys = keys_for(&tx, &self.keys, &self.dir, &config)?;
                let keys = if keys.is_legacy() { authenticate_legacy(&mut tx, &keys)? } else { keys };
                tx.authenticate(keys.clone());
                self.keys.put(keys);
            }
            None => initialise(&mut tx, &self.keys, &self.dir, KeyProvider::File)?,
        }
        Ok(tx)
    }

    /// A write transaction for `aivault init`: sets up `provider`'s key,
    /// refused once the vault has one.
    pub(super) fn begin_init(&mut self, provider: KeyProvider) -> Result<Tx<'_>> {
        let mut tx = self.store.write()?;
        if let Some(existing) = tx.key_config()? {
            return Err(VaultError::AlreadyInitialised(existing.provider));
        }
        initialise(&mut tx, &self.keys, &self.dir, provider)?;
        Ok(tx)
    }

    /// A read transaction for listing rows to the operator: rows are checked
    /// when the key can be had without asking, table seals are not (a
    /// broken seal says a row was added, removed or replaced; the listing is
    /// how the operator finds which).
    pub(super) fn begin_listing(&mut self) -> Result<Tx<'_>> {
        let mut tx = self.begin_read(KeyUse::IfAvailable)?;
        tx.skip_seal_checks();
        Ok(tx)
    }

    /// A read transaction (a consistent snapshot), holding the keys as `key_use` asks.
    pub(super) fn begin_read(&mut self, key_use: KeyUse) -> Result<Tx<'_>> {
        let mut tx = self.store.read()?;
        if key_use == KeyUse::Skip {
            return Ok(tx);
        }
        let Some(config) = tx.key_config()? else {
            refuse_orphaned_rows(&tx)?;
            return Ok(tx);
        };
        if key_use == KeyUse::IfAvailable
            && (!keys::unlockable_without_prompt(&config) || self.keys.is_locked())
        {
            return Ok(tx);
        }
        match keys_for(&tx, &self.keys, &self.dir, &config) {
            Ok(keys) => tx.authenticate(keys),
            Err(VaultError::Key(_)) if key_use == KeyUse::IfAvailable => {}
            Err(e) => return Err(e),
        }
        Ok(tx)
    }
}

impl Vault {
    /// Unlocks with key material handed over (`aivault unlock` to a daemon),
    /// even a cache that was locked on purpose.
    pub fn unlock_with(&mut self, material: Option<&str>) -> Result<()> {
        let tx = self.store.read()?;
        let config = tx.key_config()?.ok_or(VaultError::NotInitialised)?;
        let (kek, check) = keys::unlock_from(&self.dir, &config, material)?;
        let keys = Arc::new(KeySet::new(config.kek_id.clone(), kek, check));
        if keys.is_legacy() && tx.has_seals()? {
            return Err(VaultError::KeyCheckReplaced);
        }
        self.keys.put(keys);
        Ok(())
    }

    /// The key configuration, for a client deciding what to hand a daemon.
    pub fn key_config(&mut self) -> Result<Option<super::store::KeyConfigRow>> {
        Ok(self.store.read()?.key_config()?)
    }
}

/// The keys `config` describes, from the cache when it holds them.
fn keys_for(tx: &Tx<'_>, cache: &KeyCache, dir: &Path, config: &KeyConfigRow) -> Result<Arc<KeySet>> {
    let cached = cache.get()?.filter(|k| {
        k.kek_id() == config.kek_id
            && k.kek().verify_key_check(&config.key_check).map(|c| c == super::crypto::KeyCheck::Legacy)
                == Some(k.is_legacy())
    });
    let keys = match cached {
        Some(keys) => keys,
        None => {
            let (kek, check) = keys::unlock(dir, config)?;
            let keys = Arc::new(KeySet::new(config.kek_id.clone(), kek, check));
            cache.put(keys.clone());
            keys
        }
    };
    // Only the key holder can write a current key check, but an old one can
    // be copied back from a backup to make the rows look unauthenticated.
    if keys.is_legacy() && tx.has_seals()? {
        return Err(VaultError::KeyCheckReplaced);
    }
    Ok(keys)
}

/// Sets up a new vault's master key with `provider`, seals its empty
/// tables and records the event.
fn initialise(tx: &mut Tx<'_>, cache: &KeyCache, dir: &Path, provider: KeyProvider) -> Result<()> {
    refuse_orphaned_rows(tx)?;
    let kek_id = uuid::Uuid::new_v4().to_string();
    let (kek, params) = keys::create(dir, provider, &kek_id, Purpose::Init)?;
    let now = now_ms();
    let keys = Arc::new(KeySet::new(kek_id.clone(), kek, super::crypto::KeyCheck::Authenticated));
    tx.put_key_config(&KeyConfigRow {
        provider: provider.as_str().to_string(),
        kek_id,
        params: serde_json::to_string(&params).expect("key params serialise"),
        key_check: keys.kek().key_check(),
        created_at_ms: now,
        rotated_at_ms: None,
    })?;
    tx.authenticate(keys.clone());
    tx.seal_tables()?;
    // Events an older aivault recorded before any key existed (approving a
    // provider) are sealed as found, like an old vault's on migration.
    audit::authenticate_legacy(tx)?;
    audit::append(tx, &Event::new("vault.init", "master-key", json!({"provider": provider.as_str()})), now)?;
    cache.put(keys);
    Ok(())
}

/// A database with secrets or seals but no key configuration lost it (or
/// had it removed): a new key would neither open the secrets nor vouch for
/// rows it never authenticated.
fn refuse_orphaned_rows(tx: &Tx<'_>) -> Result<()> {
    if tx.count_secrets()? > 0 || tx.has_seals()? || tx.audit_has_macs()? {
        return Err(VaultError::KeyConfigMissing);
    }
    Ok(())
}

/// Authenticates every row of a vault written before rows carried MACs
/// (trusting them, as the aivault that wrote them did), seals its tables and
/// audit log, and replaces the key check with one that says so.
fn authenticate_legacy(tx: &mut Tx<'_>, legacy: &KeySet) -> Result<Arc<KeySet>> {
    let keys = Arc::new(legacy.upgraded());
    tx.authenticate(keys.clone());
    tx.authenticate_all()?;
    let sealed_events = audit::authenticate_legacy(tx)?;
    let mut config = tx.key_config()?.ok_or(StoreError::Unkeyed)?;
    config.key_check = keys.kek().key_check();
    tx.put_key_config(&config)?;
    let details = json!({"auditEvents": sealed_events});
    audit::append(tx, &Event::new("vault.authenticate", "vault", details), now_ms())?;
    Ok(keys)
}
