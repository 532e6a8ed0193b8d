//! aivaultd end to end: the real daemon binary on a Unix socket, the CLI in
//! front of it, and the loopback HTTPS upstream behind it. (Other OS users
//! reaching it are in `agents.rs`.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{OPENAI_KEY, Vault};
use crate::upstream::Upstream;

pub(crate) const ENV_KEY: &str = "q0L2wJb9m8n7b6v5c4x3z2a1s0d9f8g7h6j5k4l3m2o=";
const PASSPHRASE: &str = "correct horse battery";
/// A chat completion the test upstream answers as a stream that waits for
/// `Upstream::release` before its last event.
const STREAM_CALL: &[&str] = &[
    "invoke",
    "openai/chat-completions",
    "--method",
    "POST",
    "--path",
    "/v1/chat/completions/stream",
    "--body",
    "{}",
];
pub(crate) const MODELS: &[&str] = &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];

/// A running daemon, stopped with SIGTERM when dropped.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    /// Its first line: `aivaultd listening on … (unlocked|locked: …)`.
    pub(crate) banner: String,
}

impl Daemon {
    pub(crate) fn start(
        vault: &Vault,
        upstream: &Upstream,
        socket: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let socket_arg = socket.display().to_string();
        let mut args = vec!["daemon", "--socket", socket_arg.as_str()];
        args.extend_from_slice(extra);
        let mut cmd = vault.std_cmd(&args);
        for (var, value) in upstream.env() {
            cmd.env(var, value);
        }
        for (var, value) in env {
            cmd.env(var, value);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut banner).unwrap();
        assert!(banner.starts_with("aivaultd listening on"), "{banner:?}");
        Daemon { child, banner }
    }

    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }
}

pub(crate) fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: signalling a process this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

pub(crate) fn socket_of(vault: &Vault) -> PathBuf {
    vault.path().join("run").join("aivaultd.sock")
}

/// `aivault <args>` with `env` set, as `vault.run` would.
pub(crate) fn run_with(vault: &Vault, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = vault.cmd(args);
    for (var, value) in env {
        cmd.env(var, value);
    }
    vault.run_cmd(cmd)
}

pub(crate) fn env_vault() -> Vault {
    let vault = Vault::new();
    let key = [("AIVAULT_KEY", ENV_KEY)];
    assert!(run_with(&vault, &["init", "--provider", "env"], &key).0);
    assert!(
        run_with(&vault, &["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY], &key).0
    );
    vault
}

// With a daemon running, `invoke` goes through it: the caller here has no
// key at all (AIVAULT_KEY unset), so it could not have decrypted anything.
#[test]
fn invoke_goes_through_the_daemon() {
    let vault = env_vault();
    let upstream = Upstream::start(&["api.openai.com"]);
    let daemon = Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &[("AIVAULT_KEY", ENV_KEY)]);
    assert!(daemon.banner.contains("(unlocked)"), "{}", daemon.banner);
    let (ok, out, err) = vault.run(MODELS);
    assert!(ok, "{err}");
    assert!(out.contains("gpt-4o"), "{out}");
    assert_eq!(upstream.seen()[0].header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    let audit = vault.ok(&["audit", "--limit", "3"]);
    assert!(audit.contains("aivaultd (operator uid"), "{audit}");
    // Without the daemon the same caller cannot: the key is not in its environment.
    assert!(daemon.stop().success());
    let err = vault.fails(MODELS);
    assert!(err.contains("AIVAULT_KEY is not set"), "{err}");
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(ENV_KEY);
}

// A passphrase vault: the daemon starts locked, `unlock` hands it the
// passphrase once, `lock` takes the key away again.
#[test]
fn lock_and_unlock() {
    let vault = Vault::new();
    let pass = [("AIVAULT_PASSPHRASE", PASSPHRASE)];
    assert!(run_with(&vault, &["init", "--provider", "passphrase"], &pass).0);
    assert!(
        run_with(&vault, &["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY], &pass).0
    );
    let upstream = Upstream::start(&["api.openai.com"]);
    let daemon = Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &[]);
    assert!(daemon.banner.contains("locked: run `aivault unlock`"), "{}", daemon.banner);

    let err = vault.fails(MODELS);
    assert!(err.contains("the vault is locked"), "{err}");
    let (ok, _, err) = run_with(&vault, &["unlock"], &[("AIVAULT_PASSPHRASE", "wrong horse battery")]);
    assert!(!ok && err.contains("the passphrase does not open this vault"), "{err}");
    assert!(vault.fails(MODELS).contains("the vault is locked"));
    let (ok, out, err) = run_with(&vault, &["unlock"], &pass);
    assert!(ok && out.starts_with("Vault unlocked in aivaultd"), "{err}");
    let (ok, _, err) = vault.run(MODELS);
    assert!(ok, "{err}");
    assert_eq!(upstream.seen().len(), 1);
    vault.ok(&["lock"]);
    assert!(vault.fails(MODELS).contains("the vault is locked"));
    assert_eq!(upstream.seen().len(), 1, "nothing is sent while locked");
    vault.assert_nowhere(PASSPHRASE);
    vault.assert_nowhere("wrong horse battery");
    vault.assert_nowhere(OPENAI_KEY);
}

// One daemon per socket; a socket left by a killed daemon is recovered.
#[test]
fn one_daemon_per_socket() {
    let vault = env_vault();
    let upstream = Upstream::start(&["api.openai.com"]);
    let key = [("AIVAULT_KEY", ENV_KEY)];
    let first = Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &key);
    let socket = socket_of(&vault).display().to_string();
    let (ok, _, err) = run_with(&vault, &["daemon", "--socket", &socket], &key);
    assert!(!ok && err.contains(&format!("aivaultd is already running (pid {})", first.child.id())), "{err}");
    signal(first.child.id(), libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(200));
    assert!(socket_of(&vault).exists(), "a killed daemon leaves its socket");
    let second = Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &key);
    assert!(vault.run(MODELS).0);
    assert!(second.stop().success());
    assert!(!socket_of(&vault).exists(), "a stopped daemon removes its socket");
    drop(first);
}

// SIGTERM after many calls: a clean exit, every call audited, the log intact.
#[test]
fn sigterm_loses_no_audit_entry() {
    let vault = env_vault();
    let upstream = Upstream::start(&["api.openai.com"]);
    let daemon = Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &[("AIVAULT_KEY", ENV_KEY)]);
    let callers: Vec<std::process::Child> = (0..40)
        .map(|_| vault.std_cmd(MODELS).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
        .collect();
    for mut caller in callers {
        assert!(caller.wait().unwrap().success());
    }
    assert!(daemon.stop().success());
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "500"])).unwrap();
    assert_eq!(events.iter().filter(|e| e["event"] == "invoke").count(), 40);
    let (ok, out, _) = run_with(&vault, &["audit", "verify"], &[("AIVAULT_KEY", ENV_KEY)]);
    assert!(ok && out.contains("sealed"), "{out}");
}

