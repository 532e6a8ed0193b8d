//! The `credentials` table with the secrets each one uses and the
//! capabilities it enables. A credential's MAC covers those links too, so a
//! credential cannot be pointed at another secret or capability.

use super::sql::{Read, Row, Value, args};
use super::{Authenticated, Result, Stored, Tx, scope_fields, scope_from_row};
use crate::vault::integrity::{Fields, shown};
use crate::vault::scope::Scope;

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

const TABLE: &str = "credentials";

const CREDENTIAL_COLUMNS: &str =
    "id, provider, kind, scope, workspace_id, group_id, host, auto_provisioned, created_at_ms";

impl Authenticated for CredentialRow {
    const TABLE: &'static str = TABLE;

    /// What the row's MAC covers: every column and every link.
    fn fields(&self) -> Fields {
        let mut secrets: Vec<&(String, String)> = self.secrets.iter().collect();
        secrets.sort_unstable();
        let mut capabilities: Vec<&str> = self.capabilities.iter().map(String::as_str).collect();
        capabilities.sort_unstable();
        let fields =
            Fields::new("aivault/v1/credential").text(&self.id).text(&self.provider).text(&self.kind);
        scope_fields(fields, &self.scope)
            .opt(self.host.as_deref())
            .flag(self.auto_provisioned)
            .int(self.created_at_ms)
            .pairs(secrets.into_iter().map(|(name, id)| (name.as_str(), id.as_str())))
            .list(capabilities)
    }

    fn described(&self) -> String {
        format!("credential `{}`", shown(&self.id))
    }
}

fn credential_from_row(row: &Row<'_>) -> Read<(CredentialRow, Option<Vec<u8>>)> {
    Ok((
        CredentialRow {
            id: row.get(0)?,
            provider: row.get(1)?,
            kind: row.get(2)?,
            scope: scope_from_row(row, 3)?,
            host: row.get(6)?,
            auto_provisioned: row.get(7)?,
            created_at_ms: row.get(8)?,
            secrets: Vec::new(),
            capabilities: Vec::new(),
        },
        row.get(9)?,
    ))
}

impl Tx<'_> {
    pub fn insert_credential(&self, c: &CredentialRow) -> Result<()> {
        let mac = self.tag(&c.fields())?;
        self.touch_table(TABLE)?;
        self.execute(
            &format!(
                "INSERT INTO credentials ({CREDENTIAL_COLUMNS}, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
            args![
                c.id,
                c.provider,
                c.kind,
                c.scope.kind_str(),
                c.scope.workspace_id(),
                c.scope.group_id(),
                c.host,
                c.auto_provisioned,
                c.created_at_ms,
                mac
            ],
        )?;
        for (name, secret_id) in &c.secrets {
            self.execute(
                "INSERT INTO credential_secrets (credential_id, secret_name, secret_id) VALUES (?1, ?2, ?3)",
                args![c.id, name, secret_id],
            )?;
        }
        for cap in &c.capabilities {
            self.execute(
                "INSERT INTO credential_capabilities (credential_id, capability_id) VALUES (?1, ?2)",
                args![c.id, cap],
            )?;
        }
        Ok(())
    }

    /// Credentials matching `clause`, each with its stored MAC, unchecked.
    pub(super) fn credentials_raw(&self, clause: &str, args: &[Value<'_>]) -> Result<Stored<CredentialRow>> {
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS}, mac FROM credentials WHERE {clause} ORDER BY provider, id");
        let rows = self.rows(TABLE, &sql, args, credential_from_row)?;
        rows.into_iter()
            .map(|(mut c, mac)| {
                c.secrets = self.query(
                    "SELECT secret_name, secret_id FROM credential_secrets WHERE credential_id = ?1 ORDER BY secret_name",
                    args![c.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                c.capabilities = self.query(
                    "SELECT capability_id FROM credential_capabilities WHERE credential_id = ?1 ORDER BY capability_id",
                    args![c.id],
                    |r| r.get(0),
                )?;
                Ok((c, mac))
            })
            .collect()
    }

    fn credentials_where(&self, clause: &str, args: &[Value<'_>]) -> Result<Vec<CredentialRow>> {
        let rows = self.checked(self.credentials_raw(clause, args)?)?;
        // A credential deleted by the operator and put back with its old
        // MAC would otherwise serve again.
        self.check_table_seal(TABLE)?;
        Ok(rows)
    }

    pub fn credentials(&self) -> Result<Vec<CredentialRow>> {
        self.credentials_where("TRUE", &[])
    }

    pub fn credential(&self, id: &str) -> Result<Option<CredentialRow>> {
        Ok(self.credentials_where("id = ?1", args![id])?.pop())
    }

    /// Credentials of `provider`'s `kind` in exactly `scope`.
    pub fn credentials_for(&self, provider: &str, kind: &str, scope: &Scope) -> Result<Vec<CredentialRow>> {
        self.credentials_where(
            "provider = ?1 AND kind = ?2 AND scope = ?3 AND workspace_id = ?4 AND group_id = ?5",
            args![provider, kind, scope.kind_str(), scope.workspace_id(), scope.group_id()],
        )
    }

    /// Credentials that use secret `secret_id`.
    pub fn credentials_using(&self, secret_id: &str) -> Result<Vec<CredentialRow>> {
        self.credentials_where(
            "id IN (SELECT credential_id FROM credential_secrets WHERE secret_id = ?1)",
            args![secret_id],
        )
    }

    /// Runs `change` on credential `id`'s links, then re-authenticates the
    /// credential, unless it failed its check before the change.
    pub(super) fn amend_credential(&self, id: &str, change: impl FnOnce() -> Result<()>) -> Result<()> {
        self.touch_table(TABLE)?;
        let authentic = self
            .credentials_raw("id = ?1", args![id])?
            .pop()
            .is_some_and(|(c, mac)| self.authentic(&c.fields(), mac.as_deref()));
        change()?;
        if authentic {
            self.seal_credential(id)?;
        }
        Ok(())
    }

    /// Writes the MAC of credential `id` as it now stands.
    pub(super) fn seal_credential(&self, id: &str) -> Result<()> {
        if let Some((c, _)) = self.credentials_raw("id = ?1", args![id])?.pop() {
            let mac = self.tag(&c.fields())?;
            self.execute("UPDATE credentials SET mac = ?2 WHERE id = ?1", args![id, mac])?;
        }
        Ok(())
    }

    pub fn delete_credential(&self, id: &str) -> Result<()> {
        // Its custom capabilities go with it (ON DELETE CASCADE).
        self.touch_table("custom_capabilities")?;
        self.amend_table(TABLE, || self.execute("DELETE FROM credentials WHERE id = ?1", args![id]))?;
        Ok(())
    }

    pub fn credential_id_taken(&self, id: &str) -> Result<bool> {
        self.query_one("SELECT EXISTS (SELECT 1 FROM credentials WHERE id = ?1)", args![id], |r| r.get(0))
    }

    /// Every credential id, for suggestions; unchecked, as it decides nothing.
    pub fn credential_ids(&self) -> Result<Vec<String>> {
        self.query("SELECT id FROM credentials ORDER BY id", &[], |r| r.get(0))
    }
}
