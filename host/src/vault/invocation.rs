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

use super::audit::{self, Event};
use super::integrity::KeySet;
use super::management::open_secret;
use super::store::{BindingRow, CredentialRow, CustomCapabilityRow, PolicyRow, StoreError};
use super::unlock::KeyUse;
use super::{Result, SecretRow, Vault, now_ms};

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

/// The sliding window rate limits count over.
const RATE_WINDOW_MS: i64 = 60_000;

impl Vault {
    /// A checked snapshot for invoking `capability`. Needs the key: without
    /// it no row can be trusted.
    pub fn invocation_data(&mut self, capability: &str) -> Result<InvocationData> {
        let tx = self.begin_read(KeyUse::Required)?;
        let credentials = tx.credentials()?;
        let secrets = tx.secrets_of_credentials()?.into_iter().map(|s| (s.id.clone(), s)).collect();
        Ok(InvocationData {
            credentials,
            secrets,
            custom_capabilities: tx.custom_capabilities()?,
            // All of them, so the table's seal is checked: a deleted policy
            // would lift its limits.
            policy: tx.policies()?.into_iter().find(|p| p.capability_id == capability),
            bindings: tx.bindings()?.into_iter().filter(|b| b.capability_id == capability).collect(),
            unsealer: Unsealer(tx.keys().cloned()),
        })
    }

    /// Counts this call against `capability`'s rate limit and records its
    /// intent in the audit log, in one transaction: a call is sent only once
    /// both are committed. Returns the intent's sequence number, or
    /// `Err(count)` when the last minute already holds `limit` calls.
    pub fn admit(
        &mut self,
        capability: &str,
        limit: Option<i64>,
        intent: &Event,
    ) -> Result<std::result::Result<i64, i64>> {
        let tx = self.begin_write()?;
        let now = now_ms();
        if let Some(limit) = limit {
            let recent = tx.count_invocations(capability, now - RATE_WINDOW_MS)?;
            if recent >= limit {
                return Ok(Err(recent));
            }
        }
        tx.record_invocation(capability, now, now - RATE_WINDOW_MS)?;
        let seq = audit::append(&tx, intent, now)?;
        tx.commit()?;
        Ok(Ok(seq))
    }

    /// Appends one audit event in its own transaction.
    pub fn record(&mut self, kind: &'static str, subject: &str, details: Value) -> Result<()> {
        let tx = self.begin_write()?;
        audit::append(&tx, &Event::new(kind, subject, details), now_ms())?;
        tx.commit()?;
        Ok(())
    }
}
