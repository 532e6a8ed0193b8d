//! The wasmtime runtime that loads, checks, sandboxes and calls provider
//! components, and the redactor that keeps secrets out of what they report.
//! Built-in and dropped-in components take the same path:
//! [`Runtime::load`] reads the WIT version, compiles (or loads the cached
//! compilation), pre-links, calls `describe` and validates the manifest;
//! a built-in was described when aivault was built (its host's build script
//! runs this crate), so its manifest ships in the binary.
//!
//! This crate knows nothing of vaults, policies or the network: the host
//! (`aivault`) owns those and asks this one only to run components.

mod adapter;
mod bindings;
mod builtin;
mod cache;
mod conduct;
pub mod conformance;
pub mod fsutil;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod redact;

mod manifest;
mod refresh;
mod request;
mod runtime;
mod sandbox;
pub mod verify;
mod version;

use std::fmt;
use std::path::PathBuf;

pub use adapter::{Token, TokenResponse};
pub use builtin::{BuiltinComponent, describe_for_embedding};
pub use cache::{CacheConfig, CacheError};
pub use conduct::HELD_BACK_FOR;
pub use manifest::{
    Capability, CredentialKind, HostPattern, ProviderManifest, VaultSecret, check_path_prefix,
};
pub use request::OutgoingRequest;
pub use runtime::{Plugin, Runtime};
pub use sandbox::{CallStats, SandboxLimits};

pub use version::SUPPORTED_WIT_VERSIONS;

/// Where a component came from; named in every error about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary at build time.
    BuiltIn(&'static str),
    /// A file, e.g. in the providers directory.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn(name) => write!(f, "built-in component `{name}`"),
            Origin::File(path) => write!(f, "component {}", path.display()),
        }
    }
}

/// Everything that can go wrong loading or calling a component. Messages
/// name the component (or provider and version) and never carry a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The bytes are not a WebAssembly component at all.
    #[error("{origin} is not a WebAssembly component: {reason}")]
    NotAComponent { origin: Origin, reason: String },

    /// The component targets a contract version this host cannot run.
    #[error(
        "{origin} was built for provider contract aivault:provider@{found}, but this aivault \
         supports {supported}; rebuild it with a current aivault-sdk"
    )]
    UnsupportedWitVersion { origin: Origin, found: String, supported: String },

    /// The component does not export the provider interface at all.
    #[error("{origin} does not export the aivault:provider/provider interface; is it a provider?")]
    NotAProvider { origin: Origin },

    /// wasmtime could not compile or link the component.
    #[error("{origin} could not be loaded: {reason}")]
    Load { origin: Origin, reason: String },

    /// The manifest breaks a rule.
    #[error("{origin} declares an invalid manifest: {reason}")]
    InvalidManifest { origin: Origin, reason: String },

    /// A call ran out of its CPU budget.
    #[error("{provider} ran past its CPU budget in `{function}` and was stopped")]
    OutOfFuel { provider: String, function: &'static str },

    /// A call tried to use more memory than the sandbox allows.
    #[error("{provider} tried to use more than {limit_mib} MiB of memory in `{function}` and was stopped")]
    OutOfMemory { provider: String, function: &'static str, limit_mib: usize },

    /// The component ran past its limits or crashed moments ago, and its
    /// one call at a time is taken (see `conduct`).
    #[error(
        "{provider} is held back after running past its limits or crashing moments ago: one call at a time for {}s after its last failure, and one is running",
        conduct::HELD_BACK_FOR.as_secs()
    )]
    HeldBack { provider: String },

    /// The component crashed (trap, panic, or a call to an import it is not granted).
    #[error("{provider} crashed in `{function}`: {reason}")]
    Trapped { provider: String, function: &'static str, reason: String },

    /// The provider refused a secret value (its own, redacted, message).
    #[error("{provider} refused the value of {name}: {reason}")]
    SecretRejected { provider: String, name: String, reason: String },

    /// The provider returned an error from `inject` (its own, redacted, message).
    #[error("{provider} could not authenticate the request: {reason}")]
    InjectFailed { provider: String, reason: String },

    /// `inject` returned a request the host will not send.
    #[error("{provider} returned a request aivault refuses to send: {reason}")]
    InjectRefused { provider: String, reason: String },

    /// The token endpoint refused the stored grant; the user must authorise again.
    #[error("re-authorise: the refresh token was refused ({provider}: {reason})")]
    RefreshRefused { provider: String, reason: String },

    /// The token endpoint's answer could not be used.
    #[error("{provider} could not read the token endpoint's answer: {reason}")]
    RefreshFailed { provider: String, reason: String },
}
