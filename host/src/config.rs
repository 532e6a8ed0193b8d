//! `$AIVAULT_DIR/config.toml`: where dropped-in provider components live and
//! the sandbox limits every component call runs under. Everything is
//! optional; a missing file means the defaults.
//!
//! ```toml
//! providers_dir = "providers"   # relative to the vault directory, or absolute
//!
//! [sandbox]
//! fuel_per_call = 100000000     # roughly WebAssembly instructions per call
//! memory_mib = 64               # memories and tables of one call, together
//!
//! [storage]
//! url = "postgres://aivault@db.internal/aivault"   # default: vault.db here
//! ```
//!
//! `AIVAULT_DATABASE_URL` overrides `storage.url` (and is the better place
//! for a URL that holds a password).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugins::SandboxLimits;

/// The file name inside the vault directory.
pub const FILE: &str = "config.toml";

/// Settings, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub providers_dir: PathBuf,
    pub sandbox: SandboxLimits,
    /// A PostgreSQL database shared by several brokers, if not `vault.db`.
    pub storage_url: Option<String>,
}

/// The environment variable that names a PostgreSQL database for the vault.
pub const DATABASE_URL_VAR: &str = "AIVAULT_DATABASE_URL";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    providers_dir: Option<PathBuf>,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    storage: RawStorage,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    fuel_per_call: Option<u64>,
    memory_mib: Option<u64>,
}

impl Config {
    /// Reads `<dir>/config.toml`, or the defaults when it does not exist.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(FILE);
        let raw: RawConfig = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ConfigError::Invalid { path: path.clone(), reason: e.message().to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RawConfig::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let invalid = |reason: String| ConfigError::Invalid { path: path.clone(), reason };
        let defaults = SandboxLimits::default();
        let fuel = raw.sandbox.fuel_per_call.unwrap_or(defaults.fuel);
        if !(1_000_000..=10_000_000_000).contains(&fuel) {
            return Err(invalid(format!(
                "sandbox.fuel_per_call must be between 1000000 and 10000000000 (got {fuel})"
            )));
        }
        let memory_mib = raw.sandbox.memory_mib.unwrap_or((defaults.memory_bytes >> 20) as u64);
        if !(4..=1024).contains(&memory_mib) {
            return Err(invalid(format!("sandbox.memory_mib must be between 4 and 1024 (got {memory_mib})")));
        }
        let providers_dir = match raw.providers_dir {
            Some(p) if p.is_absolute() => p,
            Some(p) => dir.join(p),
            None => dir.join("providers"),
        };
        Ok(Config {
            providers_dir,
            sandbox: SandboxLimits { fuel, memory_bytes: (memory_mib as usize) << 20 },
            storage_url: raw.storage.url.filter(|url| !url.is_empty()),
        })
    }

    /// The database URL in force: `AIVAULT_DATABASE_URL`, else `storage.url`.
    pub fn database_url(&self) -> Option<String> {
        std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|url| !url.is_empty())
            .or_else(|| self.storage_url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // No file: the defaults.
    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert_eq!(config.providers_dir, dir.path().join("providers"));
        assert_eq!(config.sandbox, SandboxLimits::default());
    }

    // Values are read, and relative directories are under the vault.
    #[test]
    fn values_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            "providers_dir = \"drop\"\n[sandbox]\nfuel_per_call = 5000000\nmemory_mib = 16\n",
        )
        .unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert_eq!(config.providers_dir, dir.path().join("drop"));
        assert_eq!(config.sandbox, SandboxLimits { fuel: 5_000_000, memory_bytes: 16 << 20 });
    }

    // Typos and out-of-range values are errors naming the file.
    #[test]
    fn bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["[sandbox]\nmemory_mb = 16\n", "[sandbox]\nmemory_mib = 1\n", "providers_dir = 3\n"] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let err = Config::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains("config.toml"), "{err}");
        }
    }
}
