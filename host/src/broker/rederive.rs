//! What a credential may do, re-derived from its provider's *current*
//! manifest at every call, whatever the vault's rows say. Rows are
//! authenticated, but they record what was true when they were written: a
//! re-approved drop-in may have dropped a host, a kind or a capability since.
//! So the call goes ahead only if the manifest, now, agrees that
//! - the credential belongs to the capability's provider, and its kind
//!   exists and serves the capability;
//! - every secret handed to `inject` is one the kind declares, under its
//!   declared placeholder, pinned to that provider or unpinned;
//! - every host a row names (the credential's, a custom capability's) is
//!   still one the kind declares.

use std::collections::HashMap;

use crate::plugins::{CredentialKind, HostPattern, Plugin};
use crate::vault::integrity::shown;
use crate::vault::{CredentialRow, CustomCapabilityRow, SecretRow};

/// Why the rows ask for something the provider's manifest does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RederiveError {
    #[error("credential `{credential}` belongs to provider {owner}, so it cannot serve {capability}")]
    OtherProvider { credential: String, owner: String, capability: String },
    #[error(
        "provider {provider} no longer declares credential kind `{kind}`, which credential `{credential}` is; \
         delete and re-create the credential"
    )]
    KindGone { provider: String, kind: String, credential: String },
    #[error("credential kind `{kind}` of provider {provider} does not serve {capability}")]
    KindDoesNotServe { provider: String, kind: String, capability: String },
    #[error("custom capability `{capability}` belongs to credential `{owner}`, not `{credential}`")]
    NotItsCredential { capability: String, owner: String, credential: String },
    #[error(
        "credential `{credential}` holds secrets {held} but kind `{kind}` of provider {provider} takes {declared}; \
         delete and re-create the credential"
    )]
    SecretsMismatch { credential: String, provider: String, kind: String, held: String, declared: String },
    #[error("secret {secret} of credential `{credential}` is missing; delete and re-create the credential")]
    SecretMissing { secret: String, credential: String },
    #[error("secret {secret} is pinned to provider {pinned} and cannot be handed to provider {provider}")]
    PinnedElsewhere { secret: String, pinned: String, provider: String },
    #[error(
        "{row} names host `{host}`, which provider {provider} no longer declares for kind `{kind}` ({declared}); \
         delete and re-create it"
    )]
    HostWithdrawn { row: String, host: String, provider: String, kind: String, declared: String },
}

/// The grant the manifest confirms for one call.
pub struct Grant<'a> {
    pub kind: &'a CredentialKind,
    /// `(placeholder, secret)` in the kind's declared order.
    pub secrets: Vec<(String, &'a SecretRow)>,
}

