//! The vault itself through the real binary: files and permissions, key
//! providers, master-key rotation, the audit chain, and tampering.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::{OPENAI_KEY, OPENAI_KEY_2, TRELLO_KEY, TRELLO_TOKEN, Vault};

const ENV_KEY: &str = "q0L2wJb9m8n7b6v5c4x3z2a1s0d9f8g7h6j5k4l3m2o=";
const ENV_KEY_2: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// The first command creates an owner-only vault with a 0600 key file; no
// value is found in any file, including SQLite's raw pages.
#[test]
fn fresh_vault_is_private_and_holds_no_plaintext() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&[
        "secrets",
        "import",
        "--entry",
        &format!("TRELLO_API_KEY={TRELLO_KEY}"),
        "--entry",
        &format!("TRELLO_TOKEN={TRELLO_TOKEN}"),
    ]);
    assert_eq!(mode(vault.path()), 0o700);
    if vault.database().is_none() {
        assert_eq!(mode(&vault.path().join("vault.db")), 0o600);
    }
    let keys: Vec<_> =
        std::fs::read_dir(vault.path().join("keys")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(mode(&keys[0]), 0o600);
    let status: Value = serde_json::from_str(&vault.ok(&["status", "-v"])).unwrap();
    assert_eq!(status["keyProvider"], "file");
    assert_eq!(status["state"], "unlocked");
    assert_eq!(status["secrets"], 3);
    assert_eq!(status["credentials"], 2);
    for value in [OPENAI_KEY, TRELLO_KEY, TRELLO_TOKEN] {
        vault.assert_nowhere(value);
    }
}

// A one-shot command leaves SQLite's write-ahead log for the next instead
// of copying it into vault.db at every exit, but the log stays short: a
// command that finds it grown copies it back and empties it. Every call's
// audit record survives, and the chain verifies.
#[test]
fn the_write_ahead_log_stays_short_across_commands() {
    let vault = Vault::on_sqlite();
    vault.ok(&["secrets", "create", "--name", "A_KEY", "--value", "a-value-1"]);
    let log = vault.path().join("vault.db-wal");
    let mut longest = 0;
    for _ in 0..60 {
        vault.fails(&["invoke", "nobody/nothing"]);
        longest = longest.max(std::fs::metadata(&log).map_or(0, |m| m.len()));
    }
    // 64 pages, and what the last command added (an invoke adds four).
    assert!(longest <= 72 * (4096 + 24), "the log grew to {longest} bytes");
    let events = vault.events_once("invoke.denied", 60, 100);
    assert_eq!(events.iter().filter(|e| e["event"] == "invoke.denied").count(), 60);
    vault.ok(&["audit", "verify"]);
}

// Read-only commands on a missing vault create nothing.
#[test]
fn read_only_commands_create_nothing() {
    let vault = Vault::new();
    let dir = vault.path().join("not-yet");
    for args in [&["secrets", "list"][..], &["credential", "list"], &["audit"], &["status"]] {
        let mut cmd = vault.cmd(args);
        cmd.env("AIVAULT_DIR", &dir);
        assert!(vault.run_cmd(cmd).0, "{args:?}");
    }
    assert!(!dir.join("vault.db").exists());
}

// A missing key file is reported as such; nothing is re-keyed behind the user's back.
#[test]
fn missing_key_file_is_an_error() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "A_KEY", "--value", "a-value-1"]);
    for entry in std::fs::read_dir(vault.path().join("keys")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let err = vault.fails_unchanged(&["secrets", "create", "--name", "B_KEY", "--value", "b-value-1"]);
    assert!(err.contains("is missing; restore it from a backup"), "{err}");
    assert_eq!(std::fs::read_dir(vault.path().join("keys")).unwrap().count(), 0);
    let status: Value = serde_json::from_str(&vault.ok(&["status", "-v"])).unwrap();
    assert_eq!(status["state"], "locked");
}

