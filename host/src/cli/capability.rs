//! `aivault capability …`: what callers may invoke (from the providers'
//! manifests and the operator's custom capabilities), and the policies and
//! consumer bindings around them.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

mod list;

use super::Context;
use super::invoke::{self, InvokeArgs, Render};
use super::output::{DIM, ID, OK, WARN, print_json, styled, table};
use super::secrets::ScopeArgs;
use crate::plugins::Origin;
use crate::registry::CapabilityRef;
use crate::vault::{CustomCapabilityRow, NewCapability, PolicyChange};

#[derive(Debug, Subcommand)]
pub enum CapabilityCommand {
    /// List capabilities: Ready (a credential exists) in full, and
    /// Available (store the listed secrets to enable them) one line per
    /// provider unless narrowed by --provider or a search text.
    #[command(visible_alias = "ls")]
    List(list::CapabilityListArgs),

    /// Show a capability's methods, path prefixes, host, the secrets it
    /// needs and an example invoke.
    #[command(visible_aliases = ["args", "shape", "inspect"])]
    Describe(DescribeArgs),

    /// Invoke a capability (same as `aivault invoke`).
    #[command(visible_alias = "call")]
    Invoke(InvokeArgs),

    /// Define a custom capability for one credential: methods, path
    /// prefixes and optionally a host, within its provider's hosts.
    Create(CreateArgs),

    /// Delete a custom capability.
    #[command(visible_alias = "rm")]
    Delete(IdArg),

    /// Allow a consumer to invoke a capability. Once a capability has any
    /// binding, only bound consumers (`--consumer` / AIVAULT_CONSUMER) may call it.
    Bind(BindArgs),

    /// Remove a consumer's binding.
    Unbind(BindArgs),

    /// List consumer bindings.
    Bindings(ListArgs),

    /// Limits enforced on every invocation.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Set (merge) a capability's policy.
    Set(PolicySetArgs),
    /// List every policy.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Remove a capability's policy (also one that failed its integrity
    /// check, or names a capability that no longer exists).
    #[command(visible_alias = "rm")]
    Delete(PolicyDeleteArgs),
}

#[derive(Debug, Args)]
pub struct PolicyDeleteArgs {
    /// Capability id.
    #[arg(long)]
    capability: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Full JSON instead of the summary.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Capability id, e.g. `openai/chat-completions`.
    id: String,
    /// JSON instead of text.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Capability id.
    id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// New capability id, `<provider>/<name>`.
    id: String,
    /// The credential it uses.
    #[arg(long)]
    credential: String,
    /// An allowed method (repeatable).
    #[arg(long = "method", required = true)]
    methods: Vec<String>,
    /// An allowed path prefix (repeatable).
    #[arg(long = "path-prefix", required = true)]
    path_prefixes: Vec<String>,
    /// The host it talks to, a DNS name (default: the credential's).
    #[arg(long)]
    host: Option<String>,
    /// One line for people.
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(Debug, Args)]
pub struct BindArgs {
    /// Capability id.
    capability: String,
    /// Who may call it, e.g. an agent's name.
    #[arg(long)]
    consumer: String,
    #[command(flatten)]
    scope: ScopeArgs,
}

#[derive(Debug, Args)]
pub struct PolicySetArgs {
    /// Capability id.
    #[arg(long)]
    capability: String,
    /// At most this many calls per minute (counted from when the limit is set).
    #[arg(long, value_name = "N")]
    rate_limit_per_minute: Option<i64>,
    /// Refuse request bodies larger than this.
    #[arg(long, value_name = "BYTES")]
    max_request_body_bytes: Option<i64>,
    /// Refuse responses larger than this.
    #[arg(long, value_name = "BYTES")]
    max_response_body_bytes: Option<i64>,
    /// Strip this JSON field (dot path, e.g. `data.token`) from responses
    /// (repeatable; replaces the list).
    #[arg(long = "response-block", value_name = "FIELD")]
    response_block: Vec<String>,
}

