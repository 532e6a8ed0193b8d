//! `aivault agent …`: what other OS users (agents) may invoke through
//! aivaultd, in which context and as which consumer.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, ID, print_json, styled, table};
use crate::unixuser;
use crate::vault::{GrantRow, NewGrant, Scope};

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Let an OS user invoke capabilities through aivaultd, in one context
    /// (its calls cannot choose another).
    Allow(AllowArgs),
    /// List grants.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Take a user's grant of one capability, or all of them, away.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct AllowArgs {
    /// The agent's OS user name.
    #[arg(long)]
    user: String,
    /// A capability it may invoke (repeatable).
    #[arg(long = "capability", value_name = "ID", required = true)]
    capabilities: Vec<String>,
    /// Its calls run in this workspace's context.
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// ... and this group's (needs --workspace-id).
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
    /// The consumer its calls are made as (default: the user name).
    #[arg(long)]
    consumer: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Full JSON.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The agent's OS user name.
    #[arg(long)]
    user: String,
    /// Only this capability (default: every grant of the user).
    #[arg(long)]
    capability: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GrantView<'a> {
    user: &'a str,
    uid: u32,
    capability: &'a str,
    context: String,
    consumer: &'a str,
    created_at_ms: i64,
}

pub fn run(ctx: &Context, cmd: AgentCommand) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Allow(args) => {
            let uid = uid_of(&args.user)?;
            let scope = Scope::context(args.workspace_id.as_deref(), args.group_id.as_deref())?;
            let new = NewGrant {
                uid,
                user: args.user,
                capabilities: args.capabilities,
                scope,
                consumer: args.consumer,
            };
            for g in ctx.vault()?.allow_agent(ctx.registry()?, new)? {
                anstream::println!(
                    "Allowed: {} may invoke {} ({}, as {})",
                    g.user,
                    g.capability,
                    g.scope,
                    g.consumer
                );
            }
            Ok(())
        }
        AgentCommand::List(args) => list(ctx, args),
        AgentCommand::Revoke(args) => {
            // A user deleted from the OS keeps its grants until revoked:
            // found then by the name they were made for.
            let uid = match unixuser::uid_of(&args.user) {
                Some(uid) => uid,
                None => ctx
                    .read_vault(|v| v.grants())?
                    .iter()
                    .find(|g| g.user == args.user)
                    .map(|g| g.uid)
                    .with_context(|| format!("no OS user `{}` and no grant made for one", args.user))?,
            };
            let removed = ctx.vault()?.revoke_agent(uid, &args.user, args.capability.as_deref())?;
            anstream::println!("Revoked: {removed} grant(s) of {}", args.user);
            Ok(())
        }
    }
}

fn uid_of(user: &str) -> anyhow::Result<u32> {
    unixuser::uid_of(user).with_context(|| format!("no OS user `{user}` on this machine"))
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let grants: Vec<GrantRow> = ctx.read_vault(|v| v.grants())?;
    let views: Vec<GrantView<'_>> = grants
        .iter()
        .map(|g| GrantView {
            user: &g.user,
            uid: g.uid,
            capability: &g.capability,
            context: g.scope.to_string(),
            consumer: &g.consumer,
            created_at_ms: g.created_at_ms,
        })
        .collect();
    if args.verbose {
        return print_json(&views);
    }
    if views.is_empty() {
        anstream::println!(
            "{}",
            styled(DIM, "No agent grants; `aivault agent allow --user … --capability …` makes one.")
        );
        return Ok(());
    }
    let rows = views
        .iter()
        .map(|v| {
            vec![
                (ID, v.user.to_string()),
                (DIM, v.capability.to_string()),
                (DIM, v.context.clone()),
                (DIM, v.consumer.to_string()),
            ]
        })
        .collect();
    table(&["USER", "CAPABILITY", "CONTEXT", "CONSUMER"], rows);
    Ok(())
}
