//! Glue between the WIT bindings and the SDK's own types. Used only by
//! [`crate::export_provider!`]; not part of the public API.

use crate::{InjectError, Provider, Request, SecretError, Secrets, validate};

pub use wit_bindgen;

/// Bindings for the contract this SDK builds (see [`crate::WIT_VERSION`]).
#[cfg(not(feature = "contract-0-1-0"))]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/0.2.0",
        world: "aivault:provider/provider-component@0.2.0",
        pub_export_macro: true,
        export_macro_name: "__export_provider_component",
        default_bindings_module: "::aivault_sdk::__private::bindings",
        runtime_path: "::aivault_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings for the frozen contract 0.1.0.
#[cfg(feature = "contract-0-1-0")]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "aivault:provider/provider-component@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_provider_component",
        default_bindings_module: "::aivault_sdk::__private::bindings",
        runtime_path: "::aivault_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::exports::aivault::provider::provider as wit;

pub use wit::{
    Guest, InjectError as WitInjectError, Manifest as WitManifest, Request as WitRequest,
    SecretError as WitSecretError, SecretValue as WitSecretValue,
};
#[cfg(not(feature = "contract-0-1-0"))]
pub use wit::{
    HttpRequest as WitHttpRequest, HttpResponse as WitHttpResponse, RefreshError as WitRefreshError,
    Token as WitToken,
};

/// Replaces std's panic hook, which would print to stderr: the sandbox grants
/// no stderr, so the print itself would trap and hide the real cause. With
/// the hook silenced, a panic aborts and the host reports a panic.
fn silence_panic_output() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// `describe`, converted to its WIT form.
pub fn describe<P: Provider>() -> WitManifest {
    silence_panic_output();
    P::describe().into_wit()
}

/// `validate-secret`: refuses undeclared names and blank values before the
/// provider's own check runs, so every provider gets those for free.
pub fn validate_secret<P: Provider>(name: String, value: String) -> Result<(), WitSecretError> {
    silence_panic_output();
    let value = zeroize::Zeroizing::new(value);
    let check = || {
        if !P::describe().declares_secret(&name) {
            return Err(SecretError::UnknownName(name.clone()));
        }
        validate::not_blank(&value)?;
        P::validate_secret(&name, &value)
    };
    check().map_err(SecretError::into_wit)
}

/// `inject`, with conversions on both sides; `now` is 0 under contract 0.1.0.
pub fn inject<P: Provider>(
    req: WitRequest,
    secrets: Vec<WitSecretValue>,
    now: u64,
) -> Result<WitRequest, WitInjectError> {
    silence_panic_output();
    let secrets = Secrets::from_pairs(secrets.into_iter().map(|s| (s.placeholder, s.value)));
    let mut req = Request::from_wit(req);
    req.now = now;
    P::inject(req, &secrets).map(Request::into_wit).map_err(InjectError::into_wit)
}

/// `refresh`, with conversions on both sides.
#[cfg(not(feature = "contract-0-1-0"))]
pub fn refresh<P: Provider>(
    kind: String,
    secrets: Vec<WitSecretValue>,
    now: u64,
) -> Result<WitHttpRequest, WitInjectError> {
    silence_panic_output();
    let secrets = Secrets::from_pairs(secrets.into_iter().map(|s| (s.placeholder, s.value)));
    let request = P::refresh(&kind, &secrets, now).map_err(InjectError::into_wit)?;
    Ok(WitHttpRequest {
        method: request.method,
        host: request.host,
        path: request.path,
        query: request.query.into_iter().map(|(name, value)| wit::QueryParam { name, value }).collect(),
        headers: request.headers.into_iter().map(|(name, value)| wit::Header { name, value }).collect(),
        body: request.body,
    })
}

/// `absorb-token`, with conversions on both sides.
#[cfg(not(feature = "contract-0-1-0"))]
pub fn absorb_token<P: Provider>(
    kind: String,
    response: WitHttpResponse,
    now: u64,
) -> Result<WitToken, WitRefreshError> {
    silence_panic_output();
    let response = crate::HttpResponse {
        status: response.status,
        headers: response.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: zeroize::Zeroizing::new(response.body),
    };
    match P::absorb_token(&kind, &response, now) {
        Ok(token) => Ok(WitToken {
            values: token
                .values
                .into_iter()
                .map(|(placeholder, value)| WitSecretValue { placeholder, value: value.to_string() })
                .collect(),
            expires_at: token.expires_at,
        }),
        Err(crate::RefreshError::Refused(why)) => Err(WitRefreshError::Refused(why)),
        Err(crate::RefreshError::Malformed(why)) => Err(WitRefreshError::Malformed(why)),
    }
}

impl Request {
    fn from_wit(r: WitRequest) -> Self {
        Request {
            capability: r.capability,
            credential_kind: r.credential_kind,
            method: r.method,
            host: r.host,
            path: r.path,
            query: r.query.into_iter().map(|q| (q.name, q.value)).collect(),
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            now: 0,
        }
    }

    fn into_wit(self) -> WitRequest {
        WitRequest {
            capability: self.capability,
            credential_kind: self.credential_kind,
            method: self.method,
            host: self.host,
            path: self.path,
            query: self.query.into_iter().map(|(name, value)| wit::QueryParam { name, value }).collect(),
            headers: self.headers.into_iter().map(|(name, value)| wit::Header { name, value }).collect(),
            body: self.body,
        }
    }
}

impl SecretError {
    fn into_wit(self) -> WitSecretError {
        match self {
            SecretError::Empty => WitSecretError::Empty,
            SecretError::Malformed(m) => WitSecretError::Malformed(m),
            SecretError::UnknownName(n) => WitSecretError::UnknownName(n),
        }
    }
}

impl InjectError {
    fn into_wit(self) -> WitInjectError {
        match self {
            InjectError::MissingSecret(p) => WitInjectError::MissingSecret(p),
            InjectError::MalformedSecret(m) => WitInjectError::MalformedSecret(m),
            InjectError::Unsupported(m) => WitInjectError::Unsupported(m),
        }
    }
}

impl crate::Manifest {
    fn into_wit(self) -> WitManifest {
        let resolved = self.resolve();
        WitManifest {
            id: resolved.id,
            version: resolved.version,
            description: resolved.description,
            hosts: resolved.hosts,
            vault_secrets: resolved
                .secrets
                .into_iter()
                .map(|s| wit::VaultSecret {
                    name: s.name,
                    placeholder: s.placeholder,
                    description: s.description,
                })
                .collect(),
            credential_kinds: resolved
                .kinds
                .into_iter()
                .map(|k| wit::CredentialKind {
                    id: k.id,
                    secrets: k.secrets,
                    hosts: k.hosts,
                    capabilities: k.capabilities,
                    auth_summary: k.auth_summary,
                    #[cfg(not(feature = "contract-0-1-0"))]
                    derived: k.derived,
                })
                .collect(),
            capabilities: resolved
                .capabilities
                .into_iter()
                .map(|c| wit::Capability {
                    id: c.id,
                    description: c.description,
                    methods: c.methods,
                    path_prefixes: c.prefixes,
                    hosts: c.hosts,
                })
                .collect(),
            needs_body: resolved.needs_body,
        }
    }
}
