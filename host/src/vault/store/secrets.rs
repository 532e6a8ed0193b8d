//! The `secrets` table with its aliases and group attachments. A secret's
//! MAC covers its metadata, aliases and attachments; its value is sealed
//! with associated data instead ([`crate::vault::crypto`]).

use std::collections::HashMap;

use super::sql::{Read, Row, Value, args};
use super::{Authenticated, Result, Stored, Tx, scope_fields, scope_from_row};
use crate::vault::crypto::Sealed;
use crate::vault::integrity::{Fields, shown};
use crate::vault::scope::Scope;

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

/// Which secrets `list` shows; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct SecretFilter {
    pub scope: Option<&'static str>,
    pub workspace_id: Option<String>,
    pub group_id: Option<String>,
}

const TABLE: &str = "secrets";
const ATTACHMENTS: &str = "group_attachments";

/// From this many secrets read at once, their aliases and attachments are
/// read whole rather than per secret.
const WHOLE_TABLES_FROM: usize = 64;

const SECRET_COLUMNS: &str = "id, name, scope, workspace_id, group_id, pinned_provider, value_version, \
     ciphertext, wrapped_dek, kek_id, created_at_ms, updated_at_ms";

impl Authenticated for SecretRow {
    const TABLE: &'static str = TABLE;

    /// What the row's MAC covers: everything but the sealed value (bound by
    /// its own associated data) and the key id (replaced by rotation).
    fn fields(&self) -> Fields {
        let mut aliases: Vec<&str> = self.aliases.iter().map(String::as_str).collect();
        aliases.sort_unstable();
        let mut attachments: Vec<&(String, String)> = self.attachments.iter().collect();
        attachments.sort_unstable();
        scope_fields(Fields::new("aivault/v1/secret").text(&self.id).text(&self.name), &self.scope)
            .opt(self.pinned_provider.as_deref())
            .int(self.value_version)
            .int(self.created_at_ms)
            .int(self.updated_at_ms)
            .list(aliases)
            .pairs(attachments.into_iter().map(|(w, g)| (w.as_str(), g.as_str())))
    }

    fn described(&self) -> String {
        format!("secret `{}`", shown(&self.id))
    }
}

fn secret_from_row(row: &Row<'_>) -> Read<(SecretRow, Option<Vec<u8>>)> {
    Ok((
        SecretRow {
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
        },
        row.get(12)?,
    ))
}

