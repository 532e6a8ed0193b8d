//! The SQLite store: every SQL statement lives here, behind typed methods on
//! [`Tx`], so a different backend can slot in behind the same methods.
//!
//! One database under the vault directory, WAL mode, foreign keys on, a busy
//! timeout so concurrent CLI processes queue instead of failing, and every
//! command in one transaction (`BEGIN IMMEDIATE` for writes, so a read-check-
//! write sequence can never interleave with another writer).
//!
//! The database is not trusted: a transaction that holds the vault's keys
//! checks every row it reads against its MAC and authenticates every row it
//! writes ([`super::integrity`]). A row changed outside aivault is reported
//! as [`StoreError::Integrity`], never returned.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod agents;
mod approvals;
mod audit;
mod authenticate;
mod capabilities;
mod credentials;
mod derived;
mod gate;
mod seals;
mod secrets;
mod tokens;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::integrity::{Fields, IntegrityError, KeySet};
use super::schema::MIGRATIONS;
use super::scope::Scope;
use crate::fsutil;

pub use agents::GrantRow;
pub use approvals::ApprovalRow;
pub use audit::AuditRow;
pub use capabilities::{BindingRow, CustomCapabilityRow, PolicyRow};
pub use credentials::CredentialRow;
pub use derived::DerivedRow;
pub use gate::WriteGate;
pub use secrets::{SecretFilter, SecretRow};
pub use tokens::TokenRow;

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
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// A bug: every write must hold the vault's keys to authenticate its rows.
    #[error("internal error: a write to the vault without its key")]
    Unkeyed,
}

type Result<T> = std::result::Result<T, StoreError>;

/// An open database.
pub struct Store {
    conn: Connection,
    /// The writers' queue of this process, when its connections share one.
    gate: Option<Arc<WriteGate>>,
}

/// A transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    /// The vault's keys, when this transaction holds them.
    keys: Option<Arc<KeySet>>,
    /// Whether rows read are checked against their MACs.
    checks: bool,
    /// Whether tables read are checked against their seals too (not when
    /// listing them for the operator to review).
    seal_checks: bool,
    seals: RefCell<seals::SealState>,
    /// This writer's place in the process's queue, left after the
    /// transaction ends (fields drop in order).
    _turn: Option<gate::Entered<'a>>,
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
        // Room for every statement a call runs (see `Tx::execute`).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        enable_wal(&conn)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Store { conn, gate: None };
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

    /// Makes every later commit durable against power loss, not only against
    /// a crash of this process (WAL with `synchronous = FULL` syncs the log
    /// at each commit). For commits that must never be lost, such as the one
    /// that switches to a new master key.
    pub fn durable_commits(&mut self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(())
    }

    /// Shares `gate` with the other connections of this process and, when
    /// `defer_checkpoints`, leaves WAL checkpoints to [`Store::checkpoint`]
    /// (see [`WriteGate`]).
    pub fn share(&mut self, gate: Arc<WriteGate>, defer_checkpoints: bool) -> Result<()> {
        if defer_checkpoints {
            self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        // A call reads a few pages (its rows, the seals, the audit head);
        // SQLite's default 2 MiB page cache per connection, times every
        // connection a busy server holds, was most of its memory.
        self.conn.pragma_update(None, "cache_size", POOLED_CACHE_KIB)?;
        self.gate = Some(gate);
        Ok(())
    }

    /// Copies what the log holds back into the database as far as no reader
    /// needs it, without waiting for readers or writers. Returns the log's
    /// length in pages.
    pub fn checkpoint(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?)
    }

    /// Copies the whole log back and empties it, waiting for the readers of
    /// it to finish (writers must be kept out meanwhile). Under constant
    /// load some reader is always inside the log, so without this it only
    /// grows: by gigabytes over a long run, its index with it in memory.
    pub fn checkpoint_and_truncate(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// A write transaction, holding the write lock from the start.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        let turn = self.gate.as_deref().and_then(|gate| gate.enter(BUSY_TIMEOUT));
        let mut tx = Tx::new(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?);
        tx._turn = turn;
        Ok(tx)
    }

    /// A read transaction: a consistent snapshot.
    pub fn read(&mut self) -> Result<Tx<'_>> {
        Ok(Tx::new(self.conn.transaction_with_behavior(TransactionBehavior::Deferred)?))
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

pub(super) fn scope_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Scope> {
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

/// Rows of `table` as decoded, or an integrity error naming the table if a
/// row holds something aivault never writes there (text where a list
/// belongs, a scope with stray ids): such a row was edited outside aivault.
pub(super) fn decoded<T>(table: &'static str, rows: rusqlite::Result<T>) -> Result<T> {
    rows.map_err(|e| match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            IntegrityError::new(table, format!("a row of {table} that cannot be read")).into()
        }
        other => other.into(),
    })
}