// env provider: the key comes from AIVAULT_KEY; without it the vault is locked.
#[test]
fn env_key_provider() {
    let vault = Vault::new();
    let with_key = |args: &[&str], key: &str| {
        let mut cmd = vault.cmd(args);
        cmd.env("AIVAULT_KEY", key);
        vault.run_cmd(cmd)
    };
    let (ok, _, err) = with_key(&["init", "--provider", "env"], ENV_KEY);
    assert!(ok, "{err}");
    assert!(with_key(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY], ENV_KEY).0);
    let err = vault.fails_unchanged(&["secrets", "create", "--name", "X_KEY", "--value", "x-value-1"]);
    assert!(err.contains("AIVAULT_KEY is not set"), "{err}");
    let (ok, _, err) = with_key(&["secrets", "create", "--name", "X_KEY", "--value", "x-value-1"], ENV_KEY_2);
    assert!(!ok && err.contains("the key in AIVAULT_KEY does not open this vault"), "{err}");
    let (ok, _, err) = with_key(&["secrets", "create", "--name", "X_KEY", "--value", "x-value-1"], "short");
    assert!(!ok && err.contains("base64 of exactly 32 bytes"), "{err}");
    // Metadata stays readable while locked; values never are.
    assert!(vault.ok(&["secrets", "list"]).contains("OPENAI_API_KEY"));
    assert!(vault.path().join("keys").read_dir().map(|mut d| d.next().is_none()).unwrap_or(true));
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(ENV_KEY);
}

// passphrase provider: Argon2id parameters stored, a wrong or missing
// passphrase refused with a clear line, and no way in without it.
#[test]
fn passphrase_key_provider() {
    let vault = Vault::new();
    let with_pass = |args: &[&str], pass: &str| {
        let mut cmd = vault.cmd(args);
        cmd.env("AIVAULT_PASSPHRASE", pass);
        vault.run_cmd(cmd)
    };
    assert!(with_pass(&["init", "--provider", "passphrase"], "correct horse battery").0);
    let params = vault.sql().text("SELECT params FROM key_config");
    let params: Value = serde_json::from_str(&params).unwrap();
    assert_eq!(params["argon2id"]["memory_kib"], 19456);
    assert!(
        with_pass(
            &["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY],
            "correct horse battery"
        )
        .0
    );
    let err = vault.fails_unchanged(&["secrets", "create", "--name", "B_KEY", "--value", "b-value-1"]);
    assert!(err.contains("the vault is locked: set AIVAULT_PASSPHRASE"), "{err}");
    let before = vault.snapshot();
    let (ok, _, err) =
        with_pass(&["secrets", "create", "--name", "B_KEY", "--value", "b-value-1"], "wrong horse");
    assert!(!ok && err.trim() == "error: the passphrase does not open this vault", "{err}");
    assert_eq!(vault.snapshot(), before);
    let err = vault.fails_unchanged(&["init", "--provider", "file"]);
    assert!(err.contains("already set up with the passphrase key provider"), "{err}");
    vault.assert_nowhere("correct horse battery");
}

// rotate-master re-wraps every data key (file -> passphrase -> env -> file),
// leaves value ciphertexts alone, and the vault works after each step.
#[test]
fn rotate_master_across_providers() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&["secrets", "create", "--name", "OTHER", "--value", "other-value-1"]);
    let ciphertexts = || -> Vec<(Vec<u8>, Vec<u8>)> {
        vault.sql().blob_pairs("SELECT ciphertext, wrapped_dek FROM secrets ORDER BY id")
    };
    let before = ciphertexts();

    let mut cmd = vault.cmd(&["rotate-master", "--provider", "passphrase"]);
    cmd.env("AIVAULT_NEW_PASSPHRASE", "a new passphrase");
    let (ok, out, err) = vault.run_cmd(cmd);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Master key rotated (key provider: passphrase); 2 data keys re-wrapped, values untouched.\n"
    );
    let after = ciphertexts();
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.0, new.0, "value ciphertext must not change");
        assert_ne!(old.1, new.1, "the data key must be re-wrapped");
    }
    assert_eq!(
        std::fs::read_dir(vault.path().join("keys")).unwrap().count(),
        0,
        "the old key file is removed"
    );

    let mut cmd = vault.cmd(&["rotate-master", "--provider", "env"]);
    cmd.env("AIVAULT_PASSPHRASE", "a new passphrase").env("AIVAULT_NEW_KEY", ENV_KEY);
    assert!(vault.run_cmd(cmd).0);
    let mut cmd = vault.cmd(&["rotate-master", "--provider", "file"]);
    cmd.env("AIVAULT_KEY", ENV_KEY);
    assert!(vault.run_cmd(cmd).0);
    vault.ok(&["secrets", "rotate", "--id", "OPENAI_API_KEY", "--value", OPENAI_KEY_2]);
    assert_eq!(after.len(), ciphertexts().len());
    let audit = vault.ok(&["audit"]);
    assert_eq!(audit.matches("master.rotate").count(), 3);
    assert!(vault.ok(&["audit", "verify"]).contains("intact"));
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere("a new passphrase");
}

