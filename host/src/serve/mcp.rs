//! `aivault serve --mcp`: the tools of `aivault mcp` on Streamable HTTP at
//! `/mcp`, for agents that reach aivault over HTTP. Every request carries a
//! proxy token (checked by the routes before it gets here); each token gets
//! its own MCP service, so a session one token opened is unknown to every
//! other, and each session acts as its token (re-checked at every call).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tower_service::Service as _;
use zeroize::Zeroizing;

use super::Shared;
use crate::mcp::server::McpServer;
use crate::mcp::{Route, Scoping, Session};
use crate::vault::{Scope, TokenRow};

/// Answer bodies past this are cut, as `aivault mcp`'s default.
const MAX_OUTPUT_BYTES: usize = 100_000;

type Service = StreamableHttpService<McpServer, LocalSessionManager>;

/// The MCP services, one per proxy token id.
#[derive(Default)]
pub struct McpEndpoint {
    services: Mutex<HashMap<String, Service>>,
}

impl McpEndpoint {
    /// Serves `request`, made with the (already checked) token `token`,
    /// presented as `presented`.
    pub(super) async fn handle(
        &self,
        shared: &Arc<Shared>,
        token: &TokenRow,
        presented: &str,
        request: Request<Incoming>,
    ) -> Response<BoxBody<Bytes, Infallible>> {
        let mut service = {
            let mut services = self.services.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            services.entry(token.id.clone()).or_insert_with(|| service_for(shared, presented)).clone()
        };
        match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Runs blocking `work` from a serving thread, on a thread of its own (a
/// runtime of one thread allows no `block_in_place`); the serving thread's
/// other connections wait meanwhile: it runs once per MCP session.
fn outside_the_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// An MCP service whose every session acts as the token `presented`.
fn service_for(shared: &Arc<Shared>, presented: &str) -> Service {
    let shared = Arc::clone(shared);
    let presented = Zeroizing::new(presented.to_string());
    let mut config = StreamableHttpServerConfig::default();
    config.max_request_body_bytes = shared.options.max_body_bytes;
    let config = match &shared.options.allow_remote {
        // Beyond loopback the operator chose the address; the token is the guard.
        Some(_) => config.disable_allowed_hosts(),
        None => config,
    };
    StreamableHttpService::new(
        move || {
            let route = Route::Local { vaults: Arc::clone(&shared.vaults), dev: shared.dev.clone() };
            let scoping = Scoping { context: Scope::Global, consumer: None, token: Some(presented.clone()) };
            // Starting checks the token against the vault: blocking work,
            // which must not run inside the runtime (a database server's
            // client starts one of its own).
            let (registry, timeout) = (Arc::clone(&shared.registry), shared.options.timeout);
            let session = outside_the_runtime(move || Session::start(route, registry, scoping, timeout))
                .map_err(std::io::Error::other)?;
            Ok(McpServer::new(session, false, MAX_OUTPUT_BYTES))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
