//! What the broker reads from and writes to the vault around one
//! invocation: a checked snapshot of credentials and policy, rate-limit
//! admission together with the audit entry of the call's intent, decryption
//! of exactly the secrets a credential uses, and the audit record of the
//! outcome.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use zeroize::Zeroizing;

use super::audit::Event;
use super::config_cache::{Snapshot, stamped};
use super::group_commit::{Admission, Write};
use super::integrity::KeySet;
use super::management::open_secret;
use super::store::{BindingRow, CredentialRow, CustomCapabilityRow, PolicyRow, StoreError};
use super::unlock::KeyUse;
use super::{Result, SecretRow, Vault};

/// Everything needed to decide whether and how to serve a call. Every row
/// in it passed its integrity check.
#[derive(Debug, Clone)]
pub struct InvocationData {
    pub credentials: Vec<CredentialRow>,
    /// Secrets used by those credentials, by id.
    pub secrets: HashMap<String, SecretRow>,
    pub custom_capabilities: Vec<CustomCapabilityRow>,
    pub policy: Option<PolicyRow>,
    /// Bindings of the capability being invoked.
    pub bindings: Vec<BindingRow>,
    /// What decrypts the secrets, once the call is admitted.
    pub unsealer: Unsealer,
}

/// The key the snapshot was read and checked under. Decrypting with it
/// needs no second trip to the database, and cannot pair the snapshot's
/// secrets with a key from a later moment.
#[derive(Clone)]
pub struct Unsealer(Option<Arc<KeySet>>);

impl Unsealer {
    /// Decrypts `secrets` (in order) for injection. The values go only to
    /// the provider component.
    pub fn reveal(&self, secrets: &[&SecretRow]) -> Result<Vec<Zeroizing<String>>> {
        let keys = self.0.as_ref().ok_or(StoreError::Unkeyed)?;
        secrets.iter().map(|s| open_secret(keys.kek(), s)).collect()
    }
}

impl fmt::Debug for Unsealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unsealer(..)")
    }
}

impl Vault {
    /// A checked snapshot for invoking `capability`. Needs the key: without
    /// it no row can be trusted.
    pub fn invocation_data(&mut self, capability: &str) -> Result<InvocationData> {
        let cache = self.cache.clone();
        let tx = self.begin_read(KeyUse::Required)?;
        let stamped = stamped(cache.as_deref(), &tx)?;
        let snapshot = match stamped.as_ref().and_then(|(cache, stamp)| cache.snapshot(stamp)) {
            Some(snapshot) => snapshot,
            None => {
                // All policies and bindings, so their tables' seals are
                // checked: a deleted policy would lift its limits.
                let snapshot = Arc::new(Snapshot::read(&tx)?);
                if let Some((cache, stamp)) = &stamped {
                    cache.keep_snapshot(stamp, Arc::clone(&snapshot));
                }
                snapshot
            }
        };
        Ok(InvocationData {
            credentials: snapshot.credentials.clone(),
            secrets: snapshot.secrets.clone(),
            custom_capabilities: snapshot.custom_capabilities.clone(),
            policy: snapshot.policies.iter().find(|p| p.capability_id == capability).cloned(),
            bindings: snapshot.bindings.iter().filter(|b| b.capability_id == capability).cloned().collect(),
            unsealer: Unsealer(tx.keys().cloned()),
        })
    }

    /// Lets the reads until this connection's next write share one
    /// transaction and see one snapshot (a front-end's token check and
    /// the plan of the call it then admits); see [`super::store::Store::hold_reads`].
    /// If none can be held, each read takes its own as usual.
    pub fn hold_reads(&mut self) {
        let _ = self.store.hold_reads();
    }

    /// Counts this call against `capability`'s rate limit and records its
    /// intent in the audit log, in one transaction: a call is sent only once
    /// both are committed. Returns the intent's sequence number, or
    /// `Err(count)` when the last minute already holds `limit` calls.
    pub fn admit(&mut self, capability: &str, limit: Option<i64>, intent: Event) -> Result<Admission> {
        self.write_record(Write::Admit { capability: capability.to_string(), limit, intent })
    }

    /// Appends one audit event (in a transaction of its own, or with other
    /// calls' records: see [`super::group_commit`]).
    pub fn record(&mut self, kind: &'static str, subject: &str, details: Value) -> Result<()> {
        self.write_record(Write::Record(Event::new(kind, subject, details))).map(|_| ())
    }

    /// Appends `events`, each one's result in order: together, with other
    /// calls' records when this connection belongs to a pool (a front-end
    /// recording the outcomes of several calls at once).
    pub fn record_all(&mut self, events: Vec<Event>) -> Vec<Result<()>> {
        let writes = events.into_iter().map(Write::Record).collect();
        self.write_records(writes).into_iter().map(|written| written.map(|_| ())).collect()
    }
}
