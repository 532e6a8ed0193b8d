//! Provider components an operator drops into the providers directory.
//!
//! A file is used only once approved, and only while its SHA-256 is the one
//! approved: a new or changed file is never loaded by ordinary commands (it
//! is not even compiled). A dropped-in provider may not claim an id, vault
//! secret name or host that a built-in or another enabled provider claims.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::plugins::{Origin, Plugin, ProviderManifest, Runtime};
use crate::vault::ApprovalRow;

/// Where a dropped-in component stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Status {
    /// Approved, unchanged and valid: loaded by every command.
    Enabled,
    /// Approved but switched off by the operator.
    Disabled,
    /// Never approved.
    Pending,
    /// Changed since approval; says how.
    Changed(String),
    /// Cannot be used; says why.
    Invalid(String),
    /// Approved, but its file is gone.
    Missing,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
            Status::Pending => "pending",
            Status::Changed(_) => "changed",
            Status::Invalid(_) => "invalid",
            Status::Missing => "missing",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Status::Changed(r) | Status::Invalid(r) => Some(r),
            _ => None,
        }
    }
}

/// A `.wasm` file in the providers directory.
pub struct DropFile {
    pub path: PathBuf,
    pub file_name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Every `.wasm` file in `dir`, by name. A missing directory has none.
pub fn scan(dir: &Path) -> std::io::Result<Vec<DropFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(read(&path)?);
        }
    }
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(files)
}

/// Reads one component file and its digest.
pub fn read(path: &Path) -> std::io::Result<DropFile> {
    let bytes = std::fs::read(path)?;
    Ok(DropFile {
        path: path.to_path_buf(),
        file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
    })
}

/// Compiles and describes a file (for `provider list/inspect/install`).
pub fn load(runtime: &Runtime, file: &DropFile) -> Result<Plugin, String> {
    runtime.load(Origin::File(file.path.clone()), &file.bytes).map_err(|e| e.to_string())
}

/// Why `manifest` may not sit beside `others`: a shared id, vault secret
/// name or host.
pub fn conflict(manifest: &ProviderManifest, others: &[(&ProviderManifest, bool)]) -> Option<String> {
    for (other, builtin) in others {
        let whose = if *builtin {
            format!("built-in provider {}", other.id)
        } else {
            format!("provider {}", other.id)
        };
        if other.id == manifest.id {
            return Some(format!("its id `{}` is taken by {whose}", manifest.id));
        }
        if let Some(secret) = manifest.vault_secrets.iter().find(|s| other.vault_secret(&s.name).is_some()) {
            return Some(format!("it claims secret {}, which {whose} owns", secret.name));
        }
        for host in &manifest.hosts {
            if let Some(theirs) = other.hosts.iter().find(|h| host.within(h) || h.within(host)) {
                return Some(format!("it claims host {host}, which overlaps {theirs} of {whose}"));
            }
        }
    }
    None
}

