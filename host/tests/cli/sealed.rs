//! The sealed audit log, an old vault's migration to authenticated rows,
//! and `rotate-master` killed with SIGKILL at each step.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rusqlite::Connection;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{GITHUB_TOKEN, OPENAI_KEY, Vault};
use crate::upstream::Upstream;

fn busy_vault() -> Vault {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    vault.ok(&["secrets", "create", "--name", "PLAIN", "--value", "plain-value-1"]);
    vault.policy("openai/models", &["--rate-limit-per-minute", "50"]);
    vault.ok(&["capability", "bind", "github/users", "--consumer", "agent-a"]);
    vault
}

/// The chain hash the way aivault computes it: anyone can, no key needed.
fn event_hash(prev: &str, seq: i64, ts: i64, kind: &str, subject: &str, details: &str) -> String {
    let mut h = Sha256::new();
    for field in [
        prev.as_bytes(),
        &seq.to_be_bytes(),
        &ts.to_be_bytes(),
        kind.as_bytes(),
        subject.as_bytes(),
        details.as_bytes(),
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    hex::encode(h.finalize())
}

/// Recomputes every hash and link of the chain, as an attacker without the
/// key would after editing it.
fn rechain(conn: &Connection) {
    conn.execute_batch("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;")
        .unwrap();
    let rows: Vec<(i64, i64, String, String, String)> = conn
        .prepare("SELECT seq, ts_ms, event, subject, details FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev = "0".repeat(64);
    for (seq, ts, kind, subject, details) in rows {
        let hash = event_hash(&prev, seq, ts, &kind, &subject, &details);
        conn.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
    let last: i64 = conn.query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'audit'", [last]).unwrap();
}

fn verify_fails_at(vault: &Vault, seq: i64, what: &str) {
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok, "audit verify passed a rewritten log:\n{out}");
    assert!(out.contains(&format!("first problem at event #{seq}: ")) && out.contains(what), "{out}");
    let (ok, out, _) = vault.run(&["doctor"]);
    assert!(!ok && out.contains(what), "{out}");
}

// Editing, deleting or reordering events and recomputing the whole hash
// chain (which a plain hash chain would accept) is caught by the MACs.
#[test]
fn rewritten_chain_is_detected() {
    let not_ours = "is not authenticated by this vault's key";
    let edits: [(&str, i64); 4] = [
        ("UPDATE audit SET details = '{}' WHERE seq = 3", 3),
        ("DELETE FROM audit WHERE seq = 2; UPDATE audit SET seq = seq - 1 WHERE seq > 2", 2),
        (
            "UPDATE audit SET event = CASE seq WHEN 2 THEN (SELECT event FROM audit WHERE seq = 3)
                                              ELSE (SELECT event FROM audit WHERE seq = 2) END
             WHERE seq IN (2, 3)",
            2,
        ),
        // A MAC copied from another event does not fit.
        ("UPDATE audit SET mac = (SELECT mac FROM audit WHERE seq = 1), details = '{}' WHERE seq = 4", 4),
    ];
    for (sql, first) in edits {
        let vault = busy_vault();
        assert!(vault.ok(&["audit", "verify"]).contains("sealed by the vault's key"));
        let conn = vault.db();
        conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;").unwrap();
        conn.execute_batch(sql).unwrap();
        rechain(&conn);
        verify_fails_at(&vault, first, not_ours);
    }
}

// Deleting the newest events, and the sequence counter with them, is
// caught by the sealed head, even after more events are written.
#[test]
fn truncated_log_is_detected() {
    let vault = busy_vault();
    let conn = vault.db();
    let last: i64 = conn.query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0)).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_delete;").unwrap();
    conn.execute("DELETE FROM audit WHERE seq > ?1", [last - 2]).unwrap();
    conn.execute("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'audit'", [last - 2]).unwrap();
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    let truncated = format!("the log ends at #{} but its newest event was sealed at #{last}", last - 2);
    assert!(!ok && out.contains(&truncated), "{out}");
    // Later writes do not re-seal over the gap.
    vault.ok(&["secrets", "create", "--name", "LATER", "--value", "later-value-1"]);
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok && out.contains(&format!("the log ends at #{} but", last - 1)), "{out}");
    vault.ok(&["secrets", "create", "--name", "LATER_2", "--value", "later-value-2"]);
    vault.ok(&["secrets", "create", "--name", "LATER_3", "--value", "later-value-3"]);
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok && out.contains("does not end at its sealed newest event"), "{out}");
}

