//! `aivault provider …`: the built-in providers and the components an
//! operator drops into the providers directory, which are used only once
//! approved (`install` or `enable`) and only while unchanged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, ID, OK, WARN, print_json, styled, table};
use crate::plugins::{Origin, Plugin, conformance};
use crate::registry::dropin::{self, DropFile, Status};
use crate::vault::ApprovalRow;

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List built-in and dropped-in providers with their digest, claims and
    /// status (enabled, disabled, pending, changed, invalid, missing).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Copy a component into the providers directory and approve it.
    Install(PathArg),
    /// Approve the component a provider's file now holds, and use it. Name
    /// the file's path when several files claim the id.
    Enable(TargetArg),
    /// Stop using a dropped-in provider (its approval is kept).
    Disable(TargetArg),
    /// Delete a dropped-in provider's file and approval.
    #[command(visible_alias = "rm")]
    Remove(TargetArg),
    /// Show what a component declares, without installing it.
    Inspect(InspectArgs),
    /// Run the conformance checks against a component.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Full JSON.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct PathArg {
    /// Path to a `.wasm` component.
    path: PathBuf,
}

#[derive(Debug, Args)]
pub struct TargetArg {
    /// Provider id, or the path of a `.wasm` file in the providers directory.
    #[arg(value_name = "ID|PATH")]
    target: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Path to a `.wasm` component.
    path: PathBuf,
    /// JSON instead of text.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Path to a `.wasm` component.
    path: PathBuf,
    /// A realistic value for a secret, used only for the test (repeatable).
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
}

/// One row of `provider list`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: String,
    version: Option<String>,
    wit_version: Option<String>,
    sha256: Option<String>,
    origin: String,
    secrets: Vec<String>,
    hosts: Vec<String>,
    capabilities: usize,
    status: String,
    reason: Option<String>,
}

impl Row {
    /// A changed file's row, from its approval record: the claims shown are
    /// the approved ones, since the file itself is not compiled until an
    /// operator reviews it.
    fn from_approval(approval: &ApprovalRow, file: &DropFile, status: &Status) -> Self {
        let m: serde_json::Value = serde_json::from_str(&approval.manifest).unwrap_or_default();
        let strings = |v: &serde_json::Value, field: Option<&str>| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|item| field.map_or(item, |f| &item[f]).as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Row {
            id: approval.provider_id.clone(),
            version: m["version"].as_str().map(str::to_string),
            wit_version: None,
            sha256: Some(file.sha256.clone()),
            origin: file.path.display().to_string(),
            secrets: strings(&m["vault_secrets"], Some("name")),
            hosts: strings(&m["hosts"], None),
            capabilities: m["capabilities"].as_array().map_or(0, Vec::len),
            status: status.label().to_string(),
            reason: status.reason().map(str::to_string),
        }
    }

    fn from_plugin(plugin: &Plugin, origin: String, status: &Status) -> Self {
        let m = plugin.manifest();
        Row {
            id: m.id.clone(),
            version: Some(m.version.clone()),
            wit_version: Some(plugin.wit_version().to_string()),
            sha256: Some(plugin.digest().to_string()),
            origin,
            secrets: m.vault_secrets.iter().map(|s| s.name.clone()).collect(),
            hosts: m.hosts.iter().map(ToString::to_string).collect(),
            capabilities: m.capabilities.len(),
            status: status.label().to_string(),
            reason: status.reason().map(str::to_string),
        }
    }
}