/// How a changed file's manifest differs from the approved one: what it
/// asks for beyond the approval (hosts, secret names), if anything. Only
/// for an operator reviewing the file (`provider enable`): finding out
/// means compiling and running it.
pub fn asks_for_more(approved_json: &str, now: &ProviderManifest) -> Vec<String> {
    let approved: serde_json::Value = serde_json::from_str(approved_json).unwrap_or_default();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let old_hosts = strings(&approved["hosts"]);
    let old_secrets: Vec<String> = approved["vault_secrets"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut more = Vec::new();
    for host in &now.hosts {
        if !old_hosts.iter().any(|h| h == host.as_str()) {
            more.push(format!("host {host}"));
        }
    }
    for secret in &now.vault_secrets {
        if !old_secrets.contains(&secret.name) {
            more.push(format!("secret {}", secret.name));
        }
    }
    more
}

/// The approval of the current file contents.
pub fn approval_for(file: &DropFile, manifest: &ProviderManifest, enabled: bool) -> ApprovalRow {
    ApprovalRow {
        provider_id: manifest.id.clone(),
        file_name: file.file_name.clone(),
        sha256: file.sha256.clone(),
        manifest: serde_json::to_string(manifest).expect("a manifest serialises"),
        enabled,
        approved_at_ms: crate::vault::now_ms(),
    }
}

/// The message for a changed file, from the digests alone: the file itself
/// is not compiled until an operator reviews it.
pub fn changed_reason(approval: &ApprovalRow, file: &DropFile) -> String {
    format!(
        "its contents changed since approval (approved sha256 {}…, now {}…); review it with \
         `aivault provider inspect {}` and re-approve with `aivault provider enable {}`",
        short(&approval.sha256),
        short(&file.sha256),
        file.path.display(),
        approval.provider_id
    )
}

/// The first 12 hex digits of a digest (all of it, if a stored one is shorter).
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{HostPattern, VaultSecret};

    fn manifest(hosts: &[&str], secrets: &[&str]) -> ProviderManifest {
        ProviderManifest {
            id: "acme".into(),
            version: "1.0.0".into(),
            description: String::new(),
            hosts: hosts.iter().map(|h| HostPattern::parse(h).unwrap()).collect(),
            vault_secrets: secrets
                .iter()
                .map(|s| VaultSecret {
                    name: s.to_string(),
                    placeholder: s.to_lowercase(),
                    description: String::new(),
                })
                .collect(),
            credential_kinds: vec![],
            capabilities: vec![],
            needs_body: false,
        }
    }

    // A new version asking for another host or secret is named as such.
    #[test]
    fn growth_beyond_approval_is_listed() {
        let approved = serde_json::to_string(&manifest(&["api.acme.com"], &["ACME_KEY"])).unwrap();
        assert!(asks_for_more(&approved, &manifest(&["api.acme.com"], &["ACME_KEY"])).is_empty());
        assert_eq!(
            asks_for_more(
                &approved,
                &manifest(&["api.acme.com", "evil.example.com"], &["ACME_KEY", "OPENAI_API_KEY"])
            ),
            vec!["host evil.example.com", "secret OPENAI_API_KEY"]
        );
    }

    // Overlapping hosts (a wildcard over another's host), shared secret names
    // and ids all conflict; unrelated providers do not.
    #[test]
    fn conflicts_are_found() {
        let acme = manifest(&["*.acme.com"], &["ACME_KEY"]);
        let mut other = manifest(&["api.acme.com"], &["OTHER_KEY"]);
        other.id = "other".into();
        assert!(
            conflict(&acme, &[(&other, false)]).unwrap().contains("overlaps api.acme.com of provider other")
        );
        let mut thief = manifest(&["api.thief.com"], &["ACME_KEY"]);
        thief.id = "thief".into();
        assert!(conflict(&thief, &[(&acme, true)]).unwrap().contains("built-in provider acme"));
        let mut fine = manifest(&["api.fine.com"], &["FINE_KEY"]);
        fine.id = "fine".into();
        assert_eq!(conflict(&fine, &[(&acme, true), (&other, false)]), None);
    }

    // A changed file's reason comes from the two digests alone, and says how to review and re-approve.
    #[test]
    fn changed_reason_needs_no_compiling() {
        let file = DropFile {
            path: PathBuf::from("/vault/providers/acme.wasm"),
            file_name: "acme.wasm".into(),
            bytes: b"not even a component".to_vec(),
            sha256: "b".repeat(64),
        };
        let approval = approval_for(&file, &manifest(&["api.acme.com"], &["ACME_KEY"]), true);
        let approval = ApprovalRow { sha256: "a".repeat(64), ..approval };
        assert_eq!(
            changed_reason(&approval, &file),
            format!(
                "its contents changed since approval (approved sha256 {}…, now {}…); review it with \
                 `aivault provider inspect /vault/providers/acme.wasm` and re-approve with \
                 `aivault provider enable acme`",
                "a".repeat(12),
                "b".repeat(12)
            )
        );
        assert_eq!(short("abc"), "abc");
    }
}
