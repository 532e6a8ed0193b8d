//! The command line: clap definitions, dispatch, and output formatting. The
//! work itself happens in the library modules; this is the binary's edge,
//! where errors become one line on stderr and an exit code.

mod admin;
mod agent;
mod capability;
mod context;
mod credential;
mod daemon;
mod invoke;
mod mcp;
mod output;
mod provider;
mod secrets;
mod serve;
mod setup;
mod token;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches as _, Parser, Subcommand};

pub use context::Context;

/// A local vault that keeps API secrets away from the AI agents and scripts
/// that use them.
///
/// Secrets go in once and never come back out. Callers invoke capabilities;
/// aivault has the provider's sandboxed component inject the secret into the
/// outgoing request.
#[derive(Debug, Parser)]
#[command(name = "aivault", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: Command,
}

/// What every subcommand accepts.
#[derive(Debug, Args)]
struct Globals {
    /// Vault directory.
    #[arg(long, global = true, env = "AIVAULT_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store, list, rotate and delete encrypted secrets.
    #[command(subcommand, visible_alias = "secret")]
    Secrets(secrets::SecretsCommand),

    /// Credentials: a provider's secrets in one scope, ready to inject.
    #[command(subcommand, visible_alias = "credentials")]
    Credential(credential::CredentialCommand),

    /// Invoke a capability: aivault injects the credential and sends the
    /// request; the body goes to stdout, the status to stderr.
    Invoke(invoke::InvokeArgs),

    /// Invoke a capability and pretty-print its JSON response.
    Json(invoke::InvokeArgs),

    /// Invoke a capability and render its JSON response as Markdown.
    #[command(visible_alias = "md")]
    Markdown(invoke::InvokeArgs),

    /// List, describe and invoke capabilities.
    #[command(subcommand, visible_alias = "capabilities")]
    Capability(capability::CapabilityCommand),

    /// Built-in and dropped-in provider components: list, install, approve,
    /// inspect and test them.
    #[command(subcommand, visible_alias = "providers")]
    Provider(provider::ProviderCommand),

    /// Serve capabilities over local HTTP to agents and unmodified SDKs,
    /// each request authorised by a proxy token.
    Serve(serve::ServeArgs),

    /// Serve capabilities as tools to AI agents over the Model Context
    /// Protocol (stdio), in a scope fixed at start.
    Mcp(mcp::McpArgs),

    /// Run aivaultd: hold the unlocked key in memory and serve a Unix
    /// socket; `invoke` goes through it, agents get only their grants.
    Daemon(daemon::DaemonArgs),

    /// Hand the running daemon the key (AIVAULT_KEY, AIVAULT_PASSPHRASE or a prompt).
    Unlock,

    /// Make the running daemon forget the key until `aivault unlock`.
    Lock,

    /// What other OS users (agents) may invoke through aivaultd.
    #[command(subcommand, visible_alias = "agents")]
    Agent(agent::AgentCommand),

    /// OS set-up (as root): `setup agent-access --agent-user NAME`.
    #[command(subcommand)]
    Setup(setup::SetupCommand),

    /// Proxy tokens for `aivault serve`: create (printed once), list, revoke.
    #[command(subcommand, visible_alias = "tokens")]
    Token(token::TokenCommand),

    /// Set up the master key (file, env or passphrase). Optional: the first
    /// `secrets create` sets up a key file by itself.
    Init(admin::InitArgs),

    /// Show the vault's location, key provider, lock state and counts.
    Status(admin::StatusArgs),

    /// Re-wrap every data key under a new master key; values are untouched.
    RotateMaster(admin::RotateMasterArgs),

    /// Show the audit log (newest first), or `audit verify` its chain.
    Audit(admin::AuditArgs),

    /// Copy the whole vault into another database (a PostgreSQL server, or
    /// back to a SQLite file) and check the copy with the vault's key.
    Migrate(admin::MigrateArgs),

