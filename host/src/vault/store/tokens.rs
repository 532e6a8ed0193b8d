//! Proxy tokens for `aivault serve`: what each may call, in which context,
//! until when. The token itself is never stored, only its SHA-256 (a token
//! is 256 random bits, so a fast hash is enough to make it unrecoverable).

use super::sql::{Read, Row, SqlError, args};
use super::{Authenticated, Result, Stored, Tx, decoded, scope_fields, scope_from_row};
use crate::vault::integrity::{Fields, shown};
use crate::vault::scope::Scope;

/// One proxy token, without the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    pub capabilities: Vec<String>,
    /// The context every call made with it runs in.
    pub scope: Scope,
    pub consumer: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

const TABLE: &str = "proxy_tokens";

const COLUMNS: &str =
    "id, hash, capabilities, scope, workspace_id, group_id, consumer, created_at_ms, expires_at_ms";

impl Authenticated for TokenRow {
    const TABLE: &'static str = TABLE;

    fn fields(&self) -> Fields {
        let fields = Fields::new("aivault/v1/proxy-token")
            .text(&self.id)
            .text(&self.hash)
            .list(self.capabilities.iter().map(String::as_str));
        scope_fields(fields, &self.scope)
            .opt(self.consumer.as_deref())
            .int(self.created_at_ms)
            .opt_int(self.expires_at_ms)
    }

    fn described(&self) -> String {
        format!("proxy token `{}`", shown(&self.id))
    }
}

fn token_from_row(r: &Row<'_>) -> Read<(TokenRow, Option<Vec<u8>>)> {
    let capabilities: String = r.get(2)?;
    let capabilities = serde_json::from_str(&capabilities).map_err(|e| SqlError::decode(2, e))?;
    Ok((
        TokenRow {
            id: r.get(0)?,
            hash: r.get(1)?,
            capabilities,
            scope: scope_from_row(r, 3)?,
            consumer: r.get(6)?,
            created_at_ms: r.get(7)?,
            expires_at_ms: r.get(8)?,
        },
        r.get(9)?,
    ))
}

impl Tx<'_> {
    pub fn insert_token(&self, t: &TokenRow) -> Result<()> {
        let mac = self.tag(&t.fields())?;
        let capabilities = serde_json::to_string(&t.capabilities).expect("a list of strings serialises");
        self.amend_table(TABLE, || {
            self.execute(
                &format!("INSERT INTO proxy_tokens ({COLUMNS}, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                args![
                    t.id,
                    t.hash,
                    capabilities,
                    t.scope.kind_str(),
                    t.scope.workspace_id(),
                    t.scope.group_id(),
                    t.consumer,
                    t.created_at_ms,
                    t.expires_at_ms,
                    mac
                ],
            )?;
            Ok(())
        })
    }

    /// Every token with its stored MAC, unchecked.
    pub(super) fn tokens_raw(&self) -> Result<Stored<TokenRow>> {
        self.rows(TABLE, &format!("SELECT {COLUMNS}, mac FROM proxy_tokens ORDER BY id"), &[], token_from_row)
    }

    /// Every token, checked.
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = self.checked(self.tokens_raw()?)?;
        self.check_table_seal(TABLE)?;
        Ok(rows)
    }

    /// The token whose hash is `hash`, checked, with the table's seal (a
    /// revoked token put back must not serve).
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        let stored = decoded(
            TABLE,
            self.conn.query_opt(
                &format!("SELECT {COLUMNS}, mac FROM proxy_tokens WHERE hash = ?1"),
                args![hash],
                token_from_row,
            ),
        )?;
        let row = self.checked(stored.into_iter().collect())?.pop();
        if row.is_some() {
            self.check_table_seal(TABLE)?;
        }
        Ok(row)
    }

    /// Deletes a token; `false` if there was none.
    pub fn delete_token(&self, id: &str) -> Result<bool> {
        self.amend_table(
            TABLE,
            || Ok(self.execute("DELETE FROM proxy_tokens WHERE id = ?1", args![id])? == 1),
        )
    }
}
