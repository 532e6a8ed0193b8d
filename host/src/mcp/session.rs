//! What one MCP session may do, fixed when it starts: a context and
//! consumer from `aivault mcp`'s flags, or a proxy token (checked again at
//! every call, so a revoked or expired token stops the session's calls).
//! Every call goes through the one Broker, in this process or, when
//! aivaultd runs, in the daemon (so this process never holds the key, and
//! an agent OS user gets exactly its grants); nothing here reads a secret.

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::broker::listing::{self, Caller, CapabilityInfo};
use crate::broker::{Answer, Broker, Buffer, Delivered, DevOverrides, Invocation};
use crate::daemon::client::Client;
use crate::daemon::protocol::{Call, CapabilityQuery, Request, Response};
use crate::registry::Registry;
use crate::vault::{PooledVault, Scope, Vault, VaultPool};

/// How long aivaultd has to answer, beyond a call's own timeout.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

/// Who a session calls as, given at start.
pub struct Scoping {
    pub context: Scope,
    pub consumer: Option<String>,
    /// A proxy token to act as instead (its context, consumer and
    /// capabilities).
    pub token: Option<Zeroizing<String>>,
}

/// Where calls are served.
pub enum Route {
    /// In this process, on this vault (its connections reused from call to
    /// call).
    Local { vaults: Arc<VaultPool>, dev: DevOverrides },
    /// By the running aivaultd.
    Daemon(Client),
}

/// The session's fixed scope.
pub struct Session {
    route: Route,
    registry: Arc<Registry>,
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
        route: Route,
        registry: Arc<Registry>,
        scoping: Scoping,
        timeout: Duration,
    ) -> Result<Self, String> {
        let Scoping { context, consumer, token } = scoping;
        if token.is_some() && matches!(route, Route::Daemon(_)) {
            return Err("a token session is served in this process, not through aivaultd".into());
        }
        let session = Session { route, registry, context, consumer, token, timeout };
        if let Route::Local { .. } = &session.route {
            let mut vault = session.vault()?;
            vault.unlock().map_err(|e| e.to_string())?;
            session.acting(&mut vault)?;
        }
        Ok(session)
    }

    fn vault(&self) -> Result<PooledVault, String> {
        match &self.route {
            Route::Local { vaults, .. } => vaults.get().map_err(|e| e.to_string()),
            Route::Daemon(_) => Err("internal error: the vault is the daemon's".into()),
        }
    }

    fn dev(&self) -> DevOverrides {
        match &self.route {
            Route::Local { dev, .. } => dev.clone(),
            Route::Daemon(_) => DevOverrides::default(),
        }
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
        if let Route::Daemon(client) = &self.route {
            let query = CapabilityQuery {
                workspace_id: Some(self.context.workspace_id().to_string()).filter(|w| !w.is_empty()),
                group_id: Some(self.context.group_id().to_string()).filter(|g| !g.is_empty()),
                consumer: self.consumer.clone(),
                provider: provider.map(str::to_string),
            };
            return match client
                .request(&Request::Capabilities(query), DAEMON_TIMEOUT)
                .map_err(|e| e.to_string())?
            {
                Response::Capabilities { capabilities } => Ok(capabilities),
                Response::Error { message } => Err(message),
                _ => Err("aivaultd gave an unexpected answer".into()),
            };
        }
        let mut vault = self.vault()?;
        let acting = self.acting(&mut vault)?;
        let caller = Caller {
            context: &acting.context,
            consumer: acting.consumer.as_deref(),
            allowed: acting.allowed.as_deref(),
        };
        listing::callable(&mut vault, &self.registry, &self.dev(), &caller, provider)
    }

    /// One capability this session may call.
    pub fn describe(&self, id: &str) -> Result<CapabilityInfo, String> {
        match self.capabilities(None)?.into_iter().find(|c| c.id == id) {
            Some(info) => Ok(info),
            None => Err(listing::unavailable(&self.registry, id)),
        }
    }

    /// Invokes `call` as this session: its context and consumer replace
    /// whatever the call says; a capability outside the session is refused
    /// before the broker sees it. `client` names the MCP client in the audit log.
    pub fn invoke(&self, mut call: Invocation, client: &str) -> Result<Answer, String> {
        if let Route::Daemon(daemon) = &self.route {
            call.workspace_id = Some(self.context.workspace_id().to_string()).filter(|w| !w.is_empty());
            call.group_id = Some(self.context.group_id().to_string()).filter(|g| !g.is_empty());
            call.consumer = self.consumer.clone();
            call.timeout = self.timeout;
            let mut sent = Call::from_invocation(&call);
            sent.client = Some(format!("mcp client {client}"));
            let mut buffer = Buffer::default();
            let redacted = daemon
                .invoke(&Request::Invoke(sent), self.timeout + DAEMON_TIMEOUT, &mut buffer)
                .map_err(|e| e.to_string())?;
            return Ok(buffer.into_answer(Delivered { status: 0, redacted, streamed: false }));
        }
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
        Broker::new(&mut vault, &self.registry, &self.dev()).invoke(&call).map_err(|e| e.to_string())
    }
}
