//! `aivault:provider@0.1.0` (frozen): its types to 0.2.0's and back. A 0.1.0
//! kind derives nothing, and 0.1.0's `inject` takes no clock.

use super::super::bindings::{v0_1_0::api as old, v0_2_0::api as new};
use super::{InjectRefusal, SecretRefusal};

pub(super) fn manifest(m: old::Manifest) -> new::Manifest {
    new::Manifest {
        id: m.id,
        version: m.version,
        description: m.description,
        hosts: m.hosts,
        vault_secrets: m
            .vault_secrets
            .into_iter()
            .map(|s| new::VaultSecret {
                name: s.name,
                placeholder: s.placeholder,
                description: s.description,
            })
            .collect(),
        credential_kinds: m
            .credential_kinds
            .into_iter()
            .map(|k| new::CredentialKind {
                id: k.id,
                secrets: k.secrets,
                hosts: k.hosts,
                capabilities: k.capabilities,
                auth_summary: k.auth_summary,
                derived: Vec::new(),
            })
            .collect(),
        capabilities: m
            .capabilities
            .into_iter()
            .map(|c| new::Capability {
                id: c.id,
                description: c.description,
                methods: c.methods,
                path_prefixes: c.path_prefixes,
                hosts: c.hosts,
            })
            .collect(),
        needs_body: m.needs_body,
    }
}

pub(super) fn request(r: new::Request) -> old::Request {
    old::Request {
        capability: r.capability,
        credential_kind: r.credential_kind,
        method: r.method,
        host: r.host,
        path: r.path,
        query: r.query.into_iter().map(|q| old::QueryParam { name: q.name, value: q.value }).collect(),
        headers: r.headers.into_iter().map(|h| old::Header { name: h.name, value: h.value }).collect(),
        body: r.body,
    }
}

pub(super) fn request_back(r: old::Request) -> new::Request {
    new::Request {
        capability: r.capability,
        credential_kind: r.credential_kind,
        method: r.method,
        host: r.host,
        path: r.path,
        query: r.query.into_iter().map(|q| new::QueryParam { name: q.name, value: q.value }).collect(),
        headers: r.headers.into_iter().map(|h| new::Header { name: h.name, value: h.value }).collect(),
        body: r.body,
    }
}

pub(super) fn secret_refusal(e: old::SecretError) -> SecretRefusal {
    match e {
        old::SecretError::Empty => SecretRefusal::Empty,
        old::SecretError::Malformed(why) => SecretRefusal::Malformed(why),
        old::SecretError::UnknownName(name) => SecretRefusal::UnknownName(name),
    }
}

pub(super) fn inject_refusal(e: old::InjectError) -> InjectRefusal {
    match e {
        old::InjectError::MissingSecret(p) => InjectRefusal::MissingSecret(p),
        old::InjectError::MalformedSecret(why) => InjectRefusal::MalformedSecret(why),
        old::InjectError::Unsupported(why) => InjectRefusal::Unsupported(why),
    }
}
