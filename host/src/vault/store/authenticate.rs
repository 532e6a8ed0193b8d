//! Whole-vault integrity work: the report `aivault doctor` prints, and
//! authenticating every row at once (an old vault's first write, and
//! master-key rotation, which re-keys every MAC).

use rusqlite::params;

use super::approvals::TABLE as APPROVALS;
use super::seals::SEALED_TABLES;
use super::{CredentialRow, CustomCapabilityRow, PolicyRow, Result, SecretRow, Tx};
use crate::vault::integrity::IntegrityError;

impl Tx<'_> {
    /// Every row and table seal that fails its check under the keys held,
    /// whether or not this transaction checks as it reads.
    pub fn integrity_report(&self) -> Result<Vec<IntegrityError>> {
        let mut problems = Vec::new();
        let mut note = |ok: bool, table: &'static str, what: String| {
            if !ok {
                problems.push(IntegrityError::new(table, what));
            }
        };
        for (s, mac) in self.secrets_raw("1", &[])? {
            note(self.authentic(&s.fields(), mac.as_deref()), "secrets", SecretRow::described(&s.id));
        }
        for (c, mac) in self.credentials_raw("1", &[])? {
            note(self.authentic(&c.fields(), mac.as_deref()), "credentials", CredentialRow::described(&c.id));
        }
        for (c, mac) in self.custom_capabilities_raw()? {
            let what = CustomCapabilityRow::described(&c.id);
            note(self.authentic(&c.fields(), mac.as_deref()), "custom_capabilities", what);
        }
        for (p, mac) in self.policies_raw()? {
            let what = PolicyRow::described(&p.capability_id);
            note(self.authentic(&p.fields(), mac.as_deref()), "capability_policies", what);
        }
        for (b, mac) in self.bindings_raw()? {
            note(self.authentic(&b.fields(), mac.as_deref()), "capability_bindings", b.described());
        }
        for (a, mac) in self.approvals_raw()? {
            let what = super::ApprovalRow::described(&a.provider_id);
            note(self.authentic(&a.fields(), mac.as_deref()), APPROVALS, what);
        }
        for (table, what) in
            [("capability_policies", "capability policies"), ("capability_bindings", "consumer bindings")]
        {
            let sealed = self.table_sealed(table)?;
            note(sealed, table, format!("the set of {what} (a row was added or removed)"));
        }
        Ok(problems)
    }

    /// Authenticates every row and seals every sealed table under the keys
    /// held, whatever the rows held before. Only for an old vault's first
    /// write (which trusts what it finds, as the old aivault did) and for
    /// master-key rotation after [`Tx::integrity_report`] came back clean.
    pub fn authenticate_all(&self) -> Result<()> {
        for (s, _) in self.secrets_raw("1", &[])? {
            self.tx.execute(
                "UPDATE secrets SET mac = ?2 WHERE id = ?1",
                params![s.id, self.tag(&s.fields())?],
            )?;
        }
        for (c, _) in self.credentials_raw("1", &[])? {
            let mac = self.tag(&c.fields())?;
            self.tx.execute("UPDATE credentials SET mac = ?2 WHERE id = ?1", params![c.id, mac])?;
        }
        for (c, _) in self.custom_capabilities_raw()? {
            let mac = self.tag(&c.fields())?;
            self.tx.execute("UPDATE custom_capabilities SET mac = ?2 WHERE id = ?1", params![c.id, mac])?;
        }
        for (p, _) in self.policies_raw()? {
            let mac = self.tag(&p.fields())?;
            self.tx.execute(
                "UPDATE capability_policies SET mac = ?2 WHERE capability_id = ?1",
                params![p.capability_id, mac],
            )?;
        }
        for (b, _) in self.bindings_raw()? {
            let mac = self.tag(&b.fields())?;
            self.tx.execute(
                "UPDATE capability_bindings SET mac = ?6
                 WHERE capability_id = ?1 AND consumer = ?2 AND scope = ?3 AND workspace_id = ?4 AND group_id = ?5",
                params![
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
            self.tx.execute(
                "UPDATE provider_approvals SET mac = ?2 WHERE provider_id = ?1",
                params![a.provider_id, mac],
            )?;
        }
        self.seal_tables()
    }

    /// Seals the policy and binding tables as they stand (a new vault's
    /// empty tables, or after [`Tx::authenticate_all`]).
    pub fn seal_tables(&self) -> Result<()> {
        for (table, _) in SEALED_TABLES {
            self.seal_table(table)?;
        }
        Ok(())
    }

    /// Whether anything in the vault was ever authenticated (a seal exists):
    /// a vault whose key check claims otherwise had its check replaced.
    pub fn has_seals(&self) -> Result<bool> {
        Ok(self.tx.query_row("SELECT EXISTS (SELECT 1 FROM seals)", [], |r| r.get(0))?)
    }
}
