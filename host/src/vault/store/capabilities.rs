//! Tables of the broker: custom capabilities, policies, consumer bindings
//! and the invocation log that rate limits count from. Custom capabilities,
//! policies and bindings carry MACs; policies and bindings restrict callers,
//! so their tables are sealed as a whole too (a deleted row loosens them).
//! The invocation log is not authenticated: whoever can write the database
//! can reset a rate limit, which is a count, not a secret or a route.

use super::sql::{Read, Row, SqlError, args};
use super::{Authenticated, Result, Stored, Tx, decoded, scope_fields, scope_from_row};
use crate::vault::integrity::{Fields, shown};
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

const CUSTOM: &str = "custom_capabilities";
const POLICIES: &str = "capability_policies";
const BINDINGS: &str = "capability_bindings";

impl Authenticated for CustomCapabilityRow {
    const TABLE: &'static str = CUSTOM;

    fn fields(&self) -> Fields {
        Fields::new("aivault/v1/custom-capability")
            .text(&self.id)
            .text(&self.credential_id)
            .text(&self.description)
            .list(self.methods.iter().map(String::as_str))
            .list(self.path_prefixes.iter().map(String::as_str))
            .opt(self.host.as_deref())
            .int(self.created_at_ms)
    }

    fn described(&self) -> String {
        format!("custom capability `{}`", shown(&self.id))
    }
}

impl Authenticated for PolicyRow {
    const TABLE: &'static str = POLICIES;

    fn fields(&self) -> Fields {
        Fields::new("aivault/v1/policy")
            .text(&self.capability_id)
            .opt_int(self.rate_limit_per_minute)
            .opt_int(self.max_request_body_bytes)
            .opt_int(self.max_response_body_bytes)
            .list(self.response_block.iter().map(String::as_str))
            .int(self.updated_at_ms)
    }

    fn described(&self) -> String {
        format!("the policy of `{}`", shown(&self.capability_id))
    }
}

impl Authenticated for BindingRow {
    const TABLE: &'static str = BINDINGS;

    fn fields(&self) -> Fields {
        let fields = Fields::new("aivault/v1/binding").text(&self.capability_id).text(&self.consumer);
        scope_fields(fields, &self.scope).int(self.created_at_ms)
    }

    fn described(&self) -> String {
        format!("the binding of `{}` to `{}`", shown(&self.consumer), shown(&self.capability_id))
    }
}

fn json_list(text: String) -> Read<Vec<String>> {
    serde_json::from_str(&text).map_err(|e| SqlError::decode(0, e))
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serialises")
}

