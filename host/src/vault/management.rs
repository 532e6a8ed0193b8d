//! Credentials, custom capabilities, policies and consumer bindings: what
//! an operator sets up by hand, next to what auto-provisioning creates.

use serde_json::json;

use super::audit::{self, Event};
use super::crypto::Binding;
use super::scope::Scope;
use super::secrets::resolve_secret;
use super::store::{BindingRow, CredentialRow, CustomCapabilityRow, PolicyRow, StoreError, Tx};
use super::{Result, SecretRow, Vault, VaultError, crypto, held_keys, now_ms};
use crate::plugins::HostPattern;
use crate::registry::Registry;

/// A credential to create by hand.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: String,
    pub provider: String,
    /// The credential kind; may be omitted when the provider has one.
    pub kind: Option<String>,
    /// `(vault secret name the kind declares, if given; secret id/name/alias)`.
    pub secret_refs: Vec<(Option<String>, String)>,
    pub host: Option<String>,
    pub scope: Scope,
}

/// A capability to define for one credential.
#[derive(Debug, Clone)]
pub struct NewCapability {
    pub id: String,
    pub credential: String,
    pub description: String,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub host: Option<String>,
}

/// Changes to a capability's policy; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    pub rate_limit_per_minute: Option<i64>,
    pub max_request_body_bytes: Option<i64>,
    pub max_response_body_bytes: Option<i64>,
    pub response_block: Option<Vec<String>>,
}

