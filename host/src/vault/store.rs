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
mod copy;
mod credentials;
mod derived;
mod gate;
pub mod pg;
mod seals;
mod secrets;
pub(crate) mod sql;
mod sqlite;
mod tokens;

use super::integrity::{Fields, IntegrityError, KeySet};
use super::scope::Scope;
use sql::{Conn, Row, SqlError, Value, args};

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
/// as parameters; values are ciphertext only) and no database password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the vault database {location}: {source}")]
    Open { location: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error(
        "the vault database is at schema version {found}, newer than this aivault understands ({supported}); upgrade aivault"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("vault database error: {0}")]
    Sql(SqlError),
    #[error(
        "lost the connection to the vault database; the command's changes were rolled back and nothing was done"
    )]
    ConnectionLost,
    #[error(
        "lost the connection to the vault database while committing; the change may or may not have been saved: check before retrying"
    )]
    LostWhileCommitting,
    #[error("the vault database holds a row this aivault cannot read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// A bug: every write must hold the vault's keys to authenticate its rows.
    #[error("internal error: a write to the vault without its key")]
    Unkeyed,
    /// A bug: the call writing a group of audit records panicked.
    #[error("internal error: the call writing this audit record with others failed")]
    GroupLost,
}

impl From<SqlError> for StoreError {
    fn from(e: SqlError) -> Self {
        if e.connection_lost() { StoreError::ConnectionLost } else { StoreError::Sql(e) }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        SqlError::from(e).into()
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        SqlError::from(e).into()
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Where a vault's rows live.
#[derive(Debug, Clone)]
pub enum Location {
    /// `vault.db` in this directory (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by several brokers.
    Postgres(Arc<pg::Target>),
}

impl Location {
    /// The PostgreSQL database `url` names (`postgres://…`).
    pub fn postgres(url: &str) -> Result<Self> {
        Ok(Location::Postgres(Arc::new(pg::Target::parse(url)?)))
    }

    /// How `status` and messages name it: a file path, or `host:port/db`.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(dir) => Store::path_in(dir).display().to_string(),
            Location::Postgres(target) => format!("postgres://{}", target.shown()),
        }
    }
}

/// An open database.
pub struct Store {
    backend: Backend,
    /// The writers' queue of this process, when its connections share one.
    gate: Option<Arc<WriteGate>>,
    /// Whether a read transaction is held open (see [`Store::hold_reads`]).
    held: bool,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<pg::Connection>),
}

impl Drop for Store {
    fn drop(&mut self) {
        self.let_go();
        // A connection no other shares is a one-shot command's.
        if let (Backend::Sqlite(conn), None) = (&self.backend, &self.gate) {
            sqlite::leave(conn);
        }
    }
}

/// A transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx<'a> {
    conn: Conn<'a>,
    /// The vault's keys, when this transaction holds them.
    keys: Option<Arc<KeySet>>,
    /// Whether rows read are checked against their MACs.
    checks: bool,
    /// Whether tables read are checked against their seals too (not when
    /// listing them for the operator to review).
    seal_checks: bool,
    seals: RefCell<seals::SealState>,
    /// Whether committing moves the vault's generation on (every write but
    /// the broker's own records: see [`Tx::leave_generation`]).
    moves_generation: bool,
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

