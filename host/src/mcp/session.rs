//! What one MCP session may do, fixed when it starts: a context and
//! consumer from `aivault mcp`'s flags, or a proxy token (checked again at
//! every call, so a revoked or expired token stops the session's calls).
//! Every call goes through the one Broker; nothing here reads a secret.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::broker::{Answer, Broker, DevOverrides, Invocation};
use crate::registry::Registry;
use crate::vault::{KeyCache, Scope, Vault};

/// A capability as a session sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityInfo {
    pub id: String,
    pub provider: String,
    pub description: String,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub hosts: Vec<String>,
}

/// Who a session calls as, given at start.
pub struct Scoping {
    pub context: Scope,
    pub consumer: Option<String>,
    /// A proxy token to act as instead (its context, consumer and
    /// capabilities).
    pub token: Option<Zeroizing<String>>,
}

/// The session's fixed scope.
pub struct Session {
    dir: PathBuf,
    keys: KeyCache,
    registry: Registry,
    dev: DevOverrides,
    context: Scope,
    consumer: Option<String>,
    /// A proxy token the session acts as, instead of the context above.
    token: Option<Zeroizing<String>>,
    timeout: Duration,
}

/// Who a call is made as, right now.
struct Acting {
    context: Scope,
    consumer: Option<String>,
    /// The token's capabilities, when the session acts as a token.
    allowed: Option<Vec<String>>,
    /// How the audit log names the session's credential (a token id).
    token_id: Option<String>,
}

impl Session {
    /// A session; the vault is unlocked now (a passphrase is asked once, at
    /// start) and a token checked, so a bad one fails before serving.
    pub fn start(
        dir: PathBuf,
        keys: KeyCache,
        registry: Registry,
        dev: DevOverrides,
        scoping: Scoping,
        timeout: Duration,
    ) -> Result<Self, String> {
        let Scoping { context, consumer, token } = scoping;
        let session = Session { dir, keys, registry, dev, context, consumer, token, timeout };
        let mut vault = session.vault()?;
        vault.unlock().map_err(|e| e.to_string())?;
        session.acting(&mut vault)?;
        Ok(session)
    }

    fn vault(&self) -> Result<Vault, String> {
        Vault::open_with(&self.dir, self.keys.clone()).map_err(|e| e.to_string())
    }

    fn acting(&self, vault: &mut Vault) -> Result<Acting, String> {
        let Some(presented) = &self.token else {
            return Ok(Acting {
                context: self.context.clone(),
                consumer: self.consumer.clone(),
                allowed: None,
                token_id: None,
            });
        };
        let token = vault.token(presented).map_err(|e| e.to_string())?;
        Ok(Acting {
            context: token.scope.clone(),
            consumer: token.consumer.clone(),
            allowed: Some(token.capabilities.clone()),
            token_id: Some(token.id),
        })
    }

    /// Every capability this session may call now (those a credential in
    /// its context serves, and its token allows), optionally one
    /// provider's.
    pub fn capabilities(&self, provider: Option<&str>) -> Result<Vec<CapabilityInfo>, String> {
        let mut vault = self.vault()?;
        let acting = self.acting(&mut vault)?;
        let mut candidates: Vec<String> = vault
            .credentials()
            .map_err(|e| e.to_string())?
            .into_iter()
            .flat_map(|c| c.capabilities)
            .chain(vault.custom_capabilities().map_err(|e| e.to_string())?.into_iter().map(|c| c.id))
            .collect();
        candidates.sort();
        candidates.dedup();
        let ready: Vec<String> = {
            let mut broker = Broker::new(&mut vault, &self.registry, &self.dev);
            candidates
                .into_iter()
                .filter(|id| acting.allowed.as_ref().is_none_or(|list| list.contains(id)))
                .filter(|id| broker.ready(id, &acting.context, acting.consumer.as_deref()))
                .collect()
        };
        let mut infos = Vec::new();
        for id in ready {
            let info = self.info(&mut vault, &id)?;
            if provider.is_none_or(|p| p == info.provider) {
                infos.push(info);
            }
        }
        Ok(infos)
    }

    /// One capability this session may call.
    pub fn describe(&self, id: &str) -> Result<CapabilityInfo, String> {
        match self.capabilities(None)?.into_iter().find(|c| c.id == id) {
            Some(info) => Ok(info),
            None => Err(self.unavailable(id)),
        }
    }

    fn unavailable(&self, id: &str) -> String {
        match self.registry.capability(id) {
            Ok(_) => format!(
                "{id} is not available to this session (no credential serves it in its context, or its token or consumer may not call it)"
            ),
            Err(e) => e.to_string(),
        }
    }

    fn info(&self, vault: &mut Vault, id: &str) -> Result<CapabilityInfo, String> {
        if let Ok(c) = self.registry.capability(id) {
            return Ok(CapabilityInfo {
                id: id.to_string(),
                provider: c.provider.id().to_string(),
                description: c.capability.description.clone(),
                methods: c.capability.methods.clone(),
                path_prefixes: c.capability.path_prefixes.clone(),
                hosts: c.capability.hosts.iter().map(ToString::to_string).collect(),
            });
        }
        let custom = vault.custom_capabilities().map_err(|e| e.to_string())?;
        let c = custom.into_iter().find(|c| c.id == id).ok_or_else(|| self.unavailable(id))?;
        Ok(CapabilityInfo {
            id: c.id.clone(),
            provider: c.id.split('/').next().unwrap_or_default().to_string(),
            description: c.description,
            methods: c.methods,
            path_prefixes: c.path_prefixes,
            hosts: c.host.into_iter().collect(),
        })
    }

    /// Invokes `call` as this session: its context and consumer replace
    /// whatever the call says; a capability outside the session is refused
    /// before the broker sees it. `client` names the MCP client in the audit log.
    pub fn invoke(&self, mut call: Invocation, client: &str) -> Result<Answer, String> {
        let mut vault = self.vault()?;
        let acting = self.acting(&mut vault)?;
        if acting.allowed.as_ref().is_some_and(|list| !list.contains(&call.capability)) {
            return Err(format!("this session's proxy token may not call {}", call.capability));
        }
        call.workspace_id = Some(acting.context.workspace_id().to_string()).filter(|w| !w.is_empty());
        call.group_id = Some(acting.context.group_id().to_string()).filter(|g| !g.is_empty());
        call.consumer = acting.consumer;
        call.timeout = self.timeout;
        call.via = Some(match &acting.token_id {
            Some(id) => format!("mcp client {client}, token {id}"),
            None => format!("mcp client {client}"),
        });
        Broker::new(&mut vault, &self.registry, &self.dev).invoke(&call).map_err(|e| e.to_string())
    }
}
