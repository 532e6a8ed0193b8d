//! Operator approvals of dropped-in provider components. An approval decides
//! which native code is compiled and run, so it carries a MAC like every
//! other row the registry trusts.

use super::sql::args;
use super::{Authenticated, Result, Stored, Tx};
use crate::vault::integrity::{Fields, shown};

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

pub(super) const TABLE: &str = "provider_approvals";

impl Authenticated for ApprovalRow {
    const TABLE: &'static str = TABLE;

    fn fields(&self) -> Fields {
        Fields::new("aivault/v1/approval")
            .text(&self.provider_id)
            .text(&self.file_name)
            .text(&self.sha256)
            .text(&self.manifest)
            .flag(self.enabled)
            .int(self.approved_at_ms)
    }

    fn described(&self) -> String {
        format!("the approval of provider `{}`", shown(&self.provider_id))
    }
}

impl Tx<'_> {
    /// Every approval with its stored MAC, unchecked.
    pub fn approvals_raw(&self) -> Result<Stored<ApprovalRow>> {
        self.rows(
            TABLE,
            "SELECT provider_id, file_name, sha256, manifest, enabled, approved_at_ms, mac
             FROM provider_approvals ORDER BY provider_id",
            &[],
            |r| {
                Ok((
                    ApprovalRow {
                        provider_id: r.get(0)?,
                        file_name: r.get(1)?,
                        sha256: r.get(2)?,
                        manifest: r.get(3)?,
                        enabled: r.get(4)?,
                        approved_at_ms: r.get(5)?,
                    },
                    r.get(6)?,
                ))
            },
        )
    }

    /// Whether `approval` carries an authentic MAC. Only a vault that
    /// predates row authentication is trusted as found; one whose key
    /// cannot be had is not trusted at all.
    pub fn approval_trusted(&self, approval: &ApprovalRow, mac: Option<&[u8]>) -> bool {
        match &self.keys {
            None => false,
            Some(keys) if keys.is_legacy() => true,
            Some(_) => self.authentic(&approval.fields(), mac),
        }
    }

    /// Whether the set of approvals is the one aivault last sealed (an
    /// approval revoked by the operator and put back would otherwise count).
    pub fn approvals_sealed(&self) -> Result<bool> {
        match &self.keys {
            Some(keys) if !keys.is_legacy() => self.table_sealed(TABLE),
            _ => Ok(true),
        }
    }

    pub fn put_approval(&self, a: &ApprovalRow) -> Result<()> {
        let mac = self.tag(&a.fields())?;
        self.touch_table(TABLE)?;
        self.execute(
            "INSERT INTO provider_approvals (provider_id, file_name, sha256, manifest, enabled, approved_at_ms, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (provider_id) DO UPDATE SET file_name = excluded.file_name, sha256 = excluded.sha256,
                 manifest = excluded.manifest, enabled = excluded.enabled,
                 approved_at_ms = excluded.approved_at_ms, mac = excluded.mac",
            args![a.provider_id, a.file_name, a.sha256, a.manifest, a.enabled, a.approved_at_ms, mac],
        )?;
        Ok(())
    }

    /// `false` if there was no such approval.
    pub fn delete_approval(&self, provider_id: &str) -> Result<bool> {
        self.touch_table(TABLE)?;
        Ok(self.execute("DELETE FROM provider_approvals WHERE provider_id = ?1", args![provider_id])? == 1)
    }
}
