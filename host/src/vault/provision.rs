//! Auto-provisioning: once every secret a provider's credential kind needs
//! exists (pinned) in one scope, create that scope's credential and enable
//! all the kind's capabilities.

use serde_json::json;

use super::audit::{self, Event};
use super::scope::Scope;
use super::store::{CredentialRow, StoreError, Tx};
use crate::registry::Registry;

/// A credential created by provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub credential_id: String,
    pub provider: String,
    pub capabilities: usize,
}

/// A credential kind that still lacks some of its secrets in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub provider: String,
    pub missing: Vec<String>,
}

/// What provisioning did after one secret was created.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub provisioned: Vec<Provisioned>,
    pub waiting: Vec<Waiting>,
}

/// After secret `name` (pinned to `provider`) was created in `scope`:
/// provisions every kind of the provider that uses `name` and is now
/// complete, and reports the kinds still waiting for secrets.
pub fn after_create(
    tx: &Tx<'_>,
    registry: &Registry,
    provider: &str,
    name: &str,
    scope: &Scope,
    now_ms: i64,
) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome::default();
    let Ok(plugin) = registry.provider(provider) else {
        return Ok(outcome);
    };
    let manifest = plugin.manifest();
    for (index, kind) in manifest.credential_kinds.iter().enumerate() {
        if !kind.secrets.iter().any(|s| s == name)
            || !tx.credentials_for(provider, &kind.id, scope)?.is_empty()
        {
            continue;
        }
        let mut secrets = Vec::new();
        let mut missing = Vec::new();
        for secret_name in &kind.secrets {
            match tx.secret_in_scope(scope, secret_name)? {
                Some(s) if s.pinned_provider.as_deref() == Some(provider) => {
                    secrets.push((secret_name.clone(), s.id))
                }
                _ => missing.push(secret_name.clone()),
            }
        }
        if !missing.is_empty() {
            outcome.waiting.push(Waiting { provider: provider.to_string(), missing });
            continue;
        }
        // The provider's first kind gets the provider's own name (`openai`),
        // others a suffixed one (`openai-codex-oauth`).
        let base = if index == 0 { provider.to_string() } else { format!("{provider}-{}", kind.id) };
        let id = unique_credential_id(tx, &scoped_id(&base, scope))?;
        let row = CredentialRow {
            id: id.clone(),
            provider: provider.to_string(),
            kind: kind.id.clone(),
            scope: scope.clone(),
            host: None,
            auto_provisioned: true,
            created_at_ms: now_ms,
            secrets,
            capabilities: kind.capabilities.clone(),
        };
        tx.insert_credential(&row)?;
        let details = json!({
            "provider": provider,
            "kind": kind.id,
            "scope": scope.to_string(),
            "secrets": kind.secrets,
            "capabilities": kind.capabilities.len(),
        });
        audit::append(tx, &Event::new("credential.provision", &id, details), now_ms)?;
        outcome.provisioned.push(Provisioned {
            credential_id: id,
            provider: provider.to_string(),
            capabilities: kind.capabilities.len(),
        });
    }
    Ok(outcome)
}

/// `openai`, `openai@my-ws`, `openai@my-ws/my-group`.
fn scoped_id(base: &str, scope: &Scope) -> String {
    match scope {
        Scope::Global => base.to_string(),
        Scope::Workspace { workspace } => format!("{base}@{workspace}"),
        Scope::Group { workspace, group } => format!("{base}@{workspace}/{group}"),
    }
}

fn unique_credential_id(tx: &Tx<'_>, wanted: &str) -> Result<String, StoreError> {
    if !tx.credential_id_taken(wanted)? {
        return Ok(wanted.to_string());
    }
    let mut n = 2;
    loop {
        let candidate = format!("{wanted}-{n}");
        if !tx.credential_id_taken(&candidate)? {
            return Ok(candidate);
        }
        n += 1;
    }
}