/// Checks `credential` against `provider`'s current manifest for
/// `capability` (a provider capability, or `custom`).
pub fn grant<'a>(
    provider: &'a Plugin,
    capability: &str,
    custom: Option<&CustomCapabilityRow>,
    credential: &CredentialRow,
    secrets: &'a HashMap<String, SecretRow>,
) -> Result<Grant<'a>, RederiveError> {
    let manifest = provider.manifest();
    let id = provider.id();
    if credential.provider != id {
        return Err(RederiveError::OtherProvider {
            credential: shown(&credential.id),
            owner: shown(&credential.provider),
            capability: capability.to_string(),
        });
    }
    let kind = manifest.credential_kind(&credential.kind).ok_or_else(|| RederiveError::KindGone {
        provider: id.to_string(),
        kind: shown(&credential.kind),
        credential: shown(&credential.id),
    })?;
    match custom {
        Some(custom) if custom.credential_id != credential.id => {
            return Err(RederiveError::NotItsCredential {
                capability: capability.to_string(),
                owner: shown(&custom.credential_id),
                credential: shown(&credential.id),
            });
        }
        Some(custom) => {
            if let Some(host) = &custom.host {
                check_host(host, kind, id, || format!("custom capability `{}`", shown(&custom.id)))?;
            }
        }
        None if !kind.capabilities.iter().any(|c| c == capability) => {
            return Err(RederiveError::KindDoesNotServe {
                provider: id.to_string(),
                kind: kind.id.clone(),
                capability: capability.to_string(),
            });
        }
        None => {}
    }
    if let Some(host) = &credential.host {
        check_host(host, kind, id, || format!("credential `{}`", shown(&credential.id)))?;
    }

    let mut held: Vec<&str> = credential.secrets.iter().map(|(name, _)| name.as_str()).collect();
    held.sort_unstable();
    let mut declared: Vec<&str> = kind.secrets.iter().map(String::as_str).collect();
    declared.sort_unstable();
    if held != declared {
        return Err(RederiveError::SecretsMismatch {
            credential: shown(&credential.id),
            provider: id.to_string(),
            kind: kind.id.clone(),
            held: shown(&held.join(" + ")),
            declared: declared.join(" + "),
        });
    }
    let mut granted = Vec::with_capacity(kind.secrets.len());
    for name in &kind.secrets {
        let secret_id = credential.secrets.iter().find(|(n, _)| n == name).map(|(_, sid)| sid);
        let secret = secret_id.and_then(|sid| secrets.get(sid)).ok_or_else(|| {
            RederiveError::SecretMissing { secret: name.clone(), credential: shown(&credential.id) }
        })?;
        if let Some(pinned) = secret.pinned_provider.as_deref().filter(|p| *p != id) {
            return Err(RederiveError::PinnedElsewhere {
                secret: shown(&secret.name),
                pinned: shown(pinned),
                provider: id.to_string(),
            });
        }
        // The manifest is validated: every secret a kind names is declared.
        let placeholder = manifest.vault_secret(name).map(|s| s.placeholder.clone()).ok_or_else(|| {
            RederiveError::SecretMissing { secret: name.clone(), credential: shown(&credential.id) }
        })?;
        granted.push((placeholder, secret));
    }
    Ok(Grant { kind, secrets: granted })
}

fn check_host(
    host: &str,
    kind: &CredentialKind,
    provider: &str,
    row: impl FnOnce() -> String,
) -> Result<(), RederiveError> {
    if kind.hosts.iter().any(|h| h.matches(host)) {
        return Ok(());
    }
    Err(RederiveError::HostWithdrawn {
        row: row(),
        host: shown(host),
        provider: provider.to_string(),
        kind: kind.id.clone(),
        declared: kind.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    })
}