pub fn run(ctx: &Context, cmd: CapabilityCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CapabilityCommand::List(args) => list::list(ctx, args),
        CapabilityCommand::Describe(args) => describe(ctx, args),
        CapabilityCommand::Invoke(args) => return invoke::run(ctx, args, Render::Raw),
        CapabilityCommand::Create(args) => create(ctx, args),
        CapabilityCommand::Delete(args) => {
            ctx.vault()?.delete_capability(ctx.registry()?, &args.id)?;
            anstream::println!("Capability deleted: {}", args.id);
            Ok(())
        }
        CapabilityCommand::Bind(args) => {
            let binding =
                ctx.vault()?.bind(ctx.registry()?, &args.capability, &args.consumer, args.scope.scope()?)?;
            anstream::println!(
                "Bound: {} may invoke {} ({})",
                binding.consumer,
                binding.capability_id,
                binding.scope
            );
            Ok(())
        }
        CapabilityCommand::Unbind(args) => {
            let scope = args.scope.scope()?;
            ctx.vault()?.unbind(&args.capability, &args.consumer, scope.clone())?;
            anstream::println!("Unbound: {} from {} ({scope})", args.consumer, args.capability);
            Ok(())
        }
        CapabilityCommand::Bindings(args) => bindings(ctx, args),
        CapabilityCommand::Policy(PolicyCommand::Set(args)) => set_policy(ctx, args),
        CapabilityCommand::Policy(PolicyCommand::List(args)) => policies(ctx, args),
        CapabilityCommand::Policy(PolicyCommand::Delete(args)) => {
            ctx.vault()?.delete_policy(&args.capability)?;
            anstream::println!("Policy removed: {}", args.capability);
            Ok(())
        }
    }
    .map(|()| ExitCode::SUCCESS)
}

/// A capability as shown by `list -v` and `describe -v`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CapabilityView {
    id: String,
    provider: String,
    provider_version: String,
    /// `built-in`, a component path, or `custom`.
    origin: String,
    description: String,
    methods: Vec<String>,
    path_prefixes: Vec<String>,
    hosts: Vec<String>,
    /// Each way to enable it: a credential kind and the secrets it needs.
    credential_kinds: Vec<KindView>,
    ready: bool,
    /// Ids of the credentials that enable it.
    credentials: Vec<String>,
    example: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindView {
    id: String,
    secrets: Vec<String>,
    auth: String,
}

impl CapabilityView {
    fn builtin(c: CapabilityRef<'_>, credentials: Vec<String>) -> Self {
        let manifest = c.provider.manifest();
        let origin = match c.provider.origin() {
            Origin::BuiltIn(_) => "built-in".to_string(),
            Origin::File(path) => path.display().to_string(),
        };
        CapabilityView {
            id: c.capability.id.clone(),
            provider: manifest.id.clone(),
            provider_version: manifest.version.clone(),
            origin,
            description: c.capability.description.clone(),
            methods: c.capability.methods.clone(),
            path_prefixes: c.capability.path_prefixes.clone(),
            hosts: c.capability.hosts.iter().map(ToString::to_string).collect(),
            credential_kinds: c
                .kinds()
                .map(|k| KindView {
                    id: k.id.clone(),
                    secrets: k.secrets.clone(),
                    auth: k.auth_summary.clone(),
                })
                .collect(),
            ready: !credentials.is_empty(),
            credentials,
            example: example_invoke(&c.capability.id, &c.capability.methods, &c.capability.path_prefixes),
        }
    }

