//! Other OS users and aivaultd: an agent reaches the operator's daemon
//! through the shared socket `aivault setup agent-access` prepares and gets
//! exactly its grant; a daemon run by someone untrusted is sent nothing.
//! These create OS users, so they run as root (CI does) and skip elsewhere.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::daemon::{Daemon, ENV_KEY, MODELS, env_vault, run_with, uuid_like};
use crate::support::{OPENAI_KEY, Vault};
use crate::upstream::Upstream;

/// A throwaway OS user and group, removed when dropped.
struct AgentUser {
    name: String,
    group: String,
}

impl AgentUser {
    /// A new OS user (no home, no login) named `<prefix>-<random>`; `None`
    /// unless this runs as root.
    fn create(prefix: &str) -> Option<Self> {
        if aivault::unixuser::current_uid() != 0 {
            eprintln!("skipped: creating a second OS user needs root (CI runs as root)");
            return None;
        }
        let suffix = &uuid_like()[..6];
        let user = AgentUser { name: format!("{prefix}-{suffix}"), group: format!("aivt-grp-{suffix}") };
        let made = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", &user.name])
            .output();
        assert!(made.unwrap().status.success(), "useradd failed");
        Some(user)
    }

    /// `command` run as this user.
    fn runs(&self, command: &[&str]) -> std::process::Output {
        Command::new("runuser").args(["-u", &self.name, "--"]).args(command).output().unwrap()
    }
}

impl Drop for AgentUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

