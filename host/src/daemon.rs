//! aivaultd: the long-running broker. It holds the unlocked master key in
//! memory only, serves a Unix socket, and tells the vault's **operator**
//! (the uid that owns the vault directory) from **agents** (any other uid,
//! learnt from the socket with SO_PEERCRED): the operator may invoke
//! anything and lock or unlock the vault; an agent may only invoke what
//! `aivault agent allow` granted it, in the grant's context, and nothing
//! else. Every call goes through the one [`Broker`](crate::broker::Broker).

pub mod client;
pub mod protocol;
mod server;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use server::{DaemonOptions, run};

/// The socket file, under the vault directory.
pub fn default_socket(dir: &Path) -> PathBuf {
    dir.join("run").join("aivaultd.sock")
}

/// The shared socket agents reach (`aivault daemon --shared`, set up by
/// `aivault setup agent-access`): outside the owner-only vault directory.
pub const SHARED_SOCKET: &str = "/run/aivault/aivaultd.sock";

/// The variable that names the socket, for the daemon and the CLI.
pub const SOCKET_VAR: &str = "AIVAULTD_SOCKET";

/// Where the CLI looks for a daemon, in order: `AIVAULTD_SOCKET`, the
/// user's own vault's socket, the shared one.
pub fn candidate_sockets(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(path) = std::env::var_os(SOCKET_VAR) {
        paths.push(PathBuf::from(path));
    }
    paths.push(default_socket(dir));
    paths.push(PathBuf::from(SHARED_SOCKET));
    paths
}

/// The uid that owns the vault directory: the operator.
pub fn owner_of(dir: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(dir)?.uid())
}

/// Makes `dir` for the socket if it is missing: owner-only, or owner and
/// group (with the group inherited by what is created in it) for a shared
/// socket. A directory that exists keeps its mode: it may be `/tmp` or one
/// `aivault setup agent-access` prepared.
fn socket_dir(dir: &Path, shared: bool) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let mode = if shared { 0o2750 } else { 0o700 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}