    fn custom(c: &CustomCapabilityRow, ctx: &Context) -> anyhow::Result<Self> {
        let credential = ctx.vault()?.credentials()?.into_iter().find(|cr| cr.id == c.credential_id);
        let (provider, kind) = credential.map(|cr| (cr.provider, cr.kind)).unwrap_or_default();
        let manifest = ctx.registry()?.provider(&provider).ok().map(|p| p.manifest().clone());
        let hosts = match (&c.host, &manifest) {
            (Some(host), _) => vec![host.clone()],
            (None, Some(m)) => m
                .credential_kind(&kind)
                .map(|k| k.hosts.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        Ok(CapabilityView {
            id: c.id.clone(),
            provider: provider.clone(),
            provider_version: manifest.map(|m| m.version).unwrap_or_default(),
            origin: "custom".to_string(),
            description: c.description.clone(),
            methods: c.methods.clone(),
            path_prefixes: c.path_prefixes.clone(),
            hosts,
            credential_kinds: Vec::new(),
            ready: true,
            credentials: vec![c.credential_id.clone()],
            example: example_invoke(&c.id, &c.methods, &c.path_prefixes),
        })
    }

    fn secrets_needed(&self) -> String {
        let alternatives: Vec<String> = self.credential_kinds.iter().map(|k| k.secrets.join(" + ")).collect();
        alternatives.join(" or ")
    }
}

/// Capability id -> ids of the credentials that enable it.
fn enabled_by(ctx: &Context) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for credential in ctx.read_vault(|v| v.credentials())? {
        for capability in credential.capabilities {
            map.entry(capability).or_default().push(credential.id.clone());
        }
    }
    Ok(map)
}

fn custom_capabilities(ctx: &Context) -> anyhow::Result<Vec<CustomCapabilityRow>> {
    ctx.read_vault(|v| v.custom_capabilities())
}

pub(super) fn all_views(ctx: &Context) -> anyhow::Result<Vec<CapabilityView>> {
    let registry = ctx.registry()?;
    let mut enabled = enabled_by(ctx)?;
    let mut views: Vec<CapabilityView> = registry
        .capabilities()
        .map(|c| CapabilityView::builtin(c, enabled.remove(&c.capability.id).unwrap_or_default()))
        .collect();
    for custom in custom_capabilities(ctx)? {
        views.push(CapabilityView::custom(&custom, ctx)?);
    }
    Ok(views)
}

fn describe(ctx: &Context, args: DescribeArgs) -> anyhow::Result<()> {
    let view = match custom_capabilities(ctx)?.into_iter().find(|c| c.id == args.id) {
        Some(custom) => CapabilityView::custom(&custom, ctx)?,
        None => {
            let c = ctx.registry()?.capability(&args.id)?;
            CapabilityView::builtin(c, enabled_by(ctx)?.remove(&c.capability.id).unwrap_or_default())
        }
    };
    if args.verbose {
        return print_json(&view);
    }
    let field = |name: &str, value: String| {
        anstream::println!("  {}{value}", styled(DIM, format!("{:15}", format!("{name}:"))))
    };
    anstream::println!("{} — {}", styled(ID, &view.id), view.description);
    field("provider", format!("{} {} ({})", view.provider, view.provider_version, view.origin));
    field("hosts", view.hosts.join(", "));
    field("methods", view.methods.join(", "));
    field("path prefixes", view.path_prefixes.join(", "));
    for kind in &view.credential_kinds {
        field(
            "secrets",
            format!("{}  {}", kind.secrets.join(" + "), styled(DIM, format!("({}: {})", kind.id, kind.auth))),
        );
    }
    let status = if view.ready {
        styled(OK, format!("ready (credentials: {})", view.credentials.join(", ")))
    } else {
        styled(WARN, format!("available: store {} to enable", view.secrets_needed()))
    };
    field("status", status);
    anstream::println!("  {}", styled(DIM, "example:"));
    anstream::println!("    {}", view.example);
    Ok(())
}

/// A command that would invoke the capability: its first path prefix, POST
/// with a JSON body when allowed (the usual case for APIs), else the first method.
fn example_invoke(id: &str, methods: &[String], prefixes: &[String]) -> String {
    let path = prefixes.first().map(String::as_str).unwrap_or("/");
    let method = if methods.iter().any(|m| m == "POST") {
        "POST"
    } else {
        methods.first().map(String::as_str).unwrap_or("GET")
    };
    let mut cmd = format!("aivault invoke {id} --method {method} --path {path}");
    if matches!(method, "POST" | "PUT" | "PATCH") {
        cmd.push_str(" --header 'content-type: application/json' --body '{}'");
    }
    cmd
}

fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let row = ctx.vault()?.create_capability(
        ctx.registry()?,
        NewCapability {
            id: args.id,
            credential: args.credential,
            description: args.description,
            methods: args.methods,
            path_prefixes: args.path_prefixes,
            host: args.host,
        },
    )?;
    anstream::println!(
        "Capability created: {} ({} {} via {})",
        row.id,
        row.methods.join(","),
        row.path_prefixes.join(","),
        row.credential_id
    );
    Ok(())
}

