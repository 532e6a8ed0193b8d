//! Seals: one MAC over a whole table's set of rows, for the tables whose
//! rows restrict callers (policies and bindings), so deleting a row is
//! noticed as surely as editing one; and one over the audit log's head, so
//! truncating the log is. A per-row MAC alone cannot tell a deleted row from
//! one that never existed.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Result, Tx};
use crate::vault::integrity::{Fields, IntegrityError};

/// The sealed tables, with the key columns that identify a row.
pub(super) const SEALED_TABLES: &[(&str, &str)] = &[
    ("capability_policies", "capability_id"),
    (
        "capability_bindings",
        "capability_id || char(0) || consumer || char(0) || scope || char(0) || workspace_id || char(0) || group_id",
    ),
];

/// The seal of the audit log's newest event.
pub(super) const AUDIT_HEAD: &str = "audit-head";

fn seal_fields(name: &str, value: &str) -> Fields {
    Fields::new("aivault/v1/seal").text(name).text(value)
}

impl Tx<'_> {
    /// The stored value and MAC of seal `name`.
    pub(super) fn seal(&self, name: &str) -> Result<Option<(String, Option<Vec<u8>>)>> {
        Ok(self
            .tx
            .query_row("SELECT value, mac FROM seals WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Whether seal `name` exists, holds `value`, and is authentic.
    pub(super) fn seal_holds(&self, name: &str, value: &str) -> Result<bool> {
        Ok(self.seal(name)?.is_some_and(|(stored, mac)| {
            stored == value && self.authentic(&seal_fields(name, value), mac.as_deref())
        }))
    }

    /// Writes seal `name` over `value`.
    pub(super) fn put_seal(&self, name: &str, value: &str) -> Result<()> {
        let mac = self.tag(&seal_fields(name, value))?;
        self.tx.execute(
            "INSERT OR REPLACE INTO seals (name, value, mac) VALUES (?1, ?2, ?3)",
            params![name, value, mac],
        )?;
        Ok(())
    }

    /// A digest of `table`'s rows as stored: every key with its MAC, in key order.
    fn table_digest(&self, table: &str) -> Result<String> {
        let key = SEALED_TABLES.iter().find(|(t, _)| *t == table).map(|(_, k)| *k).unwrap_or("rowid");
        let mut stmt = self.tx.prepare_cached(&format!("SELECT {key}, mac FROM {table} ORDER BY 1"))?;
        let mut rows = stmt.query([])?;
        let mut digest = Sha256::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let mac: Option<Vec<u8>> = row.get(1)?;
            for part in [key.as_bytes(), mac.as_deref().unwrap_or_default()] {
                digest.update((part.len() as u64).to_be_bytes());
                digest.update(part);
            }
        }
        Ok(hex::encode(digest.finalize()))
    }

    /// Whether `table`'s set of rows is the one last sealed.
    pub(super) fn table_sealed(&self, table: &str) -> Result<bool> {
        let digest = self.table_digest(table)?;
        self.seal_holds(table, &digest)
    }

    /// Fails unless `table`'s set of rows is the one last sealed, when this
    /// transaction checks.
    pub(super) fn check_table_seal(&self, table: &'static str, what: &str) -> Result<()> {
        if !self.checks || self.table_sealed(table)? {
            Ok(())
        } else {
            Err(IntegrityError::new(table, format!("the set of {what} (a row was added or removed)")).into())
        }
    }

    /// Seals `table` as it now stands.
    pub(super) fn seal_table(&self, table: &str) -> Result<()> {
        let digest = self.table_digest(table)?;
        self.put_seal(table, &digest)
    }

    /// Runs `change` on `table`, then re-seals it, unless its seal was broken
    /// before: the damage stays visible until the operator reviews it.
    pub(super) fn amend_table<T>(&self, table: &str, change: impl FnOnce() -> Result<T>) -> Result<T> {
        let sealed = self.table_sealed(table)?;
        let out = change()?;
        if sealed {
            self.seal_table(table)?;
        }
        Ok(out)
    }
}
