//! `rotate-master`: a new master key, every data key re-wrapped and every
//! MAC re-keyed under it, in one transaction that cannot lose the vault.
//!
//! The order is what makes a crash at any point safe: the new key file is
//! written and synced (with its directory) before the database names it;
//! the switch commits with full synchronous durability; and the old key
//! file is removed only after a fresh connection has opened the vault with
//! the new key. Whichever key the database names is therefore on disk.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::audit::{self, Event};
use super::crypto::{self, Binding, Kek, KeyCheck};
use super::integrity::KeySet;
use super::keys::{self, KeyError, KeyProvider, Purpose};
use super::store::{KeyConfigRow, Location, Store, StoreError, Tx};
use super::{Result, Vault, VaultError, held_keys, management::open_secret, now_ms};
use crate::{fsutil, testpoint};

impl Vault {
    /// Re-wraps every DEK and re-keys every MAC under a new master key
    /// (optionally from another provider), verifying each data key before
    /// anything is committed. Value ciphertexts are untouched. Refused while
    /// any row fails its integrity check, since re-keying would vouch for
    /// it. Returns how many secrets were re-wrapped.
    pub fn rotate_master(&mut self, provider: Option<KeyProvider>) -> Result<usize> {
        let dir = self.dir.clone();
        let location = self.location.clone();
        self.store.durable_commits()?;
        let mut tx = self.begin_write()?;
        let old = held_keys(&tx)?;
        if let Some(problem) = tx.integrity_report()?.into_iter().next() {
            return Err(StoreError::Integrity(problem).into());
        }
        let head_sealed = audit::head_sealed(&tx)?;
        let old_config = tx.key_config()?.ok_or(StoreError::Unkeyed)?;
        let old_provider = KeyProvider::parse(&old_config.provider)
            .ok_or_else(|| KeyError::BadParams(old_config.provider.clone()))?;
        let new_provider = provider.unwrap_or(old_provider);
        let new_id = uuid::Uuid::new_v4().to_string();
        let (new_kek, params) = keys::create(&dir, new_provider, &new_id, Purpose::Rotate)?;
        let new_file = keys::key_file(&dir, &new_id);
        if new_provider == KeyProvider::File {
            sync_parent(&new_file)?;
        }
        testpoint::reached("rotate.key-written");
        let new = Arc::new(KeySet::new(new_id.clone(), new_kek, KeyCheck::Authenticated));

        let result = switch_keys(&mut tx, &old, &new, head_sealed).and_then(|count| {
            let now = now_ms();
            tx.put_key_config(&KeyConfigRow {
                provider: new_provider.as_str().to_string(),
                kek_id: new_id.clone(),
                params: serde_json::to_string(&params).expect("key params serialise"),
                key_check: new.kek().key_check(),
                created_at_ms: old_config.created_at_ms,
                rotated_at_ms: Some(now),
            })?;
            let details = json!({"from": old_config.provider, "to": new_provider.as_str(), "secrets": count, "kekId": new_id});
            audit::append(&tx, &Event::new("master.rotate", "master-key", details), now)?;
            testpoint::reached("rotate.rewrapped");
            Ok(count)
        });
        let count = match result {
            Ok(count) => count,
            Err(e) => {
                // Nothing was committed, so nothing names the new key.
                if new_provider == KeyProvider::File {
                    let _ = std::fs::remove_file(&new_file);
                }
                return Err(e);
            }
        };
        // A commit that reports an error may still have reached the log and
        // be replayed on the next open: from here on the new key file stays
        // (`aivault doctor` lists a key file nothing names).
        tx.commit()?;
        self.keys.put(new.clone());
        testpoint::reached("rotate.committed");

        reopen_with(&location, &new)?;
        testpoint::reached("rotate.verified");
        if old_provider == KeyProvider::File && old_config.kek_id != new_id {
            let old_file = keys::key_file(&dir, &old_config.kek_id);
            if std::fs::remove_file(&old_file).is_ok() {
                sync_parent(&old_file)?;
            }
        }
        testpoint::reached("rotate.old-key-removed");
        Ok(count)
    }
}

/// Re-wraps every data key from `old` to `new`, then re-authenticates every
/// row, table seal and audit event under `new`; the transaction holds `new`
/// afterwards.
fn switch_keys(tx: &mut Tx<'_>, old: &KeySet, new: &Arc<KeySet>, head_sealed: bool) -> Result<usize> {
    let count = rewrap_all(tx, old.kek(), new.kek(), new.kek_id())?;
    // Derived tokens are not re-wrapped: a refresh derives them again.
    tx.delete_derived_rows()?;
    tx.authenticate(new.clone());
    tx.authenticate_all()?;
    audit::rekey(tx, old.audit(), head_sealed)?;
    Ok(count)
}

fn rewrap_all(tx: &Tx<'_>, old: &Kek, new: &Kek, new_id: &str) -> Result<usize> {
    let secrets = tx.all_secrets()?;
    for s in &secrets {
        let binding = Binding::of(s);
        let wrapped = crypto::rewrap(old, new, &binding, &s.sealed.wrapped_dek)
            .map_err(|_| VaultError::Tampered { name: s.name.clone() })?;
        // Verify before commit: the new wrapping must open with the new key
        // and still open the untouched value ciphertext.
        let check = crypto::Sealed { ciphertext: s.sealed.ciphertext.clone(), wrapped_dek: wrapped.clone() };
        if !crypto::can_unwrap(new, &binding, &wrapped) || crypto::open(new, &binding, &check).is_err() {
            return Err(VaultError::Tampered { name: s.name.clone() });
        }
        tx.replace_wrapped_dek(&s.id, &wrapped, new_id)?;
    }
    Ok(secrets.len())
}

/// Opens the vault afresh (a new connection, reading what was committed)
/// and checks that `keys` is the key it names and opens all of it: the key
/// check, every row's MAC, and every value.
fn reopen_with(location: &Location, keys: &Arc<KeySet>) -> Result<()> {
    let mut store = Store::open_at(location)?;
    let mut tx = store.read()?;
    let config = tx.key_config()?.ok_or(VaultError::KeyConfigMissing)?;
    if config.kek_id != keys.kek_id()
        || keys.kek().verify_key_check(&config.key_check) != Some(KeyCheck::Authenticated)
    {
        return Err(KeyError::WrongKey("new master key").into());
    }
    tx.authenticate(keys.clone());
    if let Some(problem) = tx.integrity_report()?.into_iter().next() {
        return Err(StoreError::Integrity(problem).into());
    }
    for secret in tx.all_secrets()? {
        open_secret(keys.kek(), &secret)?;
    }
    Ok(())
}

/// Syncs the directory holding `file`, so its creation or removal is durable.
fn sync_parent(file: &Path) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fsutil::sync_dir(dir).map_err(|source| KeyError::FileWrite { path: dir.to_path_buf(), source }.into())
}
