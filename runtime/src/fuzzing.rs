//! Entry points for the fuzz targets under `fuzz/` (feature `fuzzing`; not
//! an API). A component's `describe` answer is built from the fuzzer's
//! bytes in either contract version's types and read exactly as a loaded
//! component's is: converted by the adapter, then validated.

use arbitrary::{Result, Unstructured};

use super::adapter;
use super::bindings::{v0_1_0::api as old, v0_2_0::api as new};
use super::manifest::ProviderManifest;

/// Strings a manifest is made of, so the fuzzer reaches the rules past the
/// first identifier check; any other string is possible too.
const WORDS: &[&str] = &[
    "openai",
    "openai/models",
    "openai/chat",
    "api.openai.com",
    "*.openai.com",
    "*.com",
    "*",
    "localhost",
    "127.0.0.1",
    "OPENAI_API_KEY",
    "secret",
    "token",
    "api-key",
    "oauth",
    "GET",
    "POST",
    "get",
    "/v1/models",
    "/v1/",
    "/",
    "/v1/../x",
    "1.0.0",
    "Bearer header",
    "",
];

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3, 4)? { Ok(u.choose(WORDS)?.to_string()) } else { u.arbitrary() }
}

fn texts(u: &mut Unstructured<'_>) -> Result<Vec<String>> {
    list(u, text)
}

fn list<T>(u: &mut Unstructured<'_>, item: impl Fn(&mut Unstructured<'_>) -> Result<T>) -> Result<Vec<T>> {
    let len = u.int_in_range(0..=4)?;
    (0..len).map(|_| item(u)).collect()
}

/// A 0.1.0 `describe` answer made of `u`, as the host reads it.
pub fn manifest_v0_1_0(u: &mut Unstructured<'_>) -> Result<std::result::Result<ProviderManifest, String>> {
    let raw = old::Manifest {
        id: text(u)?,
        version: text(u)?,
        description: text(u)?,
        hosts: texts(u)?,
        vault_secrets: list(u, |u| {
            Ok(old::VaultSecret { name: text(u)?, placeholder: text(u)?, description: text(u)? })
        })?,
        credential_kinds: list(u, |u| {
            Ok(old::CredentialKind {
                id: text(u)?,
                secrets: texts(u)?,
                hosts: texts(u)?,
                capabilities: texts(u)?,
                auth_summary: text(u)?,
            })
        })?,
        capabilities: list(u, |u| {
            Ok(old::Capability {
                id: text(u)?,
                description: text(u)?,
                methods: texts(u)?,
                path_prefixes: texts(u)?,
                hosts: texts(u)?,
            })
        })?,
        needs_body: u.arbitrary()?,
    };
    Ok(adapter::read_v0_1_0_manifest(raw))
}

/// A 0.2.0 `describe` answer made of `u`, as the host reads it.
pub fn manifest_v0_2_0(u: &mut Unstructured<'_>) -> Result<std::result::Result<ProviderManifest, String>> {
    let raw = new::Manifest {
        id: text(u)?,
        version: text(u)?,
        description: text(u)?,
        hosts: texts(u)?,
        vault_secrets: list(u, |u| {
            Ok(new::VaultSecret { name: text(u)?, placeholder: text(u)?, description: text(u)? })
        })?,
        credential_kinds: list(u, |u| {
            Ok(new::CredentialKind {
                id: text(u)?,
                secrets: texts(u)?,
                hosts: texts(u)?,
                capabilities: texts(u)?,
                auth_summary: text(u)?,
                derived: texts(u)?,
            })
        })?,
        capabilities: list(u, |u| {
            Ok(new::Capability {
                id: text(u)?,
                description: text(u)?,
                methods: texts(u)?,
                path_prefixes: texts(u)?,
                hosts: texts(u)?,
            })
        })?,
        needs_body: u.arbitrary()?,
    };
    Ok(adapter::read_v0_2_0_manifest(raw))
}
