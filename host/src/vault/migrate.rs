//! `aivault migrate --to …`: the whole vault copied into another database
//! (SQLite to a PostgreSQL server, or back), then checked there with the
//! vault's key before anyone is told to switch.
//!
//! The source is only read, in one snapshot; the copy is one transaction of
//! the target. Interrupted, the source is untouched and the target holds no
//! vault (its empty tables may remain), so running it again is safe.

use serde_json::json;

use super::audit::{self, Event};
use super::store::{Location, Store};
use super::unlock::KeyUse;
use super::{Result, Vault, VaultError, now_ms};

/// What was copied.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// How the target is named (never with a password).
    pub target: String,
    pub rows: usize,
    pub secrets: usize,
    pub audit_events: usize,
}

/// Migration failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error("--to must be postgres://USER@HOST/DATABASE or sqlite:DIRECTORY (got `{0}`)")]
    BadTarget(String),
    #[error("the vault already keeps its rows in {0}")]
    SameLocation(String),
    #[error("{0} already holds a vault; migrate only into an empty database")]
    TargetNotEmpty(String),
    #[error("the copy in {target} does not check out ({problem}); keep using the source")]
    Unverified { target: String, problem: String },
}

impl Location {
    /// Parses `--to`: a PostgreSQL URL, or `sqlite:DIR` (the directory whose
    /// `vault.db` receives the rows; a path to the `vault.db` itself is
    /// taken as its directory).
    pub fn parse_target(text: &str) -> Result<Location> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::postgres(text)?);
        }
        match text.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => {
                let path = std::path::Path::new(path);
                let dir = if path.file_name().is_some_and(|n| n == "vault.db") {
                    path.parent().unwrap_or(std::path::Path::new("."))
                } else {
                    path
                };
                Ok(Location::Sqlite(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())))
            }
            _ => Err(MigrateError::BadTarget(shown_target(text)).into()),
        }
    }
}

/// `--to` as a message may show it: a URL's password left out.
fn shown_target(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &text[..scheme], &text[at..]),
        _ => text.to_string(),
    }
}

impl Vault {
    /// Copies every row of this vault into `target`, which must hold no
    /// vault, and checks the copy as `doctor` does. Needs the key.
    pub fn migrate_to(&mut self, target: Location) -> Result<Migrated> {
        let shown = target.shown();
        if shown == self.location.shown() {
            return Err(MigrateError::SameLocation(shown).into());
        }
        let from = self.location.shown();
        let mut destination = Store::open_at(&target)?;
        // The copy is on disk when `migrate` says it is done, not at a
        // later checkpoint.
        destination.durable_commits()?;
        {
            let source = self.begin_read(KeyUse::Required)?;
            let mut tx = destination.write()?;
            if tx.holds_a_vault()? {
                return Err(MigrateError::TargetNotEmpty(shown).into());
            }
            tx.copy_from(&source)?;
            // The copy's chain records where it came from, in the same
            // transaction: a vault never appears on a server unexplained.
            // (The source is only read, so its own log does not say.)
            if let Some(keys) = source.keys().filter(|k| !k.is_legacy()) {
                tx.authenticate(keys.clone());
                let event = Event::new("vault.migrate", "vault", json!({"from": from, "to": shown}));
                audit::append(&tx, &event, now_ms())?;
            }
            tx.commit()?;
        }
        let rows = {
            let tx = destination.read()?;
            tx.count_rows()?
        };
        let mut copy = Vault::open_at(&self.dir, target, self.keys.clone())?;
        let diagnosis = copy.doctor()?;
        let problem =
            diagnosis.integrity_problems.first().or(diagnosis.undecryptable.first()).cloned().or_else(|| {
                diagnosis
                    .audit
                    .first_problem
                    .as_ref()
                    .map(|(seq, what)| format!("audit event #{seq}: {what}"))
            });
        if let Some(problem) = problem {
            return Err(MigrateError::Unverified { target: shown, problem }.into());
        }
        Ok(Migrated { target: shown, rows, secrets: diagnosis.secrets, audit_events: diagnosis.audit.events })
    }
}

impl From<MigrateError> for VaultError {
    fn from(e: MigrateError) -> Self {
        VaultError::Migrate(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_a_server_or_a_directory() {
        assert!(matches!(Location::parse_target("postgres://u@db.example.com/v"), Ok(Location::Postgres(_))));
        let Ok(Location::Sqlite(dir)) = Location::parse_target("sqlite:/srv/vault/vault.db") else {
            panic!()
        };
        assert_eq!(dir, std::path::Path::new("/srv/vault"));
        let e = Location::parse_target("mysql://root:Hunter2Secret@db/v").unwrap_err().to_string();
        assert!(e.contains("--to must be") && !e.contains("Hunter2Secret"), "{e}");
        assert!(Location::parse_target("sqlite:").is_err());
    }
}
