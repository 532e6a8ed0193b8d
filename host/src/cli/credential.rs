//! `aivault credential …`: the credentials provisioned from secrets.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, ID, print_json, styled, table};
use crate::vault::{CredentialRow, ManageError, NewCredential, Scope};

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// List credentials: provider, scope, hosts and the secrets they use
    /// (names only, never values).
    #[command(visible_alias = "ls")]
    List(ListArgs),

    /// Create a credential by hand, e.g. a second GitHub account: the
    /// provider checks each secret, and all its capabilities are enabled.
    Create(CreateArgs),

    /// Delete a credential with its custom capabilities (its secrets stay).
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// New credential id, e.g. `github-work`.
    id: String,
    /// The provider, e.g. `github`.
    #[arg(long)]
    provider: String,
    /// The provider's credential kind (needed when it has several).
    #[arg(long)]
    kind: Option<String>,
    /// A secret, `vault:secret:<id>` (or `NAME=vault:secret:<id>` to say
    /// which of the kind's secrets it is); one per secret the kind needs.
    #[arg(long = "secret-ref", value_name = "REF", required = true)]
    secret_refs: Vec<String>,
    /// The host to reach, a DNS name within the provider's hosts (needed
    /// for wildcard tenant hosts).
    #[arg(long)]
    host: Option<String>,
    /// Workspace the credential belongs to.
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// Group the credential belongs to (needs --workspace-id).
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Credential id.
    id: String,
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
        CredentialCommand::Create(args) => create(ctx, args),
        CredentialCommand::Delete(args) => {
            let deleted = ctx.vault()?.delete_credential(ctx.registry()?, &args.id)?;
            anstream::println!("Credential deleted: {} ({})", deleted.id, deleted.provider);
            Ok(())
        }
    }
}

/// `vault:secret:<id>` or `NAME=vault:secret:<id>`.
fn parse_secret_ref(raw: &str) -> anyhow::Result<(Option<String>, String)> {
    let (name, reference) = match raw.split_once('=') {
        Some((name, reference)) => (Some(name.to_string()), reference),
        None => (None, raw),
    };
    let id = reference.strip_prefix("vault:secret:").filter(|id| !id.is_empty());
    match id {
        Some(id) => Ok((name, id.to_string())),
        None => Err(ManageError::BadSecretRef(raw.to_string()).into()),
    }
}

fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let scope = Scope::context(args.workspace_id.as_deref(), args.group_id.as_deref())?;
    let secret_refs =
        args.secret_refs.iter().map(|r| parse_secret_ref(r)).collect::<anyhow::Result<Vec<_>>>()?;
    let credential = ctx.vault()?.create_credential(
        ctx.registry()?,
        NewCredential {
            id: args.id,
            provider: args.provider,
            kind: args.kind,
            secret_refs,
            host: args.host,
            scope,
        },
    )?;
    anstream::println!(
        "Credential created: {} ({}, {} capabilities enabled)",
        credential.id,
        credential.provider,
        credential.capabilities.len()
    );
    Ok(())
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let credentials = ctx.read_vault(|v| v.credentials())?;
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
