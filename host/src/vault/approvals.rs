//! Recording which dropped-in provider components the operator approved. An
//! approval decides which code runs, so one that fails its integrity check
//! (or cannot be checked, in a locked vault) is not used.

use serde_json::json;

use super::audit::{self, Event};
use super::store::ApprovalRow;
use super::unlock::KeyUse;
use super::{Result, Vault, VaultError, now_ms};

/// The approvals in the vault, split by whether they can be trusted.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    /// Approvals whose MAC verifies: the components the registry may load.
    pub trusted: Vec<ApprovalRow>,
    /// `(provider id, why its approval is not used)`.
    pub untrusted: Vec<(String, String)>,
}

impl Vault {
    /// Every approval, checked. Unlocks the vault only when there is one.
    pub fn approvals(&mut self) -> Result<Approvals> {
        let rows = self.begin_read(KeyUse::Skip)?.approvals_raw()?;
        if rows.is_empty() {
            return Ok(Approvals::default());
        }
        let tx = match self.begin_read(KeyUse::Required) {
            Ok(tx) => tx,
            Err(e @ VaultError::Key(_)) => {
                let untrusted = rows
                    .into_iter()
                    .map(|(a, _)| {
                        (
                            a.provider_id,
                            format!("its approval cannot be verified while the vault is locked ({e})"),
                        )
                    })
                    .collect();
                return Ok(Approvals { trusted: Vec::new(), untrusted });
            }
            Err(e) => return Err(e),
        };
        let mut approvals = Approvals::default();
        let sealed = tx.approvals_sealed()?;
        for (approval, mac) in tx.approvals_raw()? {
            if !sealed && tx.approval_trusted(&approval, mac.as_deref()) {
                let reason =
                    "the set of provider approvals was changed outside aivault (one was added, removed \
                              or replaced); review `aivault provider list`, then `aivault doctor --reseal`"
                        .to_string();
                approvals.untrusted.push((approval.provider_id, reason));
                continue;
            }
            if tx.approval_trusted(&approval, mac.as_deref()) {
                approvals.trusted.push(approval);
            } else {
                let reason = format!(
                    "its approval failed its integrity check (the vault may have been edited outside aivault); \
                     review it and re-approve with `aivault provider enable {}`",
                    crate::vault::integrity::shown(&approval.provider_id)
                );
                approvals.untrusted.push((approval.provider_id, reason));
            }
        }
        Ok(approvals)
    }

    /// Records (or replaces) an approval, audited with its digest.
    pub fn approve(&mut self, approval: ApprovalRow) -> Result<()> {
        let tx = self.begin_write()?;
        tx.put_approval(&approval)?;
        let kind = if approval.enabled { "provider.approve" } else { "provider.disable" };
        let details = json!({"file": approval.file_name, "sha256": approval.sha256});
        audit::append(&tx, &Event::new(kind, &approval.provider_id, details), now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets an approval; `false` if there was none.
    pub fn forget_approval(&mut self, provider_id: &str) -> Result<bool> {
        let tx = self.begin_write()?;
        let removed = tx.delete_approval(provider_id)?;
        if removed {
            audit::append(&tx, &Event::new("provider.remove", provider_id, json!({})), now_ms())?;
        }
        tx.commit()?;
        Ok(removed)
    }
}
