//! One module per contract version a component may implement. Each turns
//! its version's types into the host's own, an older version by way of the
//! newest (0.1.0 types become 0.2.0 ones, which become the host's), and
//! [`Instance`] calls whichever version a component was built for.

mod v0_1_0;
mod v0_2_0;

use wasmtime::Store;
use wasmtime::component::InstancePre;
use zeroize::{Zeroize, Zeroizing};

use super::bindings::{v0_1_0 as old, v0_2_0 as new};
use super::manifest::ProviderManifest;
use super::request::OutgoingRequest;
use super::sandbox::StoreState;

/// A component linked for calls, as the version it implements.
pub(super) enum Pre {
    V0_1_0(old::ProviderComponentPre<StoreState>),
    V0_2_0(new::ProviderComponentPre<StoreState>),
}

/// One instance, for one call.
pub(super) enum Instance {
    V0_1_0(old::ProviderComponent),
    V0_2_0(new::ProviderComponent),
}

/// A provider's refusal of a secret value, in its own (unredacted) words.
pub(super) enum SecretRefusal {
    Empty,
    Malformed(String),
    UnknownName(String),
}

/// Why `inject` or `refresh` failed, in the provider's own words.
pub(super) enum InjectRefusal {
    MissingSecret(String),
    MalformedSecret(String),
    Unsupported(String),
}

impl std::fmt::Display for InjectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InjectRefusal::MissingSecret(p) => write!(f, "secret `{p}` was not supplied"),
            InjectRefusal::MalformedSecret(why) | InjectRefusal::Unsupported(why) => f.write_str(why),
        }
    }
}

/// Why a token endpoint's answer could not be used, in the provider's words.
pub(super) enum RefreshRefusal {
    /// The endpoint refused the stored grant: authorise again.
    Refused(String),
    /// The answer could not be read.
    Malformed(String),
}

/// Values derived by a token refresh, by placeholder, and when they expire
/// (seconds since the Unix epoch). Wiped on drop.
pub struct Token {
    pub values: Vec<(String, Zeroizing<String>)>,
    pub expires_at: Option<u64>,
}

/// A token endpoint's answer, as handed to `absorb-token`.
pub struct TokenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Zeroizing<Vec<u8>>,
}

impl Pre {
    /// The typed form of `pre` for contract `wit_version` (already checked
    /// to be supported).
    pub(super) fn new(pre: InstancePre<StoreState>, wit_version: &str) -> wasmtime::Result<Self> {
        Ok(match wit_version {
            "0.1.0" => Pre::V0_1_0(old::ProviderComponentPre::new(pre)?),
            _ => Pre::V0_2_0(new::ProviderComponentPre::new(pre)?),
        })
    }

    pub(super) fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_1_0(pre) => Instance::V0_1_0(pre.instantiate(store)?),
            Pre::V0_2_0(pre) => Instance::V0_2_0(pre.instantiate(store)?),
        })
    }
}

/// `(placeholder, value)` pairs in a version's form; the copies are wiped
/// once the call returns.
fn values<T>(secrets: &[(String, Zeroizing<String>)], make: impl Fn(String, String) -> T) -> Vec<T> {
    secrets.iter().map(|(placeholder, value)| make(placeholder.clone(), value.to_string())).collect()
}

/// A 0.1.0 `describe` answer as [`Instance::describe`] reads it.
#[cfg(feature = "fuzzing")]
pub(super) fn read_v0_1_0_manifest(raw: old::api::Manifest) -> Result<ProviderManifest, String> {
    v0_2_0::manifest(v0_1_0::manifest(raw))
}

/// A 0.2.0 `describe` answer as [`Instance::describe`] reads it.
#[cfg(feature = "fuzzing")]
pub(super) fn read_v0_2_0_manifest(raw: new::api::Manifest) -> Result<ProviderManifest, String> {
    v0_2_0::manifest(raw)
}

