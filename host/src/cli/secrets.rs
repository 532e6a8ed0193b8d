//! `aivault secrets …`: the command group of `spec/secrets-cli.txt`. Its
//! flags and printed lines are the contract.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use zeroize::Zeroizing;

use super::Context;
use super::output::{DIM, ID, print_json, styled, table, timestamp};
use crate::dotenv;
use crate::vault::{Created, NewSecret, Scope, ScopeKind, SecretFilter, SecretRow};

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// List secrets (metadata only, never values).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Create an encrypted secret. A name a provider declares (e.g.
    /// OPENAI_API_KEY) pins the secret to it and auto-provisions its credential.
    Create(CreateArgs),
    /// Change a secret's name or aliases (not its value: use rotate).
    Update(UpdateArgs),
    /// Replace a secret's value under a fresh data key.
    Rotate(RotateArgs),
    /// Delete a secret and every credential and capability binding that used it.
    #[command(visible_alias = "rm")]
    Delete(IdArgs),
    /// Share a secret with a workspace group.
    AttachGroup(GroupArgs),
    /// Stop sharing a secret with a workspace group.
    DetachGroup(GroupArgs),
    /// Create several secrets at once from KEY=VALUE entries or a dotenv file;
    /// all are checked before any is stored.
    Import(ImportArgs),
}

/// `--scope`, `--workspace-id`, `--group-id`.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Where the secret lives.
    #[arg(long, value_enum, default_value = "global")]
    scope: ScopeKind,
    /// Workspace id (for workspace and group scopes).
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// Group id (for the group scope).
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
}

impl ScopeArgs {
    pub fn scope(&self) -> anyhow::Result<Scope> {
        Ok(Scope::parse(self.scope, self.workspace_id.as_deref(), self.group_id.as_deref())?)
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only secrets of this scope.
    #[arg(long, value_enum)]
    scope: Option<ScopeKind>,
    /// Only secrets of this workspace.
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// Only secrets of this group.
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
    /// Full JSON detail.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Secret name, e.g. OPENAI_API_KEY.
    #[arg(long)]
    name: String,
    /// The value; `-` reads it from stdin. Omit it to be prompted (without echo).
    #[arg(long, allow_hyphen_values = true)]
    value: Option<String>,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Another name for the secret (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    aliases: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Secret id (or a name or alias that is unique).
    #[arg(long)]
    id: String,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// Alias to add (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    aliases: Vec<String>,
    /// Remove every alias (before adding any given with --alias).
    #[arg(long)]
    clear_aliases: bool,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Secret id (or a name or alias that is unique).
    #[arg(long)]
    id: String,
    /// The new value; `-` reads it from stdin. Omit it to be prompted.
    #[arg(long, allow_hyphen_values = true)]
    value: Option<String>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Secret id (or a name or alias that is unique).
    #[arg(long)]
    id: String,
}

#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Secret id (or a name or alias that is unique).
    #[arg(long)]
    id: String,
    /// The group's workspace.
    #[arg(long, value_name = "ID")]
    workspace_id: String,
    /// The group.
    #[arg(long, value_name = "ID")]
    group_id: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["entries", "env_file"])))]
pub struct ImportArgs {
    /// A KEY=VALUE pair (repeatable).
    #[arg(long = "entry", value_name = "KEY=VALUE", allow_hyphen_values = true)]
    entries: Vec<String>,
    /// A dotenv file (`-` for stdin): comments, quotes and `export` allowed.
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
    #[command(flatten)]
    scope: ScopeArgs,
}

