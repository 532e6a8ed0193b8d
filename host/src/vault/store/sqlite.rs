//! The embedded backend: one SQLite file under the vault directory, WAL
//! mode, foreign keys on, and a busy timeout so concurrent CLI processes
//! queue instead of failing. Writes are `BEGIN IMMEDIATE`, so a
//! read-check-write sequence can never interleave with another writer.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

use super::{BUSY_TIMEOUT, Result, StoreError};
use crate::fsutil;
use crate::vault::schema::MIGRATIONS;

pub(super) const DB_FILE: &str = "vault.db";

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// The page cache of each pooled connection, in KiB (negative: SQLite's
/// way of saying KiB rather than pages).
const POOLED_CACHE_KIB: i64 = -256;

/// How large the write-ahead log may grow before a one-shot command copies
/// it into the database and empties it as it closes: about 64 pages (an
/// `invoke` adds four).
const ONE_SHOT_LOG_BYTES: u64 = 64 * (4096 + 24);

/// SQLite's own threshold, for connections that live on.
const DEFAULT_CHECKPOINT_PAGES: i64 = 1000;

/// The longest a long-running front-end's log file is left when the log
/// starts again from its beginning (it is not emptied: see
/// [`checkpoint_and_restart`]); beyond it SQLite cuts the file back.
const POOLED_LOG_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Opens (creating if needed, owner-only) and migrates the database in `dir`.
pub(super) fn open(dir: &Path) -> Result<Connection> {
    let path = dir.join(DB_FILE);
    let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
        location: path.display().to_string(),
        source,
    };
    fsutil::create_private_dir(dir).map_err(|e| open_err(e.into()))?;
    fsutil::touch_private_file(&path).map_err(|e| open_err(e.into()))?;
    let mut conn = Connection::open(&path).map_err(|e| open_err(e.into()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Room for every statement a call runs (see `sql::Conn::execute`).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    enable_wal(&conn)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A command leaves the write-ahead log for the next one rather than
    // copying it into vault.db at exit: that copy, its two fsyncs, deleting
    // the log and creating it again (a directory fsync) were a fifth of a
    // one-shot `invoke`. See [`leave`] for when the log is emptied. SQLite's
    // own checkpoints are off: a process that rebuilt the log's index from
    // the file takes none of it as copied yet, so they would copy the whole
    // log again at every command and never start it afresh.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = MIGRATIONS.len() as i64;
    if schema_version(conn)? == supported {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the lock.
    let current = schema_version(&tx)?;
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

/// The number of migrations applied, kept in SQLite's `user_version`.
pub(super) fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// See [`super::Store::durable_commits`].
pub(super) fn durable_commits(conn: &Connection) -> Result<()> {
    Ok(conn.pragma_update(None, "synchronous", "FULL")?)
}

/// As a one-shot command's connection closes: once the write-ahead log has
/// grown past a few pages, copies it into the database and empties it, so
/// the next process's rebuild of the log's index (a read of the whole log)
/// stays cheap. Without waiting: if another process is using the log at
/// that moment, a later command empties it.
pub(super) fn leave(conn: &Connection) {
    let Some(db) = conn.path() else { return };
    if fs::metadata(format!("{db}-wal")).is_ok_and(|log| log.len() > ONE_SHOT_LOG_BYTES) {
        let _ = conn.busy_timeout(Duration::ZERO);
        let _ = checkpoint_and_truncate(conn);
    }
}

/// See [`super::Store::share`].
pub(super) fn share(conn: &Connection, defer_checkpoints: bool) -> Result<()> {
    // A long-running front-end leaves the log empty when it stops, and
    // until then checkpoints as SQLite does by default, or on its own
    // thread.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
    let checkpoint_pages = if defer_checkpoints { 0 } else { DEFAULT_CHECKPOINT_PAGES };
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
    conn.pragma_update(None, "journal_size_limit", POOLED_LOG_LIMIT_BYTES)?;
    // A call reads a few pages (its rows, the seals, the audit head);
    // SQLite's default 2 MiB page cache per connection, times every
    // connection a busy server holds, was most of its memory.
    Ok(conn.pragma_update(None, "cache_size", POOLED_CACHE_KIB)?)
}

/// See [`super::Store::checkpoint`].
pub(super) fn checkpoint(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?)
}

/// Copies the whole log back and empties the file: what a one-shot
/// command leaves for the next process (see [`leave`]).
fn checkpoint_and_truncate(conn: &Connection) -> Result<()> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?)
}

/// See [`super::Store::checkpoint_and_restart`]. The file keeps its
/// length (up to [`POOLED_LOG_LIMIT_BYTES`]): the next commits overwrite
/// pages the kernel already holds, where in a file emptied each new page
/// of the log was allocated and zeroed again (a tenth of a server's time
/// at one client, BENCHMARKS.md session 33).
pub(super) fn checkpoint_and_restart(conn: &Connection) -> Result<()> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?)
}

pub(super) fn begin(conn: &mut Connection, write: bool) -> Result<Transaction<'_>> {
    run(conn, if write { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
    Ok(Transaction { conn, open: true })
}

/// See [`super::Store::hold_reads`].
pub(super) fn hold(conn: &Connection) -> Result<()> {
    Ok(run(conn, "BEGIN")?)
}

/// Ends what [`hold`] began.
pub(super) fn let_go(conn: &Connection) {
    roll_back(conn);
}

/// Runs a statement that begins or ends a transaction, prepared once per
/// connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Rolls back the open transaction, if any (a commit that failed may have
/// ended it already).
fn roll_back(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = run(conn, "ROLLBACK");
    }
}

/// A read inside the transaction [`hold`] began: neither begins nor ends
/// one.
pub(super) fn within(conn: &Connection) -> Transaction<'_> {
    Transaction { conn, open: false }
}

/// An open transaction, rolled back unless committed. Begun and ended
/// with statements the connection prepared once (rusqlite's own
/// transactions prepare `BEGIN`, `COMMIT` and `ROLLBACK` afresh each time:
/// under 64 clients, 0.8% of `serve`'s time; a call runs four
/// transactions).
pub(super) struct Transaction<'c> {
    conn: &'c Connection,
    open: bool,
}

impl Transaction<'_> {
    pub(super) fn commit(mut self) -> rusqlite::Result<()> {
        if !self.open {
            // A read within a held transaction: its holder ends it.
            return Ok(());
        }
        run(self.conn, "COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            roll_back(self.conn);
        }
    }
}

/// The highest audit sequence number ever handed out (survives deletion of
/// the newest rows unless `sqlite_sequence` is edited too).
pub(super) const AUDIT_HIGH_WATER: &str = "SELECT seq FROM sqlite_sequence WHERE name = 'audit'";

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
