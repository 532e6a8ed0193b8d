//! `aivault credential …`: the credentials provisioned from secrets.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, ID, print_json, styled, table};
use crate::vault::CredentialRow;

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// List credentials: provider, scope, hosts and the secrets they use
    /// (names only, never values).
    #[command(visible_alias = "ls")]
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Full JSON detail.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialView<'a> {
    id: &'a str,
    provider: &'a str,
    kind: &'a str,
    scope: &'static str,
    workspace_id: Option<&'a str>,
    group_id: Option<&'a str>,
    hosts: Vec<String>,
    secrets: Vec<SecretRef<'a>>,
    capabilities: &'a [String],
    auto_provisioned: bool,
    created_at_ms: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretRef<'a> {
    name: &'a str,
    secret_id: &'a str,
}

pub fn run(ctx: &Context, cmd: CredentialCommand) -> anyhow::Result<()> {
    match cmd {
        CredentialCommand::List(args) => list(ctx, args),
    }
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let credentials = if ctx.vault_exists() { ctx.vault()?.credentials()? } else { Vec::new() };
    let registry = ctx.registry()?;
    let hosts = |c: &CredentialRow| -> Vec<String> {
        if let Some(host) = &c.host {
            return vec![host.clone()];
        }
        registry
            .provider(&c.provider)
            .ok()
            .and_then(|p| {
                p.manifest()
                    .credential_kind(&c.kind)
                    .map(|k| k.hosts.iter().map(ToString::to_string).collect())
            })
            .unwrap_or_default()
    };
    let views: Vec<CredentialView<'_>> = credentials
        .iter()
        .map(|c| CredentialView {
            id: &c.id,
            provider: &c.provider,
            kind: &c.kind,
            scope: c.scope.kind_str(),
            workspace_id: Some(c.scope.workspace_id()).filter(|v| !v.is_empty()),
            group_id: Some(c.scope.group_id()).filter(|v| !v.is_empty()),
            hosts: hosts(c),
            secrets: c.secrets.iter().map(|(name, id)| SecretRef { name, secret_id: id }).collect(),
            capabilities: &c.capabilities,
            auto_provisioned: c.auto_provisioned,
            created_at_ms: c.created_at_ms,
        })
        .collect();
    if args.verbose {
        return print_json(&views);
    }
    if views.is_empty() {
        anstream::println!(
            "{}",
            styled(DIM, "No credentials. Storing a provider's secrets (e.g. OPENAI_API_KEY) provisions one.")
        );
        return Ok(());
    }
    let rows = views
        .iter()
        .zip(&credentials)
        .map(|(v, c)| {
            let secrets: Vec<&str> = v.secrets.iter().map(|s| s.name).collect();
            vec![
                (ID, v.id.to_string()),
                (DIM, v.provider.to_string()),
                (DIM, c.scope.to_string()),
                (DIM, v.hosts.join(",")),
                (DIM, secrets.join(",")),
                (DIM, v.capabilities.len().to_string()),
            ]
        })
        .collect();
    table(&["ID", "PROVIDER", "SCOPE", "HOSTS", "SECRETS", "CAPABILITIES"], rows);
    Ok(())
}
