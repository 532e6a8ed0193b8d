//! Agent grants: what an OS user other than the vault's owner may invoke
//! through aivaultd, in which context and as which consumer.

use super::sql::{Read, Row, args};
use super::{Authenticated, Result, Stored, Tx, scope_fields, scope_from_row};
use crate::vault::integrity::{Fields, shown};
use crate::vault::scope::Scope;

/// One grant: `user` (uid) may invoke `capability` in `scope` as `consumer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub uid: u32,
    pub user: String,
    pub capability: String,
    pub scope: Scope,
    pub consumer: String,
    pub created_at_ms: i64,
}

const TABLE: &str = "agent_grants";

// `user` is a keyword in PostgreSQL, so quoted (as both engines allow).
const COLUMNS: &str = "uid, \"user\", capability_id, scope, workspace_id, group_id, consumer, created_at_ms";

impl Authenticated for GrantRow {
    const TABLE: &'static str = TABLE;

    fn fields(&self) -> Fields {
        let fields = Fields::new("aivault/v1/agent-grant")
            .int(i64::from(self.uid))
            .text(&self.user)
            .text(&self.capability);
        scope_fields(fields, &self.scope).text(&self.consumer).int(self.created_at_ms)
    }

    fn described(&self) -> String {
        format!("the grant of `{}` to {}", shown(&self.capability), shown(&self.user))
    }
}

fn grant_from_row(r: &Row<'_>) -> Read<(GrantRow, Option<Vec<u8>>)> {
    Ok((
        GrantRow {
            uid: r.get(0)?,
            user: r.get(1)?,
            capability: r.get(2)?,
            scope: scope_from_row(r, 3)?,
            consumer: r.get(6)?,
            created_at_ms: r.get(7)?,
        },
        r.get(8)?,
    ))
}

impl Tx<'_> {
    /// Adds or replaces the grant of `g.capability` to `g.uid`.
    pub fn put_grant(&self, g: &GrantRow) -> Result<()> {
        let mac = self.tag(&g.fields())?;
        self.amend_table(TABLE, || {
            self.execute(
                &format!(
                    "INSERT INTO agent_grants ({COLUMNS}, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (uid, capability_id) DO UPDATE SET \"user\" = excluded.\"user\",
                         scope = excluded.scope, workspace_id = excluded.workspace_id,
                         group_id = excluded.group_id, consumer = excluded.consumer,
                         created_at_ms = excluded.created_at_ms, mac = excluded.mac"
                ),
                args![
                    g.uid,
                    g.user,
                    g.capability,
                    g.scope.kind_str(),
                    g.scope.workspace_id(),
                    g.scope.group_id(),
                    g.consumer,
                    g.created_at_ms,
                    mac
                ],
            )?;
            Ok(())
        })
    }

    /// Every grant with its stored MAC, unchecked.
    pub(super) fn grants_raw(&self) -> Result<Stored<GrantRow>> {
        self.rows(
            TABLE,
            &format!("SELECT {COLUMNS}, mac FROM agent_grants ORDER BY \"user\", capability_id"),
            &[],
            grant_from_row,
        )
    }

    /// Every grant, checked, with the table's seal (a revoked grant put
    /// back must not count).
    pub fn grants(&self) -> Result<Vec<GrantRow>> {
        let rows = self.checked(self.grants_raw()?)?;
        self.check_table_seal(TABLE)?;
        Ok(rows)
    }

    /// Removes `uid`'s grant of `capability`, or all its grants; how many.
    pub fn delete_grants(&self, uid: u32, capability: Option<&str>) -> Result<usize> {
        self.amend_table(TABLE, || {
            self.execute(
                "DELETE FROM agent_grants WHERE uid = ?1 AND (CAST(?2 AS TEXT) IS NULL OR capability_id = ?2)",
                args![uid, capability],
            )
        })
    }
}
