//! Token refresh, mediated by the host (contract 0.2.0). A credential kind
//! that derives values (an OAuth2 access token) gets them from the vault
//! while they are fresh; otherwise the provider builds the token request,
//! this module sends it like any request (HTTPS, one of the kind's hosts,
//! no redirects, a size cap), the provider reads the answer, and the vault
//! keeps the values sealed. Callers racing to refresh the same credential
//! (threads of the daemon, or other processes) take a lock file in turn:
//! the first refreshes, the others find its values.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::devmode::DevOverrides;
use super::{BrokerError, upstream};
use crate::plugins::{CredentialKind, Plugin, PluginError, TokenResponse};
use crate::redact::{Forms, Needles};
use crate::vault::audit::Event;
use crate::vault::{CredentialRow, Derived, SecretRow, Vault, source_of};

/// The largest token endpoint answer read.
const MAX_TOKEN_RESPONSE: u64 = 64 * 1024;

/// Values by placeholder, wiped on drop.
pub type Values = Vec<(String, Zeroizing<String>)>;

/// The derivation of one credential kind's values, for one call.
pub struct Derivation<'a> {
    provider: &'a Plugin,
    kind: &'a CredentialKind,
    credential_id: String,
    /// The secrets' ids and versions the values are bound to.
    source: String,
}

impl<'a> Derivation<'a> {
    /// `None` when `credential`'s kind derives nothing.
    pub fn of(provider: &'a Plugin, credential: &CredentialRow, secrets: &[&SecretRow]) -> Option<Self> {
        let kind = provider.manifest().credential_kind(&credential.kind)?;
        (!kind.derived.is_empty()).then(|| Derivation {
            provider,
            kind,
            credential_id: credential.id.clone(),
            source: source_of(secrets),
        })
    }

    /// The values to inject: the stored ones while they are fresh, else
    /// refreshed. `refused` are values upstream just answered 401 to: they
    /// are replaced, unless another caller has already done so.
    pub fn values(
        &self,
        vault: &mut Vault,
        secrets: &[(String, Zeroizing<String>)],
        dev: &DevOverrides,
        timeout: Duration,
        refused: Option<&Values>,
    ) -> Result<Values, BrokerError> {
        if let Some(found) = self.usable(vault, refused)? {
            return Ok(found);
        }
        let _lock = RefreshLock::take(vault.dir(), &self.credential_id)?;
        // Whoever held the lock may have refreshed meanwhile.
        if let Some(found) = self.usable(vault, refused)? {
            return Ok(found);
        }
        self.refresh(vault, secrets, dev, timeout)
    }

    /// The stored values, if fresh and not the refused ones.
    fn usable(&self, vault: &mut Vault, refused: Option<&Values>) -> Result<Option<Values>, BrokerError> {
        let now = unix_now();
        let found = vault.derived(&self.credential_id, &self.kind.id, &self.source)?;
        Ok(found.filter(|d| d.expires_at.is_none_or(|t| t > now)).map(|d| d.values).filter(|values| {
            refused.is_none_or(|refused| values.iter().map(|(_, v)| v).ne(refused.iter().map(|(_, v)| v)))
        }))
    }

    /// Asks the provider for the token request, sends it, has the provider
    /// read the answer, and keeps (and audits) what it derived.
    fn refresh(
        &self,
        vault: &mut Vault,
        secrets: &[(String, Zeroizing<String>)],
        dev: &DevOverrides,
        timeout: Duration,
    ) -> Result<Values, BrokerError> {
        let now = unix_now();
        let subject = self.credential_id.clone();
        let details = |outcome: &str| json!({"credential": self.credential_id, "kind": self.kind.id, "outcome": outcome});
        let result = self.exchange(secrets, dev, timeout, now);
        let token = match result {
            Ok(token) => token,
            Err(e) => {
                let mut details = details("failed");
                details["reason"] = json!(e.to_string());
                // The call fails either way; its own audit record says so too.
                let _ = vault.record("token.refresh.failed", &subject, details);
                return Err(e);
            }
        };
        let derived = Derived { values: token.values, expires_at: token.expires_at };
        let mut details = details("refreshed");
        details["expiresAt"] = json!(derived.expires_at);
        let event = Event::new("token.refresh", &subject, details);
        vault.store_derived(&self.credential_id, &self.kind.id, &self.source, &derived, &event)?;
        Ok(derived.values)
    }

    fn exchange(
        &self,
        secrets: &[(String, Zeroizing<String>)],
        dev: &DevOverrides,
        timeout: Duration,
        now: u64,
    ) -> Result<crate::plugins::Token, BrokerError> {
        let request = self.provider.refresh(self.kind, secrets, now)?;
        let redact = |text: String| {
            let mut needles = Needles::new();
            for (_, value) in secrets {
                needles.secret(value);
            }
            needles.redactor(Forms::Encoded).text(&text)
        };
        let mut reply = upstream::send(&request, timeout, dev)
            .map_err(|e| BrokerError::Upstream(redact(format!("refreshing the token: {e}"))))?;
        let (body, truncated) = reply
            .read_all(MAX_TOKEN_RESPONSE)
            .map_err(|e| BrokerError::Upstream(redact(format!("refreshing the token: {e}"))))?;
        if truncated {
            return Err(BrokerError::Upstream(format!(
                "refreshing the token: the token endpoint answered more than {MAX_TOKEN_RESPONSE} bytes"
            )));
        }
        let headers = reply.content_type.iter().map(|t| ("content-type".to_string(), t.clone())).collect();
        let response = TokenResponse { status: reply.status, headers, body: Zeroizing::new(body) };
        self.provider.absorb_token(self.kind, secrets, &response, now).map_err(reauthorise)
    }
}

/// A refused grant is the user's to fix: say how.
fn reauthorise(e: PluginError) -> BrokerError {
    match e {
        PluginError::RefreshRefused { reason, .. } => BrokerError::Reauthorise(reason),
        other => BrokerError::Plugin(other),
    }
}

/// An exclusive lock on refreshing one credential, held until dropped.
struct RefreshLock(File);

impl RefreshLock {
    fn take(dir: &std::path::Path, credential_id: &str) -> Result<Self, BrokerError> {
        let locks = dir.join("locks");
        let io = |e: std::io::Error| {
            BrokerError::Upstream(format!("cannot take the refresh lock in {}: {e}", locks.display()))
        };
        crate::fsutil::create_private_dir(&locks).map_err(io)?;
        // A name from the id's hash: ids are the user's text.
        let name = format!("refresh-{}.lock", &hex::encode(Sha256::digest(credential_id.as_bytes()))[..32]);
        let path: PathBuf = locks.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(io)?;
        file.lock().map_err(io)?;
        Ok(RefreshLock(file))
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
