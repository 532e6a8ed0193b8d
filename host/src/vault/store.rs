//! The SQLite store: every SQL statement lives here, behind typed methods on
//! [`Tx`], so a different backend can slot in behind the same methods.
//!
//! One database under the vault directory, WAL mode, foreign keys on, a busy
//! timeout so concurrent CLI processes queue instead of failing, and every
//! command in one transaction (`BEGIN IMMEDIATE` for writes, so a read-check-
//! write sequence can never interleave with another writer).

use std::path::{Path, PathBuf};
use std::time::Duration;

mod approvals;
mod capabilities;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::crypto::Sealed;
use super::schema::MIGRATIONS;
use super::scope::Scope;
use crate::fsutil;

/// Database failures. Messages carry no secret values (none are ever bound
/// as text parameters; values are ciphertext only).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the vault database {path}: {source}")]
    Open { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error(
        "the vault database is at schema version {found}, newer than this aivault understands ({supported}); upgrade aivault"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("vault database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the vault database holds a row this aivault cannot read: {0}")]
    Corrupt(String),
}

pub use approvals::ApprovalRow;
pub use capabilities::{BindingRow, CustomCapabilityRow, PolicyRow};

type Result<T> = std::result::Result<T, StoreError>;

/// An open database.
pub struct Store {
    conn: Connection,
}

/// A transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

/// The master-key configuration (one row).
#[derive(Debug, Clone)]
pub struct KeyConfigRow {
    pub provider: String,
    pub kek_id: String,
    pub params: String,
    pub key_check: Vec<u8>,
    pub created_at_ms: i64,
    pub rotated_at_ms: Option<i64>,
}

/// A secret's metadata, and its sealed value.
#[derive(Debug, Clone)]
pub struct SecretRow {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub pinned_provider: Option<String>,
    pub value_version: i64,
    pub sealed: Sealed,
    pub kek_id: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub aliases: Vec<String>,
    /// `(workspace id, group id)` of every group the secret is attached to.
    pub attachments: Vec<(String, String)>,
}

/// A credential: a provider's credential kind, in a scope, with its secrets.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub id: String,
    pub provider: String,
    pub kind: String,
    pub scope: Scope,
    pub host: Option<String>,
    pub auto_provisioned: bool,
    pub created_at_ms: i64,
    /// `(vault secret name, secret id)`.
    pub secrets: Vec<(String, String)>,
    pub capabilities: Vec<String>,
}

/// One audit event as stored.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub ts_ms: i64,
    pub event: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Which secrets `list` shows; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct SecretFilter {
    pub scope: Option<&'static str>,
    pub workspace_id: Option<String>,
    pub group_id: Option<String>,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
const DB_FILE: &str = "vault.db";

impl Store {
    /// The database file inside `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(DB_FILE)
    }

    /// Opens (creating if needed, owner-only) and migrates the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = Self::path_in(dir);
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.clone(),
            source,
        };
        fsutil::create_private_dir(dir).map_err(|e| open_err(e.into()))?;
        fsutil::touch_private_file(&path).map_err(|e| open_err(e.into()))?;
        let conn = Connection::open(&path).map_err(|e| open_err(e.into()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        enable_wal(&conn)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let supported = MIGRATIONS.len() as i64;
        let current: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current == supported {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current > supported {
            return Err(StoreError::TooNew { found: current, supported });
        }
        for migration in &MIGRATIONS[current as usize..] {
            tx.execute_batch(migration)?;
        }
        tx.pragma_update(None, "user_version", supported)?;
        tx.commit()?;
        Ok(())
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// A write transaction, holding the write lock from the start.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        Ok(Tx { tx: self.conn.transaction_with_behavior(TransactionBehavior::Immediate)? })
    }

    /// A read transaction: a consistent snapshot.
    pub fn read(&mut self) -> Result<Tx<'_>> {
        Ok(Tx { tx: self.conn.transaction_with_behavior(TransactionBehavior::Deferred)? })
    }
}

/// Switching to WAL needs a moment of exclusive access; on a brand-new vault
/// many processes may try at once, so retry briefly instead of failing.
fn enable_wal(conn: &Connection) -> Result<()> {
    let mut attempt = 0;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 200 =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10 + attempt));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

const SECRET_COLUMNS: &str = "id, name, scope, workspace_id, group_id, pinned_provider, value_version, \
     ciphertext, wrapped_dek, kek_id, created_at_ms, updated_at_ms";

const CREDENTIAL_COLUMNS: &str =
    "id, provider, kind, scope, workspace_id, group_id, host, auto_provisioned, created_at_ms";