/// A row type the store authenticates: its table, what its MAC covers, and
/// how a message names it (never by a value).
pub(super) trait Authenticated {
    const TABLE: &'static str;
    fn fields(&self) -> Fields;
    fn described(&self) -> String;
}

/// Rows as stored, each with its MAC.
pub(super) type Stored<T> = Vec<(T, Option<Vec<u8>>)>;

/// A scope's three columns, for MACs.
pub(super) fn scope_fields(fields: Fields, scope: &Scope) -> Fields {
    fields.text(scope.kind_str()).text(scope.workspace_id()).text(scope.group_id())
}

/// The page cache of each pooled connection, in KiB (negative: SQLite's
/// way of saying KiB rather than pages).
const POOLED_CACHE_KIB: i64 = -256;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

impl<'a> Tx<'a> {
    fn new(tx: rusqlite::Transaction<'a>) -> Self {
        Tx { tx, keys: None, checks: false, seal_checks: true, seals: RefCell::default(), _turn: None }
    }

    /// Runs `sql`, its statement prepared once per connection: `serve` and
    /// the daemon run the same few statements on every call, and parsing
    /// them again each time was a measurable share of a call.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    /// The one row `sql` selects, its statement prepared once per connection.
    fn query_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(params, row)
    }

    /// Re-seals the tables this transaction changed, then makes every change
    /// durable.
    pub fn commit(self) -> Result<()> {
        self.reseal_dirty()?;
        Ok(self.tx.commit()?)
    }

    /// From now on, rows read are checked and rows written authenticated
    /// with `keys` (a vault that predates row authentication is read as it
    /// is until it is migrated).
    pub fn authenticate(&mut self, keys: Arc<KeySet>) {
        self.checks = !keys.is_legacy();
        self.keys = Some(keys);
    }

    /// The keys this transaction holds.
    pub fn keys(&self) -> Option<&Arc<KeySet>> {
        self.keys.as_ref()
    }

    /// Reads rows without checking them, for commands that only remove rows
    /// (deleting a tampered row is how it is repaired) or report on them.
    pub fn skip_checks(&mut self) {
        self.checks = false;
    }

    /// Checks rows but not whole tables' seals: for listings the operator
    /// reviews (a broken seal says a row was added, removed or replaced, and
    /// the listing is how to find which).
    pub fn skip_seal_checks(&mut self) {
        self.seal_checks = false;
    }

    /// The keys to authenticate a write with.
    fn writer(&self) -> Result<&KeySet> {
        self.keys.as_deref().filter(|k| !k.is_legacy()).ok_or(StoreError::Unkeyed)
    }

    /// The tag of `fields` under the row key.
    fn tag(&self, fields: &Fields) -> Result<Vec<u8>> {
        Ok(self.writer()?.rows().tag(fields))
    }

    /// Whether `mac` authenticates `fields` under the row key held.
    fn authentic(&self, fields: &Fields, mac: Option<&[u8]>) -> bool {
        self.keys.as_ref().is_some_and(|k| k.rows().verify(fields, mac))
    }

    /// The rows, each checked against its MAC when this transaction checks.
    fn checked<T: Authenticated>(&self, rows: Stored<T>) -> Result<Vec<T>> {
        rows.into_iter()
            .map(|(row, mac)| {
                if !self.checks || self.authentic(&row.fields(), mac.as_deref()) {
                    Ok(row)
                } else {
                    Err(IntegrityError::new(T::TABLE, row.described()).into())
                }
            })
            .collect()
    }

    /// Each row of `rows` that fails its check under the keys held.
    fn failing<T: Authenticated>(&self, rows: Stored<T>) -> Vec<IntegrityError> {
        rows.into_iter()
            .filter(|(row, mac)| !self.authentic(&row.fields(), mac.as_deref()))
            .map(|(row, _)| IntegrityError::new(T::TABLE, row.described()))
            .collect()
    }

    // ----- key configuration -----

    pub fn key_config(&self) -> Result<Option<KeyConfigRow>> {
        Ok(self
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
        self.execute(
            "INSERT OR REPLACE INTO key_config (singleton, provider, kek_id, params, key_check, created_at_ms, rotated_at_ms)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
            params![c.provider, c.kek_id, c.params, c.key_check, c.created_at_ms, c.rotated_at_ms],
        )?;
        Ok(())
    }
}