/// Management failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    #[error("credential id `{0}` is not allowed: use 1-128 letters, digits, `.`, `_` or `-`")]
    BadCredentialId(String),
    #[error("a credential `{0}` already exists")]
    CredentialExists(String),
    #[error("no credential `{id}`{}; `aivault credential list` shows them", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownCredential { id: String, suggestion: Option<String> },
    #[error("provider {provider} has several credential kinds ({kinds}); pass --kind")]
    KindNeeded { provider: String, kinds: String },
    #[error("provider {provider} has no credential kind `{kind}` (it has {kinds})")]
    UnknownKind { provider: String, kind: String, kinds: String },
    #[error(
        "credential kind {kind} of {provider} needs {needed}; pass one --secret-ref per secret (NAME=vault:secret:<id> when there are several)"
    )]
    SecretRefsMismatch { provider: String, kind: String, needed: String },
    #[error("`{0}` is not a secret reference; write vault:secret:<id> (or NAME=vault:secret:<id>)")]
    BadSecretRef(String),
    #[error("{secret} is pinned to provider {pinned} and cannot serve provider {provider}")]
    PinnedElsewhere { secret: String, pinned: String, provider: String },
    #[error("{secret} is in scope {secret_scope}, which a credential in scope {scope} cannot use")]
    ScopeMismatch { secret: String, secret_scope: Scope, scope: Scope },
    #[error("host `{host}` is not one the credential may reach ({allowed})")]
    HostNotAllowed { host: String, allowed: String },
    #[error("`{0}` is a wildcard; a credential needs a concrete --host")]
    WildcardHost(String),
    #[error("capability id `{id}` must be `{provider}/<name>` (lower-case letters, digits, `-`, `_`, `.`)")]
    BadCapabilityId { id: String, provider: String },
    #[error("a capability `{0}` already exists")]
    CapabilityExists(String),
    #[error(
        "no custom capability `{0}`; built-in capabilities come from their provider and cannot be deleted"
    )]
    UnknownCustomCapability(String),
    #[error("no capability `{0}`; `aivault capability list` shows them")]
    UnknownCapability(String),
    #[error("{0}")]
    BadCapability(String),
    #[error("policy values must be positive numbers ({0})")]
    BadPolicy(&'static str),
    #[error("{0} has no policy; `aivault capability policy list` shows them")]
    NoPolicy(String),
    #[error("{0} has no such grant; `aivault agent list` shows them")]
    NoGrant(String),
    #[error("consumer `{0}` is not allowed: use 1-128 letters, digits, `.`, `_`, `-` or `@`")]
    BadConsumer(String),
    #[error("{consumer} is already bound to {capability} in scope {scope}")]
    AlreadyBound { consumer: String, capability: String, scope: Scope },
    #[error("{consumer} is not bound to {capability} in scope {scope}")]
    NotBound { consumer: String, capability: String, scope: Scope },
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl Vault {
    /// Creates a credential by hand: the provider checks each secret's value,
    /// and every capability of the kind is enabled.
    pub fn create_credential(&mut self, registry: &Registry, new: NewCredential) -> Result<CredentialRow> {
        check_token(&new.id, "._-").map_err(|()| ManageError::BadCredentialId(new.id.clone()))?;
        let plugin = registry.provider(&new.provider).map_err(|e| VaultError::Registry(Box::new(e)))?;
        let manifest = plugin.manifest();
        let kinds = || manifest.credential_kinds.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ");
        let kind = match &new.kind {
            Some(k) => manifest.credential_kind(k).ok_or_else(|| ManageError::UnknownKind {
                provider: new.provider.clone(),
                kind: k.clone(),
                kinds: kinds(),
            })?,
            None if manifest.credential_kinds.len() == 1 => &manifest.credential_kinds[0],
            None => {
                return Err(ManageError::KindNeeded { provider: new.provider.clone(), kinds: kinds() }.into());
            }
        };
        if let Some(host) = &new.host {
            check_host(host, &kind.hosts)?;
        }
        let mismatch = || ManageError::SecretRefsMismatch {
            provider: new.provider.clone(),
            kind: kind.id.clone(),
            needed: kind.secrets.join(" + "),
        };
        if new.secret_refs.len() != kind.secrets.len() {
            return Err(mismatch().into());
        }

        let tx = self.begin_write()?;
        if tx.credential_id_taken(&new.id)? {
            return Err(ManageError::CredentialExists(new.id).into());
        }
        let keys = held_keys(&tx)?;
        let mut secrets = Vec::new();
        for (i, (name, label)) in new.secret_refs.iter().enumerate() {
            let name = name.clone().unwrap_or_else(|| kind.secrets[i].clone());
            if !kind.secrets.contains(&name) || secrets.iter().any(|(n, _): &(String, String)| *n == name) {
                return Err(mismatch().into());
            }
            let secret = resolve_secret(&tx, label)?;
            if let Some(pinned) = secret.pinned_provider.as_ref().filter(|p| **p != new.provider) {
                return Err(ManageError::PinnedElsewhere {
                    secret: secret.name,
                    pinned: pinned.clone(),
                    provider: new.provider,
                }
                .into());
            }
            if !scope_can_use(&new.scope, &secret.scope) {
                return Err(ManageError::ScopeMismatch {
                    secret: secret.name,
                    secret_scope: secret.scope,
                    scope: new.scope,
                }
                .into());
            }
            let value = open_secret(keys.kek(), &secret)?;
            plugin.validate_secret(&name, &value)?;
            secrets.push((name, secret.id));
        }
        let now = now_ms();
        let row = CredentialRow {
            id: new.id.clone(),
            provider: new.provider.clone(),
            kind: kind.id.clone(),
            scope: new.scope.clone(),
            host: new.host.map(|h| h.to_ascii_lowercase()),
            auto_provisioned: false,
            created_at_ms: now,
            secrets,
            capabilities: kind.capabilities.clone(),
        };
        tx.insert_credential(&row)?;
        let details = json!({
            "provider": row.provider, "kind": row.kind, "scope": row.scope.to_string(), "host": row.host,
            "secretIds": row.secrets.iter().map(|(_, id)| id).collect::<Vec<_>>(),
        });
        audit::append(&tx, &Event::new("credential.create", &row.id, details), now)?;
        tx.commit()?;
        Ok(row)
    }

    /// Deletes a credential with its custom capabilities, their policies and
    /// bindings; also one that fails its integrity check (that is the repair).
    pub fn delete_credential(&mut self, registry: &Registry, id: &str) -> Result<CredentialRow> {
        let mut tx = self.begin_write()?;
        tx.skip_checks();
        let credential = find_credential(&tx, id)?;
        delete_credential_in(&tx, registry, &credential, "deleted by the operator", now_ms())?;
        tx.commit()?;
        Ok(credential)
    }

    /// Defines a capability for one credential, within its provider's hosts.
    pub fn create_capability(
        &mut self,
        registry: &Registry,
        new: NewCapability,
    ) -> Result<CustomCapabilityRow> {
        let tx = self.begin_write()?;
        let credential = find_credential(&tx, &new.credential)?;
        let bad_id =
            || ManageError::BadCapabilityId { id: new.id.clone(), provider: credential.provider.clone() };
        let name = new.id.strip_prefix(&format!("{}/", credential.provider)).ok_or_else(bad_id)?;
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        {
            return Err(bad_id().into());
        }
        if registry.capability(&new.id).is_ok() || tx.custom_capability_exists(&new.id)? {
            return Err(ManageError::CapabilityExists(new.id).into());
        }
        let methods: Vec<String> = new.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        if methods.is_empty() || new.path_prefixes.is_empty() {
            return Err(ManageError::BadCapability(
                "a capability needs at least one --method and one --path-prefix".into(),
            )
            .into());
        }
        if let Some(m) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(ManageError::BadCapability(format!(
                "unknown method `{m}` (use one of {})",
                METHODS.join(", ")
            ))
            .into());
        }
        for prefix in &new.path_prefixes {
            crate::plugins::check_path_prefix(prefix).map_err(ManageError::BadCapability)?;
        }
        let kind_hosts = registry
            .provider(&credential.provider)
            .ok()
            .and_then(|p| p.manifest().credential_kind(&credential.kind).map(|k| k.hosts.clone()))
            .unwrap_or_default();
        if let Some(host) = &new.host {
            check_host(host, &kind_hosts)?;
        }
        let now = now_ms();
        let row = CustomCapabilityRow {
            id: new.id,
            credential_id: credential.id,
            description: new.description,
            methods,
            path_prefixes: new.path_prefixes,
            host: new.host.map(|h| h.to_ascii_lowercase()),
            created_at_ms: now,
        };
        tx.insert_custom_capability(&row)?;
        let details = json!({
            "credential": row.credential_id, "methods": row.methods, "pathPrefixes": row.path_prefixes, "host": row.host,
        });
        audit::append(&tx, &Event::new("capability.create", &row.id, details), now)?;
        tx.commit()?;
        Ok(row)
    }

    /// Deletes a custom capability (also one that fails its integrity
    /// check). A row taking a provider capability's id goes alone: that id's
    /// policy, bindings and links are the provider capability's.
    pub fn delete_capability(&mut self, registry: &Registry, id: &str) -> Result<()> {
        let mut tx = self.begin_write()?;
        tx.skip_checks();
        if !tx.custom_capability_exists(id)? {
            return Err(ManageError::UnknownCustomCapability(id.to_string()).into());
        }
        tx.delete_custom_capability(id, registry.capability(id).is_err())?;
        let now = now_ms();
        audit::append(&tx, &Event::new("capability.delete", id, json!({})), now)?;
        tx.commit()?;
        Ok(())
    }

    /// Every custom capability.
    pub fn custom_capabilities(&mut self) -> Result<Vec<CustomCapabilityRow>> {
        Ok(self.begin_listing()?.custom_capabilities()?)
    }

    /// Sets (merges) the policy of a known capability.
    pub fn set_policy(
        &mut self,
        registry: &Registry,
        capability: &str,
        change: PolicyChange,
    ) -> Result<PolicyRow> {
        for (value, what) in [
            (change.rate_limit_per_minute, "--rate-limit-per-minute"),
            (change.max_request_body_bytes, "--max-request-body-bytes"),
            (change.max_response_body_bytes, "--max-response-body-bytes"),
        ] {
            if value.is_some_and(|v| v <= 0) {
                return Err(ManageError::BadPolicy(what).into());
            }
        }
        let tx = self.begin_write()?;
        ensure_capability_known(&tx, registry, capability)?;
        let now = now_ms();
        // A policy edited outside aivault is replaced, not merged with:
        // none of its settings can be trusted.
        let old = match tx.policy(capability) {
            Ok(old) => old,
            Err(StoreError::Integrity(_)) => None,
            Err(e) => return Err(e.into()),
        }
        .unwrap_or_else(|| PolicyRow { capability_id: capability.to_string(), ..PolicyRow::default() });
        let policy = PolicyRow {
            capability_id: capability.to_string(),
            rate_limit_per_minute: change.rate_limit_per_minute.or(old.rate_limit_per_minute),
            max_request_body_bytes: change.max_request_body_bytes.or(old.max_request_body_bytes),
            max_response_body_bytes: change.max_response_body_bytes.or(old.max_response_body_bytes),
            response_block: change.response_block.unwrap_or(old.response_block),
            updated_at_ms: now,
        };
        tx.put_policy(&policy)?;
        let details = json!({
            "rateLimitPerMinute": policy.rate_limit_per_minute,
            "maxRequestBodyBytes": policy.max_request_body_bytes,
            "maxResponseBodyBytes": policy.max_response_body_bytes,
            "responseBlock": policy.response_block,
        });
        audit::append(&tx, &Event::new("capability.policy", capability, details), now)?;
        tx.commit()?;
        Ok(policy)
    }

    /// Removes a capability's policy, whether or not the row passes its
    /// check or the capability still exists (that is how a forged or stale
    /// policy is repaired).
    pub fn delete_policy(&mut self, capability: &str) -> Result<()> {
        let tx = self.begin_write()?;
        if !tx.delete_policy(capability)? {
            return Err(ManageError::NoPolicy(capability.to_string()).into());
        }
        audit::append(&tx, &Event::new("capability.policy.delete", capability, json!({})), now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// Every policy.
    pub fn policies(&mut self) -> Result<Vec<PolicyRow>> {
        Ok(self.begin_listing()?.policies()?)
    }

    /// Allows `consumer` to invoke `capability` in `scope`.
    pub fn bind(
        &mut self,
        registry: &Registry,
        capability: &str,
        consumer: &str,
        scope: Scope,
    ) -> Result<BindingRow> {
        check_token(consumer, "._-@").map_err(|()| ManageError::BadConsumer(consumer.to_string()))?;
        let tx = self.begin_write()?;
        ensure_capability_known(&tx, registry, capability)?;
        let now = now_ms();
        let row = BindingRow {
            capability_id: capability.to_string(),
            consumer: consumer.to_string(),
            scope,
            created_at_ms: now,
        };
        if !tx.bind(&row)? {
            return Err(ManageError::AlreadyBound {
                consumer: row.consumer,
                capability: row.capability_id,
                scope: row.scope,
            }
            .into());
        }
        let details = json!({"consumer": row.consumer, "scope": row.scope.to_string()});
        audit::append(&tx, &Event::new("capability.bind", capability, details), now)?;
        tx.commit()?;
        Ok(row)
    }

    /// Removes a binding.
    pub fn unbind(&mut self, capability: &str, consumer: &str, scope: Scope) -> Result<()> {
        let tx = self.begin_write()?;
        if !tx.unbind(capability, consumer, &scope)? {
            return Err(ManageError::NotBound {
                consumer: consumer.to_string(),
                capability: capability.to_string(),
                scope,
            }
            .into());
        }
        let now = now_ms();
        let details = json!({"consumer": consumer, "scope": scope.to_string()});
        audit::append(&tx, &Event::new("capability.unbind", capability, details), now)?;
        tx.commit()?;
        Ok(())
    }

    /// Every binding.
    pub fn bindings(&mut self) -> Result<Vec<BindingRow>> {
        Ok(self.begin_listing()?.bindings()?)
    }
}

/// Removes a credential and everything that hung off it, with audit events.
pub(super) fn delete_credential_in(
    tx: &Tx<'_>,
    registry: &Registry,
    credential: &CredentialRow,
    reason: &str,
    now: i64,
) -> Result<()> {
    for custom in tx.custom_capabilities()?.iter().filter(|c| c.credential_id == credential.id) {
        tx.delete_custom_capability(&custom.id, registry.capability(&custom.id).is_err())?;
        audit::append(tx, &Event::new("capability.delete", &custom.id, json!({"reason": reason})), now)?;
    }
    tx.delete_credential(&credential.id)?;
    let details = json!({"provider": credential.provider, "reason": reason});
    audit::append(tx, &Event::new("credential.delete", &credential.id, details), now)?;
    Ok(())
}

fn find_credential(tx: &Tx<'_>, id: &str) -> Result<CredentialRow> {
    tx.credential(id)?.ok_or_else(|| {
        let all = tx.credential_ids().unwrap_or_default();
        let suggestion = crate::registry::closest(id, all.iter().map(String::as_str));
        ManageError::UnknownCredential { id: id.to_string(), suggestion }.into()
    })
}

pub(super) fn ensure_capability_known(tx: &Tx<'_>, registry: &Registry, capability: &str) -> Result<()> {
    if registry.capability(capability).is_ok() || tx.custom_capability_exists(capability)? {
        Ok(())
    } else {
        Err(ManageError::UnknownCapability(capability.to_string()).into())
    }
}

/// A credential may use secrets of its own scope, and, as an explicit
/// choice by the operator, broader ones (a group credential built from its
/// workspace's or a global secret); never a narrower or unrelated scope.
fn scope_can_use(credential: &Scope, secret: &Scope) -> bool {
    credential.resolution_order().contains(secret)
}

fn check_host(host: &str, allowed: &[HostPattern]) -> Result<()> {
    let pattern = HostPattern::parse(host).map_err(ManageError::BadCapability)?;
    if pattern.is_wildcard() {
        return Err(ManageError::WildcardHost(host.to_string()).into());
    }
    if !allowed.iter().any(|a| a.matches(host)) {
        let allowed = allowed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        return Err(ManageError::HostNotAllowed { host: host.to_string(), allowed }.into());
    }
    Ok(())
}

pub(super) fn check_token(value: &str, extra: &str) -> std::result::Result<(), ()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok { Ok(()) } else { Err(()) }
}

/// Decrypts one secret for a check by its provider; the plaintext never
/// leaves this process.
pub(super) fn open_secret(kek: &crypto::Kek, secret: &SecretRow) -> Result<zeroize::Zeroizing<String>> {
    let binding = Binding::of(secret);
    let tampered = || VaultError::Tampered { name: secret.name.clone() };
    let plain = crypto::open(kek, &binding, &secret.sealed).map_err(|_| tampered())?;
    let text = std::str::from_utf8(&plain).map_err(|_| tampered())?;
    Ok(zeroize::Zeroizing::new(text.to_string()))
}