// Wiping the whole log, its sequence and its head seal is noticed too.
#[test]
fn wiped_log_is_detected() {
    let vault = busy_vault();
    vault
        .db()
        .execute_batch(
            "DROP TRIGGER audit_no_delete; DELETE FROM audit; DELETE FROM sqlite_sequence WHERE name = 'audit';
             DELETE FROM seals WHERE name = 'audit-head';",
        )
        .unwrap();
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok && out.contains("the seal of the log's newest event is missing"), "{out}");
    // A later write does not start a fresh, sealed log over it.
    vault.ok(&["secrets", "create", "--name", "LATER", "--value", "later-value-1"]);
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok && out.contains("the seal of the log's newest event is missing"), "{out}");
}

/// Makes a vault look as an aivault before row authentication left it: no
/// MACs, no seals, and the old kind of key check.
fn make_legacy(vault: &Vault) {
    let conn = vault.db();
    conn.execute_batch(
        "UPDATE secrets SET mac = NULL; UPDATE credentials SET mac = NULL;
         UPDATE custom_capabilities SET mac = NULL; UPDATE capability_policies SET mac = NULL;
         UPDATE capability_bindings SET mac = NULL; UPDATE provider_approvals SET mac = NULL;
         UPDATE audit SET mac = NULL; DELETE FROM seals;",
    )
    .unwrap();
    conn.execute("UPDATE key_config SET key_check = ?1", [legacy_key_check(vault)]).unwrap();
}

fn legacy_key_check(vault: &Vault) -> Vec<u8> {
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    let kek_id: String = vault.db().query_row("SELECT kek_id FROM key_config", [], |r| r.get(0)).unwrap();
    let text = std::fs::read_to_string(vault.path().join("keys").join(format!("{kek_id}.key"))).unwrap();
    let key = base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap();
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed =
        cipher.encrypt(&nonce, Payload { msg: b"aivault key check", aad: b"aivault/v1/key-check" }).unwrap();
    [nonce.as_slice(), &sealed].concat()
}

// A vault written before rows were authenticated keeps working, and its
// first write with the key authenticates every row and seals its log.
// Copying the old key check back afterwards is refused.
#[test]
fn old_vault_is_authenticated_on_first_write() {
    let vault = busy_vault();
    make_legacy(&vault);
    let out = vault.ok(&["doctor"]);
    assert!(out.contains("rows not yet authenticated"), "{out}");
    assert!(vault.ok(&["audit", "verify"]).contains("not yet sealed"));

    let upstream = Upstream::start(&["api.openai.com"]);
    let (ok, _, err) =
        vault.call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"]);
    assert!(ok, "{err}");
    let out = vault.ok(&["doctor"]);
    assert!(out.contains("rows and table seals authentic"), "{out}");
    assert!(vault.ok(&["audit", "verify"]).contains("sealed by the vault's key"));
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "5"])).unwrap();
    assert!(events.iter().any(|e| e["event"] == "vault.authenticate"), "{events:?}");

    // Rows are checked from now on.
    vault.db().execute("UPDATE credentials SET host = 'evil.example.com'", []).unwrap();
    assert!(vault.fails(&["credential", "list"]).contains("failed its integrity check"));
    vault.db().execute("UPDATE key_config SET key_check = ?1", [legacy_key_check(&vault)]).unwrap();
    let err = vault.fails(&["secrets", "list"]);
    assert!(err.contains("key check was replaced with one from before its rows were authenticated"), "{err}");
    vault.assert_nowhere(OPENAI_KEY);
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "the process never reached {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