pub fn run(ctx: &Context, cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::List(args) => list(ctx, args),
        SecretsCommand::Create(args) => {
            let scope = args.scope.scope()?;
            let value = read_value(args.value, &args.name)?;
            let secret = NewSecret { name: args.name, value, scope, aliases: args.aliases };
            create(ctx, vec![secret])
        }
        SecretsCommand::Update(args) => {
            let registry = ctx.registry()?;
            let s = ctx.vault()?.update(
                registry,
                &args.id,
                args.name.as_deref(),
                &args.aliases,
                args.clear_aliases,
            )?;
            let aliases = if s.aliases.is_empty() { "none".to_string() } else { s.aliases.join(", ") };
            anstream::println!("Secret updated: {} (aliases: {aliases})", s.name);
            Ok(())
        }
        SecretsCommand::Rotate(args) => {
            let registry = ctx.registry()?;
            let mut vault = ctx.vault()?;
            let name = vault.find(&args.id)?.name;
            let value = read_value(args.value, &name)?;
            let s = vault.rotate(registry, &args.id, value)?;
            anstream::println!("Secret rotated: {} (value version {})", s.name, s.value_version);
            Ok(())
        }
        SecretsCommand::Delete(args) => {
            let deleted = ctx.vault()?.delete(ctx.registry()?, &args.id)?;
            anstream::println!("Secret deleted: {}", deleted.name);
            for credential in deleted.credentials {
                anstream::println!("Credential removed: {credential}");
            }
            Ok(())
        }
        SecretsCommand::AttachGroup(args) => {
            let s = ctx.vault()?.attach_group(&args.id, &args.workspace_id, &args.group_id)?;
            anstream::println!(
                "Secret attached: {} -> group {}/{}",
                s.name,
                args.workspace_id,
                args.group_id
            );
            Ok(())
        }
        SecretsCommand::DetachGroup(args) => {
            let s = ctx.vault()?.detach_group(&args.id, &args.workspace_id, &args.group_id)?;
            anstream::println!(
                "Secret detached: {} from group {}/{}",
                s.name,
                args.workspace_id,
                args.group_id
            );
            Ok(())
        }
        SecretsCommand::Import(args) => import(ctx, args),
    }
}

/// Reads a value from the flag, stdin (`-`) or a no-echo prompt.
fn read_value(flag: Option<String>, name: &str) -> anyhow::Result<Zeroizing<String>> {
    match flag.map(Zeroizing::new) {
        Some(v) if v.as_str() == "-" => {
            let mut buf = Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut buf).context("cannot read the value from stdin")?;
            // One trailing newline is how `echo` and editors end input, not
            // part of the key.
            let trimmed = buf.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&buf);
            Ok(Zeroizing::new(trimmed.to_string()))
        }
        Some(v) => Ok(v),
        None if std::io::stdin().is_terminal() => {
            let value =
                rpassword::prompt_password(format!("Value for {name}: ")).context("cannot read the value")?;
            Ok(Zeroizing::new(value))
        }
        None => bail!("no value for {name}: pass --value VALUE, or --value - to read it from stdin"),
    }
}

fn create(ctx: &Context, secrets: Vec<NewSecret>) -> anyhow::Result<()> {
    let registry = ctx.registry()?;
    let total = secrets.len();
    let progress = Progress::new(total);
    let created = ctx.vault()?.create(registry, secrets, |done, total| progress.show(done, total))?;
    progress.finish();
    for c in &created {
        print_created(c);
    }
    Ok(())
}

/// The spec's lines: created (and pinned), provisioned, or waiting.
fn print_created(c: &Created) {
    match &c.pinned_provider {
        Some(provider) => anstream::println!("Secret created: {} (pinned to provider: {provider})", c.name),
        None => anstream::println!("Secret created: {}", c.name),
    }
    for p in &c.provisioned {
        anstream::println!(
            "Credential auto-provisioned: {} ({} capabilities enabled)",
            p.provider,
            p.capabilities
        );
    }
    for w in &c.waiting {
        anstream::println!("Credential pending: {} (waiting for {})", w.provider, w.missing.join(", "));
    }
}

fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let scope = args.scope.scope()?;
    let mut entries = Vec::new();
    for (i, raw) in args.entries.iter().enumerate() {
        entries.push(dotenv::parse_entry(raw, i + 1)?);
    }
    if let Some(path) = &args.env_file {
        let text = Zeroizing::new(if path.as_os_str() == "-" {
            let mut buf = String::new();
            std::io::stdin().read_to_string(&mut buf).context("cannot read the env file from stdin")?;
            buf
        } else {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        });
        let parsed = dotenv::parse_dotenv(&text).with_context(|| format!("{}", path.display()))?;
        entries.extend(parsed);
    }
    if entries.is_empty() {
        bail!("nothing to import: the env file has no KEY=VALUE lines");
    }
    let secrets = entries
        .into_iter()
        .map(|e| NewSecret { name: e.key, value: e.value, scope: scope.clone(), aliases: Vec::new() })
        .collect();
    create(ctx, secrets)
}

