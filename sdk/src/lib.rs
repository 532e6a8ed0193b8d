//! Write an aivault provider: one [`Provider`] impl plus one
//! [`export_provider!`] call, compiled for `wasm32-wasip2`.
//!
//! A provider *declares* its vault secret names, hosts and capabilities
//! ([`Provider::describe`]) and *injects* its secrets into requests the aivault
//! broker is about to send ([`Provider::inject`]). It runs sandboxed: no files,
//! network, clock or environment, and a fresh instance for every injection.
//!
//! ```
//! use aivault_sdk::prelude::*;
//!
//! struct Example;
//!
//! impl Provider for Example {
//!     fn describe() -> Manifest {
//!         Manifest::new("example", "0.1.0")
//!             .description("Example API")
//!             .host("api.example.com")
//!             .secret("EXAMPLE_API_KEY", "secret", "API key from the example dashboard")
//!             .auth(Auth::bearer("secret"))
//!             .capability(Capability::new("example/items", "Read items").methods(&["GET"]).prefix("/v1/items"))
//!     }
//!     // `inject` defaults to applying the declared `Auth`; override it for
//!     // anything a template cannot express.
//! }
//!
//! aivault_sdk::export_provider!(Example);
//! ```

extern crate self as aivault_sdk;

mod auth;
mod errors;
pub mod json;
mod manifest;
pub mod refresh;
mod request;
mod secrets;
pub mod sign;
pub mod validate;

#[doc(hidden)]
pub mod __private;

pub use auth::Auth;
pub use errors::{InjectError, SecretError};
pub use manifest::{Capability, CredentialKind, Manifest};
pub use refresh::{HttpRequest, HttpResponse, Refresh, RefreshError, Token};
pub use request::Request;
pub use secrets::Secrets;

/// The provider-contract version (the WIT package `aivault:provider`) this SDK
/// builds components for: 0.2.0, or the frozen 0.1.0 with the
/// `contract-0-1-0` feature (for hosts that predate 0.2.0; no clock and no
/// token refresh).
#[cfg(not(feature = "contract-0-1-0"))]
pub const WIT_VERSION: &str = "0.2.0";
/// The provider-contract version (the WIT package `aivault:provider`) this SDK
/// builds components for.
#[cfg(feature = "contract-0-1-0")]
pub const WIT_VERSION: &str = "0.1.0";

/// Everything a provider implementation usually needs.
pub mod prelude {
    pub use crate::validate;
    pub use crate::{
        Auth, Capability, CredentialKind, HttpRequest, HttpResponse, InjectError, Manifest, Provider,
        Refresh, RefreshError, Request, SecretError, Secrets, Token,
    };
}

/// A provider: what it declares and how it authenticates a request.
pub trait Provider {
    /// The provider's manifest. Must return the same value on every call.
    fn describe() -> Manifest;

    /// Checks a value for the vault secret `name` before it is stored.
    ///
    /// Called only for names the manifest declares, and only with values that
    /// are not blank. The default accepts any single-line printable token (see
    /// [`validate::token`]). Messages must never contain the value.
    fn validate_secret(name: &str, value: &str) -> Result<(), SecretError> {
        let _ = name;
        validate::token(value)
    }

    /// Adds authentication to `req` using `secrets` (keyed by placeholder).
    ///
    /// The default applies the [`Auth`] the manifest declares for
    /// `req.credential_kind`. The host refuses any change except added or
    /// replaced headers and query parameters and an added path prefix.
    fn inject(req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        Self::describe().auth_for(&req.credential_kind)?.apply(req, secrets)
    }

    /// For a credential kind with a token refresh: the token request, built
    /// from its secrets at `now` (seconds since the Unix epoch). The default
    /// builds the one the kind's declared [`Refresh`] describes.
    fn refresh(kind: &str, secrets: &Secrets, now: u64) -> Result<HttpRequest, InjectError> {
        let _ = now;
        Self::describe().refresh_for(kind)?.request(secrets)
    }

    /// Reads the token endpoint's answer to [`Provider::refresh`]'s request
    /// into the kind's derived values. The default reads it as the kind's
    /// declared [`Refresh`] says.
    fn absorb_token(kind: &str, response: &HttpResponse, now: u64) -> Result<Token, RefreshError> {
        let refresh =
            Self::describe().refresh_for(kind).map_err(|e| RefreshError::Malformed(e.to_string()))?.clone();
        refresh.absorb(response, now)
    }
}

/// The functions every contract version exports alike.
#[doc(hidden)]
#[macro_export]
macro_rules! __guest_describe_and_validate {
    ($provider:ty) => {
        fn describe() -> $crate::__private::WitManifest {
            $crate::__private::describe::<$provider>()
        }

        fn validate_secret(
            name: ::std::string::String,
            value: ::std::string::String,
        ) -> ::std::result::Result<(), $crate::__private::WitSecretError> {
            $crate::__private::validate_secret::<$provider>(name, value)
        }
    };
}

/// Exports a [`Provider`] implementation as the component's `aivault:provider`
/// interface. Call it once, at the crate root, with the implementing type.
#[cfg(not(feature = "contract-0-1-0"))]
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        const _: () = {
            #[doc(hidden)]
            pub struct __AivaultExport;

            impl $crate::__private::Guest for __AivaultExport {
                $crate::__guest_describe_and_validate!($provider);

                fn inject(
                    req: $crate::__private::WitRequest,
                    secrets: ::std::vec::Vec<$crate::__private::WitSecretValue>,
                    now: u64,
                ) -> ::std::result::Result<$crate::__private::WitRequest, $crate::__private::WitInjectError>
                {
                    $crate::__private::inject::<$provider>(req, secrets, now)
                }

                fn refresh(
                    credential_kind: ::std::string::String,
                    secrets: ::std::vec::Vec<$crate::__private::WitSecretValue>,
                    now: u64,
                ) -> ::std::result::Result<$crate::__private::WitHttpRequest, $crate::__private::WitInjectError>
                {
                    $crate::__private::refresh::<$provider>(credential_kind, secrets, now)
                }

                fn absorb_token(
                    credential_kind: ::std::string::String,
                    response: $crate::__private::WitHttpResponse,
                    now: u64,
                ) -> ::std::result::Result<$crate::__private::WitToken, $crate::__private::WitRefreshError> {
                    $crate::__private::absorb_token::<$provider>(credential_kind, response, now)
                }
            }

            $crate::__private::bindings::__export_provider_component!(
                __AivaultExport with_types_in $crate::__private::bindings
            );
        };
    };
}

/// Exports a [`Provider`] implementation as the component's `aivault:provider`
/// interface (contract 0.1.0). Call it once, at the crate root.
#[cfg(feature = "contract-0-1-0")]
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        const _: () = {
            #[doc(hidden)]
            pub struct __AivaultExport;

            impl $crate::__private::Guest for __AivaultExport {
                $crate::__guest_describe_and_validate!($provider);

                fn inject(
                    req: $crate::__private::WitRequest,
                    secrets: ::std::vec::Vec<$crate::__private::WitSecretValue>,
                ) -> ::std::result::Result<$crate::__private::WitRequest, $crate::__private::WitInjectError>
                {
                    $crate::__private::inject::<$provider>(req, secrets, 0)
                }
            }

            $crate::__private::bindings::__export_provider_component!(
                __AivaultExport with_types_in $crate::__private::bindings
            );
        };
    };
}