impl Instance {
    /// The manifest, or why it cannot be one (a host name that does not parse).
    pub(super) fn describe(
        &self,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<Result<ProviderManifest, String>> {
        let raw = match self {
            Instance::V0_1_0(c) => v0_1_0::manifest(c.aivault_provider_provider().call_describe(store)?),
            Instance::V0_2_0(c) => c.aivault_provider_provider().call_describe(store)?,
        };
        Ok(v0_2_0::manifest(raw))
    }

    pub(super) fn validate_secret(
        &self,
        store: &mut Store<StoreState>,
        name: &str,
        value: &str,
    ) -> wasmtime::Result<Result<(), SecretRefusal>> {
        Ok(match self {
            Instance::V0_1_0(c) => c
                .aivault_provider_provider()
                .call_validate_secret(store, name, value)?
                .map_err(v0_1_0::secret_refusal),
            Instance::V0_2_0(c) => c
                .aivault_provider_provider()
                .call_validate_secret(store, name, value)?
                .map_err(v0_2_0::secret_refusal),
        })
    }

    /// `inject` on `req` (its body passed only `with_body`), with `secrets`
    /// by placeholder and the host's clock.
    pub(super) fn inject(
        &self,
        store: &mut Store<StoreState>,
        req: &OutgoingRequest,
        with_body: bool,
        secrets: &[(String, Zeroizing<String>)],
        now: u64,
    ) -> wasmtime::Result<Result<OutgoingRequest, InjectRefusal>> {
        let arg = v0_2_0::request(req, with_body);
        match self {
            Instance::V0_1_0(c) => {
                let mut given =
                    values(secrets, |placeholder, value| old::api::SecretValue { placeholder, value });
                let result = c.aivault_provider_provider().call_inject(store, &v0_1_0::request(arg), &given);
                given.iter_mut().for_each(|v| v.value.zeroize());
                Ok(result?.map(|r| v0_2_0::outgoing(v0_1_0::request_back(r))).map_err(v0_1_0::inject_refusal))
            }
            Instance::V0_2_0(c) => {
                let mut given =
                    values(secrets, |placeholder, value| new::api::SecretValue { placeholder, value });
                let result = c.aivault_provider_provider().call_inject(store, &arg, &given, now);
                given.iter_mut().for_each(|v| v.value.zeroize());
                Ok(result?.map(v0_2_0::outgoing).map_err(v0_2_0::inject_refusal))
            }
        }
    }

    /// The token request for `kind`, as an outgoing request (capability
    /// empty). Contract 0.1.0 has no refresh: its kinds derive nothing.
    pub(super) fn refresh(
        &self,
        store: &mut Store<StoreState>,
        kind: &str,
        secrets: &[(String, Zeroizing<String>)],
        now: u64,
    ) -> wasmtime::Result<Result<OutgoingRequest, InjectRefusal>> {
        let Instance::V0_2_0(c) = self else {
            return Ok(Err(InjectRefusal::Unsupported("contract 0.1.0 has no token refresh".into())));
        };
        let mut given = values(secrets, |placeholder, value| new::api::SecretValue { placeholder, value });
        let result = c.aivault_provider_provider().call_refresh(store, kind, &given, now);
        given.iter_mut().for_each(|v| v.value.zeroize());
        Ok(result?.map(|r| v0_2_0::token_request(kind, r)).map_err(v0_2_0::inject_refusal))
    }

    /// What the provider reads from the token endpoint's answer.
    pub(super) fn absorb_token(
        &self,
        store: &mut Store<StoreState>,
        kind: &str,
        response: &TokenResponse,
        now: u64,
    ) -> wasmtime::Result<Result<Token, RefreshRefusal>> {
        let Instance::V0_2_0(c) = self else {
            return Ok(Err(RefreshRefusal::Malformed("contract 0.1.0 has no token refresh".into())));
        };
        let mut arg = v0_2_0::http_response(response);
        let result = c.aivault_provider_provider().call_absorb_token(store, kind, &arg, now);
        arg.body.zeroize();
        Ok(result?.map(v0_2_0::token).map_err(v0_2_0::refresh_refusal))
    }
}