    /// Check the whole vault with its key: every row's integrity, every
    /// value's decryption, the audit chain. Exits non-zero on any problem.
    Doctor(admin::DoctorArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Runs the command line and turns any error into one line on stderr.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    run_parsed(parse_call(&args).map_or_else(|| Cli::try_parse_from(args), Ok))
}

/// `invoke`, `json` and `markdown` (what agents run, often in a loop) parsed
/// without building every subcommand's definition (a twentieth of a one-shot
/// call): by hand in their plain form, else by clap with only their own
/// definition. `None` unless the subcommand comes first and its arguments
/// parse, so help, versions and every error come from the whole command
/// line, exactly as before.
fn parse_call(args: &[OsString]) -> Option<Cli> {
    let (name, wrap): (&'static str, fn(invoke::InvokeArgs) -> Command) = match args.get(1)?.to_str()? {
        "invoke" => ("invoke", Command::Invoke),
        "json" => ("json", Command::Json),
        "markdown" => ("markdown", Command::Markdown),
        "md" => ("md", Command::Markdown),
        _ => return None,
    };
    if let Some((dir, invoke)) = invoke::InvokeArgs::parse_plain(&args[2..]) {
        return Some(Cli { globals: Globals { dir }, command: wrap(invoke) });
    }
    let call =
        clap::Command::new("aivault").subcommand(invoke::InvokeArgs::augment_args(clap::Command::new(name)));
    let matches = Globals::augment_args(call).try_get_matches_from(args).ok()?;
    let globals = Globals::from_arg_matches(&matches).ok()?;
    let invoke = invoke::InvokeArgs::from_arg_matches(matches.subcommand()?.1).ok()?;
    Some(Cli { globals, command: wrap(invoke) })
}

/// `aivaultd [options]`: `aivault daemon [options]`.
pub fn daemon_main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.insert(1.min(args.len()), "daemon".into());
    run_parsed(Cli::try_parse_from(args))
}

fn run_parsed(parsed: Result<Cli, clap::Error>) -> ExitCode {
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err);
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout as usual; a usage error becomes one line
/// on stderr (clap's first line, plus the possible values if it lists them).
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's message is its first paragraph; a tip may follow later.
    let rendered = err.render().to_string();
    let mut parts: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    if let Some(tip) = rendered.lines().map(str::trim).find(|l| l.starts_with("tip:")) {
        parts.push(tip);
    }
    let line = if parts.is_empty() { "error: invalid arguments".to_string() } else { parts.join(" ") };
    anstream::eprintln!("{line} (see --help)");
    ExitCode::from(2)
}

/// The name of an admin command (one an agent may not run), or `None` for
/// the commands anyone may (invoking, and those that only talk to the
/// daemon or the OS).
fn admin_label(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Invoke(_)
        | Command::Json(_)
        | Command::Markdown(_)
        | Command::Mcp(_)
        | Command::Unlock
        | Command::Lock
        | Command::Setup(_)
        | Command::Completions { .. } => return None,
        Command::Secrets(_) => "secrets",
        Command::Credential(_) => "credential",
        Command::Capability(_) => "capability",
        Command::Provider(_) => "provider",
        Command::Token(_) => "token",
        Command::Serve(_) => "serve",
        Command::Daemon(_) => "daemon",
        Command::Agent(_) => "agent",
        Command::Init(_) => "init",
        Command::Status(_) => "status",
        Command::RotateMaster(_) => "rotate-master",
        Command::Migrate(_) => "migrate",
        Command::Audit(_) => "audit",
        Command::Doctor(_) => "doctor",
    })
}

