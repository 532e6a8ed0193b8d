//! Why an invocation was refused or failed, and which of those are
//! refusals (audited as `invoke.denied`) rather than failures.

use super::{PathError, RederiveError, ResolveError};
use crate::plugins::PluginError;
use crate::registry::RegistryError;
use crate::vault::{ScopeError, VaultError};

/// Why an invocation was refused or failed. No variant carries a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error(transparent)]
    Resolve(Box<ResolveError>),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("{capability} allows {methods}; say which (--method, or `method` in a request envelope)")]
    MethodRequired { capability: String, methods: String },
    #[error("{capability} does not allow {method} (it allows {methods})")]
    MethodNotAllowed { capability: String, method: String, methods: String },
    #[error(
        "{capability} covers several paths ({prefixes}); say which (--path, or `path` in a request envelope)"
    )]
    PathRequired { capability: String, prefixes: String },
    #[error("path {path} is outside {capability} (allowed prefixes: {prefixes})")]
    PathNotAllowed { capability: String, path: String, prefixes: String },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(
        "header `{0}` carries credentials; aivault adds authentication itself, so callers may not send it"
    )]
    AuthHeader(String),
    #[error("header `{0}` is set by the HTTP client; callers may not send it")]
    ClientHeader(String),
    #[error("header `{0}` could re-route or re-method the request upstream; callers may not send it")]
    RoutingHeader(String),
    #[error("header `{0}` is not a valid HTTP header")]
    BadHeader(String),
    #[error("{provider} sets `{name}` itself; remove it from the request")]
    ProviderOwned { provider: String, name: String },
    #[error(
        "{capability} needs a credential with a concrete host (its hosts are {hosts}); create one with --host"
    )]
    NoHost { capability: String, hosts: String },
    #[error("consumer {consumer} is not bound to {capability} here; `aivault capability bind` grants it")]
    NotBound { consumer: String, capability: String },
    #[error("{capability} is limited to {limit} calls per minute; try again shortly")]
    RateLimited { capability: String, limit: i64 },
    #[error("the request body is {size} bytes; {capability} allows at most {limit}")]
    RequestTooLarge { capability: String, size: usize, limit: i64 },
    #[error("the response is larger than {limit} bytes, the limit for {capability}; it was discarded")]
    ResponseTooLarge { capability: String, limit: u64 },
    #[error("{0}")]
    Upstream(String),
    #[error(transparent)]
    Rederive(Box<RederiveError>),
    #[error("custom capability `{capability}` belongs to credential `{credential}`, which no longer exists")]
    OrphanedCapability { capability: String, credential: String },
    #[error(
        "custom capability `{capability}` is not in the namespace of provider {provider} (`{provider}/…`)"
    )]
    ForeignCustomCapability { capability: String, provider: String },
    #[error("{error} (and this refusal could not be written to the audit log: {audit})")]
    Unaudited { error: Box<BrokerError>, audit: Box<VaultError> },
    #[error("nothing was sent: the call's audit entry could not be written ({0})")]
    IntentNotRecorded(Box<VaultError>),
    #[error(
        "the request was sent (HTTP {status}) but its outcome could not be written to the audit log: {audit}"
    )]
    OutcomeNotRecorded { status: u16, audit: Box<VaultError> },
    #[error("the caller stopped reading the answer")]
    CallerGone,
    #[error(
        "re-authorise: the refresh token was refused ({0}); store a new one with `aivault secrets rotate` (the stored secret is unchanged)"
    )]
    Reauthorise(String),
}

impl From<RederiveError> for BrokerError {
    fn from(e: RederiveError) -> Self {
        BrokerError::Rederive(Box::new(e))
    }
}

impl From<ResolveError> for BrokerError {
    fn from(e: ResolveError) -> Self {
        BrokerError::Resolve(Box::new(e))
    }
}

impl BrokerError {
    /// Whether this is a refusal by policy (audited as `invoke.denied`) as
    /// opposed to a failure (`invoke.failed`).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            BrokerError::Upstream(_)
                | BrokerError::Vault(_)
                | BrokerError::Plugin(_)
                | BrokerError::ResponseTooLarge { .. }
                | BrokerError::CallerGone
                | BrokerError::Reauthorise(_)
        )
    }

    /// A locked vault: nothing was attempted, and nothing can be audited
    /// without the key.
    pub(super) fn is_locked(&self) -> bool {
        matches!(self, BrokerError::Vault(VaultError::Key(_)))
    }
}