// rotate-master killed with SIGKILL at each step leaves a vault that opens
// with the key the database names: that key's file exists, every row is
// authentic, every value decrypts, the audit log verifies, and an invoke
// sends the right key.
#[test]
fn rotate_master_survives_sigkill_at_every_step() {
    let steps = [
        "rotate.key-written",
        "rotate.rewrapped",
        "rotate.committed",
        "rotate.verified",
        "rotate.old-key-removed",
    ];
    let upstream = Upstream::start(&["api.openai.com"]);
    for (i, step) in steps.iter().enumerate() {
        let vault = busy_vault();
        let kek_before: String =
            vault.db().query_row("SELECT kek_id FROM key_config", [], |r| r.get(0)).unwrap();
        let markers = tempfile::tempdir().unwrap();
        let marker = markers.path().join("reached");
        let mut child = vault
            .std_cmd(&["rotate-master"])
            .env("AIVAULT_DEV_PAUSE_AT", format!("{step}:{}", marker.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&marker);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let kek_id: String = vault.db().query_row("SELECT kek_id FROM key_config", [], |r| r.get(0)).unwrap();
        assert_eq!(
            kek_id != kek_before,
            i >= 2,
            "{step}: the switch is committed exactly from `committed` on"
        );
        assert!(
            vault.path().join("keys").join(format!("{kek_id}.key")).exists(),
            "{step}: the named key is gone"
        );
        let (ok, out, err) = vault.run(&["doctor"]);
        assert!(ok, "{step}: doctor failed after the kill:\n{out}{err}");
        assert!(out.contains("3 of 3 values decrypt"), "{step}: {out}");
        let (ok, _, err) =
            vault.call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"]);
        assert!(ok, "{step}: {err}");
        let seen = upstream.seen();
        assert_eq!(
            seen.last().unwrap().header("authorization"),
            Some(format!("Bearer {OPENAI_KEY}").as_str())
        );
        // The interrupted rotation can be finished.
        vault.ok(&["rotate-master"]);
        vault.ok(&["doctor"]);
        vault.assert_nowhere(OPENAI_KEY);
    }
}

// A call's intent is written before anything is sent, so when it cannot be
// written nothing is sent; a refusal or an outcome that cannot be written
// is reported, never dropped.
#[test]
fn audit_failures_are_never_silent() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let upstream = Upstream::start(&["api.openai.com"]);
    let conn = vault.db();
    let fail_on = |event: &str| {
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS fail_audit;
             CREATE TRIGGER fail_audit BEFORE INSERT ON audit WHEN NEW.event = '{event}'
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        ))
        .unwrap();
    };
    let models = ["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];

    fail_on("invoke.intent");
    let (ok, _, err) = vault.call(&upstream, &models);
    assert!(!ok && err.lines().count() == 1, "{err}");
    assert!(err.contains("nothing was sent: the call's audit entry could not be written"), "{err}");
    assert!(upstream.seen().is_empty());

    fail_on("invoke.denied");
    let traversal = ["invoke", "openai/models", "--method", "GET", "--path", "/v1/../admin"];
    let (ok, _, err) = vault.call(&upstream, &traversal);
    assert!(!ok && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("traversal") && err.contains("this refusal could not be written to the audit log"),
        "{err}"
    );
    assert!(upstream.seen().is_empty());

    // The answer was delivered as it arrived (its status first); the failure
    // to record its outcome follows, and the exit code says so.
    fail_on("invoke");
    let (ok, _, err) = vault.call(&upstream, &models);
    let lines: Vec<&str> = err.lines().collect();
    assert!(!ok && lines.len() == 2 && lines[0] == "HTTP 200 OK", "{err}");
    assert!(
        lines[1].contains("the request was sent (HTTP 200) but its outcome could not be written"),
        "{err}"
    );
    assert_eq!(upstream.seen().len(), 1);

    conn.execute_batch("DROP TRIGGER fail_audit;").unwrap();
    assert!(vault.call(&upstream, &models).0);
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "2"])).unwrap();
    assert_eq!(events[0]["event"], "invoke");
    assert_eq!(events[1]["event"], "invoke.intent");
    assert_eq!(events[0]["details"]["intent"], events[1]["seq"]);
    vault.ok(&["audit", "verify"]);
    vault.assert_nowhere(OPENAI_KEY);
}
