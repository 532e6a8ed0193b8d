//! Dropped-in provider components, end to end: the third-party example goes
//! from pending to approved to invoked; changed and hostile components are
//! refused with a reason while the built-ins keep working.

use std::path::{Path, PathBuf};

use aivault_test_artifacts as artifacts;
use serde_json::Value;

use crate::support::{OPENAI_KEY, Vault, shared_cache_dir};
use crate::upstream::Upstream;

pub(crate) const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

fn providers_dir(vault: &Vault) -> PathBuf {
    vault.path().join("providers")
}

pub(crate) fn drop_in(vault: &Vault, component: &str, name: &str) -> PathBuf {
    let dir = providers_dir(vault);
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join(name);
    std::fs::copy(component, &dest).unwrap();
    dest
}

fn status_of(vault: &Vault, id: &str) -> (String, Option<String>) {
    let rows: Value = serde_json::from_str(&vault.ok(&["provider", "list", "-v"])).unwrap();
    let row =
        rows.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("no {id}: {rows}"));
    (row["status"].as_str().unwrap().to_string(), row["reason"].as_str().map(str::to_string))
}

/// Appends a custom section: still a valid component, different digest.
fn tweak(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(&[0x00, 0x06, 0x05, b't', b'w', b'e', b'a', b'k']);
    std::fs::write(path, bytes).unwrap();
}

/// Appends a custom section holding `tag`: a digest no other test produces.
fn tweak_uniquely(path: &Path, tag: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let name = b"tweak";
    bytes.push(0x00);
    // The section size, LEB128.
    let mut size = 1 + name.len() + tag.len();
    while size >= 0x80 {
        bytes.push((size as u8 & 0x7f) | 0x80);
        size >>= 7;
    }
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(tag.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// Whether any command has compiled the component with this digest.
fn compiled(digest: &str) -> bool {
    std::fs::read_dir(shared_cache_dir())
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(digest)))
        .unwrap_or(false)
}

fn row_of(vault: &Vault, file_name: &str) -> Value {
    let rows: Value = serde_json::from_str(&vault.ok(&["provider", "list", "-v"])).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["origin"].as_str().unwrap().ends_with(&format!("/{file_name}")))
        .unwrap_or_else(|| panic!("no {file_name}: {rows}"))
        .clone()
}