fn scope_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Scope> {
    let kind: String = row.get(first)?;
    let workspace: String = row.get(first + 1)?;
    let group: String = row.get(first + 2)?;
    Scope::from_columns(&kind, &workspace, &group).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            first,
            rusqlite::types::Type::Text,
            format!("scope `{kind}`").into(),
        )
    })
}

fn secret_from_row(row: &Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        id: row.get(0)?,
        name: row.get(1)?,
        scope: scope_from_row(row, 2)?,
        pinned_provider: row.get(5)?,
        value_version: row.get(6)?,
        sealed: Sealed { ciphertext: row.get(7)?, wrapped_dek: row.get(8)? },
        kek_id: row.get(9)?,
        created_at_ms: row.get(10)?,
        updated_at_ms: row.get(11)?,
        aliases: Vec::new(),
        attachments: Vec::new(),
    })
}

fn credential_from_row(row: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        id: row.get(0)?,
        provider: row.get(1)?,
        kind: row.get(2)?,
        scope: scope_from_row(row, 3)?,
        host: row.get(6)?,
        auto_provisioned: row.get(7)?,
        created_at_ms: row.get(8)?,
        secrets: Vec::new(),
        capabilities: Vec::new(),
    })
}

impl Tx<'_> {
    /// Makes every change of this transaction durable.
    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }

    // ----- key configuration -----

    pub fn key_config(&self) -> Result<Option<KeyConfigRow>> {
        Ok(self
            .tx
            .query_row(
                "SELECT provider, kek_id, params, key_check, created_at_ms, rotated_at_ms FROM key_config",
                [],
                |r| {
                    Ok(KeyConfigRow {
                        provider: r.get(0)?,
                        kek_id: r.get(1)?,
                        params: r.get(2)?,
                        key_check: r.get(3)?,
                        created_at_ms: r.get(4)?,
                        rotated_at_ms: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Inserts or replaces the key configuration.
    pub fn put_key_config(&self, c: &KeyConfigRow) -> Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO key_config (singleton, provider, kek_id, params, key_check, created_at_ms, rotated_at_ms)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
            params![c.provider, c.kek_id, c.params, c.key_check, c.created_at_ms, c.rotated_at_ms],
        )?;
        Ok(())
    }

    // ----- secrets -----

    pub fn insert_secret(&self, s: &SecretRow) -> Result<()> {
        self.tx.execute(
            &format!("INSERT INTO secrets ({SECRET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            params![
                s.id,
                s.name,
                s.scope.kind_str(),
                s.scope.workspace_id(),
                s.scope.group_id(),
                s.pinned_provider,
                s.value_version,
                s.sealed.ciphertext,
                s.sealed.wrapped_dek,
                s.kek_id,
                s.created_at_ms,
                s.updated_at_ms
            ],
        )?;
        self.set_aliases(&s.id, &s.scope, &s.aliases)?;
        Ok(())
    }

    fn with_details(&self, mut s: SecretRow) -> Result<SecretRow> {
        let mut aliases =
            self.tx.prepare_cached("SELECT alias FROM secret_aliases WHERE secret_id = ?1 ORDER BY alias")?;
        s.aliases = aliases.query_map([&s.id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let mut attached = self.tx.prepare_cached(
            "SELECT workspace_id, group_id FROM group_attachments WHERE secret_id = ?1 ORDER BY workspace_id, group_id",
        )?;
        s.attachments =
            attached.query_map([&s.id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(s)
    }

    fn secrets_where(&self, clause: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<SecretRow>> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE {clause} ORDER BY scope, workspace_id, group_id, name"
        );
        let mut stmt = self.tx.prepare(&sql)?;
        let rows: Vec<SecretRow> = stmt.query_map(args, secret_from_row)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|s| self.with_details(s)).collect()
    }

    /// The secret with this id.
    pub fn secret(&self, id: &str) -> Result<Option<SecretRow>> {
        Ok(self.secrets_where("id = ?1", &[&id])?.pop())
    }

    /// Secrets whose name or alias is `name`, in any scope.
    pub fn secrets_named(&self, name: &str) -> Result<Vec<SecretRow>> {
        self.secrets_where(
            "name = ?1 OR id IN (SELECT secret_id FROM secret_aliases WHERE alias = ?1)",
            &[&name],
        )
    }

    /// Secrets matching `filter`.
    pub fn secrets(&self, filter: &SecretFilter) -> Result<Vec<SecretRow>> {
        self.secrets_where(
            "(?1 IS NULL OR scope = ?1) AND (?2 IS NULL OR workspace_id = ?2) AND (?3 IS NULL OR group_id = ?3)",
            &[&filter.scope, &filter.workspace_id, &filter.group_id],
        )
    }

    /// Every secret, for re-wrapping under a new master key.
    pub fn all_secrets(&self) -> Result<Vec<SecretRow>> {
        self.secrets(&SecretFilter::default())
    }

    /// The secret named `name` (not alias) in exactly `scope`.
    pub fn secret_in_scope(&self, scope: &Scope, name: &str) -> Result<Option<SecretRow>> {
        Ok(self
            .secrets_where(
                "scope = ?1 AND workspace_id = ?2 AND group_id = ?3 AND name = ?4",
                &[&scope.kind_str(), &scope.workspace_id(), &scope.group_id(), &name],
            )?
            .pop())
    }

    /// The id of a secret other than `except` whose name or alias in `scope`
    /// is `label`, and whether it was the name (`true`) or an alias.
    pub fn label_taken(
        &self,
        scope: &Scope,
        label: &str,
        except: Option<&str>,
    ) -> Result<Option<(String, bool)>> {
        let args =
            params![scope.kind_str(), scope.workspace_id(), scope.group_id(), label, except.unwrap_or("")];
        let by_name: Option<String> = self
            .tx
            .query_row(
                "SELECT id FROM secrets WHERE scope = ?1 AND workspace_id = ?2 AND group_id = ?3 AND name = ?4 AND id != ?5",
                args,
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = by_name {
            return Ok(Some((id, true)));
        }
        let by_alias: Option<String> = self
            .tx
            .query_row(
                "SELECT secret_id FROM secret_aliases
                 WHERE scope = ?1 AND workspace_id = ?2 AND group_id = ?3 AND alias = ?4 AND secret_id != ?5",
                args,
                |r| r.get(0),
            )
            .optional()?;
        Ok(by_alias.map(|id| (id, false)))
    }

    pub fn rename_secret(&self, id: &str, name: &str, now_ms: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE secrets SET name = ?2, updated_at_ms = ?3 WHERE id = ?1",
            params![id, name, now_ms],
        )?;
        Ok(())
    }

    /// Replaces the aliases of secret `id`.
    pub fn set_aliases(&self, id: &str, scope: &Scope, aliases: &[String]) -> Result<()> {
        self.tx.execute("DELETE FROM secret_aliases WHERE secret_id = ?1", [id])?;
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO secret_aliases (secret_id, alias, scope, workspace_id, group_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for alias in aliases {
            insert.execute(params![id, alias, scope.kind_str(), scope.workspace_id(), scope.group_id()])?;
        }
        Ok(())
    }

    pub fn touch_secret(&self, id: &str, now_ms: i64) -> Result<()> {
        self.tx.execute("UPDATE secrets SET updated_at_ms = ?2 WHERE id = ?1", params![id, now_ms])?;
        Ok(())
    }

    /// Stores a new value (fresh DEK) at `version`.
    pub fn replace_value(
        &self,
        id: &str,
        version: i64,
        sealed: &Sealed,
        kek_id: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE secrets SET value_version = ?2, ciphertext = ?3, wrapped_dek = ?4, kek_id = ?5, updated_at_ms = ?6
             WHERE id = ?1",
            params![id, version, sealed.ciphertext, sealed.wrapped_dek, kek_id, now_ms],
        )?;
        Ok(())
    }

    /// Replaces only the wrapped DEK (master-key rotation).
    pub fn replace_wrapped_dek(&self, id: &str, wrapped_dek: &[u8], kek_id: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE secrets SET wrapped_dek = ?2, kek_id = ?3 WHERE id = ?1",
            params![id, wrapped_dek, kek_id],
        )?;
        Ok(())
    }

    pub fn delete_secret(&self, id: &str) -> Result<()> {
        self.tx.execute("DELETE FROM secrets WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Adds an attachment; `false` if it already existed.
    pub fn attach(&self, id: &str, workspace: &str, group: &str, now_ms: i64) -> Result<bool> {
        let n = self.tx.execute(
            "INSERT OR IGNORE INTO group_attachments (secret_id, workspace_id, group_id, created_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![id, workspace, group, now_ms],
        )?;
        Ok(n == 1)
    }

    /// Removes an attachment; `false` if there was none.
    pub fn detach(&self, id: &str, workspace: &str, group: &str) -> Result<bool> {
        let n = self.tx.execute(
            "DELETE FROM group_attachments WHERE secret_id = ?1 AND workspace_id = ?2 AND group_id = ?3",
            params![id, workspace, group],
        )?;
        Ok(n == 1)
    }

    pub fn count_secrets(&self) -> Result<i64> {
        Ok(self.tx.query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?)
    }

    // ----- credentials -----

    pub fn insert_credential(&self, c: &CredentialRow) -> Result<()> {
        self.tx.execute(
            &format!(
                "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            params![
                c.id,
                c.provider,
                c.kind,
                c.scope.kind_str(),
                c.scope.workspace_id(),
                c.scope.group_id(),
                c.host,
                c.auto_provisioned,
                c.created_at_ms
            ],
        )?;
        let mut secret = self.tx.prepare_cached(
            "INSERT INTO credential_secrets (credential_id, secret_name, secret_id) VALUES (?1, ?2, ?3)",
        )?;
        for (name, secret_id) in &c.secrets {
            secret.execute(params![c.id, name, secret_id])?;
        }
        let mut capability = self.tx.prepare_cached(
            "INSERT INTO credential_capabilities (credential_id, capability_id) VALUES (?1, ?2)",
        )?;
        for cap in &c.capabilities {
            capability.execute(params![c.id, cap])?;
        }
        Ok(())
    }

    fn credentials_where(&self, clause: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<CredentialRow>> {
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE {clause} ORDER BY provider, id");
        let mut stmt = self.tx.prepare(&sql)?;
        let rows: Vec<CredentialRow> =
            stmt.query_map(args, credential_from_row)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|mut c| {
                let mut secrets = self.tx.prepare_cached(
                    "SELECT secret_name, secret_id FROM credential_secrets WHERE credential_id = ?1 ORDER BY secret_name",
                )?;
                c.secrets = secrets.query_map([&c.id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
                let mut caps = self.tx.prepare_cached(
                    "SELECT capability_id FROM credential_capabilities WHERE credential_id = ?1 ORDER BY capability_id",
                )?;
                c.capabilities = caps.query_map([&c.id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                Ok(c)
            })
            .collect()
    }

    pub fn credentials(&self) -> Result<Vec<CredentialRow>> {
        self.credentials_where("1", &[])
    }

    pub fn credential(&self, id: &str) -> Result<Option<CredentialRow>> {
        Ok(self.credentials_where("id = ?1", &[&id])?.pop())
    }

    /// Credentials of `provider`'s `kind` in exactly `scope`.
    pub fn credentials_for(&self, provider: &str, kind: &str, scope: &Scope) -> Result<Vec<CredentialRow>> {
        self.credentials_where(
            "provider = ?1 AND kind = ?2 AND scope = ?3 AND workspace_id = ?4 AND group_id = ?5",
            &[&provider, &kind, &scope.kind_str(), &scope.workspace_id(), &scope.group_id()],
        )
    }

    /// Credentials that use secret `secret_id`.
    pub fn credentials_using(&self, secret_id: &str) -> Result<Vec<CredentialRow>> {
        self.credentials_where(
            "id IN (SELECT credential_id FROM credential_secrets WHERE secret_id = ?1)",
            &[&secret_id],
        )
    }

    pub fn delete_credential(&self, id: &str) -> Result<()> {
        self.tx.execute("DELETE FROM credentials WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn credential_id_taken(&self, id: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row("SELECT EXISTS (SELECT 1 FROM credentials WHERE id = ?1)", [id], |r| r.get(0))?)
    }

    // ----- audit -----

    /// The newest event's sequence number and hash.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        Ok(self
            .tx
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// The highest sequence number ever handed out (survives deletion of the
    /// newest rows, which is how a truncated log is noticed).
    pub fn audit_high_water(&self) -> Result<i64> {
        Ok(self
            .tx
            .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'audit'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    pub fn insert_audit(&self, row: &AuditRow) -> Result<()> {
        self.tx.execute(
            "INSERT INTO audit (seq, ts_ms, event, subject, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![row.seq, row.ts_ms, row.event, row.subject, row.details, row.prev_hash, row.hash],
        )?;
        Ok(())
    }

    /// Newest first: at most `limit` events before `before_ts_ms`.
    pub fn audit_page(&self, limit: i64, before_ts_ms: Option<i64>) -> Result<Vec<AuditRow>> {
        let mut stmt = self.tx.prepare(
            "SELECT seq, ts_ms, event, subject, details, prev_hash, hash FROM audit
             WHERE (?1 IS NULL OR ts_ms < ?1) ORDER BY seq DESC LIMIT ?2",
        )?;
        Ok(stmt.query_map(params![before_ts_ms, limit], audit_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// Every event, oldest first.
    pub fn audit_all(&self) -> Result<Vec<AuditRow>> {
        let mut stmt = self
            .tx
            .prepare("SELECT seq, ts_ms, event, subject, details, prev_hash, hash FROM audit ORDER BY seq")?;
        Ok(stmt.query_map([], audit_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count_audit(&self) -> Result<i64> {
        Ok(self.tx.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?)
    }
}

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        ts_ms: r.get(1)?,
        event: r.get(2)?,
        subject: r.get(3)?,
        details: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
    })
}