impl Tx<'_> {
    pub fn insert_custom_capability(&self, c: &CustomCapabilityRow) -> Result<()> {
        let mac = self.tag(&c.fields())?;
        self.touch_table(CUSTOM)?;
        self.execute(
            "INSERT INTO custom_capabilities (id, credential_id, description, methods, path_prefixes, host, created_at_ms, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args![
                c.id,
                c.credential_id,
                c.description,
                to_json(&c.methods),
                to_json(&c.path_prefixes),
                c.host,
                c.created_at_ms,
                mac
            ],
        )?;
        self.amend_credential(&c.credential_id, || {
            self.execute(
                "INSERT INTO credential_capabilities (credential_id, capability_id) VALUES (?1, ?2)",
                args![c.credential_id, c.id],
            )?;
            Ok(())
        })
    }

    /// Every custom capability with its stored MAC, unchecked.
    pub(super) fn custom_capabilities_raw(&self) -> Result<Stored<CustomCapabilityRow>> {
        self.rows(
            CUSTOM,
            "SELECT id, credential_id, description, methods, path_prefixes, host, created_at_ms, mac
             FROM custom_capabilities ORDER BY id",
            &[],
            |r| {
                Ok((
                    CustomCapabilityRow {
                        id: r.get(0)?,
                        credential_id: r.get(1)?,
                        description: r.get(2)?,
                        methods: json_list(r.get(3)?)?,
                        path_prefixes: json_list(r.get(4)?)?,
                        host: r.get(5)?,
                        created_at_ms: r.get(6)?,
                    },
                    r.get(7)?,
                ))
            },
        )
    }

    pub fn custom_capabilities(&self) -> Result<Vec<CustomCapabilityRow>> {
        let rows = self.checked(self.custom_capabilities_raw()?)?;
        self.check_table_seal(CUSTOM)?;
        Ok(rows)
    }

    /// Whether a custom capability `id` exists, checked or not.
    pub fn custom_capability_exists(&self, id: &str) -> Result<bool> {
        self.query_one("SELECT EXISTS (SELECT 1 FROM custom_capabilities WHERE id = ?1)", args![id], |r| {
            r.get(0)
        })
    }

    /// Deletes a custom capability. With `whole`, also its policy, its
    /// bindings and its link from its credential; without (a row that takes
    /// a provider capability's id, which only an edit outside aivault can
    /// make), only the row: the policy, bindings and links of that id belong
    /// to the provider's capability.
    pub fn delete_custom_capability(&self, id: &str, whole: bool) -> Result<()> {
        if whole {
            let credentials: Vec<String> = self.query(
                "SELECT credential_id FROM custom_capabilities WHERE id = ?1
                 INTERSECT SELECT credential_id FROM credential_capabilities WHERE capability_id = ?1",
                args![id],
                |r| r.get(0),
            )?;
            for credential in credentials {
                self.amend_credential(&credential, || {
                    self.execute(
                        "DELETE FROM credential_capabilities WHERE credential_id = ?1 AND capability_id = ?2",
                        args![credential, id],
                    )?;
                    Ok(())
                })?;
            }
            self.forget_capability(id)?;
        }
        self.amend_table(CUSTOM, || {
            self.execute("DELETE FROM custom_capabilities WHERE id = ?1", args![id])
        })?;
        Ok(())
    }

    /// Removes a capability's policy; `false` if it had none.
    pub fn delete_policy(&self, capability_id: &str) -> Result<bool> {
        self.amend_table(POLICIES, || {
            Ok(self
                .execute("DELETE FROM capability_policies WHERE capability_id = ?1", args![capability_id])?
                == 1)
        })
    }

    /// Removes a capability's policy and bindings.
    pub fn forget_capability(&self, id: &str) -> Result<()> {
        self.amend_table(POLICIES, || {
            self.execute("DELETE FROM capability_policies WHERE capability_id = ?1", args![id])
        })?;
        self.amend_table(BINDINGS, || {
            self.execute("DELETE FROM capability_bindings WHERE capability_id = ?1", args![id])
        })?;
        Ok(())
    }

    /// The policy of `capability_id`, checked, with no regard to the table's
    /// seal (read [`Tx::policies`] to act on policies).
    pub fn policy(&self, capability_id: &str) -> Result<Option<PolicyRow>> {
        let stored = decoded(
            POLICIES,
            self.conn.query_opt(
                &format!("{POLICY_SELECT} WHERE capability_id = ?1"),
                args![capability_id],
                policy_from_row,
            ),
        )?;
        Ok(self.checked(stored.into_iter().collect())?.pop())
    }

    /// Every policy with its stored MAC, unchecked.
    pub(super) fn policies_raw(&self) -> Result<Stored<PolicyRow>> {
        self.rows(POLICIES, &format!("{POLICY_SELECT} ORDER BY capability_id"), &[], policy_from_row)
    }

    /// Every policy, each checked, and the set of them checked against the
    /// table's seal (a deleted policy would lift its limits).
    pub fn policies(&self) -> Result<Vec<PolicyRow>> {
        let policies = self.checked(self.policies_raw()?)?;
        self.check_table_seal(POLICIES)?;
        Ok(policies)
    }

    pub fn put_policy(&self, p: &PolicyRow) -> Result<()> {
        let mac = self.tag(&p.fields())?;
        self.amend_table(POLICIES, || {
            self.execute(
                "INSERT INTO capability_policies
                 (capability_id, rate_limit_per_minute, max_request_body_bytes, max_response_body_bytes, response_block, updated_at_ms, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (capability_id) DO UPDATE SET rate_limit_per_minute = excluded.rate_limit_per_minute,
                     max_request_body_bytes = excluded.max_request_body_bytes,
                     max_response_body_bytes = excluded.max_response_body_bytes,
                     response_block = excluded.response_block, updated_at_ms = excluded.updated_at_ms, mac = excluded.mac",
                args![
                    p.capability_id,
                    p.rate_limit_per_minute,
                    p.max_request_body_bytes,
                    p.max_response_body_bytes,
                    to_json(&p.response_block),
                    p.updated_at_ms,
                    mac
                ],
            )?;
            Ok(())
        })
    }

    /// Adds a binding; `false` if it existed.
    pub fn bind(&self, b: &BindingRow) -> Result<bool> {
        let mac = self.tag(&b.fields())?;
        self.amend_table(BINDINGS, || {
            let n = self.execute(
                "INSERT INTO capability_bindings (capability_id, consumer, scope, workspace_id, group_id, created_at_ms, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                args![
                    b.capability_id,
                    b.consumer,
                    b.scope.kind_str(),
                    b.scope.workspace_id(),
                    b.scope.group_id(),
                    b.created_at_ms,
                    mac
                ],
            )?;
            Ok(n == 1)
        })
    }

    /// Removes a binding; `false` if there was none.
    pub fn unbind(&self, capability_id: &str, consumer: &str, scope: &Scope) -> Result<bool> {
        self.amend_table(BINDINGS, || {
            let n = self.execute(
                "DELETE FROM capability_bindings
                 WHERE capability_id = ?1 AND consumer = ?2 AND scope = ?3 AND workspace_id = ?4 AND group_id = ?5",
                args![capability_id, consumer, scope.kind_str(), scope.workspace_id(), scope.group_id()],
            )?;
            Ok(n == 1)
        })
    }

    /// Every binding with its stored MAC, unchecked.
    pub(super) fn bindings_raw(&self) -> Result<Stored<BindingRow>> {
        self.rows(
            BINDINGS,
            "SELECT capability_id, consumer, scope, workspace_id, group_id, created_at_ms, mac
             FROM capability_bindings ORDER BY capability_id, consumer, scope, workspace_id, group_id",
            &[],
            |r| {
                Ok((
                    BindingRow {
                        capability_id: r.get(0)?,
                        consumer: r.get(1)?,
                        scope: scope_from_row(r, 2)?,
                        created_at_ms: r.get(5)?,
                    },
                    r.get(6)?,
                ))
            },
        )
    }

    /// Every binding, each checked, and the set of them checked against the
    /// table's seal (a deleted binding would open its capability to anyone).
    pub fn bindings(&self) -> Result<Vec<BindingRow>> {
        let bindings = self.checked(self.bindings_raw()?)?;
        self.check_table_seal(BINDINGS)?;
        Ok(bindings)
    }

    /// Invocations of `capability_id` at or after `since_ms`.
    pub fn count_invocations(&self, capability_id: &str, since_ms: i64) -> Result<i64> {
        self.query_one(
            "SELECT COUNT(*) FROM invocations WHERE capability_id = ?1 AND ts_ms >= ?2",
            args![capability_id, since_ms],
            |r| r.get(0),
        )
    }

    /// Records an invocation, and forgets those older than `keep_after_ms`.
    pub fn record_invocation(&self, capability_id: &str, ts_ms: i64, keep_after_ms: i64) -> Result<()> {
        self.forget_invocations(keep_after_ms)?;
        self.execute(
            "INSERT INTO invocations (capability_id, ts_ms) VALUES (?1, ?2)",
            args![capability_id, ts_ms],
        )?;
        Ok(())
    }

    /// Forgets the invocations older than `keep_after_ms`.
    pub fn forget_invocations(&self, keep_after_ms: i64) -> Result<()> {
        self.execute("DELETE FROM invocations WHERE ts_ms < ?1", args![keep_after_ms]).map(|_| ())
    }
}

const POLICY_SELECT: &str = "SELECT capability_id, rate_limit_per_minute, max_request_body_bytes, \
     max_response_body_bytes, response_block, updated_at_ms, mac FROM capability_policies";

fn policy_from_row(r: &Row<'_>) -> Read<(PolicyRow, Option<Vec<u8>>)> {
    Ok((
        PolicyRow {
            capability_id: r.get(0)?,
            rate_limit_per_minute: r.get(1)?,
            max_request_body_bytes: r.get(2)?,
            max_response_body_bytes: r.get(3)?,
            response_block: json_list(r.get(4)?)?,
            updated_at_ms: r.get(5)?,
        },
        r.get(6)?,
    ))
}
