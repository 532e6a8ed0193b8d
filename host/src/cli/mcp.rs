//! `aivault mcp`: the MCP server on stdio ([`crate::mcp`]).

use std::time::Duration;

use clap::Args;
use zeroize::Zeroizing;

use super::Context;
use crate::mcp::{self, McpOptions, Route, Scoping};
use crate::vault::{Scope, VaultPool};

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Call as this workspace (fixed for the session).
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// Call as this group of --workspace-id (fixed for the session).
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
    /// Call as this consumer (fixed for the session).
    #[arg(long, env = "AIVAULT_CONSUMER")]
    consumer: Option<String>,
    /// Act as a proxy token (`aivault token create`): its capabilities,
    /// context and consumer, checked at every call. Read from
    /// AIVAULT_MCP_TOKEN if not given; not with the flags above.
    #[arg(long, env = "AIVAULT_MCP_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Also offer one tool per capability the session may call.
    #[arg(long)]
    tools_per_capability: bool,
    /// Cut answer bodies longer than this (a note says so).
    #[arg(long, value_name = "BYTES", default_value_t = 100_000)]
    max_output_bytes: usize,
    /// Give up on an upstream call after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    timeout_ms: u64,
}

pub fn run(ctx: &Context, args: McpArgs) -> anyhow::Result<()> {
    let token = args.token.map(Zeroizing::new);
    if token.is_some() && (args.workspace_id.is_some() || args.group_id.is_some() || args.consumer.is_some())
    {
        anyhow::bail!(
            "--token fixes the context and consumer itself; drop --workspace-id, --group-id and --consumer"
        );
    }
    let context = Scope::context(args.workspace_id.as_deref(), args.group_id.as_deref())?;
    let options = McpOptions {
        scoping: Scoping { context, consumer: args.consumer, token },
        tools_per_capability: args.tools_per_capability,
        max_output_bytes: args.max_output_bytes.max(1024),
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    };
    // With aivaultd running, calls go through it: this process never holds
    // the key, and an agent OS user gets exactly its grants. A token
    // session is checked against the vault here.
    let route = match super::daemon::find(ctx).filter(|_| options.scoping.token.is_none()) {
        Some((client, pong)) => {
            let flags = options.scoping.context != Scope::Global || options.scoping.consumer.is_some();
            if !pong.operator && flags {
                anyhow::bail!(
                    "an agent's context and consumer come from its grants; drop --workspace-id, --group-id and --consumer"
                );
            }
            Route::Daemon(client)
        }
        None => {
            let vaults = VaultPool::new(ctx.dir().to_path_buf(), ctx.keys().clone())?;
            Route::Local { vaults, dev: ctx.dev().clone() }
        }
    };
    mcp::run(route, ctx.load_registry()?, options)?;
    Ok(())
}
