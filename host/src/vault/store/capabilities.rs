//! Tables of the broker: custom capabilities, policies, consumer bindings
//! and the invocation log that rate limits count from.

use rusqlite::{OptionalExtension, params};

use super::{Result, Tx, scope_from_row};
use crate::vault::scope::Scope;

/// A capability an operator defined for one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomCapabilityRow {
    pub id: String,
    pub credential_id: String,
    pub description: String,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub host: Option<String>,
    pub created_at_ms: i64,
}

/// Limits enforced on every invocation of one capability.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRow {
    pub capability_id: String,
    pub rate_limit_per_minute: Option<i64>,
    pub max_request_body_bytes: Option<i64>,
    pub max_response_body_bytes: Option<i64>,
    /// JSON fields (dot paths) removed from responses.
    pub response_block: Vec<String>,
    pub updated_at_ms: i64,
}

/// A consumer allowed to invoke a capability in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    pub capability_id: String,
    pub consumer: String,
    pub scope: Scope,
    pub created_at_ms: i64,
}

fn json_list(text: String) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serialises")
}

impl Tx<'_> {
    pub fn insert_custom_capability(&self, c: &CustomCapabilityRow) -> Result<()> {
        self.tx.execute(
            "INSERT INTO custom_capabilities (id, credential_id, description, methods, path_prefixes, host, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.id,
                c.credential_id,
                c.description,
                to_json(&c.methods),
                to_json(&c.path_prefixes),
                c.host,
                c.created_at_ms
            ],
        )?;
        self.tx.execute(
            "INSERT INTO credential_capabilities (credential_id, capability_id) VALUES (?1, ?2)",
            params![c.credential_id, c.id],
        )?;
        Ok(())
    }

    pub fn custom_capabilities(&self) -> Result<Vec<CustomCapabilityRow>> {
        let mut stmt = self.tx.prepare(
            "SELECT id, credential_id, description, methods, path_prefixes, host, created_at_ms
             FROM custom_capabilities ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CustomCapabilityRow {
                id: r.get(0)?,
                credential_id: r.get(1)?,
                description: r.get(2)?,
                methods: json_list(r.get(3)?)?,
                path_prefixes: json_list(r.get(4)?)?,
                host: r.get(5)?,
                created_at_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a custom capability with its policy, bindings and enablement.
    pub fn delete_custom_capability(&self, id: &str) -> Result<()> {
        self.tx.execute("DELETE FROM credential_capabilities WHERE capability_id = ?1", [id])?;
        self.forget_capability(id)?;
        self.tx.execute("DELETE FROM custom_capabilities WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Removes a capability's policy and bindings.
    pub fn forget_capability(&self, id: &str) -> Result<()> {
        self.tx.execute("DELETE FROM capability_policies WHERE capability_id = ?1", [id])?;
        self.tx.execute("DELETE FROM capability_bindings WHERE capability_id = ?1", [id])?;
        Ok(())
    }

    pub fn policy(&self, capability_id: &str) -> Result<Option<PolicyRow>> {
        Ok(self
            .tx
            .query_row(
                "SELECT capability_id, rate_limit_per_minute, max_request_body_bytes, max_response_body_bytes,
                        response_block, updated_at_ms
                 FROM capability_policies WHERE capability_id = ?1",
                [capability_id],
                policy_from_row,
            )
            .optional()?)
    }

    pub fn policies(&self) -> Result<Vec<PolicyRow>> {
        let mut stmt = self.tx.prepare(
            "SELECT capability_id, rate_limit_per_minute, max_request_body_bytes, max_response_body_bytes,
                    response_block, updated_at_ms
             FROM capability_policies ORDER BY capability_id",
        )?;
        Ok(stmt.query_map([], policy_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_policy(&self, p: &PolicyRow) -> Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO capability_policies
             (capability_id, rate_limit_per_minute, max_request_body_bytes, max_response_body_bytes, response_block, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.capability_id,
                p.rate_limit_per_minute,
                p.max_request_body_bytes,
                p.max_response_body_bytes,
                to_json(&p.response_block),
                p.updated_at_ms
            ],
        )?;
        Ok(())
    }

    /// Adds a binding; `false` if it existed.
    pub fn bind(&self, b: &BindingRow) -> Result<bool> {
        let n = self.tx.execute(
            "INSERT OR IGNORE INTO capability_bindings (capability_id, consumer, scope, workspace_id, group_id, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                b.capability_id,
                b.consumer,
                b.scope.kind_str(),
                b.scope.workspace_id(),
                b.scope.group_id(),
                b.created_at_ms
            ],
        )?;
        Ok(n == 1)
    }

    /// Removes a binding; `false` if there was none.
    pub fn unbind(&self, capability_id: &str, consumer: &str, scope: &Scope) -> Result<bool> {
        let n = self.tx.execute(
            "DELETE FROM capability_bindings
             WHERE capability_id = ?1 AND consumer = ?2 AND scope = ?3 AND workspace_id = ?4 AND group_id = ?5",
            params![capability_id, consumer, scope.kind_str(), scope.workspace_id(), scope.group_id()],
        )?;
        Ok(n == 1)
    }

    pub fn bindings(&self) -> Result<Vec<BindingRow>> {
        let mut stmt = self.tx.prepare(
            "SELECT capability_id, consumer, scope, workspace_id, group_id, created_at_ms
             FROM capability_bindings ORDER BY capability_id, consumer, scope, workspace_id, group_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(BindingRow {
                capability_id: r.get(0)?,
                consumer: r.get(1)?,
                scope: scope_from_row(r, 2)?,
                created_at_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Invocations of `capability_id` at or after `since_ms`.
    pub fn count_invocations(&self, capability_id: &str, since_ms: i64) -> Result<i64> {
        Ok(self.tx.query_row(
            "SELECT COUNT(*) FROM invocations WHERE capability_id = ?1 AND ts_ms >= ?2",
            params![capability_id, since_ms],
            |r| r.get(0),
        )?)
    }

    /// Records an invocation, and forgets those older than `keep_after_ms`.
    pub fn record_invocation(&self, capability_id: &str, ts_ms: i64, keep_after_ms: i64) -> Result<()> {
        self.tx.execute("DELETE FROM invocations WHERE ts_ms < ?1", [keep_after_ms])?;
        self.tx.execute(
            "INSERT INTO invocations (capability_id, ts_ms) VALUES (?1, ?2)",
            params![capability_id, ts_ms],
        )?;
        Ok(())
    }
}

fn policy_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PolicyRow> {
    Ok(PolicyRow {
        capability_id: r.get(0)?,
        rate_limit_per_minute: r.get(1)?,
        max_request_body_bytes: r.get(2)?,
        max_response_body_bytes: r.get(3)?,
        response_block: json_list(r.get(4)?)?,
        updated_at_ms: r.get(5)?,
    })
}
