//! `aivault init`, `status`, `rotate-master`, `audit` and `doctor`: the vault itself.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{DIM, HEADING, ID, OK, WARN, print_json, printable, styled, timestamp};
use crate::vault::{KeyProvider, Location, Vault};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where the master key comes from.
    #[arg(long, value_enum, default_value = "file")]
    provider: KeyProvider,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Full JSON.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct RotateMasterArgs {
    /// Move to another key provider (default: keep the current one). The
    /// current key unlocks as usual; a new env key is read from
    /// AIVAULT_NEW_KEY, a new passphrase from AIVAULT_NEW_PASSPHRASE (or a
    /// prompt), and a new key file is generated.
    #[arg(long, value_enum)]
    provider: Option<KeyProvider>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where to copy the vault: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`
    /// (libpq's sslmode and sslrootcert are understood) or `sqlite:DIRECTORY`.
    /// The target must hold no vault; the source is only read.
    #[arg(long, value_name = "URL")]
    to: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// How many events to show, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only events before this time (milliseconds since the Unix epoch).
    #[arg(long, value_name = "MS")]
    before_ts_ms: Option<i64>,
    /// Full JSON.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the chain (hashes, each event's MAC, the sealed newest event)
    /// and report the first edited, inserted, reordered or deleted event.
    Verify(StatusArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Full JSON.
    #[arg(short, long)]
    verbose: bool,
    /// After reviewing the listings (`credential list`, `capability list`,
    /// `capability bindings`, `capability policy list`, `provider list`,
    /// `secrets list`), accept each table's current set of rows: a row
    /// added, removed or replaced outside aivault breaks its table's seal.
    /// Rows whose own check fails stay refused: delete or re-create them.
    #[arg(long)]
    reseal: bool,
}

pub fn init(ctx: &Context, args: InitArgs) -> anyhow::Result<()> {
    ctx.vault()?.init(args.provider)?;
    anstream::println!(
        "Vault initialised in {} (key provider: {})",
        ctx.dir().display(),
        args.provider.as_str()
    );
    Ok(())
}

pub fn status(ctx: &Context, args: StatusArgs) -> anyhow::Result<()> {
    if !Vault::exists(ctx.dir()) {
        if args.verbose {
            return print_json(&serde_json::json!({"dir": ctx.dir(), "state": "absent"}));
        }
        anstream::println!(
            "No vault in {} yet; `aivault secrets create` or `aivault init` creates it.",
            ctx.dir().display()
        );
        return Ok(());
    }
    let status = ctx.vault()?.status()?;
    let providers: Vec<String> =
        ctx.registry()?.providers().iter().map(|p| format!("{} {}", p.id(), p.manifest().version)).collect();
    if args.verbose {
        #[derive(Serialize)]
        struct Full<'a> {
            #[serde(flatten)]
            status: &'a crate::vault::Status,
            providers: &'a [String],
        }
        return print_json(&Full { status: &status, providers: &providers });
    }
    let field = |name: &str, value: String| {
        anstream::println!("{}{value}", styled(DIM, format!("{:<14}", format!("{name}:"))))
    };
    field("vault", status.dir.display().to_string());
    field("database", format!("{} (schema {})", status.database, status.schema_version));
    let key = match (&status.key_provider, &status.key_file) {
        (Some(p), Some(file)) => format!("{p} ({})", file.display()),
        (Some(p), None) => p.clone(),
        (None, _) => "none yet".to_string(),
    };
    field("key provider", key);
    let state = match status.state.as_str() {
        "unlocked" => styled(OK, &status.state),
        other => styled(WARN, other),
    };
    let detail = status.state_detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
    field("state", format!("{state}{detail}"));
    field("secrets", status.secrets.to_string());
    field("credentials", status.credentials.to_string());
    field("audit events", status.audit_events.to_string());
    match &status.integrity_problems {
        None => field("integrity", styled(DIM, "not checked (the vault is locked)")),
        Some(problems) if problems.is_empty() => field("integrity", styled(OK, "every row authentic")),
        Some(problems) => {
            field("integrity", styled(WARN, format!("{} problem(s); see `aivault doctor`", problems.len())));
            for problem in problems {
                anstream::println!("  {} {problem}", styled(WARN, "!"));
            }
        }
    }
    if let Some(ms) = status.master_key_rotated_at_ms {
        field("key rotated", timestamp(ms));
    }
    field("providers", providers.join(", "));
    if let Some(why) = ctx.runtime()?.cache_refused() {
        field("code cache", styled(WARN, format!("not used, components are compiled each time: {why}")));
    }
    Ok(())
}

pub fn rotate_master(ctx: &Context, args: RotateMasterArgs) -> anyhow::Result<()> {
    let mut vault = ctx.vault()?;
    let count = vault.rotate_master(args.provider)?;
    let provider = vault.status()?.key_provider.unwrap_or_default();
    anstream::println!(
        "Master key rotated (key provider: {provider}); {count} data keys re-wrapped, values untouched."
    );
    Ok(())
}

pub fn migrate(ctx: &Context, args: MigrateArgs) -> anyhow::Result<()> {
    if !Vault::exists(ctx.dir()) {
        anyhow::bail!("no vault in {} yet; nothing to migrate", ctx.dir().display());
    }
    let target = Location::parse_target(&args.to)?;
    let mut vault = ctx.vault()?;
    let key_provider = vault.key_config()?.map(|c| c.provider).unwrap_or_default();
    let migrated = vault.migrate_to(target.clone())?;
    anstream::println!(
        "Copied the vault to {}: {} secrets, {} audit events, {} rows in all; checked with the vault's key.",
        migrated.target,
        migrated.secrets,
        migrated.audit_events,
        migrated.rows
    );
    let switch = match &target {
        Location::Postgres(_) => {
            "To use it, set AIVAULT_DATABASE_URL (or [storage] url in config.toml) on every machine"
                .to_string()
        }
        Location::Sqlite(dir) => format!(
            "To use it, unset AIVAULT_DATABASE_URL and [storage] url, and run with AIVAULT_DIR={}",
            dir.display()
        ),
    };
    let key = if key_provider == "file" {
        format!("; the key file stays in {}/keys and goes with it", ctx.dir().display())
    } else {
        format!("; the key comes from the {key_provider} provider as before")
    };
    anstream::println!("{switch}{key}. The source is unchanged.");
    Ok(())
}

pub fn audit(ctx: &Context, args: AuditArgs) -> anyhow::Result<std::process::ExitCode> {
    if let Some(AuditCommand::Verify(verify_args)) = args.command {
        let verification = ctx.read_vault(|v| v.verify_audit())?;
        if verify_args.verbose {
            print_json(&verification)?;
        } else if let Some((seq, what)) = &verification.first_problem {
            anstream::println!(
                "{} first problem at event #{seq}: {what}",
                styled(WARN, "audit log damaged:")
            );
        } else if verification.authenticated {
            anstream::println!(
                "{} {} events, chain intact and sealed by the vault's key",
                styled(OK, "audit log ok:"),
                verification.events
            );
        } else {
            anstream::println!(
                "{} {} events, hash chain intact (not yet sealed: the vault predates sealing until its next write)",
                styled(OK, "audit log ok:"),
                verification.events
            );
        }
        return Ok(if verification.first_problem.is_some() {
            std::process::ExitCode::FAILURE
        } else {
            std::process::ExitCode::SUCCESS
        });
    }
    let rows = ctx.read_vault(|v| v.audit(i64::from(args.limit), args.before_ts_ms))?;
    if args.verbose {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct EventView<'a> {
            seq: i64,
            ts_ms: i64,
            event: &'a str,
            subject: &'a str,
            details: serde_json::Value,
            hash: &'a str,
        }
        let views: Vec<EventView<'_>> = rows
            .iter()
            .map(|r| EventView {
                seq: r.seq,
                ts_ms: r.ts_ms,
                event: &r.event,
                subject: &r.subject,
                details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
                hash: &r.hash,
            })
            .collect();
        print_json(&views)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        anstream::println!("{}", styled(DIM, "No audit events."));
    }
    for r in &rows {
        anstream::println!(
            "{} {}  {}  {}  {}",
            styled(DIM, format!("#{:<5}", r.seq)),
            styled(DIM, timestamp(r.ts_ms)),
            styled(HEADING, format!("{:<22}", r.event)),
            // A subject can be a caller's capability id: never raw.
            styled(ID, printable(&r.subject)),
            styled(DIM, printable(&r.details))
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn doctor(ctx: &Context, args: DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    if !Vault::exists(ctx.dir()) {
        anyhow::bail!("no vault in {} yet; nothing to check", ctx.dir().display());
    }
    let mut vault = ctx.vault()?;
    if args.reseal {
        vault.reseal_tables()?;
        anstream::println!("Policy and binding tables re-sealed as they stand.");
    }
    let diagnosis = vault.doctor()?;
    if args.verbose {
        print_json(&diagnosis)?;
    } else {
        let mark = |ok: bool| if ok { styled(OK, "ok  ") } else { styled(WARN, "FAIL") };
        let rows_ok = diagnosis.integrity_problems.is_empty();
        if diagnosis.authenticated {
            anstream::println!("{} rows and table seals authentic", mark(rows_ok));
        } else {
            anstream::println!(
                "{} rows not yet authenticated (a vault made by an older aivault; its next write does it)",
                styled(DIM, "--  ")
            );
        }
        for problem in &diagnosis.integrity_problems {
            anstream::println!("     {problem}");
        }
        anstream::println!(
            "{} {} of {} values decrypt",
            mark(diagnosis.undecryptable.is_empty()),
            diagnosis.secrets - diagnosis.undecryptable.len(),
            diagnosis.secrets
        );
        for secret in &diagnosis.undecryptable {
            anstream::println!("     {secret} does not decrypt: its row was altered or moved");
        }
        match &diagnosis.audit.first_problem {
            None => anstream::println!(
                "{} audit log: {} events, chain intact",
                mark(true),
                diagnosis.audit.events
            ),
            Some((seq, what)) => {
                anstream::println!("{} audit log: first problem at event #{seq}: {what}", mark(false))
            }
        }
        if let Some(why) = ctx.runtime()?.cache_refused() {
            anstream::println!(
                "{} compiled-code cache not used (components are compiled each time): {why}",
                styled(DIM, "note")
            );
        }
        for file in &diagnosis.stale_key_files {
            anstream::println!(
                "{} key file {} opens no current secret (left by an interrupted rotation?); keep it only for old backups",
                styled(DIM, "note"),
                file.display()
            );
        }
    }
    Ok(if diagnosis.healthy() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}
