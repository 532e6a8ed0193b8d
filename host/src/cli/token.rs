//! `aivault token …`: proxy tokens for `aivault serve`. A token is printed
//! once, when it is created; afterwards only its id is ever shown.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, ID, WARN, print_json, styled, table, timestamp};
use crate::vault::{NewToken, Scope, TokenRow, now_ms};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a proxy token for `aivault serve`, printed once: what it may
    /// call, in which context, for how long.
    Create(CreateArgs),

    /// List proxy tokens (ids, capabilities, context, expiry; never the tokens).
    #[command(visible_alias = "ls")]
    List(ListArgs),

    /// Revoke a proxy token; it stops working at once.
    #[command(visible_alias = "rm")]
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A capability the token may call (repeatable).
    #[arg(long = "capability", value_name = "ID", required = true)]
    capabilities: Vec<String>,
    /// Every call made with the token runs in this workspace's context.
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// ... and this group's (needs --workspace-id).
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
    /// The consumer its calls are made as, for capabilities with bindings.
    #[arg(long)]
    consumer: Option<String>,
    /// How long the token is valid, e.g. `1h`, `30m`, `7d` (default: until revoked).
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Full JSON.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Token id (`tok_…`, from `aivault token list`).
    id: String,
}

/// What `token list -v` shows of a token.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView<'a> {
    id: &'a str,
    capabilities: &'a [String],
    context: String,
    consumer: Option<&'a str>,
    created_at_ms: i64,
    expires_at_ms: Option<i64>,
    expired: bool,
}

impl<'a> TokenView<'a> {
    fn of(t: &'a TokenRow) -> Self {
        TokenView {
            id: &t.id,
            capabilities: &t.capabilities,
            context: t.scope.to_string(),
            consumer: t.consumer.as_deref(),
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
            expired: t.expires_at_ms.is_some_and(|at| at <= now_ms()),
        }
    }
}

pub fn run(ctx: &Context, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create(args) => create(ctx, args),
        TokenCommand::List(args) => list(ctx, args),
        TokenCommand::Revoke(args) => {
            ctx.vault()?.revoke_token(&args.id)?;
            anstream::println!("Token revoked: {}", args.id);
            Ok(())
        }
    }
}

fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let scope = Scope::context(args.workspace_id.as_deref(), args.group_id.as_deref())?;
    let new = NewToken { capabilities: args.capabilities, scope, consumer: args.consumer, ttl: args.ttl };
    let (row, token) = ctx.vault()?.create_token(ctx.registry()?, new)?;
    let expiry = row.expires_at_ms.map(|at| format!(", expires {}", timestamp(at))).unwrap_or_default();
    anstream::eprintln!(
        "Token created: {} ({} capabilities, context {}{expiry}); it is shown once, store it now:",
        row.id,
        row.capabilities.len(),
        row.scope
    );
    // The token alone on stdout, so `TOKEN=$(aivault token create …)` works.
    anstream::println!("{}", token.as_str());
    Ok(())
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let tokens = ctx.read_vault(|v| v.tokens())?;
    if args.verbose {
        return print_json(&tokens.iter().map(TokenView::of).collect::<Vec<_>>());
    }
    if tokens.is_empty() {
        anstream::println!(
            "{}",
            styled(DIM, "No proxy tokens; `aivault token create --capability …` makes one.")
        );
        return Ok(());
    }
    let rows = tokens
        .iter()
        .map(|t| {
            let view = TokenView::of(t);
            let expires = match t.expires_at_ms {
                None => (DIM, "never".to_string()),
                Some(_) if view.expired => (WARN, "expired".to_string()),
                Some(at) => (DIM, timestamp(at)),
            };
            vec![
                (ID, t.id.clone()),
                (DIM, view.context.clone()),
                (DIM, t.consumer.clone().unwrap_or_else(|| "-".into())),
                expires,
                (DIM, t.capabilities.join(", ")),
            ]
        })
        .collect();
    table(&["ID", "CONTEXT", "CONSUMER", "EXPIRES", "CAPABILITIES"], rows);
    Ok(())
}
