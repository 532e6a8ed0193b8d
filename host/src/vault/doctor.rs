//! `aivault doctor`: everything that can be checked about a vault with its
//! key, without changing it, and the one repair that needs the operator's
//! judgement (re-sealing the policy and binding tables after review).

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::audit::{self, Event, Verification};
use super::management::open_secret;
use super::unlock::KeyUse;
use super::{Result, Vault, held_keys, integrity::shown, keys, now_ms};

/// What `doctor` found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// Whether rows carry MACs yet (a vault made by an older aivault gets
    /// them on its first write).
    pub authenticated: bool,
    pub secrets: usize,
    /// Rows and table seals that failed their integrity check.
    pub integrity_problems: Vec<String>,
    /// Secrets whose value does not decrypt under the key for its row.
    pub undecryptable: Vec<String>,
    pub audit: Verification,
    /// Key files the database does not name (left by an interrupted
    /// rotation); they open no current secret but may open old backups.
    pub stale_key_files: Vec<PathBuf>,
}

impl Diagnosis {
    /// Whether anything is wrong (stale key files are only a note).
    pub fn healthy(&self) -> bool {
        self.integrity_problems.is_empty()
            && self.undecryptable.is_empty()
            && self.audit.first_problem.is_none()
    }
}

impl Vault {
    /// Checks every row's MAC, the table seals, every value's decryption and
    /// the audit chain. Needs the key; changes nothing.
    pub fn doctor(&mut self) -> Result<Diagnosis> {
        let dir = self.dir.clone();
        let mut tx = self.begin_read(KeyUse::Required)?;
        let keys = held_keys(&tx)?;
        let mut diagnosis = Diagnosis { authenticated: !keys.is_legacy(), ..Diagnosis::default() };
        if diagnosis.authenticated {
            diagnosis.integrity_problems = tx.integrity_report()?.iter().map(ToString::to_string).collect();
        }
        diagnosis.audit = audit::verify(&tx)?;
        tx.skip_checks();
        let secrets = tx.all_secrets()?;
        diagnosis.secrets = secrets.len();
        for secret in &secrets {
            if open_secret(keys.kek(), secret).is_err() {
                diagnosis.undecryptable.push(format!(
                    "secret `{}` ({})",
                    shown(&secret.id),
                    shown(&secret.name)
                ));
            }
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("keys")) {
            let current = keys::key_file(&dir, keys.kek_id());
            diagnosis.stale_key_files = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "key") && *p != current)
                .filter(|p| {
                    p.file_stem().is_some_and(|s| uuid::Uuid::parse_str(&s.to_string_lossy()).is_ok())
                })
                .collect();
        }
        Ok(diagnosis)
    }

    /// Seals the policy and binding tables as they now stand, after the
    /// operator reviewed them (`aivault doctor --reseal`). Rows whose own
    /// MAC fails stay refused: delete or re-create them.
    pub fn reseal_tables(&mut self) -> Result<()> {
        let tx = self.begin_write()?;
        tx.seal_tables()?;
        audit::append(&tx, &Event::new("integrity.reseal", "vault", json!({})), now_ms())?;
        tx.commit()?;
        Ok(())
    }
}
