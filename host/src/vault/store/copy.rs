//! Copying a whole vault from one database to another, row for row: MACs,
//! seals and the audit chain arrive as they were, so the copy verifies
//! under the same key and nothing has to be re-authenticated.

use super::sql::{Column, Read, SqlError, ToValue, Value};
use super::{Result, Tx};

/// Every table and its columns, parents before the rows that refer to them.
const TABLES: &[(&str, &[&str])] = &[
    (
        "key_config",
        &["singleton", "provider", "kek_id", "params", "key_check", "created_at_ms", "rotated_at_ms"],
    ),
    (
        "secrets",
        &[
            "id",
            "name",
            "scope",
            "workspace_id",
            "group_id",
            "pinned_provider",
            "value_version",
            "ciphertext",
            "wrapped_dek",
            "kek_id",
            "created_at_ms",
            "updated_at_ms",
            "mac",
        ],
    ),
    ("secret_aliases", &["secret_id", "alias", "scope", "workspace_id", "group_id"]),
    ("group_attachments", &["secret_id", "workspace_id", "group_id", "created_at_ms"]),
    (
        "credentials",
        &[
            "id",
            "provider",
            "kind",
            "scope",
            "workspace_id",
            "group_id",
            "host",
            "auto_provisioned",
            "created_at_ms",
            "mac",
        ],
    ),
    ("credential_secrets", &["credential_id", "secret_name", "secret_id"]),
    ("credential_capabilities", &["credential_id", "capability_id"]),
    (
        "custom_capabilities",
        &["id", "credential_id", "description", "methods", "path_prefixes", "host", "created_at_ms", "mac"],
    ),
    (
        "capability_policies",
        &[
            "capability_id",
            "rate_limit_per_minute",
            "max_request_body_bytes",
            "max_response_body_bytes",
            "response_block",
            "updated_at_ms",
            "mac",
        ],
    ),
    (
        "capability_bindings",
        &["capability_id", "consumer", "scope", "workspace_id", "group_id", "created_at_ms", "mac"],
    ),
    ("invocations", &["capability_id", "ts_ms"]),
    (
        "provider_approvals",
        &["provider_id", "file_name", "sha256", "manifest", "enabled", "approved_at_ms", "mac"],
    ),
    ("seals", &["name", "value", "mac"]),
    ("generation", &["only_row", "value"]),
    (
        "proxy_tokens",
        &[
            "id",
            "hash",
            "capabilities",
            "scope",
            "workspace_id",
            "group_id",
            "consumer",
            "created_at_ms",
            "expires_at_ms",
            "mac",
        ],
    ),
    (
        "agent_grants",
        &[
            "uid",
            "\"user\"",
            "capability_id",
            "scope",
            "workspace_id",
            "group_id",
            "consumer",
            "created_at_ms",
            "mac",
        ],
    ),
    ("derived_tokens", &["credential_id", "kind", "source", "ciphertext", "wrapped_dek", "refreshed_at_ms"]),
    ("audit", &["seq", "ts_ms", "event", "subject", "details", "prev_hash", "hash", "mac"]),
];

/// A column's value, whatever its type.
#[derive(Debug, Clone)]
enum Owned {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Column for Owned {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        use rusqlite::types::ValueRef;
        Ok(match row.get_ref(i)? {
            ValueRef::Null => Owned::Null,
            ValueRef::Integer(v) => Owned::Int(v),
            ValueRef::Text(v) => Owned::Text(String::from_utf8_lossy(v).into_owned()),
            ValueRef::Blob(v) => Owned::Blob(v.to_vec()),
            ValueRef::Real(_) => {
                return Err(rusqlite::Error::InvalidColumnType(
                    i,
                    "a number".into(),
                    rusqlite::types::Type::Real,
                ));
            }
        })
    }

    fn postgres(row: &postgres::Row, i: usize) -> Read<Self> {
        use postgres::types::Type;
        let ty = row.columns().get(i).map(|c| c.type_().clone());
        Ok(match ty {
            Some(Type::INT8) => Option::<i64>::postgres(row, i)?.map_or(Owned::Null, Owned::Int),
            Some(Type::BYTEA) => Option::<Vec<u8>>::postgres(row, i)?.map_or(Owned::Null, Owned::Blob),
            Some(Type::TEXT) => Option::<String>::postgres(row, i)?.map_or(Owned::Null, Owned::Text),
            other => return Err(SqlError::decode(i, format!("a column of type {other:?}"))),
        })
    }
}

impl ToValue for Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(v) => Value::Int(*v),
            Owned::Text(v) => Value::Text(v),
            Owned::Blob(v) => Value::Blob(v),
        }
    }
}

impl Tx<'_> {
    /// Whether this database holds a vault: a key, a secret or an event.
    pub fn holds_a_vault(&self) -> Result<bool> {
        self.query_one(
            "SELECT EXISTS (SELECT 1 FROM key_config) OR EXISTS (SELECT 1 FROM secrets)
                 OR EXISTS (SELECT 1 FROM audit)",
            &[],
            |r| r.get(0),
        )
    }

    /// Rows in all the tables a migration copies.
    pub fn count_rows(&self) -> Result<usize> {
        let mut total = 0;
        for (table, _) in TABLES {
            total +=
                self.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[], |r| r.get::<i64>(0))? as usize;
        }
        Ok(total)
    }

    /// Copies every row of `source` into this database, which must hold no
    /// vault; returns how many rows. Nothing is re-sealed or re-keyed.
    pub fn copy_from(&self, source: &Tx<'_>) -> Result<usize> {
        let mut copied = 0;
        for (table, columns) in TABLES {
            let list = columns.join(", ");
            let width = columns.len();
            let rows = source.query(&format!("SELECT {list} FROM {table}"), &[], |r| {
                (0..width).map(|i| r.get::<Owned>(i)).collect::<Read<Vec<_>>>()
            })?;
            let placeholders: Vec<String> = (1..=width).map(|i| format!("?{i}")).collect();
            let insert = format!("INSERT INTO {table} ({list}) VALUES ({})", placeholders.join(", "));
            for row in &rows {
                let args: Vec<Value<'_>> = row.iter().map(ToValue::value).collect();
                self.execute(&insert, &args)?;
            }
            copied += rows.len();
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::TABLES;

    // A migration that adds a table or a column must add it here too, or
    // `aivault migrate` would leave it behind.
    #[test]
    fn every_table_and_column_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::super::Store::open(dir.path()).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut listed: Vec<String> = TABLES.iter().map(|(t, _)| t.to_string()).collect();
        tables.sort();
        listed.sort();
        assert_eq!(tables, listed);
        for (table, columns) in TABLES {
            let mut stored: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let mut copied: Vec<String> = columns.iter().map(|c| c.trim_matches('"').to_string()).collect();
            stored.sort();
            copied.sort();
            assert_eq!(stored, copied, "{table}");
        }
    }
}
