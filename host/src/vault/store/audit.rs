//! The `audit` table, append-only (SQL triggers refuse edits of anything
//! but the MAC column, which master-key rotation re-keys). The chain rules
//! live in [`crate::vault::audit`]; this is storage only.

use super::seals::AUDIT_HEAD;
use super::sql::{Read, Row, args};
use super::{Result, Tx};

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
    /// HMAC of `seq` and `hash` under the audit key; `None` in a log written
    /// before the chain was authenticated.
    pub mac: Option<Vec<u8>>,
}

const AUDIT_COLUMNS: &str = "seq, ts_ms, event, subject, details, prev_hash, hash, mac";

fn audit_from_row(r: &Row<'_>) -> Read<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        ts_ms: r.get(1)?,
        event: r.get(2)?,
        subject: r.get(3)?,
        details: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
        mac: r.get(7)?,
    })
}

impl Tx<'_> {
    /// The newest event's sequence number and hash.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        self.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// The highest sequence number ever handed out (survives deletion of the
    /// newest rows unless the database's own record of it is edited too).
    pub fn audit_high_water(&self) -> Result<i64> {
        let sql = match self.conn {
            super::Conn::Sqlite(_) => super::sqlite::AUDIT_HIGH_WATER,
            super::Conn::Postgres { .. } => super::pg::AUDIT_HIGH_WATER,
        };
        Ok(self.query_opt(sql, &[], |r| r.get::<Option<i64>>(0))?.flatten().unwrap_or(0))
    }

    pub fn insert_audit(&self, row: &AuditRow) -> Result<()> {
        self.execute(
            &format!("INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            args![row.seq, row.ts_ms, row.event, row.subject, row.details, row.prev_hash, row.hash, row.mac],
        )?;
        Ok(())
    }

    /// Replaces the MAC of event `seq` (authenticating an old log, or
    /// re-keying it under a new master key).
    pub fn set_audit_mac(&self, seq: i64, mac: Option<&[u8]>) -> Result<()> {
        self.execute("UPDATE audit SET mac = ?2 WHERE seq = ?1", args![seq, mac])?;
        Ok(())
    }

    /// Newest first: at most `limit` events before `before_ts_ms`.
    pub fn audit_page(&self, limit: i64, before_ts_ms: Option<i64>) -> Result<Vec<AuditRow>> {
        self.query(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE (CAST(?1 AS BIGINT) IS NULL OR ts_ms < ?1) ORDER BY seq DESC LIMIT ?2"),
            args![before_ts_ms, limit],
            audit_from_row,
        )
    }

    /// Every event, oldest first.
    pub fn audit_all(&self) -> Result<Vec<AuditRow>> {
        self.query(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"), &[], audit_from_row)
    }

    /// Whether any event carries a MAC (the vault had a key once).
    pub fn audit_has_macs(&self) -> Result<bool> {
        self.query_one("SELECT EXISTS (SELECT 1 FROM audit WHERE mac IS NOT NULL)", &[], |r| r.get(0))
    }

    pub fn count_audit(&self) -> Result<i64> {
        self.query_one("SELECT COUNT(*) FROM audit", &[], |r| r.get(0))
    }

    /// The sealed head of the log, `seq:hash`, and whether its seal is
    /// authentic under the keys held.
    pub fn audit_head_seal(&self) -> Result<Option<(String, bool)>> {
        Ok(self.seal(AUDIT_HEAD)?.map(|(value, _)| {
            let authentic = self.seal_holds(AUDIT_HEAD, &value).unwrap_or(false);
            (value, authentic)
        }))
    }

    /// Seals `(seq, hash)` as the log's head.
    pub fn seal_audit_head(&self, seq: i64, hash: &str) -> Result<()> {
        self.put_seal(AUDIT_HEAD, &format!("{seq}:{hash}"))
    }
}
