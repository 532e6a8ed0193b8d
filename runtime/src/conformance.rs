//! The conformance kit behind `aivault provider test`: what a component
//! author runs before shipping, one named check at a time.

use std::collections::HashMap;

use zeroize::Zeroizing;

use super::{Origin, OutgoingRequest, Plugin, PluginError, Runtime};

/// One check and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    /// `None` when it passed, else why not.
    pub failure: Option<String>,
}

/// A share of the sandbox budget a well-behaved call stays under.
const FUEL_SHARE: u64 = 10;
const MEMORY_SHARE: usize = 2;

/// Runs every check against the component `bytes`. `secrets` gives real-
/// shaped values by vault name; others get a placeholder value.
pub fn run(runtime: &Runtime, origin: Origin, bytes: &[u8], secrets: &HashMap<String, String>) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |name: String, failure: Option<String>| checks.push(Check { name, failure });
    let plugin = match runtime.load_fresh(origin.clone(), bytes) {
        Ok(plugin) => plugin,
        Err(e) => {
            let name = match &e {
                PluginError::InvalidManifest { .. } => "manifest is well-formed",
                PluginError::UnsupportedWitVersion { .. } | PluginError::NotAProvider { .. } => {
                    "implements a supported contract"
                }
                _ => "loads in the sandbox",
            };
            check(name.to_string(), Some(e.to_string()));
            return checks;
        }
    };
    let manifest = plugin.manifest().clone();
    check(format!("loads (aivault:provider@{})", plugin.wit_version()), None);
    check("manifest is well-formed".into(), manifest.validate().err());
    let unprefixed = manifest.capabilities.iter().find(|c| !c.id.starts_with(&format!("{}/", manifest.id)));
    check(
        format!("capability ids start with `{}/`", manifest.id),
        unprefixed.map(|c| format!("`{}` does not", c.id)),
    );
    let incomplete =
        manifest.capabilities.iter().find(|c| c.methods.is_empty() || c.path_prefixes.is_empty());
    check(
        "every capability has methods and path prefixes".into(),
        incomplete.map(|c| format!("`{}` lacks some", c.id)),
    );
    let again = runtime.load_fresh(origin, bytes).map(|p| p.manifest().clone());
    check(
        "describe is deterministic".into(),
        match again {
            Ok(m) if m == manifest => None,
            Ok(_) => Some("two calls returned different manifests".into()),
            Err(e) => Some(e.to_string()),
        },
    );
    for secret in &manifest.vault_secrets {
        let failure = match plugin.validate_secret(&secret.name, "") {
            Err(PluginError::SecretRejected { .. }) => None,
            Err(e) => Some(e.to_string()),
            Ok(()) => Some("it accepted an empty value".into()),
        };
        check(format!("validate-secret refuses an empty {}", secret.name), failure);
    }
    for kind in &manifest.credential_kinds {
        for (name, failure) in inject_checks(&plugin, kind, secrets) {
            check(name, failure);
        }
    }
    checks
}

fn inject_checks(
    plugin: &Plugin,
    kind: &super::CredentialKind,
    given: &HashMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let manifest = plugin.manifest();
    let Some(capability) = kind.capabilities.first().and_then(|id| manifest.capability(id)) else {
        return vec![(
            format!("credential kind {} serves a capability", kind.id),
            Some("it serves none".into()),
        )];
    };
    let host = match capability.hosts.iter().find(|h| !h.is_wildcard()) {
        Some(h) => h.to_string(),
        None => format!("tenant.{}", capability.hosts[0].as_str().trim_start_matches("*.")),
    };
    let request = OutgoingRequest {
        capability: capability.id.clone(),
        credential_kind: kind.id.clone(),
        method: capability.methods[0].clone(),
        host,
        path: format!("{}/conformance", capability.path_prefixes[0].trim_end_matches('/')),
        query: vec![("caller".into(), "kept".into())],
        headers: vec![("x-conformance".into(), "kept".into())],
        body: manifest.needs_body.then(|| b"{}".to_vec()),
    };
    let placeholder_value = |placeholder: &str| format!("aivault-conformance-{placeholder}-0123456789abcdef");
    let mut secrets: Vec<(String, Zeroizing<String>)> = kind
        .secrets
        .iter()
        .filter_map(|name| manifest.vault_secret(name))
        .map(|s| {
            let value = given.get(&s.name).cloned().unwrap_or_else(|| placeholder_value(&s.placeholder));
            (s.placeholder.clone(), Zeroizing::new(value))
        })
        .collect();
    // What a token refresh would have derived, as the host hands it over.
    secrets.extend(kind.derived.iter().map(|d| (d.clone(), Zeroizing::new(placeholder_value(d)))));
    let label = |what: &str| format!("inject ({}, {}) {what}", kind.id, capability.id);
    let now = super::runtime::unix_now();
    let (first, stats) = plugin.measured_inject(&request, &secrets, &kind.hosts, now);
    let first = match first {
        Ok(r) => r,
        Err(e) => {
            let hint =
                if given.is_empty() { " (pass --secret NAME=VALUE with a realistic value)" } else { "" };
            return vec![(label("succeeds and keeps method, host and path"), Some(format!("{e}{hint}")))];
        }
    };
    let (second, _) = plugin.measured_inject(&request, &secrets, &kind.hosts, now);
    let limits = plugin.limits();
    let mut checks = vec![(label("succeeds and keeps method, host and path"), None)];
    checks.push((
        label("is deterministic"),
        match second {
            Ok(r) if r == first => None,
            Ok(_) => Some("two calls with the same input returned different requests".into()),
            Err(e) => Some(e.to_string()),
        },
    ));
    let kept = request.headers.iter().all(|h| first.headers.contains(h))
        && request.query.iter().all(|q| first.query.contains(q));
    checks.push((
        label("keeps the caller's headers and query"),
        (!kept).then(|| "it replaced or removed one".into()),
    ));
    let over_fuel = stats.fuel_used > limits.fuel / FUEL_SHARE;
    let over_memory = stats.peak_memory_bytes > limits.memory_bytes / MEMORY_SHARE;
    checks.push((
        label(&format!("stays within bounds ({} fuel, {} KiB)", stats.fuel_used, stats.peak_memory_bytes >> 10)),
        (over_fuel || over_memory).then(|| {
            format!(
                "a call should use under 1/{FUEL_SHARE} of the fuel budget ({}) and 1/{MEMORY_SHARE} of the memory cap ({} MiB)",
                limits.fuel,
                limits.memory_bytes >> 20
            )
        }),
    ));
    checks
}
