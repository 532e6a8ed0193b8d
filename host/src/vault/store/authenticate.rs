//! Whole-vault integrity work: the report `aivault doctor` prints, and
//! authenticating every row at once (an old vault's first write, and
//! master-key rotation, which re-keys every MAC).

use super::seals::SEALED_TABLES;
use super::sql::args;
use super::{Authenticated, Result, StoreError, Tx};
use crate::vault::integrity::IntegrityError;

impl Tx<'_> {
    /// Every row and table seal that fails its check under the keys held,
    /// whether or not this transaction checks as it reads.
    pub fn integrity_report(&self) -> Result<Vec<IntegrityError>> {
        let mut problems = Vec::new();
        // A table with a row that cannot even be read is one problem; the
        // other tables are still checked.
        let mut tables = [
            self.secrets_raw("TRUE", &[]).map(|rows| self.failing(rows)),
            self.credentials_raw("TRUE", &[]).map(|rows| self.failing(rows)),
            self.custom_capabilities_raw().map(|rows| self.failing(rows)),
            self.policies_raw().map(|rows| self.failing(rows)),
            self.bindings_raw().map(|rows| self.failing(rows)),
            self.approvals_raw().map(|rows| self.failing(rows)),
            self.tokens_raw().map(|rows| self.failing(rows)),
            self.grants_raw().map(|rows| self.failing(rows)),
        ];
        for table in &mut tables {
            match std::mem::replace(table, Ok(Vec::new())) {
                Ok(failing) => problems.extend(failing),
                Err(StoreError::Integrity(unreadable)) => problems.push(unreadable),
                Err(e) => return Err(e),
            }
        }
        for table in SEALED_TABLES {
            if !self.table_sealed(table.name)? {
                let what = format!("the set of {} (a row was added, removed or replaced)", table.what);
                problems.push(IntegrityError::new(table.name, what));
            }
        }
        Ok(problems)
    }

    /// Authenticates every row and seals every sealed table under the keys
    /// held, whatever the rows held before. Only for an old vault's first
    /// write (which trusts what it finds, as the old aivault did) and for
    /// master-key rotation after [`Tx::integrity_report`] came back clean.
    pub fn authenticate_all(&self) -> Result<()> {
        for (s, _) in self.secrets_raw("TRUE", &[])? {
            self.execute("UPDATE secrets SET mac = ?2 WHERE id = ?1", args![s.id, self.tag(&s.fields())?])?;
        }
        for (c, _) in self.credentials_raw("TRUE", &[])? {
            let mac = self.tag(&c.fields())?;
            self.execute("UPDATE credentials SET mac = ?2 WHERE id = ?1", args![c.id, mac])?;
        }
        for (c, _) in self.custom_capabilities_raw()? {
            let mac = self.tag(&c.fields())?;
            self.execute("UPDATE custom_capabilities SET mac = ?2 WHERE id = ?1", args![c.id, mac])?;
        }
        for (p, _) in self.policies_raw()? {
            let mac = self.tag(&p.fields())?;
            self.execute(
                "UPDATE capability_policies SET mac = ?2 WHERE capability_id = ?1",
                args![p.capability_id, mac],
            )?;
        }
        for (b, _) in self.bindings_raw()? {
            let mac = self.tag(&b.fields())?;
            self.execute(
                "UPDATE capability_bindings SET mac = ?6
                 WHERE capability_id = ?1 AND consumer = ?2 AND scope = ?3 AND workspace_id = ?4 AND group_id = ?5",
                args![
                    b.capability_id,
                    b.consumer,
                    b.scope.kind_str(),
                    b.scope.workspace_id(),
                    b.scope.group_id(),
                    mac
                ],
            )?;
        }
        for (a, _) in self.approvals_raw()? {
            let mac = self.tag(&a.fields())?;
            self.execute(
                "UPDATE provider_approvals SET mac = ?2 WHERE provider_id = ?1",
                args![a.provider_id, mac],
            )?;
        }
        for (t, _) in self.tokens_raw()? {
            let mac = self.tag(&t.fields())?;
            self.execute("UPDATE proxy_tokens SET mac = ?2 WHERE id = ?1", args![t.id, mac])?;
        }
        for (g, _) in self.grants_raw()? {
            let mac = self.tag(&g.fields())?;
            self.execute(
                "UPDATE agent_grants SET mac = ?3 WHERE uid = ?1 AND capability_id = ?2",
                args![g.uid, g.capability, mac],
            )?;
        }
        self.seal_tables()
    }

    /// Seals every sealed table as it stands (a new vault's empty tables,
    /// after [`Tx::authenticate_all`], or after the operator's review).
    pub fn seal_tables(&self) -> Result<()> {
        for table in SEALED_TABLES {
            self.seal_table(table.name)?;
        }
        Ok(())
    }

    /// Whether anything in the vault was ever authenticated (a seal exists):
    /// a vault whose key check claims otherwise had its check replaced.
    pub fn has_seals(&self) -> Result<bool> {
        self.query_one("SELECT EXISTS (SELECT 1 FROM seals)", &[], |r| r.get(0))
    }
}
