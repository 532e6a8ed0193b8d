//! `aivault:provider@0.2.0`, the newest contract: its types to the host's.

use zeroize::Zeroizing;

use super::super::bindings::v0_2_0::api;
use super::super::manifest::{Capability, CredentialKind, HostPattern, ProviderManifest, VaultSecret};
use super::super::request::OutgoingRequest;
use super::{InjectRefusal, RefreshRefusal, SecretRefusal, Token, TokenResponse};

/// The host's manifest, or why a host name in it does not parse.
pub(super) fn manifest(m: api::Manifest) -> Result<ProviderManifest, String> {
    let hosts = |list: Vec<String>| -> Result<Vec<HostPattern>, String> {
        list.iter().map(|h| HostPattern::parse(h)).collect()
    };
    Ok(ProviderManifest {
        id: m.id,
        version: m.version,
        description: m.description,
        hosts: hosts(m.hosts)?,
        vault_secrets: m
            .vault_secrets
            .into_iter()
            .map(|s| VaultSecret { name: s.name, placeholder: s.placeholder, description: s.description })
            .collect(),
        credential_kinds: m
            .credential_kinds
            .into_iter()
            .map(|k| {
                Ok(CredentialKind {
                    id: k.id,
                    secrets: k.secrets,
                    hosts: hosts(k.hosts)?,
                    capabilities: k.capabilities,
                    auth_summary: k.auth_summary,
                    derived: k.derived,
                })
            })
            .collect::<Result<_, String>>()?,
        capabilities: m
            .capabilities
            .into_iter()
            .map(|c| {
                Ok(Capability {
                    id: c.id,
                    description: c.description,
                    methods: c.methods,
                    path_prefixes: c.path_prefixes,
                    hosts: hosts(c.hosts)?,
                })
            })
            .collect::<Result<_, String>>()?,
        needs_body: m.needs_body,
    })
}

fn query(pairs: &[(String, String)]) -> Vec<api::QueryParam> {
    pairs.iter().map(|(name, value)| api::QueryParam { name: name.clone(), value: value.clone() }).collect()
}

fn headers(pairs: &[(String, String)]) -> Vec<api::Header> {
    pairs.iter().map(|(name, value)| api::Header { name: name.clone(), value: value.clone() }).collect()
}

/// `req` as `inject` receives it; its body only `with_body`.
pub(super) fn request(req: &OutgoingRequest, with_body: bool) -> api::Request {
    api::Request {
        capability: req.capability.clone(),
        credential_kind: req.credential_kind.clone(),
        method: req.method.clone(),
        host: req.host.clone(),
        path: req.path.clone(),
        query: query(&req.query),
        headers: headers(&req.headers),
        body: if with_body { req.body.clone() } else { None },
    }
}

/// What `inject` returned, moved (not copied) into the host's type, which
/// wipes itself on drop.
pub(super) fn outgoing(mut r: api::Request) -> OutgoingRequest {
    OutgoingRequest {
        capability: std::mem::take(&mut r.capability),
        credential_kind: std::mem::take(&mut r.credential_kind),
        method: std::mem::take(&mut r.method),
        host: std::mem::take(&mut r.host),
        path: std::mem::take(&mut r.path),
        query: r.query.drain(..).map(|q| (q.name, q.value)).collect(),
        headers: r.headers.drain(..).map(|h| (h.name, h.value)).collect(),
        body: r.body.take(),
    }
}

/// A token request as an outgoing request of credential kind `kind`.
pub(super) fn token_request(kind: &str, mut r: api::HttpRequest) -> OutgoingRequest {
    OutgoingRequest {
        capability: String::new(),
        credential_kind: kind.to_string(),
        method: std::mem::take(&mut r.method),
        host: std::mem::take(&mut r.host),
        path: std::mem::take(&mut r.path),
        query: r.query.drain(..).map(|q| (q.name, q.value)).collect(),
        headers: r.headers.drain(..).map(|h| (h.name, h.value)).collect(),
        body: r.body.take(),
    }
}

pub(super) fn http_response(response: &TokenResponse) -> api::HttpResponse {
    api::HttpResponse {
        status: response.status,
        headers: headers(&response.headers),
        body: response.body.to_vec(),
    }
}

pub(super) fn token(t: api::Token) -> Token {
    Token {
        values: t.values.into_iter().map(|v| (v.placeholder, Zeroizing::new(v.value))).collect(),
        expires_at: t.expires_at,
    }
}

pub(super) fn secret_refusal(e: api::SecretError) -> SecretRefusal {
    match e {
        api::SecretError::Empty => SecretRefusal::Empty,
        api::SecretError::Malformed(why) => SecretRefusal::Malformed(why),
        api::SecretError::UnknownName(name) => SecretRefusal::UnknownName(name),
    }
}

pub(super) fn inject_refusal(e: api::InjectError) -> InjectRefusal {
    match e {
        api::InjectError::MissingSecret(p) => InjectRefusal::MissingSecret(p),
        api::InjectError::MalformedSecret(why) => InjectRefusal::MalformedSecret(why),
        api::InjectError::Unsupported(why) => InjectRefusal::Unsupported(why),
    }
}

pub(super) fn refresh_refusal(e: api::RefreshError) -> RefreshRefusal {
    match e {
        api::RefreshError::Refused(why) => RefreshRefusal::Refused(why),
        api::RefreshError::Malformed(why) => RefreshRefusal::Malformed(why),
    }
}