// The example: dropped in it is pending and unused; once approved its
// secret is pinned and provisioned and an invoke sends the token where
// Telegram wants it; once changed it is refused until approved again.
#[test]
fn example_provider_lifecycle() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let file = drop_in(&vault, artifacts::EXAMPLE_TELEGRAM, "telegram.wasm");
    assert_eq!(status_of(&vault, "telegram").0, "pending");
    assert!(!vault.ok(&["capability", "list"]).contains("telegram/"));
    let err = vault.fails(&["capability", "describe", "telegram/bot"]);
    assert!(err.contains("no capability"), "{err}");

    let out = vault.ok(&["provider", "enable", "telegram"]);
    assert!(out.starts_with("Provider enabled: telegram 0.1.0 (sha256 "), "{out}");
    assert_eq!(status_of(&vault, "telegram").0, "enabled");
    let out = vault.ok(&["secrets", "create", "--name", "TELEGRAM_BOT_TOKEN", "--value", TELEGRAM_TOKEN]);
    assert_eq!(
        out,
        "Secret created: TELEGRAM_BOT_TOKEN (pinned to provider: telegram)\n\
         Credential auto-provisioned: telegram (3 capabilities enabled)\n"
    );
    let err =
        vault.fails_unchanged(&["secrets", "rotate", "--id", "TELEGRAM_BOT_TOKEN", "--value", "not-a-token"]);
    assert!(err.contains("a Telegram bot token looks like"), "{err}");

    let upstream = Upstream::start(&["api.telegram.org", "api.openai.com"]);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "telegram/bot", "--method", "GET"]);
    assert!(ok, "{err}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("api.telegram.org"));
    assert_eq!(seen[0].target, format!("/bot{TELEGRAM_TOKEN}/getMe"));

    tweak(&file);
    let (status, reason) = status_of(&vault, "telegram");
    assert_eq!(status, "changed");
    assert!(reason.unwrap().contains("re-approve with `aivault provider enable telegram`"));
    let (ok, _, err) = vault.call(&upstream, &["invoke", "telegram/bot", "--method", "GET"]);
    assert!(
        !ok && err.contains("provider telegram is not in use: its contents changed since approval"),
        "{err}"
    );
    assert_eq!(upstream.seen().len(), 1, "nothing was sent with the changed component");
    // The built-ins are unaffected.
    assert!(vault.call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"]).0);

    vault.ok(&["provider", "enable", "telegram"]);
    assert!(vault.call(&upstream, &["invoke", "telegram/bot", "--method", "GET"]).0);
    vault.ok(&["provider", "disable", "telegram"]);
    assert_eq!(status_of(&vault, "telegram").0, "disabled");
    let (ok, _, err) = vault.call(&upstream, &["invoke", "telegram/bot", "--method", "GET"]);
    assert!(!ok && err.contains("provider telegram is not in use: it is disabled"), "{err}");

    vault.ok(&["provider", "remove", "telegram"]);
    assert!(!file.exists());
    vault.assert_nowhere(TELEGRAM_TOKEN);
    vault.assert_nowhere(OPENAI_KEY);
}

// `install` copies and approves in one step; `inspect` shows a component
// without installing it; `test` runs the conformance kit.
#[test]
fn install_inspect_and_test() {
    let vault = Vault::new();
    let out = vault.ok(&["provider", "inspect", artifacts::EXAMPLE_TELEGRAM]);
    assert!(
        out.contains("telegram 0.1.0")
            && out.contains("aivault:provider@0.2.0")
            && out.contains("TELEGRAM_BOT_TOKEN"),
        "{out}"
    );
    assert!(!providers_dir(&vault).exists(), "inspect installs nothing");

    let out = vault.ok(&[
        "provider",
        "test",
        artifacts::EXAMPLE_TELEGRAM,
        "--secret",
        &format!("TELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}"),
    ]);
    assert!(out.contains("0 failed"), "{out}");
    assert!(out.contains("pass inject (default, telegram/bot) is deterministic"), "{out}");
    assert!(!out.contains(TELEGRAM_TOKEN));
    let (ok, out, _) = vault.run(&["provider", "test", artifacts::SLOW_DESCRIBE]);
    assert!(!ok && out.contains("FAIL loads in the sandbox") && out.contains("CPU budget"), "{out}");

    let out = vault.ok(&["provider", "install", artifacts::EXAMPLE_TELEGRAM]);
    assert!(out.starts_with("Provider installed: telegram 0.1.0"), "{out}");
    assert!(providers_dir(&vault).join("telegram.wasm").exists());
    assert_eq!(status_of(&vault, "telegram").0, "enabled");
    let list = vault.ok(&["provider", "list"]);
    for expected in ["openai", "trello", "github", "telegram", "enabled"] {
        assert!(list.contains(expected), "{list}");
    }
}

// Hostile components each get a clear reason, and the built-ins keep working.
#[test]
fn hostile_components_are_refused() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let err = vault.fails(&["provider", "install", artifacts::CLAIM_HIJACK]);
    assert!(
        err.contains("claims host api.openai.com") || err.contains("claims secret OPENAI_API_KEY"),
        "{err}"
    );
    let err = vault.fails(&["provider", "install", artifacts::OLD_WIT]);
    assert!(err.contains("aivault:provider@0.0.1") && err.contains("supports 0.2.0, 0.1.0"), "{err}");
    let err = vault.fails(&["provider", "install", artifacts::SLOW_DESCRIBE]);
    assert!(err.contains("CPU budget in `describe`"), "{err}");

    drop_in(&vault, artifacts::CLAIM_HIJACK, "hijack.wasm");
    drop_in(&vault, artifacts::OLD_WIT, "old.wasm");
    std::fs::write(providers_dir(&vault).join("garbage.wasm"), b"\x00asm not really").unwrap();
    let (status, reason) = status_of(&vault, "hijack");
    assert_eq!(status, "invalid");
    assert!(reason.unwrap().contains("built-in provider openai"));
    let (status, reason) = status_of(&vault, "old");
    assert_eq!(status, "invalid");
    assert!(reason.unwrap().contains("0.0.1"));
    let (status, reason) = status_of(&vault, "garbage");
    assert_eq!(status, "invalid");
    assert!(reason.unwrap().contains("not a WebAssembly component"));
    let err = vault.fails(&["provider", "enable", "hijack"]);
    assert!(err.contains("built-in provider openai"), "{err}");

    // A hostile but well-formed component may be installed; its misbehaviour
    // at call time is stopped before anything is sent.
    vault.ok(&["provider", "install", artifacts::HOSTILE]);
    vault.ok(&["secrets", "create", "--name", "HOSTILE_KEY", "--value", "hostile-secret-value-1"]);
    let upstream = Upstream::start(&["api.hostile.test", "api.openai.com"]);
    for (path, why) in [
        ("/loop", "CPU budget"),
        ("/memory-bomb", "more than 64 MiB"),
        ("/trap", "panicked"),
        ("/escape-host", "changed the host"),
        ("/read-file", "does not grant"),
    ] {
        let (ok, _, err) =
            vault.call(&upstream, &["invoke", "hostile/any", "--method", "GET", "--path", path]);
        assert!(!ok && err.contains(why), "{path}: {err}");
    }
    assert!(upstream.seen().is_empty());
    assert!(vault.call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"]).0);
    vault.assert_nowhere("hostile-secret-value-1");
    vault.assert_nowhere(OPENAI_KEY);
}

// config.toml moves the providers directory and sets the sandbox limits.
#[test]
fn config_sets_directory_and_limits() {
    let vault = Vault::new();
    std::fs::write(
        vault.path().join("config.toml"),
        "providers_dir = \"drop-ins\"\n[sandbox]\nmemory_mib = 16\nfuel_per_call = 20000000\n",
    )
    .unwrap();
    let dir = vault.path().join("drop-ins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(artifacts::HOSTILE, dir.join("hostile.wasm")).unwrap();
    assert_eq!(status_of(&vault, "hostile").0, "pending");
    vault.ok(&["provider", "enable", "hostile"]);
    vault.ok(&["secrets", "create", "--name", "HOSTILE_KEY", "--value", "hostile-secret-value-2"]);
    let upstream = Upstream::start(&["api.hostile.test"]);
    let (_, _, err) =
        vault.call(&upstream, &["invoke", "hostile/any", "--method", "GET", "--path", "/memory-bomb"]);
    assert!(err.contains("more than 16 MiB"), "{err}");
    std::fs::write(vault.path().join("config.toml"), "[sandbox]\nmemory_mb = 16\n").unwrap();
    let err = vault.fails(&["provider", "list"]);
    assert!(err.contains("config.toml") && err.contains("memory_mb"), "{err}");
}

// A changed approved file is code nobody approved: listing providers,
// invoking and loading the registry never compile it (no cache entry for
// its digest appears); its row comes from the approval record. Reviewing
// it with `inspect` compiles it, and `enable` re-approves it.
#[test]
fn changed_file_is_never_compiled() {
    let vault = Vault::new();
    let file = drop_in(&vault, artifacts::EXAMPLE_TELEGRAM, "telegram.wasm");
    vault.ok(&["provider", "enable", "telegram"]);
    let approved = row_of(&vault, "telegram.wasm")["sha256"].as_str().unwrap().to_string();
    vault.ok(&["secrets", "create", "--name", "TELEGRAM_BOT_TOKEN", "--value", TELEGRAM_TOKEN]);

    tweak_uniquely(&file, &vault.path().display().to_string());
    let row = row_of(&vault, "telegram.wasm");
    let now = row["sha256"].as_str().unwrap().to_string();
    assert_ne!(now, approved);
    assert_eq!((row["id"].as_str(), row["status"].as_str()), (Some("telegram"), Some("changed")), "{row}");
    assert_eq!((row["version"].as_str(), row["witVersion"].as_str()), (Some("0.1.0"), None), "{row}");
    assert_eq!(row["secrets"], serde_json::json!(["TELEGRAM_BOT_TOKEN"]), "{row}");
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("approved sha256 {}…, now {}…", &approved[..12], &now[..12]))
            && reason.contains("review it with `aivault provider inspect")
            && reason.contains("re-approve with `aivault provider enable telegram`"),
        "{reason}"
    );
    let list = vault.ok(&["provider", "list"]);
    assert!(list.contains("changed") && list.contains("note: telegram: its contents changed"), "{list}");
    let upstream = Upstream::start(&["api.telegram.org"]);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "telegram/bot", "--method", "GET"]);
    assert!(!ok && err.contains("its contents changed since approval (approved sha256"), "{err}");
    vault.ok(&["capability", "list"]);
    assert!(upstream.seen().is_empty());
    assert!(!compiled(&now), "an unapproved change was compiled");

    let out = vault.ok(&["provider", "inspect", file.to_str().unwrap()]);
    assert!(out.contains(&now), "{out}");
    assert!(compiled(&now), "inspect compiles what it shows");
    let out = vault.ok(&["provider", "enable", "telegram"]);
    assert!(out.starts_with("Provider enabled: telegram 0.1.0"), "{out}");
    assert!(vault.call(&upstream, &["invoke", "telegram/bot", "--method", "GET"]).0);
    vault.assert_nowhere(TELEGRAM_TOKEN);
}

