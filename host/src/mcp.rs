//! `aivault mcp`: capabilities as tools for AI agents, over the Model
//! Context Protocol on stdio, built on the official Rust MCP SDK (rmcp).
//! A session's scope (context, consumer, or a proxy token) is fixed when it
//! starts and cannot be widened by a tool call; every call goes through the
//! one Broker, which applies policy, redaction and audit (naming the MCP
//! client). No tool returns a secret or changes the vault.

mod guard;
pub(crate) mod server;
mod session;
mod tools;

use std::time::Duration;

use rmcp::ServiceExt as _;

pub use session::{Route, Scoping, Session};

use crate::registry::Registry;

/// How an MCP session runs.
pub struct McpOptions {
    pub scoping: Scoping,
    /// Offer one tool per capability too.
    pub tools_per_capability: bool,
    /// Answer bodies longer than this are cut, with a note.
    pub max_output_bytes: usize,
    /// Give up on an upstream call after this long.
    pub timeout: Duration,
}

/// Why `aivault mcp` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The session's scope could not be established (a locked vault, a
    /// bad token).
    #[error("{0}")]
    Session(String),
    #[error("cannot start the MCP server: {0}")]
    Runtime(std::io::Error),
    #[error("the MCP session failed: {0}")]
    Protocol(String),
}

/// Serves one MCP session on stdin/stdout until the client disconnects.
pub fn run(route: Route, registry: Registry, options: McpOptions) -> Result<(), McpError> {
    let session = Session::start(route, std::sync::Arc::new(registry), options.scoping, options.timeout)
        .map_err(McpError::Session)?;
    let server = server::McpServer::new(session, options.tools_per_capability, options.max_output_bytes);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(McpError::Runtime)?;
    runtime.block_on(async move {
        let transport = guard::guarded(tokio::io::stdin(), tokio::io::stdout());
        let running = server.serve(transport).await.map_err(|e| McpError::Protocol(e.to_string()))?;
        running.waiting().await.map_err(|e| McpError::Protocol(e.to_string()))?;
        Ok(())
    })
}