// Swapping two rows' ciphertexts makes decryption fail (the MAC does not
// cover the sealed value; its associated data does); re-scoping or
// re-pinning a row fails its integrity check before anything is decrypted.
// rotate-master (which decrypts every data key) refuses and changes nothing.
#[test]
fn tampered_rows_fail_to_decrypt() {
    let tamper: [(&str, &str); 3] = [
        // Swap the sealed values of the two secrets.
        (
            "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets s2 WHERE s2.id != secrets.id),
                            wrapped_dek = (SELECT wrapped_dek FROM secrets s2 WHERE s2.id != secrets.id)",
            "OPENAI_API_KEY could not be decrypted",
        ),
        (
            "UPDATE secrets SET scope = 'workspace', workspace_id = 'stolen' WHERE name = 'OPENAI_API_KEY'",
            "failed its integrity check",
        ),
        (
            "UPDATE secrets SET pinned_provider = NULL WHERE name = 'OPENAI_API_KEY'",
            "failed its integrity check",
        ),
    ];
    for (sql, why) in tamper {
        let vault = Vault::new();
        vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
        vault.ok(&["secrets", "create", "--name", "OTHER_KEY", "--value", "other-value-1"]);
        vault.sql().execute(sql).unwrap();

        let mut library = vault.library();
        let err = library
            .find("OPENAI_API_KEY")
            .and_then(|secret| library.invocation_data("openai/models")?.unsealer.reveal(&[&secret]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{sql}: {err}");

        let err = vault.fails_unchanged(&["rotate-master"]);
        assert!(err.contains(why.trim_start_matches("OPENAI_API_KEY ")), "{sql}: {err}");
        vault.assert_nowhere(OPENAI_KEY);
        vault.assert_nowhere("other-value-1");
    }
}

// The audit log records every lifecycle event, never a value; verify names
// the first edited or deleted event.
#[test]
fn audit_chain_detects_edits_and_deletions() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY, "--alias", "oa"]);
    vault.ok(&["secrets", "create", "--name", "PLAIN", "--value", "plain-value-1"]);
    vault.ok(&["secrets", "update", "--id", "PLAIN", "--alias", "p"]);
    vault.ok(&["secrets", "rotate", "--id", "PLAIN", "--value", "plain-value-2"]);
    vault.ok(&["secrets", "attach-group", "--id", "PLAIN", "--workspace-id", "w", "--group-id", "g"]);
    vault.ok(&["secrets", "detach-group", "--id", "PLAIN", "--workspace-id", "w", "--group-id", "g"]);
    vault.ok(&["secrets", "delete", "--id", "OPENAI_API_KEY"]);
    vault.ok(&["rotate-master"]);
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "100"])).unwrap();
    let kinds: Vec<&str> = events.iter().rev().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "vault.init",
            "secret.create",
            "secret.pin",
            "credential.provision",
            "secret.create",
            "secret.update",
            "secret.rotate",
            "secret.attach_group",
            "secret.detach_group",
            "credential.delete",
            "secret.delete",
            "master.rotate",
        ]
    );
    let limited: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "2"])).unwrap();
    assert_eq!(limited.len(), 2);
    let oldest_ts = events.last().unwrap()["tsMs"].as_i64().unwrap();
    let before: Vec<Value> =
        serde_json::from_str(&vault.ok(&["audit", "-v", "--before-ts-ms", &oldest_ts.to_string()])).unwrap();
    assert!(before.is_empty());
    assert_eq!(
        vault.ok(&["audit", "verify"]),
        "audit log ok: 12 events, chain intact and sealed by the vault's key\n"
    );
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere("plain-value-2");

    let conn = vault.sql();
    // The log refuses edits through SQL; an attacker must drop the guard first.
    assert!(conn.execute("DELETE FROM audit WHERE seq = 3").is_err());
    conn.drop_audit_guards();
    conn.execute("UPDATE audit SET details = '{}' WHERE seq = 5").unwrap();
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok);
    assert!(out.contains("first problem at event #5: event #5 was edited"), "{out}");
    conn.execute("DELETE FROM audit WHERE seq = 3").unwrap();
    let (_, out, _) = vault.run(&["audit", "verify"]);
    assert!(out.contains("event #3 was deleted"), "{out}");
}

// Deleting the newest events is noticed too.
#[test]
fn audit_truncation_detected() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "A_KEY", "--value", "a-value-1"]);
    vault.ok(&["secrets", "create", "--name", "B_KEY", "--value", "b-value-1"]);
    let conn = vault.sql();
    conn.drop_audit_guards();
    conn.execute("DELETE FROM audit WHERE seq = 3").unwrap();
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok && out.contains("events #3 to #3 were deleted from the end"), "{out}");
}
