//! `aivault setup agent-access`: the OS plumbing (Linux, as root) that lets
//! another user reach the operator's aivaultd and nothing else: a group for
//! agents, a shared socket directory only that group can enter, and a vault
//! directory only its owner can read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::Context;
use crate::daemon::SHARED_SOCKET;
use crate::unixuser;

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Let an OS user (an agent) reach aivaultd's shared socket, and only
    /// that: run as root.
    AgentAccess(AgentAccessArgs),
}

#[derive(Debug, Args)]
pub struct AgentAccessArgs {
    /// The agent's OS user.
    #[arg(long)]
    agent_user: String,
    /// The vault's owner (default: the user who ran sudo).
    #[arg(long)]
    operator_user: Option<String>,
    /// The group agents share the socket through.
    #[arg(long, default_value = "aivault-agents")]
    group: String,
    /// Where the shared socket lives.
    #[arg(long, value_name = "DIR")]
    socket_dir: Option<PathBuf>,
}

pub fn run(ctx: &Context, cmd: SetupCommand) -> anyhow::Result<()> {
    let SetupCommand::AgentAccess(args) = cmd;
    if unixuser::current_uid() != 0 {
        bail!("`aivault setup agent-access` changes users and groups: run it as root (sudo)");
    }
    let operator = match args.operator_user.or_else(|| std::env::var("SUDO_USER").ok()) {
        Some(user) => user,
        None => bail!("say whose vault it is: --operator-user NAME (or run through sudo)"),
    };
    let operator_uid = unixuser::uid_of(&operator).with_context(|| format!("no OS user `{operator}`"))?;
    if unixuser::uid_of(&args.agent_user).is_none() {
        bail!("no OS user `{}`; create it first (useradd)", args.agent_user);
    }
    if args.agent_user == operator {
        bail!("the agent must be another user than the vault's owner");
    }
    if unixuser::gid_of(&args.group).is_none() {
        system(Command::new("groupadd").arg("--system").arg(&args.group))?;
    }
    let gid =
        unixuser::gid_of(&args.group).with_context(|| format!("group {} was not created", args.group))?;
    system(Command::new("usermod").args(["-aG", &args.group, &args.agent_user]))?;

    let socket_dir = args
        .socket_dir
        .unwrap_or_else(|| PathBuf::from(SHARED_SOCKET).parent().map(PathBuf::from).unwrap_or_default());
    refuse_foreign(&socket_dir)?;
    std::fs::create_dir_all(&socket_dir)
        .with_context(|| format!("cannot create {}", socket_dir.display()))?;
    std::os::unix::fs::chown(&socket_dir, Some(operator_uid), Some(gid))
        .with_context(|| format!("cannot hand {} to {operator}", socket_dir.display()))?;
    // setgid: the socket aivaultd makes in it belongs to the group too.
    std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o2750))?;

    let vault_dir = if ctx.dir_given() {
        ctx.dir().to_path_buf()
    } else {
        unixuser::home_of(&operator).map(|h| h.join(".aivault")).unwrap_or_else(|| ctx.dir().to_path_buf())
    };
    if vault_dir.exists() {
        std::fs::set_permissions(&vault_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let socket = socket_dir.join("aivaultd.sock");
    anstream::println!(
        "Agent access set up: {agent} is in group {group}; {dir} is {operator}'s, group {group}, mode 2750; \
         {vault} is {operator}'s alone (0700).",
        agent = args.agent_user,
        group = args.group,
        dir = socket_dir.display(),
        vault = vault_dir.display(),
    );
    anstream::println!(
        "Next, as {operator}: `aivault daemon --shared --socket {}` and `aivault agent allow --user {} --capability …`",
        socket.display(),
        args.agent_user
    );
    Ok(())
}

/// The socket directory is handed to the operator and its group: refuse a
/// directory that is a link or already holds anything but our socket, so a
/// mistyped `--socket-dir /etc` changes nothing.
fn refuse_foreign(dir: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return Ok(()) };
    if !meta.is_dir() {
        bail!("{} exists and is not a directory; pick a new directory for the socket", dir.display());
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let name = entry.with_context(|| format!("cannot read {}", dir.display()))?.file_name();
        if name != "aivaultd.sock" {
            bail!(
                "{} already holds other files ({}); pick an empty or new directory for the socket",
                dir.display(),
                name.to_string_lossy()
            );
        }
    }
    Ok(())
}

fn system(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let output = command.output().with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        bail!("{shown} failed: {}", why.lines().next().unwrap_or("").trim());
    }
    Ok(())
}