impl Store {
    /// The SQLite database file inside `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(sqlite::DB_FILE)
    }

    /// Opens (creating if needed, owner-only) and migrates the SQLite
    /// database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Store { backend: Backend::Sqlite(sqlite::open(dir)?), gate: None, held: false })
    }

    /// Opens and migrates the database at `location`.
    pub fn open_at(location: &Location) -> Result<Self> {
        match location {
            Location::Sqlite(dir) => Self::open(dir),
            Location::Postgres(target) => {
                Ok(Store { backend: Backend::Postgres(Box::new(pg::open(target)?)), gate: None, held: false })
            }
        }
    }

    /// Whether the connection is gone for good (a server hung up); a pool
    /// drops such a connection instead of lending it again.
    pub fn is_closed(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => false,
            Backend::Postgres(conn) => conn.is_closed(),
        }
    }

    /// The schema version in use.
    pub fn schema_version(&mut self) -> Result<i64> {
        match &mut self.backend {
            Backend::Sqlite(conn) => sqlite::schema_version(conn),
            Backend::Postgres(conn) => pg::schema_version(conn),
        }
    }

    /// Makes every later commit durable against power loss, not only against
    /// a crash of this process (WAL with `synchronous = FULL` syncs the log
    /// at each commit). For commits that must never be lost, such as the one
    /// that switches to a new master key. (PostgreSQL's commits are durable
    /// unless its operator configured otherwise.)
    pub fn durable_commits(&mut self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => sqlite::durable_commits(conn),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Shares `gate` with the other connections of this process and, when
    /// `defer_checkpoints`, leaves WAL checkpoints to [`Store::checkpoint`]
    /// (see [`WriteGate`]).
    pub fn share(&mut self, gate: Arc<WriteGate>, defer_checkpoints: bool) -> Result<()> {
        if let Backend::Sqlite(conn) = &self.backend {
            sqlite::share(conn, defer_checkpoints)?;
        }
        self.gate = Some(gate);
        Ok(())
    }

    /// Copies what the log holds back into the database as far as no reader
    /// needs it, without waiting for readers or writers. Returns the log's
    /// length in pages (always 0 on a server, which checkpoints itself).
    pub fn checkpoint(&self) -> Result<i64> {
        match &self.backend {
            Backend::Sqlite(conn) => sqlite::checkpoint(conn),
            Backend::Postgres(_) => Ok(0),
        }
    }

    /// Copies the whole log back and starts it again from its beginning,
    /// waiting for the readers of it to finish (writers must be kept out
    /// meanwhile). Under constant load some reader is always inside the
    /// log, so without this it only grows: by gigabytes over a long run,
    /// its index with it in memory.
    pub fn checkpoint_and_restart(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => sqlite::checkpoint_and_restart(conn),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Keeps one read transaction open for the reads that follow, until
    /// the next write or [`Store::let_go`]: they see one snapshot, and
    /// each costs no transaction of its own (on SQLite about 8 µs: taking
    /// a snapshot of the log and letting it go). For a call's checks
    /// before its first write; on PostgreSQL nothing changes.
    pub fn hold_reads(&mut self) -> Result<()> {
        if let (Backend::Sqlite(conn), false) = (&self.backend, self.held) {
            sqlite::hold(conn)?;
            self.held = true;
        }
        Ok(())
    }

    /// Whether a transaction is open on this connection.
    #[cfg(test)]
    pub(super) fn holds_transaction(&self) -> bool {
        matches!(&self.backend, Backend::Sqlite(conn) if !conn.is_autocommit())
    }

    /// Ends the read transaction [`Store::hold_reads`] kept open, if any.
    pub fn let_go(&mut self) {
        if std::mem::take(&mut self.held)
            && let Backend::Sqlite(conn) = &self.backend
        {
            sqlite::let_go(conn);
        }
    }

    /// A write transaction, holding the write lock from the start.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        self.let_go();
        let turn = self.gate.as_deref().and_then(|gate| gate.enter(BUSY_TIMEOUT));
        let mut tx = begin(&mut self.backend, true)?;
        tx._turn = turn;
        Ok(tx)
    }

    /// A read transaction: a consistent snapshot (the held one, if any).
    pub fn read(&mut self) -> Result<Tx<'_>> {
        match (&mut self.backend, self.held) {
            (Backend::Sqlite(conn), true) => Ok(Tx::new(Conn::Sqlite(sqlite::within(conn)), false)),
            (backend, _) => begin(backend, false),
        }
    }
}

fn begin(backend: &mut Backend, write: bool) -> Result<Tx<'_>> {
    let conn = match backend {
        Backend::Sqlite(conn) => Conn::Sqlite(sqlite::begin(conn, write)?),
        Backend::Postgres(conn) => {
            let (tx, prepared) = pg::begin(conn, write)?;
            Conn::Postgres { tx: RefCell::new(tx), prepared: RefCell::new(prepared) }
        }
    };
    Ok(Tx::new(conn, write))
}

impl<'a> Tx<'a> {
    fn new(conn: Conn<'a>, write: bool) -> Self {
        Tx {
            conn,
            keys: None,
            checks: false,
            seal_checks: true,
            seals: RefCell::default(),
            moves_generation: write,
            _turn: None,
        }
    }
}

