//! The command line: clap definitions, dispatch, and output formatting. The
//! work itself happens in the library modules; this is the binary's edge,
//! where errors become one line on stderr and an exit code.

mod capability;
mod context;
mod output;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Vault directory.
    #[arg(long, global = true, env = "AIVAULT_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List, describe and invoke capabilities.
    #[command(subcommand, visible_alias = "capabilities")]
    Capability(capability::CapabilityCommand),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Runs the command line and turns any error into one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::new(cli.dir)?;
    match cli.command {
        Command::Capability(cmd) => capability::run(&ctx, cmd),
        Command::Completions { shell } => {
            let mut stdout = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "aivault", &mut stdout);
            stdout.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
