//! `aivault status`: where the vault is, whether it is locked, what it
//! holds, and (when the key can be had without asking) which rows fail
//! their integrity check.

use std::path::PathBuf;

use super::keys::{self, KeyProvider};
use super::unlock::KeyUse;
use super::{Result, Vault};

/// What `aivault status` reports.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub dir: PathBuf,
    /// The database file, or `postgres://host:port/database`.
    pub database: String,
    pub schema_version: i64,
    pub key_provider: Option<String>,
    pub key_file: Option<PathBuf>,
    /// `unlocked`, `locked`, or `not initialised`.
    pub state: String,
    pub state_detail: Option<String>,
    pub secrets: i64,
    pub credentials: usize,
    pub audit_events: i64,
    pub master_key_rotated_at_ms: Option<i64>,
    /// Rows that failed their integrity check; `None` when the vault is
    /// locked (rows cannot be checked without the key).
    pub integrity_problems: Option<Vec<String>>,
}

impl Vault {
    /// Current state, without asking for a passphrase.
    pub fn status(&mut self) -> Result<Status> {
        let schema_version = self.store.schema_version()?;
        let dir = self.dir.clone();
        let database = self.location.shown();
        let tx = self.begin_read(KeyUse::IfAvailable)?;
        let config = tx.key_config()?;
        let (state, detail) = match &config {
            None => (
                "not initialised".to_string(),
                Some("the first `aivault secrets create` creates a key file".to_string()),
            ),
            Some(_) if tx.keys().is_some() => ("unlocked".to_string(), None),
            Some(c) => match keys::KeyProvider::parse(&c.provider) {
                Some(KeyProvider::File) if !keys::key_file(&dir, &c.kek_id).exists() => (
                    "locked".to_string(),
                    Some(format!("key file {} is missing", keys::key_file(&dir, &c.kek_id).display())),
                ),
                _ if !keys::unlockable_without_prompt(c) => {
                    let var = if c.provider == "env" { "AIVAULT_KEY" } else { "AIVAULT_PASSPHRASE" };
                    ("locked".to_string(), Some(format!("set {var} to unlock it")))
                }
                _ => match keys::unlock(&dir, c) {
                    Ok(_) => ("unlocked".to_string(), None),
                    Err(e) => ("locked".to_string(), Some(e.to_string())),
                },
            },
        };
        let integrity_problems = match tx.keys() {
            Some(keys) if !keys.is_legacy() => {
                Some(tx.integrity_report()?.iter().map(|p| p.to_string()).collect())
            }
            Some(_) => Some(Vec::new()),
            None => None,
        };
        Ok(Status {
            database,
            schema_version,
            key_provider: config.as_ref().map(|c| c.provider.clone()),
            key_file: config
                .as_ref()
                .filter(|c| c.provider == "file")
                .map(|c| keys::key_file(&dir, &c.kek_id)),
            state,
            state_detail: detail,
            secrets: tx.count_secrets()?,
            credentials: tx.credential_ids()?.len(),
            audit_events: tx.count_audit()?,
            master_key_rotated_at_ms: config.and_then(|c| c.rotated_at_ms),
            integrity_problems,
            dir,
        })
    }
}
