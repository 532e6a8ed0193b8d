//! Agent grants: the operator lets another OS user invoke chosen
//! capabilities through aivaultd, each in one context and as one consumer.
//! Nothing of the agent's own request can change either.

use serde_json::json;

use super::audit::{self, Event};
use super::management::{ManageError, check_token, ensure_capability_known};
use super::scope::Scope;
use super::store::GrantRow;
use super::unlock::KeyUse;
use super::{Result, Vault, now_ms};
use crate::registry::Registry;

/// A grant to record.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub uid: u32,
    pub user: String,
    pub capabilities: Vec<String>,
    pub scope: Scope,
    /// Defaults to the user's name.
    pub consumer: Option<String>,
}

impl Vault {
    /// Grants (or re-grants, replacing the context) each capability.
    pub fn allow_agent(&mut self, registry: &Registry, new: NewGrant) -> Result<Vec<GrantRow>> {
        let consumer = new.consumer.unwrap_or_else(|| new.user.clone());
        check_token(&consumer, "._-@").map_err(|()| ManageError::BadConsumer(consumer.clone()))?;
        let tx = self.begin_write()?;
        let now = now_ms();
        let mut rows = Vec::new();
        for capability in &new.capabilities {
            ensure_capability_known(&tx, registry, capability)?;
            let row = GrantRow {
                uid: new.uid,
                user: new.user.clone(),
                capability: capability.clone(),
                scope: new.scope.clone(),
                consumer: consumer.clone(),
                created_at_ms: now,
            };
            tx.put_grant(&row)?;
            let details = json!({"user": row.user, "uid": row.uid, "context": row.scope.to_string(), "consumer": row.consumer});
            audit::append(&tx, &Event::new("agent.allow", capability, details), now)?;
            rows.push(row);
        }
        tx.commit()?;
        Ok(rows)
    }

    /// Every grant.
    pub fn grants(&mut self) -> Result<Vec<GrantRow>> {
        Ok(self.begin_listing()?.grants()?)
    }

    /// The grant letting `uid` invoke `capability`, checked (with the
    /// table's seal, so a revoked grant put back does not count).
    pub fn grant_for(&mut self, uid: u32, capability: &str) -> Result<Option<GrantRow>> {
        let tx = self.begin_read(KeyUse::Required)?;
        Ok(tx.grants()?.into_iter().find(|g| g.uid == uid && g.capability == capability))
    }

    /// Removes `uid`'s grant of `capability`, or all its grants; how many.
    pub fn revoke_agent(&mut self, uid: u32, user: &str, capability: Option<&str>) -> Result<usize> {
        let mut tx = self.begin_write()?;
        tx.skip_checks();
        let removed = tx.delete_grants(uid, capability)?;
        if removed == 0 {
            return Err(ManageError::NoGrant(user.to_string()).into());
        }
        let details = json!({"user": user, "uid": uid, "capability": capability, "removed": removed});
        audit::append(&tx, &Event::new("agent.revoke", user, details), now_ms())?;
        tx.commit()?;
        Ok(removed)
    }
}