/// A progress line on stderr for large imports, only on a terminal.
struct Progress {
    enabled: bool,
}

impl Progress {
    const THRESHOLD: usize = 20;

    fn new(total: usize) -> Self {
        Progress { enabled: total >= Self::THRESHOLD && std::io::stderr().is_terminal() }
    }

    fn show(&self, done: usize, total: usize) {
        if self.enabled && (done.is_multiple_of(10) || done == total) {
            anstream::eprint!("\rChecking secrets: {done}/{total}");
        }
    }

    fn finish(&self) {
        if self.enabled {
            anstream::eprint!("\r\x1b[2K");
        }
    }
}

/// A secret as `list -v` shows it: metadata only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretView<'a> {
    id: &'a str,
    name: &'a str,
    aliases: &'a [String],
    scope: &'static str,
    workspace_id: Option<&'a str>,
    group_id: Option<&'a str>,
    pinned_provider: Option<&'a str>,
    value_version: i64,
    attached_groups: Vec<AttachedGroup<'a>>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttachedGroup<'a> {
    workspace_id: &'a str,
    group_id: &'a str,
}

impl<'a> SecretView<'a> {
    fn new(s: &'a SecretRow) -> Self {
        let non_empty = |v: &'a str| Some(v).filter(|v| !v.is_empty());
        SecretView {
            id: &s.id,
            name: &s.name,
            aliases: &s.aliases,
            scope: s.scope.kind_str(),
            workspace_id: non_empty(s.scope.workspace_id()),
            group_id: non_empty(s.scope.group_id()),
            pinned_provider: s.pinned_provider.as_deref(),
            value_version: s.value_version,
            attached_groups: s
                .attachments
                .iter()
                .map(|(w, g)| AttachedGroup { workspace_id: w, group_id: g })
                .collect(),
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    if args.scope == Some(ScopeKind::Global) && (args.workspace_id.is_some() || args.group_id.is_some()) {
        bail!("--scope global takes no --workspace-id or --group-id");
    }
    if args.scope == Some(ScopeKind::Workspace) && args.group_id.is_some() {
        bail!("--scope workspace takes no --group-id (did you mean --scope group?)");
    }
    let filter = SecretFilter {
        scope: args.scope.map(|k| match k {
            ScopeKind::Global => "global",
            ScopeKind::Workspace => "workspace",
            ScopeKind::Group => "group",
        }),
        workspace_id: args.workspace_id,
        group_id: args.group_id,
    };
    let secrets = ctx.read_vault(|v| v.list(&filter))?;
    if args.verbose {
        return print_json(&secrets.iter().map(SecretView::new).collect::<Vec<_>>());
    }
    if secrets.is_empty() {
        anstream::println!(
            "{}",
            styled(DIM, "No secrets. Create one with `aivault secrets create --name NAME --value -`.")
        );
        return Ok(());
    }
    let rows = secrets
        .iter()
        .map(|s| {
            let groups: Vec<String> = s.attachments.iter().map(|(w, g)| format!("{w}/{g}")).collect();
            vec![
                (ID, s.name.clone()),
                (DIM, s.scope.to_string()),
                (DIM, s.pinned_provider.clone().unwrap_or_else(|| "-".into())),
                (DIM, if s.aliases.is_empty() { "-".into() } else { s.aliases.join(",") }),
                (DIM, if groups.is_empty() { "-".into() } else { groups.join(",") }),
                (DIM, s.value_version.to_string()),
                (DIM, timestamp(s.updated_at_ms)),
                (DIM, s.id.clone()),
            ]
        })
        .collect();
    table(&["NAME", "SCOPE", "PROVIDER", "ALIASES", "GROUPS", "VERSION", "UPDATED", "ID"], rows);
    Ok(())
}
