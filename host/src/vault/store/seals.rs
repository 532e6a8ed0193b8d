//! Seals: one MAC over a whole table's set of rows, and one over the audit
//! log's head. A row's own MAC proves aivault wrote it, but not that it is
//! still meant to be there: a row deleted by the operator could be put back
//! with the MAC it had, an old version of a row could replace the current
//! one, and a row could be deleted. A table's seal covers every row's key
//! and MAC, so each of these breaks it; the log's head seal catches a
//! truncated log. (Restoring a whole table together with its seal is a
//! rollback, which nothing inside the database can tell from the present.)
//!
//! Secrets are not sealed as a table: an old version of a secret's row can
//! only restore its old value (sealed with its old version), aliases or
//! name, and its group attachments are sealed on their own.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::sql::args;
use super::{Result, Tx};
use crate::vault::integrity::{Fields, IntegrityError};

/// A sealed table.
pub(super) struct SealedTable {
    pub name: &'static str,
    /// The columns that identify a row; its key is their text joined by NULs.
    pub key: &'static [&'static str],
    /// Whether rows carry a MAC (else a row is nothing but its key).
    pub mac: bool,
    /// What its rows are, for messages.
    pub what: &'static str,
}

const fn sealed(
    name: &'static str,
    key: &'static [&'static str],
    mac: bool,
    what: &'static str,
) -> SealedTable {
    SealedTable { name, key, mac, what }
}

pub(super) const SEALED_TABLES: &[SealedTable] = &[
    sealed("credentials", &["id"], true, "credentials"),
    sealed("custom_capabilities", &["id"], true, "custom capabilities"),
    sealed("capability_policies", &["capability_id"], true, "capability policies"),
    sealed(
        "capability_bindings",
        &["capability_id", "consumer", "scope", "workspace_id", "group_id"],
        true,
        "consumer bindings",
    ),
    sealed("provider_approvals", &["provider_id"], true, "provider approvals"),
    sealed("group_attachments", &["secret_id", "workspace_id", "group_id"], false, "group attachments"),
    sealed("proxy_tokens", &["id"], true, "proxy tokens"),
    sealed("agent_grants", &["uid", "capability_id"], true, "agent grants"),
];

/// The seal of the audit log's newest event.
pub(super) const AUDIT_HEAD: &str = "audit-head";

/// What a transaction knows about the sealed tables it touched.
#[derive(Debug, Default)]
pub(super) struct SealState {
    /// Whether each table's rows matched its seal when first looked at in
    /// this transaction (its own writes are trusted after that).
    status: HashMap<&'static str, bool>,
    /// Tables this transaction wrote to: re-sealed at commit if they were
    /// sealed to begin with.
    dirty: HashSet<&'static str>,
}

fn seal_fields(name: &str, value: &str) -> Fields {
    Fields::new("aivault/v1/seal").text(name).text(value)
}

fn table_entry(table: &str) -> &'static SealedTable {
    SEALED_TABLES.iter().find(|t| t.name == table).expect("a sealed table")
}

impl Tx<'_> {
    /// The stored value and MAC of seal `name`.
    pub(super) fn seal(&self, name: &str) -> Result<Option<(String, Option<Vec<u8>>)>> {
        self.query_opt("SELECT value, mac FROM seals WHERE name = ?1", args![name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
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
        self.execute(
            "INSERT INTO seals (name, value, mac) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, mac = excluded.mac",
            args![name, value, mac],
        )?;
        Ok(())
    }

    /// A digest of `table`'s rows as stored: every key with its MAC, in the
    /// byte order of the keys (sorted here, not by the database, whose text
    /// order depends on its collation).
    fn table_digest(&self, table: &str) -> Result<String> {
        let entry = table_entry(table);
        let columns: Vec<String> = entry.key.iter().map(|c| format!("CAST({c} AS TEXT)")).collect();
        let mac = if entry.mac { "mac" } else { "CAST(NULL AS BYTEA)" };
        let sql = format!("SELECT {}, {mac} FROM {table}", columns.join(", "));
        let width = entry.key.len();
        let mut rows = self.query(&sql, &[], |r| {
            let parts = (0..width).map(|i| r.get::<String>(i)).collect::<std::result::Result<Vec<_>, _>>()?;
            Ok((parts.join("\0"), r.get::<Option<Vec<u8>>>(width)?))
        })?;
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut digest = Sha256::new();
        for (key, mac) in &rows {
            for part in [key.as_bytes(), mac.as_deref().unwrap_or_default()] {
                digest.update((part.len() as u64).to_be_bytes());
                digest.update(part);
            }
        }
        Ok(hex::encode(digest.finalize()))
    }

    /// Whether `table`'s set of rows is the one last sealed, as of the first
    /// time this transaction looked.
    pub(super) fn table_sealed(&self, table: &'static str) -> Result<bool> {
        if let Some(status) = self.seals.borrow().status.get(table) {
            return Ok(*status);
        }
        let digest = self.table_digest(table)?;
        let sealed = self.seal_holds(table, &digest)?;
        self.seals.borrow_mut().status.insert(table, sealed);
        Ok(sealed)
    }

    /// Fails unless `table`'s set of rows is the one last sealed, when this
    /// transaction checks seals.
    pub(super) fn check_table_seal(&self, table: &'static str) -> Result<()> {
        if !self.checks || !self.seal_checks || self.table_sealed(table)? {
            return Ok(());
        }
        let what = table_entry(table).what;
        Err(IntegrityError::new(table, format!("the set of {what} (a row was added, removed or replaced)"))
            .into())
    }

    /// Notes that `table` is about to change: it is re-sealed at commit,
    /// unless its seal was already broken (the damage stays visible until
    /// the operator reviews it).
    pub(super) fn touch_table(&self, table: &'static str) -> Result<()> {
        self.table_sealed(table)?;
        self.seals.borrow_mut().dirty.insert(table);
        Ok(())
    }

    /// Re-seals the tables this transaction changed (called at commit).
    pub(super) fn reseal_dirty(&self) -> Result<()> {
        let dirty: Vec<&'static str> = {
            let state = self.seals.borrow();
            state.dirty.iter().copied().filter(|t| state.status.get(t) == Some(&true)).collect()
        };
        for table in dirty {
            self.seal_table(table)?;
        }
        Ok(())
    }

    /// Seals `table` as it now stands.
    pub(super) fn seal_table(&self, table: &'static str) -> Result<()> {
        let digest = self.table_digest(table)?;
        self.put_seal(table, &digest)?;
        let mut state = self.seals.borrow_mut();
        state.status.insert(table, true);
        state.dirty.remove(table);
        Ok(())
    }
}

impl Tx<'_> {
    /// Runs `change` on `table`, noting it for re-sealing at commit.
    pub(super) fn amend_table<T>(
        &self,
        table: &'static str,
        change: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.touch_table(table)?;
        change()
    }
}
