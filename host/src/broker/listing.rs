//! What a caller may invoke in a context: the capabilities a credential
//! there serves (and the caller's token or grant allows), as front-ends
//! list them to agents. Nothing is sent, decrypted or audited.

use serde::{Deserialize, Serialize};

use super::{Broker, DevOverrides};
use crate::registry::Registry;
use crate::vault::{Scope, Vault};

/// A capability as a caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityInfo {
    pub id: String,
    pub provider: String,
    pub description: String,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub hosts: Vec<String>,
}

/// Who lists: the context and consumer calls run as, and (for a token or
/// an agent's grants) the capabilities allowed at all.
pub struct Caller<'a> {
    pub context: &'a Scope,
    pub consumer: Option<&'a str>,
    pub allowed: Option<&'a [String]>,
}

/// Every capability `caller` may invoke now, optionally one provider's.
pub fn callable(
    vault: &mut Vault,
    registry: &Registry,
    dev: &DevOverrides,
    caller: &Caller<'_>,
    provider: Option<&str>,
) -> Result<Vec<CapabilityInfo>, String> {
    let mut candidates: Vec<String> = vault
        .credentials()
        .map_err(|e| e.to_string())?
        .into_iter()
        .flat_map(|c| c.capabilities)
        .chain(vault.custom_capabilities().map_err(|e| e.to_string())?.into_iter().map(|c| c.id))
        .filter(|id| caller.allowed.is_none_or(|list| list.contains(id)))
        .collect();
    candidates.sort();
    candidates.dedup();
    let ready: Vec<String> = {
        let mut broker = Broker::new(vault, registry, dev);
        candidates.into_iter().filter(|id| broker.ready(id, caller.context, caller.consumer)).collect()
    };
    let mut infos = Vec::new();
    for id in ready {
        if let Some(info) = info(vault, registry, &id)?
            && provider.is_none_or(|p| p == info.provider)
        {
            infos.push(info);
        }
    }
    Ok(infos)
}

/// How a caller who may not invoke `id` is told so.
pub fn unavailable(registry: &Registry, id: &str) -> String {
    match registry.capability(id) {
        Ok(_) => format!(
            "{id} is not available here (no credential serves it in this context, or the token, grant or consumer may not call it)"
        ),
        Err(e) => e.to_string(),
    }
}

fn info(vault: &mut Vault, registry: &Registry, id: &str) -> Result<Option<CapabilityInfo>, String> {
    if let Ok(c) = registry.capability(id) {
        return Ok(Some(CapabilityInfo {
            id: id.to_string(),
            provider: c.provider.id().to_string(),
            description: c.capability.description.clone(),
            methods: c.capability.methods.clone(),
            path_prefixes: c.capability.path_prefixes.clone(),
            hosts: c.capability.hosts.iter().map(ToString::to_string).collect(),
        }));
    }
    let custom = vault.custom_capabilities().map_err(|e| e.to_string())?;
    Ok(custom.into_iter().find(|c| c.id == id).map(|c| CapabilityInfo {
        provider: c.id.split('/').next().unwrap_or_default().to_string(),
        id: c.id,
        description: c.description,
        methods: c.methods,
        path_prefixes: c.path_prefixes,
        hosts: c.host.into_iter().collect(),
    }))
}