/// Whether `host` is one every pattern list allows: the call's host must be
/// in the kind's hosts *and* the capability's (and so the provider's).
pub fn host_allowed(host: &str, lists: &[&[HostPattern]]) -> bool {
    lists.iter().all(|list| list.iter().any(|p| p.matches(host)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{Runtime, SandboxLimits, builtin_components};
    use crate::vault::Scope;

    fn provider(name: &str) -> Plugin {
        let runtime = Runtime::new(SandboxLimits::default(), None).unwrap();
        let c = builtin_components().iter().find(|c| c.name == name).unwrap();
        runtime.load_builtin(c).unwrap()
    }

    fn secret(id: &str, name: &str, pinned: Option<&str>) -> SecretRow {
        SecretRow {
            id: id.into(),
            name: name.into(),
            scope: Scope::Global,
            pinned_provider: pinned.map(str::to_string),
            value_version: 1,
            sealed: Default::default(),
            kek_id: String::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
            aliases: vec![],
            attachments: vec![],
        }
    }

    fn credential(provider: &str, kind: &str, secrets: &[(&str, &str)]) -> CredentialRow {
        CredentialRow {
            id: "cred".into(),
            provider: provider.into(),
            kind: kind.into(),
            scope: Scope::Global,
            host: None,
            auto_provisioned: true,
            created_at_ms: 0,
            secrets: secrets.iter().map(|(n, id)| (n.to_string(), id.to_string())).collect(),
            capabilities: vec![],
        }
    }

    fn secrets() -> HashMap<String, SecretRow> {
        [
            secret("s-openai", "OPENAI_API_KEY", Some("openai")),
            secret("s-github", "GITHUB_TOKEN", Some("github")),
            secret("s-plain", "MY_KEY", None),
        ]
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect()
    }

    // The manifest's placeholder is what inject receives, for a secret
    // pinned to the provider or unpinned.
    #[test]
    fn grants_declared_secrets_under_their_placeholders() {
        let openai = provider("openai");
        let s = secrets();
        for secret_id in ["s-openai", "s-plain"] {
            let c = credential("openai", "api-key", &[("OPENAI_API_KEY", secret_id)]);
            let grant = grant(&openai, "openai/models", None, &c, &s).unwrap();
            assert_eq!(grant.secrets.len(), 1);
            assert_eq!((grant.secrets[0].0.as_str(), grant.secrets[0].1.id.as_str()), ("secret", secret_id));
        }
    }

    // A credential serves only its own provider's capabilities, of a kind
    // the manifest still declares and that serves the capability.
    #[test]
    fn provider_kind_and_capability_are_rederived() {
        let openai = provider("openai");
        let s = secrets();
        let github = credential("github", "default", &[("GITHUB_TOKEN", "s-github")]);
        assert!(matches!(
            grant(&openai, "openai/models", None, &github, &s),
            Err(RederiveError::OtherProvider { .. })
        ));
        let gone = credential("openai", "retired-kind", &[("OPENAI_API_KEY", "s-openai")]);
        assert!(matches!(
            grant(&openai, "openai/models", None, &gone, &s),
            Err(RederiveError::KindGone { .. })
        ));
        let api_key = credential("openai", "api-key", &[("OPENAI_API_KEY", "s-openai")]);
        let err = grant(&openai, "openai/codex-responses", None, &api_key, &s).err();
        assert!(matches!(err, Some(RederiveError::KindDoesNotServe { .. })), "{err:?}");
    }

    // Only the secrets the kind declares are handed over, each pinned to
    // this provider or to none.
    #[test]
    fn secrets_are_rederived() {
        let openai = provider("openai");
        let s = secrets();
        let extra =
            credential("openai", "api-key", &[("OPENAI_API_KEY", "s-openai"), ("GITHUB_TOKEN", "s-github")]);
        assert!(matches!(
            grant(&openai, "openai/models", None, &extra, &s),
            Err(RederiveError::SecretsMismatch { .. })
        ));
        let foreign = credential("openai", "api-key", &[("OPENAI_API_KEY", "s-github")]);
        assert!(matches!(
            grant(&openai, "openai/models", None, &foreign, &s),
            Err(RederiveError::PinnedElsewhere { .. })
        ));
        let missing = credential("openai", "api-key", &[("OPENAI_API_KEY", "s-gone")]);
        assert!(matches!(
            grant(&openai, "openai/models", None, &missing, &s),
            Err(RederiveError::SecretMissing { .. })
        ));
    }

    // Hosts named by rows must still be the kind's; a custom capability is
    // served only by its own credential.
    #[test]
    fn hosts_and_custom_owners_are_rederived() {
        let openai = provider("openai");
        let s = secrets();
        let mut c = credential("openai", "api-key", &[("OPENAI_API_KEY", "s-openai")]);
        c.host = Some("api.github.com".into());
        assert!(matches!(
            grant(&openai, "openai/models", None, &c, &s),
            Err(RederiveError::HostWithdrawn { .. })
        ));
        c.host = None;
        let custom = CustomCapabilityRow {
            id: "openai/mine".into(),
            credential_id: "someone-else".into(),
            description: String::new(),
            methods: vec!["GET".into()],
            path_prefixes: vec!["/v1".into()],
            host: None,
            created_at_ms: 0,
        };
        assert!(matches!(
            grant(&openai, "openai/mine", Some(&custom), &c, &s),
            Err(RederiveError::NotItsCredential { .. })
        ));
        let custom = CustomCapabilityRow {
            credential_id: "cred".into(),
            host: Some("evil.example.com".into()),
            ..custom
        };
        assert!(matches!(
            grant(&openai, "openai/mine", Some(&custom), &c, &s),
            Err(RederiveError::HostWithdrawn { .. })
        ));
        let custom = CustomCapabilityRow { host: None, ..custom };
        assert!(grant(&openai, "openai/mine", Some(&custom), &c, &s).is_ok());
    }
}
