//! `aivault capability …`: what callers may invoke, from the providers'
//! manifests.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, HEADING, ID, OK, WARN, print_json, styled};
use crate::plugins::Origin;
use crate::registry::{CapabilityRef, Registry};

#[derive(Debug, Subcommand)]
pub enum CapabilityCommand {
    /// List capabilities: Ready (a credential exists) and Available (store
    /// the listed secrets to enable them).
    #[command(visible_alias = "ls")]
    List(ListArgs),

    /// Show a capability's methods, path prefixes, host, the secrets it
    /// needs and an example invoke.
    #[command(visible_aliases = ["args", "shape", "inspect"])]
    Describe(DescribeArgs),
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

pub fn run(ctx: &Context, cmd: CapabilityCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CapabilityCommand::List(args) => list(ctx, args),
        CapabilityCommand::Describe(args) => describe(ctx, args),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// A capability as shown by `list -v` and `describe -v`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CapabilityView<'a> {
    id: &'a str,
    provider: &'a str,
    provider_version: &'a str,
    description: &'a str,
    methods: &'a [String],
    path_prefixes: &'a [String],
    hosts: Vec<&'a str>,
    /// Each way to enable it: a credential kind and the secrets it needs.
    credential_kinds: Vec<KindView<'a>>,
    ready: bool,
    /// Ids of the credentials that enable it.
    credentials: Vec<String>,
    example: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindView<'a> {
    id: &'a str,
    secrets: &'a [String],
    auth: &'a str,
}

impl<'a> CapabilityView<'a> {
    fn new(c: CapabilityRef<'a>, credentials: Vec<String>) -> Self {
        let manifest = c.provider.manifest();
        CapabilityView {
            id: &c.capability.id,
            provider: &manifest.id,
            provider_version: &manifest.version,
            description: &c.capability.description,
            methods: &c.capability.methods,
            path_prefixes: &c.capability.path_prefixes,
            hosts: c.capability.hosts.iter().map(|h| h.as_str()).collect(),
            credential_kinds: c
                .kinds()
                .map(|k| KindView { id: &k.id, secrets: &k.secrets, auth: &k.auth_summary })
                .collect(),
            ready: !credentials.is_empty(),
            credentials,
            example: example_invoke(c),
        }
    }

    fn secrets_needed(&self) -> String {
        let alternatives: Vec<String> = self.credential_kinds.iter().map(|k| k.secrets.join(" + ")).collect();
        alternatives.join(" or ")
    }
}

/// Capability id -> ids of the credentials that enable it.
fn enabled_by(ctx: &Context) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    if ctx.vault_exists() {
        for credential in ctx.vault()?.credentials()? {
            for capability in credential.capabilities {
                map.entry(capability).or_default().push(credential.id.clone());
            }
        }
    }
    Ok(map)
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let registry = ctx.registry()?;
    let mut enabled = enabled_by(ctx)?;
    let views: Vec<CapabilityView<'_>> = registry
        .capabilities()
        .map(|c| CapabilityView::new(c, enabled.remove(&c.capability.id).unwrap_or_default()))
        .collect();
    let (ready, available): (Vec<_>, Vec<_>) = views.into_iter().partition(|v| v.ready);
    if args.verbose {
        #[derive(Serialize)]
        struct Listing<'a> {
            ready: Vec<CapabilityView<'a>>,
            available: Vec<CapabilityView<'a>>,
        }
        return print_json(&Listing { ready, available });
    }
    let all = || ready.iter().chain(&available);
    let widths = (
        all().map(|v| v.id.len()).max().unwrap_or(0),
        all().map(|v| v.methods.join(",").len()).max().unwrap_or(0),
    );
    anstream::println!("{}", styled(HEADING, format!("Ready ({})", ready.len())));
    if ready.is_empty() {
        anstream::println!(
            "  {}",
            styled(
                DIM,
                "none yet: store a provider's secrets with `aivault secrets create` to enable its capabilities"
            )
        );
    }
    print_group(&ready, widths, false);
    anstream::println!();
    anstream::println!("{}", styled(HEADING, format!("Available ({})", available.len())));
    print_group(&available, widths, true);
    Ok(())
}

/// One line per capability, under a line per provider and set of secrets.
fn print_group(views: &[CapabilityView<'_>], (id_width, method_width): (usize, usize), show_secrets: bool) {
    let mut last_header = String::new();
    for view in views {
        let header = if show_secrets {
            format!("{} (needs {})", view.provider, view.secrets_needed())
        } else {
            format!("{} (via {})", view.provider, view.credentials.join(", "))
        };
        if header != last_header {
            anstream::println!("  {}", styled(HEADING, &header));
            last_header = header;
        }
        let id = format!("{:id_width$}", view.id);
        anstream::println!(
            "    {}  {:method_width$}  {}",
            styled(ID, id),
            view.methods.join(","),
            styled(DIM, view.path_prefixes.join(", "))
        );
    }
}

fn describe(ctx: &Context, args: DescribeArgs) -> anyhow::Result<()> {
    let registry: &Registry = ctx.registry()?;
    let c = registry.capability(&args.id)?;
    let view = CapabilityView::new(c, enabled_by(ctx)?.remove(&c.capability.id).unwrap_or_default());
    if args.verbose {
        return print_json(&view);
    }
    let origin = match c.provider.origin() {
        Origin::BuiltIn(_) => "built-in".to_string(),
        Origin::File(path) => path.display().to_string(),
    };
    let field = |name: &str, value: String| {
        anstream::println!("  {}{value}", styled(DIM, format!("{:15}", format!("{name}:"))))
    };
    anstream::println!("{} — {}", styled(ID, view.id), view.description);
    field("provider", format!("{} {} ({origin})", view.provider, view.provider_version));
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
/// with a JSON body when allowed (the usual case for APIs), else GET.
fn example_invoke(c: CapabilityRef<'_>) -> String {
    let cap = c.capability;
    let path = cap.path_prefixes.first().map(String::as_str).unwrap_or("/");
    let method = if cap.methods.iter().any(|m| m == "POST") { "POST" } else { cap.methods[0].as_str() };
    let mut cmd = format!("aivault invoke {} --method {method} --path {path}", cap.id);
    if matches!(method, "POST" | "PUT" | "PATCH") {
        cmd.push_str(" --header 'content-type: application/json' --body '{}'");
    }
    cmd
}