fn scope_from_row(row: &Row<'_>, first: usize) -> std::result::Result<Scope, SqlError> {
    let kind: String = row.get(first)?;
    let workspace: String = row.get(first + 1)?;
    let group: String = row.get(first + 2)?;
    Scope::from_columns(&kind, &workspace, &group)
        .ok_or_else(|| SqlError::decode(first, format!("scope `{kind}`")))
}

/// Rows of `table` as decoded, or an integrity error naming the table if a
/// row holds something aivault never writes there (text where a list
/// belongs, a scope with stray ids): such a row was edited outside aivault.
fn decoded<T>(table: &'static str, rows: std::result::Result<T, SqlError>) -> Result<T> {
    rows.map_err(|e| match e {
        SqlError::Decode { .. } => {
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

impl Tx<'_> {
    /// Runs `sql`; the number of rows it changed. Statements are prepared
    /// once per connection: `serve` and the daemon run the same few on
    /// every call, and parsing them each time was a measurable share of one.
    fn execute(&self, sql: &str, args: &[Value<'_>]) -> Result<usize> {
        Ok(self.conn.execute(sql, args)?)
    }

    /// Every row `sql` selects, read by `read`.
    fn query<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnMut(&Row<'_>) -> std::result::Result<T, SqlError>,
    ) -> Result<Vec<T>> {
        Ok(self.conn.query(sql, args, read)?)
    }

    /// Every row of `table` that `sql` selects; a row aivault could not have
    /// written is an integrity error.
    fn rows<T>(
        &self,
        table: &'static str,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnMut(&Row<'_>) -> std::result::Result<T, SqlError>,
    ) -> Result<Vec<T>> {
        decoded(table, self.conn.query(sql, args, read))
    }

    /// The first row `sql` selects, if any.
    fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnOnce(&Row<'_>) -> std::result::Result<T, SqlError>,
    ) -> Result<Option<T>> {
        Ok(self.conn.query_opt(sql, args, read)?)
    }

    /// The one row `sql` always selects (a count, an `EXISTS`).
    fn query_one<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnOnce(&Row<'_>) -> std::result::Result<T, SqlError>,
    ) -> Result<T> {
        Ok(self.conn.query_one(sql, args, read)?)
    }

    /// Re-seals the tables this transaction changed, then makes every change
    /// durable.
    pub fn commit(self) -> Result<()> {
        self.reseal_dirty()?;
        if self.moves_generation {
            self.execute(
                "INSERT INTO generation (only_row, value) VALUES (1, 1)
                 ON CONFLICT (only_row) DO UPDATE SET value = generation.value + 1",
                &[],
            )?;
        }
        self.conn.commit().map_err(|e| {
            if e.connection_lost() { StoreError::LostWhileCommitting } else { StoreError::Sql(e) }
        })
    }

    /// Commits without moving the generation on: for a transaction that
    /// writes nothing but audit records and rate counts, which no kept row
    /// depends on (see `vault/config_cache.rs`).
    pub fn leave_generation(&mut self) {
        self.moves_generation = false;
    }

    /// The vault's generation: it moves on with every committed write but
    /// the broker's own records.
    pub fn generation(&self) -> Result<i64> {
        Ok(self.query_opt("SELECT value FROM generation", &[], |r| r.get(0))?.unwrap_or(0))
    }

    /// Whether rows read are checked against their MACs (and seals).
    pub fn checks_rows(&self) -> bool {
        self.checks && self.seal_checks
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
        self.query_opt(
            "SELECT provider, kek_id, params, key_check, created_at_ms, rotated_at_ms FROM key_config",
            &[],
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
    }

    /// Inserts or replaces the key configuration.
    pub fn put_key_config(&self, c: &KeyConfigRow) -> Result<()> {
        self.execute(
            "INSERT INTO key_config (singleton, provider, kek_id, params, key_check, created_at_ms, rotated_at_ms)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (singleton) DO UPDATE SET provider = excluded.provider, kek_id = excluded.kek_id,
                 params = excluded.params, key_check = excluded.key_check,
                 created_at_ms = excluded.created_at_ms, rotated_at_ms = excluded.rotated_at_ms",
            args![c.provider, c.kek_id, c.params, c.key_check, c.created_at_ms, c.rotated_at_ms],
        )?;
        Ok(())
    }
}
