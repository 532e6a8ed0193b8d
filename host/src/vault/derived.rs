//! Values a token refresh derived from a credential's secrets (an OAuth2
//! access token): sealed like a secret's value, bound to the credential,
//! its kind and the exact secret versions they came from, so a rotated
//! secret's old token is never used. They are never listed or shown; they
//! only reach the provider's `inject`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::audit::{self, Event};
use super::crypto::{self, DerivedBinding};
use super::store::{DerivedRow, SecretRow};
use super::unlock::KeyUse;
use super::{Result, Vault, held_keys, now_ms};

/// Derived values by placeholder, and when they expire (seconds since the
/// Unix epoch), if the token endpoint said.
pub struct Derived {
    pub values: Vec<(String, Zeroizing<String>)>,
    pub expires_at: Option<u64>,
}

/// The sealed form.
#[derive(Serialize, Deserialize)]
struct Plain {
    values: Vec<(String, String)>,
    expires_at: Option<u64>,
}

/// What derived values are bound to: each secret's id and value version.
pub fn source_of(secrets: &[&SecretRow]) -> String {
    secrets.iter().map(|s| format!("{}:{}", s.id, s.value_version)).collect::<Vec<_>>().join(",")
}

impl Vault {
    /// The values last derived for `credential_id`'s `kind` from exactly
    /// the secret versions `source`. `None` when there are none, or they
    /// came from other versions, or they do not open (another key, an
    /// edited row): each means "refresh".
    pub fn derived(&mut self, credential_id: &str, kind: &str, source: &str) -> Result<Option<Derived>> {
        let tx = self.begin_read(KeyUse::Required)?;
        let keys = held_keys(&tx)?;
        let Some(row) = tx.derived_row(credential_id, kind)? else { return Ok(None) };
        if row.source != source {
            return Ok(None);
        }
        let binding = DerivedBinding { credential_id, kind, source };
        let Ok(plain) = crypto::open(keys.kek(), &binding, &row.sealed) else { return Ok(None) };
        let Ok(mut plain) = serde_json::from_slice::<Plain>(&plain) else { return Ok(None) };
        let values = plain.values.drain(..).map(|(name, value)| (name, Zeroizing::new(value))).collect();
        Ok(Some(Derived { values, expires_at: plain.expires_at }))
    }

    /// Keeps what a refresh derived, replacing what was there, and records
    /// `event` in the same transaction.
    pub fn store_derived(
        &mut self,
        credential_id: &str,
        kind: &str,
        source: &str,
        derived: &Derived,
        event: &Event,
    ) -> Result<()> {
        let tx = self.begin_write()?;
        let keys = held_keys(&tx)?;
        let plain = Plain {
            values: derived.values.iter().map(|(name, value)| (name.clone(), value.to_string())).collect(),
            expires_at: derived.expires_at,
        };
        let mut bytes = Zeroizing::new(serde_json::to_vec(&plain).expect("strings and numbers serialise"));
        let mut plain = plain;
        plain.values.iter_mut().for_each(|(_, v)| zeroize::Zeroize::zeroize(v));
        let binding = DerivedBinding { credential_id, kind, source };
        let sealed = crypto::seal(keys.kek(), &binding, &bytes);
        zeroize::Zeroize::zeroize(&mut *bytes);
        tx.put_derived_row(&DerivedRow {
            credential_id: credential_id.to_string(),
            kind: kind.to_string(),
            source: source.to_string(),
            sealed,
            refreshed_at_ms: now_ms(),
        })?;
        audit::append(&tx, event, now_ms())?;
        tx.commit()?;
        Ok(())
    }
}
