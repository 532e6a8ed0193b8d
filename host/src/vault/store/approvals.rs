//! Operator approvals of dropped-in provider components.

use rusqlite::params;

use super::{Result, Tx};

/// One approved component: the digest and manifest the operator saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub provider_id: String,
    pub file_name: String,
    pub sha256: String,
    /// The approved manifest, as JSON.
    pub manifest: String,
    pub enabled: bool,
    pub approved_at_ms: i64,
}

impl Tx<'_> {
    pub fn approvals(&self) -> Result<Vec<ApprovalRow>> {
        let mut stmt = self.tx.prepare(
            "SELECT provider_id, file_name, sha256, manifest, enabled, approved_at_ms
             FROM provider_approvals ORDER BY provider_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ApprovalRow {
                provider_id: r.get(0)?,
                file_name: r.get(1)?,
                sha256: r.get(2)?,
                manifest: r.get(3)?,
                enabled: r.get(4)?,
                approved_at_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_approval(&self, a: &ApprovalRow) -> Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO provider_approvals (provider_id, file_name, sha256, manifest, enabled, approved_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![a.provider_id, a.file_name, a.sha256, a.manifest, a.enabled, a.approved_at_ms],
        )?;
        Ok(())
    }

    /// `false` if there was no such approval.
    pub fn delete_approval(&self, provider_id: &str) -> Result<bool> {
        Ok(self.tx.execute("DELETE FROM provider_approvals WHERE provider_id = ?1", [provider_id])? == 1)
    }
}
