//! Recording which dropped-in provider components the operator approved.

use serde_json::json;

use super::audit::{self, Event};
use super::store::ApprovalRow;
use super::{Result, Vault, now_ms};

impl Vault {
    /// Every approval.
    pub fn approvals(&mut self) -> Result<Vec<ApprovalRow>> {
        Ok(self.store.read()?.approvals()?)
    }

    /// Records (or replaces) an approval, audited with its digest.
    pub fn approve(&mut self, approval: ApprovalRow) -> Result<()> {
        let tx = self.store.write()?;
        tx.put_approval(&approval)?;
        let kind = if approval.enabled { "provider.approve" } else { "provider.disable" };
        let details = json!({"file": approval.file_name, "sha256": approval.sha256});
        audit::append(&tx, &Event::new(kind, &approval.provider_id, details), now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets an approval; `false` if there was none.
    pub fn forget_approval(&mut self, provider_id: &str) -> Result<bool> {
        let tx = self.store.write()?;
        let removed = tx.delete_approval(provider_id)?;
        if removed {
            audit::append(&tx, &Event::new("provider.remove", provider_id, json!({})), now_ms())?;
        }
        tx.commit()?;
        Ok(removed)
    }
}