impl Tx<'_> {
    pub fn insert_secret(&self, s: &SecretRow) -> Result<()> {
        let mac = self.tag(&s.fields())?;
        self.execute(
            &format!(
                "INSERT INTO secrets ({SECRET_COLUMNS}, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            args![
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
                s.updated_at_ms,
                mac
            ],
        )?;
        self.write_aliases(&s.id, &s.scope, &s.aliases)
    }

    fn with_details(&self, mut s: SecretRow) -> Result<SecretRow> {
        s.aliases = self.query(
            "SELECT alias FROM secret_aliases WHERE secret_id = ?1 ORDER BY alias",
            args![s.id],
            |r| r.get(0),
        )?;
        s.attachments = self.query(
            "SELECT workspace_id, group_id FROM group_attachments WHERE secret_id = ?1 ORDER BY workspace_id, group_id",
            args![s.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(s)
    }

    /// Secrets matching `clause`, each with its stored MAC, unchecked.
    pub(super) fn secrets_raw(&self, clause: &str, args: &[Value<'_>]) -> Result<Stored<SecretRow>> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS}, mac FROM secrets WHERE {clause} ORDER BY scope, workspace_id, group_id, name"
        );
        let rows = self.rows(TABLE, &sql, args, secret_from_row)?;
        if rows.len() < WHOLE_TABLES_FROM {
            return rows.into_iter().map(|(s, mac)| Ok((self.with_details(s)?, mac))).collect();
        }
        // Many rows (a listing of a big vault): two queries in all, not two
        // per secret (at 100k secrets, 200k queries were a third of the time).
        let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
        let pairs =
            self.query("SELECT secret_id, alias FROM secret_aliases ORDER BY secret_id, alias", &[], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })?;
        for (id, alias) in pairs {
            aliases.entry(id).or_default().push(alias);
        }
        let mut attachments: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let attached = self.query(
            "SELECT secret_id, workspace_id, group_id FROM group_attachments ORDER BY secret_id, workspace_id, group_id",
            &[],
            |r| Ok((r.get::<String>(0)?, (r.get(1)?, r.get(2)?))),
        )?;
        for (id, attachment) in attached {
            attachments.entry(id).or_default().push(attachment);
        }
        Ok(rows
            .into_iter()
            .map(|(mut s, mac)| {
                s.aliases = aliases.remove(&s.id).unwrap_or_default();
                s.attachments = attachments.remove(&s.id).unwrap_or_default();
                (s, mac)
            })
            .collect())
    }

    fn secrets_where(&self, clause: &str, args: &[Value<'_>]) -> Result<Vec<SecretRow>> {
        let rows = self.checked(self.secrets_raw(clause, args)?)?;
        // An attachment the operator removed, put back together with the
        // secret's old MAC, would share the secret with that group again.
        self.check_table_seal(ATTACHMENTS)?;
        Ok(rows)
    }

    /// The secret with this id.
    pub fn secret(&self, id: &str) -> Result<Option<SecretRow>> {
        Ok(self.secrets_where("id = ?1", args![id])?.pop())
    }

    /// Every secret some credential uses.
    pub fn secrets_of_credentials(&self) -> Result<Vec<SecretRow>> {
        self.secrets_where("id IN (SELECT secret_id FROM credential_secrets)", &[])
    }

    /// Secrets whose name or alias is `name`, in any scope.
    pub fn secrets_named(&self, name: &str) -> Result<Vec<SecretRow>> {
        self.secrets_where(
            "name = ?1 OR id IN (SELECT secret_id FROM secret_aliases WHERE alias = ?1)",
            args![name],
        )
    }

    /// Secrets matching `filter`.
    pub fn secrets(&self, filter: &SecretFilter) -> Result<Vec<SecretRow>> {
        self.secrets_where(
            "(CAST(?1 AS TEXT) IS NULL OR scope = ?1) AND (CAST(?2 AS TEXT) IS NULL OR workspace_id = ?2)
             AND (CAST(?3 AS TEXT) IS NULL OR group_id = ?3)",
            args![filter.scope, filter.workspace_id, filter.group_id],
        )
    }

    /// Every secret, for re-wrapping under a new master key.
    pub fn all_secrets(&self) -> Result<Vec<SecretRow>> {
        self.secrets(&SecretFilter::default())
    }

    /// Every label (name and alias) in use, for suggestions; unchecked, as
    /// it decides nothing.
    pub fn secret_labels(&self) -> Result<Vec<String>> {
        self.query("SELECT name FROM secrets UNION SELECT alias FROM secret_aliases ORDER BY 1", &[], |r| {
            r.get(0)
        })
    }

    /// The secret named `name` (not alias) in exactly `scope`.
    pub fn secret_in_scope(&self, scope: &Scope, name: &str) -> Result<Option<SecretRow>> {
        Ok(self
            .secrets_where(
                "scope = ?1 AND workspace_id = ?2 AND group_id = ?3 AND name = ?4",
                args![scope.kind_str(), scope.workspace_id(), scope.group_id(), name],
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
        let (kind, workspace, group) = (scope.kind_str(), scope.workspace_id(), scope.group_id());
        let except = except.unwrap_or("");
        let args = args![kind, workspace, group, label, except];
        let by_name: Option<String> = self.query_opt(
            "SELECT id FROM secrets WHERE scope = ?1 AND workspace_id = ?2 AND group_id = ?3 AND name = ?4 AND id != ?5",
            args,
            |r| r.get(0),
        )?;
        if let Some(id) = by_name {
            return Ok(Some((id, true)));
        }
        let by_alias: Option<String> = self.query_opt(
            "SELECT secret_id FROM secret_aliases
             WHERE scope = ?1 AND workspace_id = ?2 AND group_id = ?3 AND alias = ?4 AND secret_id != ?5",
            args,
            |r| r.get(0),
        )?;
        Ok(by_alias.map(|id| (id, false)))
    }

    /// Runs `change` on secret `id`, then re-authenticates the row, unless it
    /// failed its check before the change: a write must never launder a row
    /// edited outside aivault.
    fn amend_secret(&self, id: &str, change: impl FnOnce() -> Result<()>) -> Result<()> {
        let authentic = self.secret_authentic(id)?;
        change()?;
        if authentic {
            self.seal_secret(id)?;
        }
        Ok(())
    }

    fn secret_authentic(&self, id: &str) -> Result<bool> {
        Ok(self
            .secrets_raw("id = ?1", args![id])?
            .pop()
            .is_some_and(|(s, mac)| self.authentic(&s.fields(), mac.as_deref())))
    }

    /// Writes the MAC of secret `id` as it now stands.
    pub(super) fn seal_secret(&self, id: &str) -> Result<()> {
        if let Some((s, _)) = self.secrets_raw("id = ?1", args![id])?.pop() {
            let mac = self.tag(&s.fields())?;
            self.execute("UPDATE secrets SET mac = ?2 WHERE id = ?1", args![id, mac])?;
        }
        Ok(())
    }

    pub fn rename_secret(&self, id: &str, name: &str, now_ms: i64) -> Result<()> {
        self.amend_secret(id, || {
            self.execute(
                "UPDATE secrets SET name = ?2, updated_at_ms = ?3 WHERE id = ?1",
                args![id, name, now_ms],
            )?;
            Ok(())
        })
    }

    /// Replaces the aliases of secret `id`.
    pub fn set_aliases(&self, id: &str, scope: &Scope, aliases: &[String], now_ms: i64) -> Result<()> {
        self.amend_secret(id, || {
            self.write_aliases(id, scope, aliases)?;
            self.execute("UPDATE secrets SET updated_at_ms = ?2 WHERE id = ?1", args![id, now_ms])?;
            Ok(())
        })
    }

    fn write_aliases(&self, id: &str, scope: &Scope, aliases: &[String]) -> Result<()> {
        self.execute("DELETE FROM secret_aliases WHERE secret_id = ?1", args![id])?;
        for alias in aliases {
            self.execute(
                "INSERT INTO secret_aliases (secret_id, alias, scope, workspace_id, group_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                args![id, alias, scope.kind_str(), scope.workspace_id(), scope.group_id()],
            )?;
        }
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
        self.amend_secret(id, || {
            self.execute(
                "UPDATE secrets SET value_version = ?2, ciphertext = ?3, wrapped_dek = ?4, kek_id = ?5, updated_at_ms = ?6
                 WHERE id = ?1",
                args![id, version, sealed.ciphertext, sealed.wrapped_dek, kek_id, now_ms],
            )?;
            Ok(())
        })
    }

    /// Replaces only the wrapped DEK (master-key rotation). Neither column
    /// is under the row's MAC: the wrapping is bound by its own associated data.
    pub fn replace_wrapped_dek(&self, id: &str, wrapped_dek: &[u8], kek_id: &str) -> Result<()> {
        self.execute(
            "UPDATE secrets SET wrapped_dek = ?2, kek_id = ?3 WHERE id = ?1",
            args![id, wrapped_dek, kek_id],
        )?;
        Ok(())
    }

    pub fn delete_secret(&self, id: &str) -> Result<()> {
        // Its attachments go with it (ON DELETE CASCADE).
        self.amend_table(ATTACHMENTS, || self.execute("DELETE FROM secrets WHERE id = ?1", args![id]))?;
        Ok(())
    }

    /// Adds an attachment; `false` if it already existed.
    pub fn attach(&self, id: &str, workspace: &str, group: &str, now_ms: i64) -> Result<bool> {
        let mut added = false;
        self.touch_table(ATTACHMENTS)?;
        self.amend_secret(id, || {
            added = self.execute(
                "INSERT INTO group_attachments (secret_id, workspace_id, group_id, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                args![id, workspace, group, now_ms],
            )? == 1;
            self.execute("UPDATE secrets SET updated_at_ms = ?2 WHERE id = ?1", args![id, now_ms])?;
            Ok(())
        })?;
        Ok(added)
    }

    /// Removes an attachment; `false` if there was none.
    pub fn detach(&self, id: &str, workspace: &str, group: &str, now_ms: i64) -> Result<bool> {
        let mut removed = false;
        self.touch_table(ATTACHMENTS)?;
        self.amend_secret(id, || {
            removed = self.execute(
                "DELETE FROM group_attachments WHERE secret_id = ?1 AND workspace_id = ?2 AND group_id = ?3",
                args![id, workspace, group],
            )? == 1;
            self.execute("UPDATE secrets SET updated_at_ms = ?2 WHERE id = ?1", args![id, now_ms])?;
            Ok(())
        })?;
        Ok(removed)
    }

    pub fn count_secrets(&self) -> Result<i64> {
        self.query_one("SELECT COUNT(*) FROM secrets", &[], |r| r.get(0))
    }
}