/// An agent (someone with no vault of their own who reaches an operator's
/// aivaultd) running an admin command: the daemon refuses it and audits it.
fn refuse_agent_admin(ctx: &Context, command: &Command) -> anyhow::Result<()> {
    let Some(label) = admin_label(command) else { return Ok(()) };
    if ctx.vault_exists() {
        return Ok(());
    }
    let Some((client, pong)) = daemon::find(ctx) else { return Ok(()) };
    if pong.operator {
        return Ok(());
    }
    let request = crate::daemon::protocol::Request::Admin { command: label.to_string() };
    match client.request(&request, std::time::Duration::from_secs(10))? {
        crate::daemon::protocol::Response::Error { message } => anyhow::bail!("{message}"),
        _ => anyhow::bail!("aivaultd gave an unexpected answer"),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if matches!(cli.command, Command::Serve(_) | Command::Daemon(_)) {
        // Before it opens anything (see the function).
        crate::memory::restart_for_serving();
        crate::memory::no_sqlite_memory_statistics();
    }
    let ctx = Context::new(cli.globals.dir)?;
    refuse_agent_admin(&ctx, &cli.command)?;
    match cli.command {
        Command::Secrets(cmd) => secrets::run(&ctx, cmd).map(|()| ExitCode::SUCCESS),
        Command::Credential(cmd) => credential::run(&ctx, cmd).map(|()| ExitCode::SUCCESS),
        Command::Capability(cmd) => capability::run(&ctx, cmd),
        Command::Provider(cmd) => provider::run(&ctx, cmd),
        Command::Token(cmd) => token::run(&ctx, cmd).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::Mcp(args) => mcp::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::Daemon(args) => daemon::run_daemon(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::Unlock => daemon::unlock(&ctx).map(|()| ExitCode::SUCCESS),
        Command::Lock => daemon::lock(&ctx).map(|()| ExitCode::SUCCESS),
        Command::Agent(cmd) => agent::run(&ctx, cmd).map(|()| ExitCode::SUCCESS),
        Command::Setup(cmd) => setup::run(&ctx, cmd).map(|()| ExitCode::SUCCESS),
        Command::Invoke(args) => invoke::run(&ctx, args, invoke::Render::Raw),

        Command::Json(args) => invoke::run(&ctx, args, invoke::Render::Json),
        Command::Markdown(args) => invoke::run(&ctx, args, invoke::Render::Markdown),

        Command::Init(args) => admin::init(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::Status(args) => admin::status(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::RotateMaster(args) => admin::rotate_master(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => admin::migrate(&ctx, args).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => admin::audit(&ctx, args),
        Command::Doctor(args) => admin::doctor(&ctx, args),
        Command::Completions { shell } => {
            let mut stdout = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "aivault", &mut stdout);
            stdout.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    // The short cut parses a call exactly as the whole command line does,
    // and leaves everything else (help, errors, other commands) to it.
    #[test]
    fn a_call_parses_the_same_either_way() {
        let same = [
            vec!["aivault", "invoke", "openai/models"],
            vec![
                "aivault",
                "json",
                "openai/chat-completions",
                "--path",
                "/v1/chat/completions",
                "--body",
                "{}",
            ],
            vec![
                "aivault",
                "md",
                "github/user",
                "--dir",
                "/tmp/v",
                "--header",
                "accept: a/b",
                "--header",
                "x: y",
            ],
            vec![
                "aivault",
                "markdown",
                "x/y",
                "--multipart-field",
                "a=b",
                "--timeout-ms",
                "5",
                "--workspace-id",
                "w",
            ],
            vec![
                "aivault",
                "invoke",
                "x/y",
                "--group-id",
                "g",
                "--workspace-id",
                "w",
                "--consumer",
                "c",
                "--credential",
                "k",
            ],
            vec!["aivault", "invoke", "x/y", "--request", "{\"method\":\"GET\"}", "--method", "POST"],
            vec!["aivault", "invoke", "--method=GET", "x/y", "--path=/v1/a?b=c", "--dir=/tmp/v"],
            vec![
                "aivault",
                "json",
                "x/y",
                "--timeout-ms=0",
                "--multipart-file",
                "f=/a",
                "--multipart-file=g=/b",
            ],
            vec!["aivault", "invoke", "x/y", "--request-file", "r.json", "--body-file-path", "b.bin"],
        ];
        for args in same {
            let plain = invoke::InvokeArgs::parse_plain(&os(&args)[2..]);
            assert!(plain.is_some(), "{args:?} was not read by hand");
            let fast = parse_call(&os(&args)).unwrap_or_else(|| panic!("{args:?} took the long way"));
            let whole = Cli::try_parse_from(os(&args));
            assert_eq!(format!("{fast:?}"), format!("{:?}", whole.unwrap()), "{args:?}");
        }
        // Left to clap's definition of the one subcommand, which reads
        // them as the whole command line does.
        let by_clap = [
            vec!["aivault", "invoke", "x/y", "--path=-x"],
            vec!["aivault", "invoke", "x/y", "--body", ""],
            vec!["aivault", "invoke", "x/y", "--timeout-ms", "+5"],
        ];
        for args in by_clap {
            assert!(invoke::InvokeArgs::parse_plain(&os(&args)[2..]).is_none(), "{args:?} was read by hand");
            let fast = parse_call(&os(&args)).map(|cli| format!("{cli:?}"));
            let whole = Cli::try_parse_from(os(&args)).ok().map(|cli| format!("{cli:?}"));
            assert_eq!(fast, whole, "{args:?}");
        }
        let elsewhere = [
            vec!["aivault", "invoke", "--help"],
            vec!["aivault", "invoke", "-V"],
            vec!["aivault", "invoke"],
            vec!["aivault", "invoke", "x/y", "--no-such-flag"],
            vec!["aivault", "invoke", "x/y", "--", "--x"],
            vec!["aivault", "invoke", "x/y", "--body", "a", "--body-file-path", "b"],
            vec!["aivault", "invoke", "x/y", "--request=a", "--request-file=b"],
            vec!["aivault", "invoke", "x/y", "--method", "GET", "--method", "POST"],
            vec!["aivault", "invoke", "x/y", "z/w"],
            vec!["aivault", "invoke", "x/y", "--timeout-ms", "soon"],
            vec!["aivault", "invoke", "x/y", "--path"],
            vec!["aivault", "--dir", "/tmp/v", "invoke", "x/y"],
            vec!["aivault", "secrets", "list"],
            vec!["aivault"],
        ];
        for args in elsewhere {
            assert!(parse_call(&os(&args)).is_none(), "{args:?} took the short cut");
            if args.len() > 2 && ["invoke", "json", "markdown", "md"].contains(&args[1]) {
                assert!(invoke::InvokeArgs::parse_plain(&os(&args)[2..]).is_none(), "{args:?} read by hand");
            }
        }
    }
}
