//! `aivault daemon` (also `aivaultd`), `aivault unlock` and `aivault lock`,
//! and how the other commands find a running daemon.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;

use super::Context;
use super::output::{DIM, WARN, styled};
use crate::daemon::client::Client;
use crate::daemon::protocol::{Pong, Request, Response};
use crate::daemon::{self, DaemonOptions, SHARED_SOCKET, SOCKET_VAR};
use crate::serve::ServeOptions;

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The socket to serve (default: $AIVAULTD_SOCKET, else
    /// <vault>/run/aivaultd.sock, or /run/aivault/aivaultd.sock with --shared).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Let the socket's group (agents, see `aivault setup agent-access`)
    /// connect: mode 0660 instead of 0600.
    #[arg(long)]
    shared: bool,
    /// Calls served at once.
    #[arg(long, default_value_t = 32)]
    max_concurrent: usize,
    /// Also serve `aivault serve`'s HTTP front-end on this loopback address,
    /// on the daemon's key (answers 503 while the daemon is locked).
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// Let --serve listen beyond loopback; say why (it is printed). Every
    /// request still needs a proxy token.
    #[arg(long, value_name = "REASON", requires = "serve")]
    allow_remote: Option<String>,
}

pub fn run_daemon(ctx: &Context, args: DaemonArgs) -> anyhow::Result<()> {
    let socket = match (args.socket, std::env::var_os(SOCKET_VAR)) {
        (Some(path), _) => path,
        (None, Some(path)) => PathBuf::from(path),
        (None, None) if args.shared => PathBuf::from(SHARED_SOCKET),
        (None, None) => daemon::default_socket(ctx.dir()),
    };
    if !ctx.vault_exists() {
        bail!(
            "no vault in {} yet; `aivault secrets create` or `aivault init` creates it",
            ctx.dir().display()
        );
    }
    if let (Some(reason), Some(listen)) = (&args.allow_remote, args.serve) {
        anstream::eprintln!(
            "{} listening beyond loopback on {listen} because: {reason}",
            styled(WARN, "warning:")
        );
    }
    let options = DaemonOptions {
        socket: socket.clone(),
        shared: args.shared,
        max_concurrent: args.max_concurrent,
        serve: args.serve.map(|listen| ServeOptions {
            listen,
            allow_remote: args.allow_remote.clone(),
            ..ServeOptions::default()
        }),
    };
    ctx.serving(options.max_concurrent.max(1) + options.serve.as_ref().map_or(0, |s| s.max_concurrent));
    daemon::run(
        ctx.dir().to_path_buf(),
        ctx.keys().clone(),
        ctx.load_registry()?,
        ctx.dev().clone(),
        options,
        |unlocked, http| {
            let state =
                if unlocked { "unlocked".to_string() } else { "locked: run `aivault unlock`".to_string() };
            // The first line on stdout, so a script (or a test) knows it is up.
            anstream::println!("aivaultd listening on {} ({state})", socket.display());
            if let Some(addr) = http {
                anstream::println!("aivault serve listening on http://{addr}");
            }
        },
    )?;
    Ok(())
}

/// `aivault unlock`: hands the running daemon the key material, read here
/// (`AIVAULT_KEY`, `AIVAULT_PASSPHRASE` or a prompt), never stored.
pub fn unlock(ctx: &Context) -> anyhow::Result<()> {
    let (client, pong) = running(ctx)?;
    if !pong.operator {
        // Not ours to unlock: the daemon refuses (and audits) it.
        return expect_done(client.request(&Request::Unlock { material: None }, Duration::from_secs(10))?);
    }
    let config = ctx.vault()?.key_config()?.context("the vault has no master key yet")?;
    let material = crate::vault::keys::material_for(&config)?;
    let mut request = Request::Unlock { material: material.as_ref().map(|m| m.to_string()) };
    let answer = client.request(&request, Duration::from_secs(60));
    if let Request::Unlock { material: Some(copy) } = &mut request {
        zeroize::Zeroize::zeroize(copy);
    }
    expect_done(answer?)?;
    anstream::println!("Vault unlocked in aivaultd ({})", client.path().display());
    Ok(())
}

/// `aivault lock`: the daemon forgets the key until the next unlock.
pub fn lock(ctx: &Context) -> anyhow::Result<()> {
    let (client, _) = running(ctx)?;
    expect_done(client.request(&Request::Lock, Duration::from_secs(10))?)?;
    anstream::println!(
        "Vault locked in aivaultd ({}); `aivault unlock` opens it again",
        client.path().display()
    );
    Ok(())
}

fn expect_done(response: Response) -> anyhow::Result<()> {
    match response {
        Response::Done => Ok(()),
        Response::Error { message } => bail!("{message}"),
        _ => bail!("aivaultd gave an unexpected answer"),
    }
}

fn running(ctx: &Context) -> anyhow::Result<(Client, Pong)> {
    match find(ctx) {
        Some(found) => Ok(found),
        None => bail!("no aivaultd is running for {}; `aivault daemon` starts one", ctx.dir().display()),
    }
}

/// The daemon serving this vault, if one runs: found through
/// `AIVAULTD_SOCKET`, the vault's own socket, or the shared one. A daemon
/// of another vault is used only by someone with no vault of their own
/// (an agent of that vault's operator).
pub fn find(ctx: &Context) -> Option<(Client, Pong)> {
    let ours = std::fs::canonicalize(ctx.dir()).ok();
    daemon::candidate_sockets(ctx.dir())
        .iter()
        .filter_map(|path| Client::at(path))
        .filter_map(|client| match client.ping() {
            Ok(pong) => Some((client, pong)),
            Err(e) => {
                // Said out loud: someone may be posing as aivaultd.
                if e.untrusted() {
                    anstream::eprintln!("{} {e}", styled(WARN, "warning:"));
                }
                None
            }
        })
        .find(|(_, pong)| match &ours {
            Some(ours) => std::fs::canonicalize(&pong.dir).is_ok_and(|theirs| theirs == *ours),
            None => !pong.operator,
        })
}

/// A daemon for this vault, started if none runs and `AIVAULTD_AUTOSTART=1`.
pub fn find_or_start(ctx: &Context) -> anyhow::Result<Option<(Client, Pong)>> {
    if let Some(found) = find(ctx) {
        return Ok(Some(found));
    }
    if std::env::var("AIVAULTD_AUTOSTART").as_deref() != Ok("1") || !ctx.vault_exists() {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("cannot find the aivault binary to start aivaultd")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("--dir")
        .arg(ctx.dir())
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Its own process group, so the caller's Ctrl-C does not stop it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.spawn().context("cannot start aivaultd")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(found) = find(ctx) {
            anstream::eprintln!("{}", styled(DIM, "started aivaultd (AIVAULTD_AUTOSTART=1)"));
            return Ok(Some(found));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anstream::eprintln!("{}", styled(WARN, "note: aivaultd did not start in time; calling in this process"));
    Ok(None)
}