// Approvals are per provider id: when several files claim an id, `enable`,
// `disable` and `remove` by id refuse and ask for the path; by path (or a
// bare file name in the providers directory) they act on that file, and
// re-approving says what the new file asks for beyond the old approval.
#[test]
fn several_files_for_one_id_need_a_path() {
    let vault = Vault::new();
    let old = drop_in(&vault, artifacts::HOSTILE, "hostile.wasm");
    let grown = drop_in(&vault, artifacts::HOSTILE_GROWN, "hostile-grown.wasm");
    for command in ["enable", "disable", "remove"] {
        let err = vault.fails_unchanged(&["provider", command, "hostile"]);
        assert!(
            err.contains("2 files in")
                && err.contains("declare provider `hostile` (hostile-grown.wasm, hostile.wasm)")
                && err.contains("pass the path of the one you mean"),
            "{command}: {err}"
        );
    }
    assert!(old.exists() && grown.exists());
    assert_eq!(row_of(&vault, "hostile.wasm")["status"], "pending");

    let out = vault.ok(&["provider", "enable", old.to_str().unwrap()]);
    assert!(out.starts_with("Provider enabled: hostile 0.1.0"), "{out}");
    assert_eq!(row_of(&vault, "hostile.wasm")["status"], "enabled");
    let row = row_of(&vault, "hostile-grown.wasm");
    assert_eq!(row["status"], "pending");
    assert!(
        row["reason"].as_str().unwrap().contains("hostile.wasm holds the approval for `hostile`"),
        "{row}"
    );

    let out = vault.ok(&["provider", "enable", "hostile-grown.wasm"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "note: this replaces the approval of hostile.wasm for `hostile`");
    assert_eq!(
        lines[1],
        "note: beyond its previous approval, hostile now asks for: host api2.hostile.test, secret HOSTILE_TOKEN"
    );
    assert!(lines[2].starts_with("Provider enabled: hostile 0.2.0"), "{out}");
    assert_eq!(row_of(&vault, "hostile-grown.wasm")["status"], "enabled");
    assert_eq!(row_of(&vault, "hostile.wasm")["status"], "pending");

    let out = vault.ok(&["provider", "disable", grown.to_str().unwrap()]);
    assert_eq!(out, "Provider disabled: hostile\n");
    assert_eq!(row_of(&vault, "hostile-grown.wasm")["status"], "disabled");
    let out = vault.ok(&["provider", "remove", "hostile-grown.wasm"]);
    assert!(out.starts_with("Provider removed: hostile "), "{out}");
    assert!(!grown.exists() && old.exists());
    assert_eq!(row_of(&vault, "hostile.wasm")["status"], "pending");

    // Only files in the providers directory are approved in place.
    let err = vault.fails_unchanged(&["provider", "enable", artifacts::HOSTILE]);
    assert!(err.contains("is not a `.wasm` file in the providers directory"), "{err}");
    assert!(err.contains("`aivault provider install"), "{err}");
    let out = vault.ok(&["provider", "remove", "hostile.wasm"]);
    assert!(out.starts_with("Provider removed: hostile.wasm "), "{out}");
    assert!(!old.exists());
}