fn bindings(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let rows = ctx.read_vault(|v| v.bindings())?;
    if args.verbose {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct View<'a> {
            capability: &'a str,
            consumer: &'a str,
            scope: String,
            created_at_ms: i64,
        }
        let views: Vec<View<'_>> = rows
            .iter()
            .map(|b| View {
                capability: &b.capability_id,
                consumer: &b.consumer,
                scope: b.scope.to_string(),
                created_at_ms: b.created_at_ms,
            })
            .collect();
        return print_json(&views);
    }
    if rows.is_empty() {
        anstream::println!("{}", styled(DIM, "No bindings: every capability is open to any consumer."));
        return Ok(());
    }
    let cells = rows
        .iter()
        .map(|b| vec![(ID, b.capability_id.clone()), (DIM, b.consumer.clone()), (DIM, b.scope.to_string())])
        .collect();
    table(&["CAPABILITY", "CONSUMER", "SCOPE"], cells);
    Ok(())
}

fn set_policy(ctx: &Context, args: PolicySetArgs) -> anyhow::Result<()> {
    let change = PolicyChange {
        rate_limit_per_minute: args.rate_limit_per_minute,
        max_request_body_bytes: args.max_request_body_bytes,
        max_response_body_bytes: args.max_response_body_bytes,
        response_block: (!args.response_block.is_empty()).then_some(args.response_block),
    };
    let p = ctx.vault()?.set_policy(ctx.registry()?, &args.capability, change)?;
    anstream::println!("Policy set: {}", describe_policy(&p));
    Ok(())
}

fn describe_policy(p: &crate::vault::PolicyRow) -> String {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    format!(
        "{} (rate limit/min: {}, max request bytes: {}, max response bytes: {}, blocked fields: {})",
        p.capability_id,
        opt(p.rate_limit_per_minute),
        opt(p.max_request_body_bytes),
        opt(p.max_response_body_bytes),
        if p.response_block.is_empty() { "-".to_string() } else { p.response_block.join(",") }
    )
}

fn policies(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let rows = ctx.read_vault(|v| v.policies())?;
    if args.verbose {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct View<'a> {
            capability: &'a str,
            rate_limit_per_minute: Option<i64>,
            max_request_body_bytes: Option<i64>,
            max_response_body_bytes: Option<i64>,
            response_block: &'a [String],
        }
        let views: Vec<View<'_>> = rows
            .iter()
            .map(|p| View {
                capability: &p.capability_id,
                rate_limit_per_minute: p.rate_limit_per_minute,
                max_request_body_bytes: p.max_request_body_bytes,
                max_response_body_bytes: p.max_response_body_bytes,
                response_block: &p.response_block,
            })
            .collect();
        return print_json(&views);
    }
    if rows.is_empty() {
        anstream::println!("{}", styled(DIM, "No policies."));
    }
    for p in &rows {
        anstream::println!("{}", describe_policy(p));
    }
    Ok(())
}