// AIVAULTD_AUTOSTART=1 starts a daemon when none runs.
#[test]
fn autostart() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let upstream = Upstream::start(&["api.openai.com"]);
    let mut env: Vec<(&str, String)> = upstream.env();
    env.push(("AIVAULTD_AUTOSTART", "1".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, _, err) = run_with(&vault, MODELS, &env);
    assert!(ok, "{err}");
    assert!(err.contains("started aivaultd"), "{err}");
    let pong = aivault::daemon::client::Client::at(&socket_of(&vault)).unwrap().ping().unwrap();
    signal(pong.pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while socket_of(&vault).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!socket_of(&vault).exists());
    assert!(vault.ok(&["audit", "--limit", "3"]).contains("aivaultd (operator uid"));
}

pub(crate) fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:08x}{:04x}", nanos, std::process::id() & 0xffff)
}

/// Reads `child`'s stdout until `marker` appears; what was read.
pub(crate) fn read_until(out: &mut impl std::io::Read, marker: &str) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&received).contains(marker) {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "ended before {marker:?}: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(received).unwrap()
}

// `aivault invoke` prints a streamed answer as it arrives, in its own
// process and through the daemon alike.
#[test]
fn invoke_streams_as_it_arrives() {
    use std::io::Read as _;
    for through_daemon in [false, true] {
        let vault = env_vault();
        let upstream = Upstream::start(&["api.openai.com"]);
        let key = [("AIVAULT_KEY", ENV_KEY)];
        let daemon = through_daemon.then(|| Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &key));
        let mut cmd = vault.std_cmd(STREAM_CALL);
        for (var, value) in upstream.env() {
            cmd.env(var, value);
        }
        if !through_daemon {
            cmd.env("AIVAULT_KEY", ENV_KEY);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut text = read_until(&mut stdout, "data: first");
        assert_eq!(
            upstream.streams_finished(),
            0,
            "daemon {through_daemon}: the first event waited for the end"
        );
        upstream.release();
        stdout.read_to_string(&mut text).unwrap();
        let status = child.wait().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "{err}");
        assert!(text.ends_with("data: last\n\n"), "{text}");
        assert!(text.contains("[REDACTED]") && !text.contains(OPENAI_KEY), "{text}");
        assert!(err.contains("upstream echoed a secret"), "{err}");
        drop(daemon);
    }
}

// SIGTERM while a streamed answer is still arriving: the daemon finishes
// passing it on and records its outcome before it exits.
#[test]
fn sigterm_lets_a_stream_finish() {
    use std::io::Read as _;
    let vault = env_vault();
    let upstream = Upstream::start(&["api.openai.com"]);
    let daemon = Daemon::start(&vault, &upstream, &socket_of(&vault), &[], &[("AIVAULT_KEY", ENV_KEY)]);
    let mut caller = vault.std_cmd(STREAM_CALL).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = caller.stdout.take().unwrap();
    let mut text = read_until(&mut stdout, "data: first");
    signal(daemon.child.id(), libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(socket_of(&vault).exists(), "the daemon left before its call ended");
    upstream.release();
    stdout.read_to_string(&mut text).unwrap();
    assert!(caller.wait().unwrap().success());
    assert!(text.ends_with("data: last\n\n"), "{text}");
    assert!(daemon.stop().success());
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "20"])).unwrap();
    let call = events.iter().find(|e| e["event"] == "invoke").expect("the call's outcome was recorded");
    assert_eq!(call["details"]["streamed"], true, "{call}");
    let (ok, out, _) = run_with(&vault, &["audit", "verify"], &[("AIVAULT_KEY", ENV_KEY)]);
    assert!(ok && out.contains("sealed"), "{out}");
}