/// `aivault <args>` as the agent, with nothing of this process's environment.
fn as_agent(agent: &AgentUser, socket: &Path, home: &Path, args: &[&str]) -> (bool, String, String) {
    let bin = assert_cmd::cargo::cargo_bin("aivault");
    let out = Command::new("runuser")
        .args(["-u", &agent.name, "--", "env", "-i", "PATH=/usr/bin:/bin", "NO_COLOR=1"])
        .arg(format!("AIVAULTD_SOCKET={}", socket.display()))
        .arg(format!("AIVAULT_DIR={}", home.join(".aivault").display()))
        .arg(bin)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

// Another OS user reaches the daemon through the shared socket and gets
// exactly its grant: only granted capabilities, only in the grant's
// context, no admin command, no way into the vault directory.
#[test]
fn agents_get_only_their_grant() {
    let Some(agent) = AgentUser::create("aivt-agent") else { return };
    let vault = Vault::new();
    // Readable by all before setup: setup must close it.
    std::fs::set_permissions(vault.path(), PermissionsExt::from_mode(0o755)).unwrap();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let workspace_key = "sk-proj-WorkspaceKeyAbcdefGhijklMnopqrStuvwx0123456789";
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        workspace_key,
        "--scope",
        "workspace",
        "--workspace-id",
        "w1",
    ]);
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let socket_dir = shared.path().join("sock");
    let home = shared.path().join("agent-home");
    let out = vault.ok(&[
        "setup",
        "agent-access",
        "--agent-user",
        &agent.name,
        "--operator-user",
        "root",
        "--group",
        &agent.group,
        "--socket-dir",
        &socket_dir.display().to_string(),
    ]);
    assert!(out.contains("Agent access set up"), "{out}");
    vault.ok(&[
        "agent",
        "allow",
        "--user",
        &agent.name,
        "--capability",
        "openai/models",
        "--workspace-id",
        "w1",
    ]);

    let upstream = Upstream::start(&["api.openai.com"]);
    let socket = socket_dir.join("aivaultd.sock");
    let _daemon = Daemon::start(&vault, &upstream, &socket, &["--shared"], &[]);

    let (ok, out, err) = as_agent(&agent, &socket, &home, MODELS);
    assert!(ok, "the agent's granted call failed: {err}");
    assert!(out.contains("gpt-4o"));
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {workspace_key}").as_str()));

    let refusals: [(&[&str], &str); 5] = [
        (
            &["invoke", "openai/chat-completions", "--path", "/v1/chat/completions", "--body", "{}"],
            "may not invoke",
        ),
        (&["invoke", "openai/models", "--method", "GET", "--workspace-id", "w2"], "come from its grant"),
        (&["secrets", "list"], "`aivault secrets` is the operator's"),
        (
            &["credential", "create", "x", "--provider", "openai", "--secret-ref", "vault:secret:x"],
            "is the operator's",
        ),
        (&["unlock"], "unlocking the vault is the operator's"),
    ];
    for (args, why) in refusals {
        let (ok, _, err) = as_agent(&agent, &socket, &home, args);
        assert!(!ok && err.lines().count() == 1 && err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(upstream.seen().len(), 1, "no refused call reached upstream");
    let audit = vault.ok(&["audit", "--limit", "50"]);
    assert!(audit.matches("daemon.denied").count() >= 4, "{audit}");
    assert!(audit.contains(&format!("agent {}", agent.name)), "{audit}");

    // Over MCP (the agent runs `aivault mcp`), it lists and calls exactly
    // its grant, through the daemon.
    mcp_as_agent(&agent, &socket, &home);
    let seen = upstream.seen();
    assert_eq!(
        seen.last().unwrap().header("authorization"),
        Some(format!("Bearer {workspace_key}").as_str())
    );
    let audit = vault.ok(&["audit", "--limit", "50"]);
    assert!(
        audit.contains(&format!("agent {}", agent.name)) && audit.contains("mcp client test-agent"),
        "{audit}"
    );

    // The vault directory is not the agent's to read, nor to list.
    let db = vault.path().join("vault.db").display().to_string();
    assert!(!agent.runs(&["cat", &db]).status.success(), "the agent could read vault.db");
    let dir = vault.path().display().to_string();
    assert!(!agent.runs(&["ls", &dir]).status.success(), "the agent could list the vault directory");
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(workspace_key);
}

// `setup agent-access` hands the socket directory to the operator: one that
// already holds other files is refused, and left as it was.
#[test]
fn setup_refuses_a_directory_in_use() {
    let Some(agent) = AgentUser::create("aivt-setup") else { return };
    let vault = Vault::new();
    let busy = tempfile::tempdir().unwrap();
    std::fs::write(busy.path().join("notes.txt"), "mine").unwrap();
    std::fs::set_permissions(busy.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let before = std::fs::metadata(busy.path()).unwrap();
    let dir = busy.path().display().to_string();
    let args = ["setup", "agent-access", "--agent-user", &agent.name, "--operator-user", "root"];
    let (ok, _, err) = vault.run(&[&args[..], &["--group", &agent.group, "--socket-dir", &dir]].concat());
    assert!(!ok && err.lines().count() == 1 && err.contains("already holds other files"), "{err}");
    let after = std::fs::metadata(busy.path()).unwrap();
    assert_eq!(before.permissions(), after.permissions());
}

// A daemon run by an untrusted user (not the caller, not root, and its
// socket in a directory anyone can write) gets nothing from the CLI: not
// an agent's call, not an operator's key.
#[test]
fn an_impostor_daemon_is_sent_nothing() {
    let Some(agent) = AgentUser::create("aivt-caller") else { return };
    let Some(impostor) = AgentUser::create("aivt-impostor") else { return };
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), PermissionsExt::from_mode(0o1777)).unwrap();
    let impostor_vault = open.path().join("impostor-vault");
    std::fs::create_dir(&impostor_vault).unwrap();
    let dir = impostor_vault.display().to_string();
    let uid = aivault::unixuser::uid_of(&impostor.name).unwrap();
    std::os::unix::fs::chown(&impostor_vault, Some(uid), None).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("aivault").display().to_string();
    let key = format!("AIVAULT_KEY={ENV_KEY}");
    let init = impostor.runs(&["env", &key, &bin, "--dir", &dir, "init", "--provider", "env"]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    let socket = open.path().join("aivaultd.sock");
    let socket_arg = socket.display().to_string();
    let mut daemon = Command::new("runuser")
        .args([
            "-u",
            &impostor.name,
            "--",
            "env",
            &key,
            &bin,
            "--dir",
            &dir,
            "daemon",
            "--socket",
            &socket_arg,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(daemon.stdout.take().unwrap()), &mut banner)
        .unwrap();
    assert!(banner.starts_with("aivaultd listening"), "{banner}");
    // As an impostor would, it lets anyone connect.
    std::fs::set_permissions(&socket, PermissionsExt::from_mode(0o666)).unwrap();

    // The agent (no vault of its own) would have sent its call there.
    let home = open.path().join("caller-home");
    let (ok, _, err) = as_agent(&agent, &socket, &home, MODELS);
    assert!(
        !ok && err
            .contains(&format!("warning: cannot talk to aivaultd at {socket_arg}: it runs as uid {uid}")),
        "{err}"
    );
    // The operator's vault is never unlocked through it either.
    let vault = env_vault();
    let (ok, _, err) =
        run_with(&vault, &["unlock"], &[("AIVAULTD_SOCKET", &socket_arg), ("AIVAULT_KEY", ENV_KEY)]);
    assert!(!ok && err.contains("no aivaultd is running") && err.contains("it runs as uid"), "{err}");

    crate::daemon::signal(daemon.id(), libc::SIGTERM);
    let _ = daemon.wait();
    let audit = Command::new(&bin)
        .args(["--dir", &dir, "audit", "-v", "--limit", "100"])
        .env("AIVAULT_KEY", ENV_KEY)
        .env_remove("AIVAULT_DIR")
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(!audit.contains("daemon."), "the impostor heard from a caller: {audit}");
    vault.assert_nowhere(OPENAI_KEY);
}

/// An MCP session run by the agent through the shared socket.
fn mcp_as_agent(agent: &AgentUser, socket: &Path, home: &Path) {
    use rmcp::ServiceExt as _;
    use rmcp::transport::TokioChildProcess;
    use serde_json::json;

    use crate::mcp::{Agent, call, runtime, text_of};

    runtime().block_on(async {
        let mut cmd = tokio::process::Command::new("runuser");
        cmd.args(["-u", &agent.name, "--", "env", "-i", "PATH=/usr/bin:/bin", "NO_COLOR=1"])
            .arg(format!("AIVAULTD_SOCKET={}", socket.display()))
            .arg(format!("AIVAULT_DIR={}", home.join(".aivault").display()))
            .arg(assert_cmd::cargo::cargo_bin("aivault"))
            .arg("mcp");
        let (transport, _) =
            TokioChildProcess::builder(cmd).stderr(std::process::Stdio::null()).spawn().unwrap();
        let client = Agent.serve(transport).await.unwrap();
        let listed = call(&client, "list_capabilities", json!({})).await;
        let ids: Vec<&str> = listed.structured_content.as_ref().unwrap()["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["openai/models"]);
        let answer = call(
            &client,
            "invoke",
            json!({"capability": "openai/models", "method": "GET", "path": "/v1/models"}),
        )
        .await;
        assert!(text_of(&answer).starts_with("HTTP 200"), "{}", text_of(&answer));
        let refused = call(
            &client,
            "invoke",
            json!({"capability": "openai/chat-completions", "path": "/v1/chat/completions", "body": {}}),
        )
        .await;
        assert_eq!(refused.is_error, Some(true));
        assert!(text_of(&refused).contains("may not invoke"), "{}", text_of(&refused));
        client.cancel().await.unwrap();
    });
}
