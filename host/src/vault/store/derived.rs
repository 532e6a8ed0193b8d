//! Rows of values derived by a token refresh: sealed, one per credential
//! and kind, replaced by each refresh.

use super::sql::args;
use super::{Result, Tx};
use crate::vault::crypto::Sealed;

/// A sealed set of derived values.
#[derive(Debug, Clone)]
pub struct DerivedRow {
    pub credential_id: String,
    pub kind: String,
    /// The secrets' ids and value versions they were derived from.
    pub source: String,
    pub sealed: Sealed,
    pub refreshed_at_ms: i64,
}

impl Tx<'_> {
    pub fn derived_row(&self, credential_id: &str, kind: &str) -> Result<Option<DerivedRow>> {
        self.query_opt(
            "SELECT source, ciphertext, wrapped_dek, refreshed_at_ms FROM derived_tokens
                 WHERE credential_id = ?1 AND kind = ?2",
            args![credential_id, kind],
            |r| {
                Ok(DerivedRow {
                    credential_id: credential_id.to_string(),
                    kind: kind.to_string(),
                    source: r.get(0)?,
                    sealed: Sealed { ciphertext: r.get(1)?, wrapped_dek: r.get(2)? },
                    refreshed_at_ms: r.get(3)?,
                })
            },
        )
    }

    pub fn put_derived_row(&self, row: &DerivedRow) -> Result<()> {
        self.execute(
            "INSERT INTO derived_tokens (credential_id, kind, source, ciphertext, wrapped_dek, refreshed_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (credential_id, kind) DO UPDATE SET source = excluded.source,
                 ciphertext = excluded.ciphertext, wrapped_dek = excluded.wrapped_dek,
                 refreshed_at_ms = excluded.refreshed_at_ms",
            args![
                row.credential_id,
                row.kind,
                row.source,
                row.sealed.ciphertext,
                row.sealed.wrapped_dek,
                row.refreshed_at_ms
            ],
        )?;
        Ok(())
    }

    /// Forgets every derived value (they are derived again on demand), e.g.
    /// when the master key changes.
    pub fn delete_derived_rows(&self) -> Result<()> {
        self.execute("DELETE FROM derived_tokens", &[])?;
        Ok(())
    }
}
