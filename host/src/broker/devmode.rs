//! Test-only overrides that point provider hosts at a loopback server:
//! `AIVAULT_DEV_RESOLVE=host=127.0.0.1:port,…` and
//! `AIVAULT_DEV_CA_CERT_PATH=<pem>` (plus `AIVAULT_DEV_CACHE_DIR`). They work
//! only in builds with debug assertions (and release builds made with the
//! `dev-overrides` feature, for benchmarks). A release build refuses to run
//! with any of them set: whoever controls a caller's environment could
//! otherwise send a real key to a server of their own.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Whether this build honours the overrides: test builds, and release
/// builds made with the `dev-overrides` feature for benchmarks (never one
/// that holds real keys).
pub const HONOURED: bool = cfg!(debug_assertions) || cfg!(feature = "dev-overrides");

/// Every variable that is honoured only in test builds.
pub const DEV_VARS: &[&str] =
    &["AIVAULT_DEV_RESOLVE", "AIVAULT_DEV_CA_CERT_PATH", "AIVAULT_DEV_CACHE_DIR", crate::testpoint::VAR];

/// Parsed overrides (empty in normal use).
#[derive(Debug, Clone, Default)]
pub struct DevOverrides {
    /// Host name -> loopback address to connect to instead.
    pub resolve: Vec<(String, SocketAddr)>,
    /// An extra trusted CA certificate (PEM).
    pub ca_cert_pem: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevModeError {
    #[error(
        "{0} is set, but this is a release build of aivault; test overrides are refused here because they could \
         redirect real credentials. Unset it"
    )]
    RefusedInRelease(&'static str),
    #[error("AIVAULT_DEV_RESOLVE entry `{0}` must be host=127.0.0.1:port (loopback only)")]
    BadResolve(String),
    #[error("cannot read AIVAULT_DEV_CA_CERT_PATH {path}: {source}")]
    CaCert { path: PathBuf, source: std::io::Error },
}

/// Reads the overrides from `env`. `debug_build` is `cfg!(debug_assertions)`
/// in the binary; a parameter so the release refusal can be tested.
pub fn from_env(
    env: impl Fn(&str) -> Option<String>,
    debug_build: bool,
) -> Result<DevOverrides, DevModeError> {
    if !debug_build {
        return match DEV_VARS.iter().find(|var| env(var).is_some()) {
            Some(var) => Err(DevModeError::RefusedInRelease(var)),
            None => Ok(DevOverrides::default()),
        };
    }
    let mut overrides = DevOverrides::default();
    if let Some(spec) = env("AIVAULT_DEV_RESOLVE") {
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || DevModeError::BadResolve(entry.to_string());
            let (host, addr) = entry.split_once('=').ok_or_else(bad)?;
            let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
            if !addr.ip().is_loopback() || host.is_empty() {
                return Err(bad());
            }
            overrides.resolve.push((host.to_ascii_lowercase(), addr));
        }
    }
    if let Some(path) = env("AIVAULT_DEV_CA_CERT_PATH") {
        let path = PathBuf::from(path);
        let pem = std::fs::read(&path).map_err(|source| DevModeError::CaCert { path, source })?;
        overrides.ca_cert_pem = Some(pem);
    }
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |var| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| v.to_string())
    }

    // A release build refuses to run with any override set.
    #[test]
    fn release_build_refuses_overrides() {
        for var in DEV_VARS {
            let err = from_env(env(&[(var, "x")]), false).unwrap_err();
            assert!(matches!(err, DevModeError::RefusedInRelease(v) if v == *var));
            assert!(err.to_string().contains("release build"));
        }
        assert!(from_env(env(&[]), false).unwrap().resolve.is_empty());
    }

    // A debug build parses the resolve list, loopback only.
    #[test]
    fn debug_build_parses_loopback_only() {
        let o = from_env(
            env(&[("AIVAULT_DEV_RESOLVE", "api.openai.com=127.0.0.1:8443, API.GITHUB.COM=[::1]:9")]),
            true,
        )
        .unwrap();
        assert_eq!(o.resolve[0], ("api.openai.com".to_string(), "127.0.0.1:8443".parse().unwrap()));
        assert_eq!(o.resolve[1].0, "api.github.com");
        for bad in ["api.openai.com=10.0.0.1:443", "api.openai.com", "=127.0.0.1:1", "h=127.0.0.1"] {
            assert!(from_env(env(&[("AIVAULT_DEV_RESOLVE", bad)]), true).is_err(), "{bad}");
        }
    }
}