pub fn run(ctx: &Context, cmd: ProviderCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProviderCommand::List(args) => list(ctx, args),
        ProviderCommand::Install(args) => install(ctx, args),
        ProviderCommand::Enable(args) => enable(ctx, &args.target),
        ProviderCommand::Disable(args) => disable(ctx, &args.target),
        ProviderCommand::Remove(args) => remove(ctx, &args.target),
        ProviderCommand::Inspect(args) => inspect(ctx, args),
        ProviderCommand::Test(args) => return test(ctx, args),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// The approvals that passed their integrity check (the others are
/// reported by the registry as not in use, with the reason).
fn approvals(ctx: &Context) -> anyhow::Result<Vec<ApprovalRow>> {
    Ok(ctx.read_vault(|v| v.approvals())?.trusted)
}

fn scan(ctx: &Context) -> anyhow::Result<Vec<DropFile>> {
    let dir = &ctx.config()?.providers_dir;
    dropin::scan(dir).with_context(|| format!("cannot read the providers directory {}", dir.display()))
}

/// Every provider with its status, built-ins first. A file that changed
/// since its approval is shown from the approval, not compiled.
fn survey(ctx: &Context) -> anyhow::Result<Vec<Row>> {
    let registry = ctx.registry()?;
    let runtime = ctx.runtime()?;
    let checked = ctx.read_vault(|v| v.approvals())?;
    let (approvals, untrusted) = (checked.trusted, checked.untrusted);
    let mut rows: Vec<Row> = registry
        .providers()
        .iter()
        .filter(|p| matches!(p.origin(), Origin::BuiltIn(_)))
        .map(|p| Row::from_plugin(p, "built-in".into(), &Status::Enabled))
        .collect();
    let files = scan(ctx)?;
    for file in &files {
        let origin = file.path.display().to_string();
        let approval = approvals.iter().find(|a| a.file_name == file.file_name);
        if let Some(a) = approval.filter(|a| a.sha256 != file.sha256) {
            rows.push(Row::from_approval(a, file, &Status::Changed(dropin::changed_reason(a, file))));
            continue;
        }
        let plugin = match dropin::load(runtime, file) {
            Ok(plugin) => plugin,
            Err(reason) => {
                let id = approval
                    .map(|a| a.provider_id.clone())
                    .unwrap_or_else(|| file.file_name.trim_end_matches(".wasm").to_string());
                rows.push(Row {
                    id,
                    version: None,
                    wit_version: None,
                    sha256: Some(file.sha256.clone()),
                    origin,
                    secrets: Vec::new(),
                    hosts: Vec::new(),
                    capabilities: 0,
                    status: "invalid".into(),
                    reason: Some(reason),
                });
                continue;
            }
        };
        let id = plugin.id().to_string();
        let mut note = None;
        let status = match approval {
            Some(a) if !a.enabled => Status::Disabled,
            Some(a) => match registry.refused().iter().find(|(r, _)| *r == a.provider_id) {
                Some((_, reason)) => Status::Invalid(reason.clone()),
                None => Status::Enabled,
            },
            None if untrusted.iter().any(|(i, _)| *i == id) => {
                let reason = untrusted.iter().find(|(i, _)| *i == id).map(|(_, r)| r.clone());
                Status::Invalid(reason.unwrap_or_default())
            }
            None => match conflict_with_loaded(ctx, &plugin)? {
                Some(reason) => Status::Invalid(reason),
                None => {
                    // Approvals are per id: enabling this file would replace
                    // the one another file holds.
                    if let Some(other) = approvals.iter().find(|a| a.provider_id == id) {
                        note = Some(format!(
                            "{} holds the approval for `{id}`; `aivault provider enable {}` would approve \
                             this file instead",
                            other.file_name,
                            file.path.display()
                        ));
                    }
                    Status::Pending
                }
            },
        };
        let mut row = Row::from_plugin(&plugin, origin, &status);
        row.reason = row.reason.or(note);
        rows.push(row);
    }
    for a in approvals.iter().filter(|a| !files.iter().any(|f| f.file_name == a.file_name)) {
        rows.push(Row {
            id: a.provider_id.clone(),
            version: None,
            wit_version: None,
            sha256: Some(a.sha256.clone()),
            origin: ctx.config()?.providers_dir.join(&a.file_name).display().to_string(),
            secrets: Vec::new(),
            hosts: Vec::new(),
            capabilities: 0,
            status: Status::Missing.label().into(),
            reason: Some("its approved file is gone".into()),
        });
    }
    Ok(rows)
}

/// Why `plugin` may not join the loaded providers (other than a previous
/// version of itself).
fn conflict_with_loaded(ctx: &Context, plugin: &Plugin) -> anyhow::Result<Option<String>> {
    let registry = ctx.registry()?;
    let others: Vec<_> = registry
        .providers()
        .iter()
        .filter(|p| p.id() != plugin.id() || matches!(p.origin(), Origin::BuiltIn(_)))
        .map(|p| (p.manifest(), matches!(p.origin(), Origin::BuiltIn(_))))
        .collect();
    Ok(dropin::conflict(plugin.manifest(), &others))
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let rows = survey(ctx)?;
    if args.verbose {
        return print_json(&rows);
    }
    let cells = rows
        .iter()
        .map(|r| {
            let status_style = match r.status.as_str() {
                "enabled" => OK,
                "disabled" => DIM,
                _ => WARN,
            };
            vec![
                (ID, r.id.clone()),
                (DIM, r.version.clone().unwrap_or_else(|| "-".into())),
                (DIM, r.wit_version.clone().unwrap_or_else(|| "-".into())),
                (
                    DIM,
                    r.sha256.as_deref().map(|s| dropin::short(s).to_string()).unwrap_or_else(|| "-".into()),
                ),
                (DIM, if r.secrets.is_empty() { "-".into() } else { r.secrets.join(",") }),
                (DIM, if r.hosts.is_empty() { "-".into() } else { r.hosts.join(",") }),
                (DIM, r.capabilities.to_string()),
                (status_style, r.status.clone()),
            ]
        })
        .collect();
    table(&["ID", "VERSION", "WIT", "SHA256", "SECRETS", "HOSTS", "CAPS", "STATUS"], cells);
    for r in rows.iter().filter(|r| r.reason.is_some()) {
        anstream::println!("{} {}: {}", styled(WARN, "note:"), r.id, r.reason.as_deref().unwrap_or_default());
    }
    Ok(())
}

fn install(ctx: &Context, args: PathArg) -> anyhow::Result<()> {
    let file = dropin::read(&args.path).with_context(|| format!("cannot read {}", args.path.display()))?;
    let plugin = dropin::load(ctx.runtime()?, &file).map_err(anyhow::Error::msg)?;
    if let Some(reason) = conflict_with_loaded(ctx, &plugin)? {
        bail!("{} cannot be installed: {reason}", plugin.id());
    }
    let dir = ctx.config()?.providers_dir.clone();
    let approvals = approvals(ctx)?;
    let file_name = approvals
        .iter()
        .find(|a| a.provider_id == plugin.id())
        .map(|a| a.file_name.clone())
        .unwrap_or_else(|| format!("{}.wasm", plugin.id()));
    let dest = dir.join(&file_name);
    if let Ok(existing) = dropin::read(&dest)
        && existing.sha256 != file.sha256
        && dropin::load(ctx.runtime()?, &existing).is_ok_and(|p| p.id() != plugin.id())
    {
        bail!("{} already holds another provider; remove it first", dest.display());
    }
    crate::fsutil::create_private_dir(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::Write::write_all(&mut tmp, &file.bytes)?;
    tmp.persist(&dest).map_err(|e| e.error).with_context(|| format!("cannot write {}", dest.display()))?;
    let installed = DropFile { path: dest, file_name, ..file };
    ctx.vault()?.approve(dropin::approval_for(&installed, plugin.manifest(), true))?;
    print_approved("installed", &plugin);
    Ok(())
}

fn print_approved(what: &str, plugin: &Plugin) {
    let m = plugin.manifest();
    anstream::println!(
        "Provider {what}: {} {} (sha256 {}) — secrets {}; hosts {}; {} capabilities",
        m.id,
        m.version,
        dropin::short(plugin.digest()),
        m.vault_secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        m.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        m.capabilities.len()
    );
}

/// What `enable`, `disable` and `remove` act on: a provider id, or one
/// file in the providers directory.
enum Target {
    Id(String),
    File(PathBuf),
}

impl Target {
    /// Ids never contain `.`, `/` or `\`, so anything that does is a path; a
    /// bare file name that does not exist here means the providers
    /// directory's file of that name.
    fn parse(ctx: &Context, raw: &str) -> anyhow::Result<Self> {
        if !raw.contains(['.', '/', '\\']) {
            return Ok(Target::Id(raw.to_string()));
        }
        let dir = &ctx.config()?.providers_dir;
        let given = Path::new(raw);
        let bare_name = given.parent().is_none_or(|p| p.as_os_str().is_empty());
        let path = if bare_name && !given.exists() { dir.join(given) } else { given.to_path_buf() };
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let in_dir = dir.canonicalize().ok().is_some_and(|d| parent.canonicalize().ok() == Some(d));
        match path.file_name() {
            Some(name) if in_dir && path.extension().is_some_and(|e| e == "wasm") => {
                Ok(Target::File(dir.join(name)))
            }
            _ => bail!(
                "{raw} is not a `.wasm` file in the providers directory {}; `aivault provider install {raw}` \
                 copies a component there and approves it",
                dir.display()
            ),
        }
    }
}

/// The dropped-in file that holds provider `id`, compiled (the operator
/// asked to act on it). Several files claiming the id is an error asking
/// for the path, since approving one of them by id would be a guess.
fn find_file(ctx: &Context, id: &str) -> anyhow::Result<(DropFile, Plugin)> {
    if ctx.registry()?.providers().iter().any(|p| p.id() == id && matches!(p.origin(), Origin::BuiltIn(_))) {
        bail!("{id} is a built-in provider; it is always enabled and cannot be changed");
    }
    let runtime = ctx.runtime()?;
    // A changed file approved for another provider is never compiled here:
    // only its own re-approval may do that.
    let approvals = approvals(ctx)?;
    let changed_elsewhere = |file: &DropFile| {
        approvals
            .iter()
            .any(|a| a.file_name == file.file_name && a.sha256 != file.sha256 && a.provider_id != id)
    };
    let mut found: Vec<(DropFile, Plugin)> = scan(ctx)?
        .into_iter()
        .filter(|file| !changed_elsewhere(file))
        .filter_map(|file| dropin::load(runtime, &file).ok().map(|plugin| (file, plugin)))
        .filter(|(_, plugin)| plugin.id() == id)
        .collect();
    let dir = ctx.config()?.providers_dir.display().to_string();
    match found.len() {
        0 => bail!("no component in {dir} declares provider `{id}`; `aivault provider list` shows them"),
        1 => Ok(found.remove(0)),
        _ => {
            let names: Vec<&str> = found.iter().map(|(f, _)| f.file_name.as_str()).collect();
            bail!(
                "{} files in {dir} declare provider `{id}` ({}); pass the path of the one you mean, \
                 e.g. {}",
                names.len(),
                names.join(", "),
                found[0].0.path.display()
            )
        }
    }
}

/// The file `target` names (compiled), or the one holding its id.
fn resolve(ctx: &Context, target: &Target) -> anyhow::Result<(DropFile, Plugin)> {
    match target {
        Target::Id(id) => find_file(ctx, id),
        Target::File(path) => {
            let file = dropin::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let plugin = dropin::load(ctx.runtime()?, &file).map_err(anyhow::Error::msg)?;
            Ok((file, plugin))
        }
    }
}

fn enable(ctx: &Context, raw: &str) -> anyhow::Result<()> {
    let (file, plugin) = resolve(ctx, &Target::parse(ctx, raw)?)?;
    let id = plugin.id();
    if let Some(reason) = conflict_with_loaded(ctx, &plugin)? {
        bail!("{id} cannot be enabled: {reason}");
    }
    // Re-approving a changed file: say what it now asks for beyond the
    // approval it replaces, before replacing it.
    if let Some(previous) = approvals(ctx)?.into_iter().find(|a| a.provider_id == id) {
        if previous.file_name != file.file_name {
            anstream::println!(
                "{} this replaces the approval of {} for `{id}`",
                styled(WARN, "note:"),
                previous.file_name
            );
        }
        let more = dropin::asks_for_more(&previous.manifest, plugin.manifest());
        if previous.sha256 != file.sha256 && !more.is_empty() {
            anstream::println!(
                "{} beyond its previous approval, {id} now asks for: {}",
                styled(WARN, "note:"),
                more.join(", ")
            );
        }
    }
    ctx.vault()?.approve(dropin::approval_for(&file, plugin.manifest(), true))?;
    print_approved("enabled", &plugin);
    Ok(())
}

fn disable(ctx: &Context, raw: &str) -> anyhow::Result<()> {
    let approvals = approvals(ctx)?;
    let approval = match Target::parse(ctx, raw)? {
        Target::Id(id) => match approvals.into_iter().find(|a| a.provider_id == id) {
            Some(a) => ApprovalRow { enabled: false, ..a },
            None => {
                let (file, plugin) = find_file(ctx, &id)?;
                dropin::approval_for(&file, plugin.manifest(), false)
            }
        },
        Target::File(path) => {
            match approvals.into_iter().find(|a| Some(a.file_name.as_str()) == file_name(&path)) {
                Some(a) => ApprovalRow { enabled: false, ..a },
                None => {
                    let (file, plugin) = resolve(ctx, &Target::File(path))?;
                    dropin::approval_for(&file, plugin.manifest(), false)
                }
            }
        }
    };
    ctx.vault()?.approve(approval.clone())?;
    anstream::println!("Provider disabled: {}", approval.provider_id);
    Ok(())
}

fn remove(ctx: &Context, raw: &str) -> anyhow::Result<()> {
    // An approval that failed its integrity check is forgotten, but no file
    // is deleted on its word (its file name is not to be trusted either).
    if let Target::Id(id) = Target::parse(ctx, raw)? {
        let checked = ctx.read_vault(|v| v.approvals())?;
        if checked.untrusted.iter().any(|(i, _)| *i == id)
            && !checked.trusted.iter().any(|a| a.provider_id == id)
        {
            ctx.vault()?.forget_approval(&id)?;
            anstream::println!(
                "Provider approval removed: {id} (it failed its integrity check; no file was deleted)"
            );
            return Ok(());
        }
    }
    let approvals = approvals(ctx)?;
    let dir = ctx.config()?.providers_dir.clone();
    let (path, approval) = match Target::parse(ctx, raw)? {
        Target::Id(id) => match approvals.into_iter().find(|a| a.provider_id == id) {
            Some(a) => (dir.join(&a.file_name), Some(a)),
            None => (find_file(ctx, &id)?.0.path, None),
        },
        Target::File(path) => {
            let approval = approvals.into_iter().find(|a| Some(a.file_name.as_str()) == file_name(&path));
            if approval.is_none() && !path.exists() {
                bail!("{} does not exist; `aivault provider list` shows the providers", path.display());
            }
            (path, approval)
        }
    };
    if path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
    }
    if let Some(a) = &approval {
        ctx.vault()?.forget_approval(&a.provider_id)?;
    }
    let what = approval.map(|a| a.provider_id).or_else(|| file_name(&path).map(str::to_string));
    anstream::println!(
        "Provider removed: {} (its secrets and credentials stay in the vault)",
        what.unwrap_or_default()
    );
    Ok(())
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

fn inspect(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let file = dropin::read(&args.path).with_context(|| format!("cannot read {}", args.path.display()))?;
    let plugin = dropin::load(ctx.runtime()?, &file).map_err(anyhow::Error::msg)?;
    let conflict = conflict_with_loaded(ctx, &plugin)?;
    if args.verbose {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Inspection<'a> {
            sha256: &'a str,
            wit_version: &'a str,
            manifest: &'a crate::plugins::ProviderManifest,
            conflict: Option<String>,
        }
        return print_json(&Inspection {
            sha256: &file.sha256,
            wit_version: plugin.wit_version(),
            manifest: plugin.manifest(),
            conflict,
        });
    }
    let m = plugin.manifest();
    let field = |name: &str, value: String| {
        anstream::println!("{}{value}", styled(DIM, format!("{:<14}", format!("{name}:"))))
    };
    field("provider", format!("{} {} — {}", m.id, m.version, m.description));
    field("contract", format!("aivault:provider@{}", plugin.wit_version()));
    field("sha256", file.sha256.clone());
    field("hosts", m.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    for s in &m.vault_secrets {
        field("secret", format!("{} ({}) {}", s.name, s.placeholder, styled(DIM, &s.description)));
    }
    for k in &m.credential_kinds {
        field("credential", format!("{}: {} -> {}", k.id, k.secrets.join(" + "), k.auth_summary));
    }
    for c in &m.capabilities {
        field("capability", format!("{}  {}  {}", c.id, c.methods.join(","), c.path_prefixes.join(", ")));
    }
    if let Some(reason) = conflict {
        anstream::println!("{} it cannot be enabled here: {reason}", styled(WARN, "note:"));
    }
    Ok(())
}

fn test(ctx: &Context, args: TestArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.path).with_context(|| format!("cannot read {}", args.path.display()))?;
    let mut secrets = HashMap::new();
    for raw in &args.secrets {
        let (name, value) = raw
            .split_once('=')
            .with_context(|| format!("--secret #{} must be NAME=VALUE", secrets.len() + 1))?;
        secrets.insert(name.to_string(), value.to_string());
    }
    let values: Vec<&str> = secrets.values().map(String::as_str).collect();
    let checks = conformance::run(ctx.runtime()?, Origin::File(args.path.clone()), &bytes, &secrets);
    let failed = checks.iter().filter(|c| c.failure.is_some()).count();
    for check in &checks {
        match &check.failure {
            None => anstream::println!("{} {}", styled(OK, "pass"), check.name),
            Some(why) => anstream::println!(
                "{} {}: {}",
                styled(WARN, "FAIL"),
                check.name,
                crate::redact::text(why, &values)
            ),
        }
    }
    anstream::println!("{} checks, {} failed", checks.len(), failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
