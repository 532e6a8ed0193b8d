//! The database is not trusted: an attacker who can write `vault.db` (or
//! administers the PostgreSQL database: `cli_postgres` runs this suite too)
//! but does not hold the master key edits every table the broker, the
//! registry and the resolver act on, the way `sqlite3` or `psql` would. Each edit is refused at
//! use with one line naming the table and row, is listed by `doctor`, and
//! nothing reaches the loopback upstream.

use aivault_test_artifacts as artifacts;
use serde_json::Value;

use crate::support::{GITHUB_TOKEN, OPENAI_KEY, Vault};
use crate::upstream::Upstream;

const HOSTS: &[&str] = &["api.openai.com", "api.github.com", "api.telegram.org"];
const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

/// A vault with OpenAI and GitHub credentials, a policy and a binding.
fn vault_with_everything() -> (Vault, Upstream) {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    vault.policy("openai/models", &["--rate-limit-per-minute", "5"]);
    vault.ok(&["capability", "bind", "github/users", "--consumer", "agent-a"]);
    (vault, Upstream::start(HOSTS))
}

/// Runs `aivault doctor`, which must fail and list `what`.
fn doctor_lists(vault: &Vault, what: &str) {
    let (ok, out, err) = vault.run(&["doctor"]);
    assert!(!ok, "doctor passed a tampered vault:\n{out}");
    assert!(out.contains(what), "doctor did not list {what:?}:\n{out}{err}");
    let status = vault.ok(&["status"]);
    assert!(status.contains(what), "status did not list {what:?}:\n{status}");
}

/// `invoke args` fails with one line containing `why`, and nothing was sent.
fn refused(vault: &Vault, upstream: &Upstream, args: &[&str], why: &str) {
    let (ok, out, err) = vault.call(upstream, args);
    assert!(!ok, "{args:?} succeeded: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(why), "{args:?}: {err}");
    assert!(err.contains("the vault may have been edited outside aivault"), "{err}");
    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());
}

const OPENAI_MODELS: &[&str] = &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];

// The issue's reproduction: a custom capability inserted by hand, taking a
// built-in's id and pointing the real key at another host.
#[test]
fn inserted_custom_capability_sends_nothing() {
    for id in ["openai/chat-completions", "openai/exfiltrate"] {
        let (vault, upstream) = vault_with_everything();
        vault.policy("openai/chat-completions", &["--rate-limit-per-minute", "7"]);
        vault
            .sql()
            .execute(&format!(
                "INSERT INTO custom_capabilities (id, credential_id, description, methods, path_prefixes, host, created_at_ms)
                 VALUES ('{id}', 'openai', '', '[\"POST\"]', '[\"/v1/chat/completions\"]', 'evil.example.com', 0)"
            ))
            .unwrap();
        let what = format!("custom capability `{id}` failed its integrity check");
        refused(&vault, &upstream, &["invoke", id, "--body", "{}"], &what);
        refused(&vault, &upstream, OPENAI_MODELS, &what);
        assert!(vault.fails(&["capability", "list"]).contains(&what));
        doctor_lists(&vault, &what);
        // Deleting the row is the repair, and it removes nothing of the
        // provider capability whose id the forged row took.
        vault.ok(&["capability", "delete", id]);
        vault.ok(&["doctor"]);
        assert!(vault.ok(&["capability", "policy", "list"]).contains("openai/chat-completions"));
        let credentials: Value = serde_json::from_str(&vault.ok(&["credential", "list", "-v"])).unwrap();
        assert!(credentials.to_string().contains("openai/chat-completions"), "{credentials}");
        assert!(vault.call(&upstream, OPENAI_MODELS).0);
        vault.assert_nowhere(OPENAI_KEY);
    }
}

// Secrets: metadata, aliases and attachments are all under the row's MAC.
#[test]
fn edited_secrets_are_refused() {
    let cases = [
        "UPDATE secrets SET name = 'RENAMED' WHERE name = 'OPENAI_API_KEY'",
        "UPDATE secrets SET value_version = 7 WHERE name = 'OPENAI_API_KEY'",
        "INSERT INTO secret_aliases (secret_id, alias, scope, workspace_id, group_id)
         SELECT id, 'sneaky', scope, workspace_id, group_id FROM secrets WHERE name = 'OPENAI_API_KEY'",
        "INSERT INTO group_attachments (secret_id, workspace_id, group_id, created_at_ms)
         SELECT id, 'w', 'g', 0 FROM secrets WHERE name = 'OPENAI_API_KEY'",
    ];
    for sql in cases {
        let (vault, upstream) = vault_with_everything();
        let id = vault.sql().text("SELECT id FROM secrets WHERE name = 'OPENAI_API_KEY'");
        vault.sql().execute(sql).unwrap();
        let what = format!("secret `{id}` failed its integrity check");
        refused(&vault, &upstream, OPENAI_MODELS, &what);
        let group = ["invoke", "openai/models", "--method", "GET", "--workspace-id", "w", "--group-id", "g"];
        refused(&vault, &upstream, &group, &what);
        assert!(vault.fails(&["secrets", "list"]).contains(&what), "{sql}");
        doctor_lists(&vault, &what);
        vault.assert_nowhere(OPENAI_KEY);
    }
}

// Credentials: their columns, the secrets they use and the capabilities
// they enable.
#[test]
fn edited_credentials_and_links_are_refused() {
    let openai = "credential `openai` failed its integrity check";
    let cases = [
        ("UPDATE credentials SET host = 'evil.example.com' WHERE id = 'openai'", openai),
        ("UPDATE credentials SET scope = 'workspace', workspace_id = 'w' WHERE id = 'openai'", openai),
        ("UPDATE credentials SET provider = 'github' WHERE id = 'openai'", openai),
        ("UPDATE credentials SET kind = 'codex-oauth' WHERE id = 'openai'", openai),
        (
            "INSERT INTO credential_capabilities (credential_id, capability_id) VALUES ('openai', 'github/users')",
            openai,
        ),
        (
            "DELETE FROM credential_capabilities WHERE credential_id = 'openai' AND capability_id = 'openai/files'",
            openai,
        ),
        (
            "UPDATE credential_secrets SET secret_id = (SELECT id FROM secrets WHERE name = 'GITHUB_TOKEN')
             WHERE credential_id = 'openai'",
            openai,
        ),
        (
            "INSERT INTO credentials (id, provider, kind, scope, workspace_id, group_id, host, auto_provisioned, created_at_ms)
             VALUES ('aaa-forged', 'openai', 'api-key', 'global', '', '', 'evil.example.com', 1, 0)",
            "credential `aaa-forged` failed its integrity check",
        ),
    ];
    for (sql, what) in cases {
        let (vault, upstream) = vault_with_everything();
        vault.sql().execute(sql).unwrap();
        refused(&vault, &upstream, OPENAI_MODELS, what);
        assert!(vault.fails(&["credential", "list"]).contains(what), "{sql}");
        doctor_lists(&vault, what);
        // Deleting the credential is the repair; the secrets are intact.
        let id = what.split('`').nth(1).unwrap();
        vault.ok(&["credential", "delete", id]);
        vault.ok(&["doctor"]);
        vault.assert_nowhere(OPENAI_KEY);
    }
}

// Policies and bindings: an edit fails the row's MAC, and a deleted row
// fails the table's seal (deleting would lift a limit or open a capability).
#[test]
fn edited_or_deleted_policies_and_bindings_are_refused() {
    let github_users = ["invoke", "github/users", "--path", "/user", "--consumer", "agent-a"];
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "UPDATE capability_policies SET rate_limit_per_minute = 100000",
            OPENAI_MODELS,
            "the policy of `openai/models` failed its integrity check",
        ),
        (
            "DELETE FROM capability_policies",
            OPENAI_MODELS,
            "the set of capability policies (a row was added, removed or replaced) failed its integrity check",
        ),
        (
            "UPDATE capability_bindings SET consumer = 'mallory'",
            &["invoke", "github/users", "--path", "/user", "--consumer", "mallory"],
            "the binding of `mallory` to `github/users` failed its integrity check",
        ),
        (
            "DELETE FROM capability_bindings",
            &["invoke", "github/users", "--path", "/user"],
            "the set of consumer bindings (a row was added, removed or replaced) failed its integrity check",
        ),
        (
            "INSERT INTO capability_bindings (capability_id, consumer, scope, workspace_id, group_id, created_at_ms)
             VALUES ('github/users', 'mallory', 'global', '', '', 0)",
            &github_users,
            "failed its integrity check",
        ),
    ];
    for (sql, args, what) in cases {
        let (vault, upstream) = vault_with_everything();
        vault.sql().execute(sql).unwrap();
        refused(&vault, &upstream, args, what);
        doctor_lists(&vault, what);
        vault.assert_nowhere(GITHUB_TOKEN);
    }
}

// A deleted binding stays refused until the operator reviews the bindings
// and re-seals them; a later write does not quietly re-seal the table.
#[test]
fn broken_seal_needs_the_operator() {
    let (vault, upstream) = vault_with_everything();
    vault.sql().execute("DELETE FROM capability_bindings").unwrap();
    vault.ok(&["capability", "bind", "openai/models", "--consumer", "agent-b"]);
    let what = "the set of consumer bindings";
    refused(&vault, &upstream, &["invoke", "github/users", "--path", "/user"], what);
    let out = vault.ok(&["doctor", "--reseal"]);
    assert!(out.contains("re-sealed"), "{out}");
    let (ok, _, err) = vault.call(&upstream, &["invoke", "github/users", "--path", "/user"]);
    assert!(ok, "{err}");
    assert!(vault.ok(&["audit"]).contains("integrity.reseal"));
}

// Approvals decide which code runs: one forged in the database for a
// pending component is not used, and says why.
#[test]
fn forged_approval_is_not_used() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let dir = vault.path().join("providers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(artifacts::EXAMPLE_TELEGRAM, dir.join("telegram.wasm")).unwrap();
    let sha: String = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(dir.join("telegram.wasm")).unwrap()))
    };
    let manifest =
        r#"{"id":"telegram","hosts":["api.telegram.org"],"vault_secrets":[{"name":"TELEGRAM_BOT_TOKEN"}]}"#;
    vault
        .sql()
        .execute(&format!(
            "INSERT INTO provider_approvals (provider_id, file_name, sha256, manifest, enabled, approved_at_ms)
             VALUES ('telegram', 'telegram.wasm', '{sha}', '{manifest}', 1, 0)"
        ))
        .unwrap();
    let what = "the approval of provider `telegram` failed its integrity check";
    let err = vault.fails(&["capability", "describe", "telegram/bot"]);
    assert!(
        err.contains("provider telegram is not in use: its approval failed its integrity check"),
        "{err}"
    );
    let rows: Value = serde_json::from_str(&vault.ok(&["provider", "list", "-v"])).unwrap();
    let row = rows.as_array().unwrap().iter().find(|r| r["id"] == "telegram").unwrap();
    assert_eq!(row["status"], "invalid", "{row}");
    doctor_lists(&vault, what);
    // The operator's own approval replaces it; the table stays flagged
    // (a row was added behind aivault's back) until the operator accepts it.
    vault.ok(&["provider", "enable", "telegram"]);
    doctor_lists(&vault, "the set of provider approvals");
    vault.ok(&["doctor", "--reseal"]);
    vault.ok(&["secrets", "create", "--name", "TELEGRAM_BOT_TOKEN", "--value", TELEGRAM_TOKEN]);
    vault.ok(&["doctor"]);
    vault.assert_nowhere(TELEGRAM_TOKEN);
}

// A re-approved drop-in whose manifest lost a host makes the rows that
// named it unusable, with a message; nothing is sent.
#[test]
fn withdrawn_host_makes_rows_unusable() {
    let vault = Vault::new();
    let dir = vault.path().join("providers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(artifacts::HOSTILE_GROWN, dir.join("hostile.wasm")).unwrap();
    vault.ok(&["provider", "enable", "hostile"]);
    vault.ok(&["secrets", "create", "--name", "HOSTILE_KEY", "--value", "hostile-key-value-1"]);
    vault.ok(&["secrets", "create", "--name", "HOSTILE_TOKEN", "--value", "hostile-token-value-1"]);
    vault.ok(&[
        "capability",
        "create",
        "hostile/second",
        "--credential",
        "hostile",
        "--method",
        "GET",
        "--path-prefix",
        "/",
        "--host",
        "api2.hostile.test",
    ]);
    let upstream = Upstream::start(&["api.hostile.test", "api2.hostile.test"]);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "hostile/second", "--path", "/x"]);
    assert!(ok, "{err}");
    assert_eq!(upstream.seen()[0].sni.as_deref(), Some("api2.hostile.test"));

    // The operator replaces it with a version that no longer declares api2.
    std::fs::copy(artifacts::HOSTILE, dir.join("hostile.wasm")).unwrap();
    vault.ok(&["provider", "enable", "hostile"]);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "hostile/second", "--path", "/x"]);
    assert!(!ok && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("custom capability `hostile/second` names host `api2.hostile.test`, which provider hostile no longer declares"),
        "{err}"
    );
    let (ok, _, err) = vault.call(&upstream, &["invoke", "hostile/any", "--method", "GET", "--path", "/x"]);
    assert!(!ok && err.contains("credential `hostile` holds secrets HOSTILE_KEY + HOSTILE_TOKEN"), "{err}");
    assert_eq!(upstream.seen().len(), 1, "nothing more was sent");
    vault.assert_nowhere("hostile-key-value-1");
    vault.assert_nowhere("hostile-token-value-1");
}

// A row's MAC proves aivault wrote it, not that it is still meant to be
// there: putting back what the operator removed, with the MAC it had, is
// refused too (the table's seal covers every row's key and MAC).
#[test]
fn replayed_rows_are_refused() {
    // An attachment the operator removed.
    let (vault, upstream) = vault_with_everything();
    vault.ok(&[
        "secrets",
        "attach-group",
        "--id",
        "OPENAI_API_KEY",
        "--workspace-id",
        "w",
        "--group-id",
        "g",
    ]);
    let conn = vault.sql();
    conn.execute(
        "CREATE TABLE saved AS SELECT id, mac, updated_at_ms FROM secrets WHERE name = 'OPENAI_API_KEY'",
    )
    .unwrap();
    vault.ok(&[
        "secrets",
        "detach-group",
        "--id",
        "OPENAI_API_KEY",
        "--workspace-id",
        "w",
        "--group-id",
        "g",
    ]);
    conn.batch(
        "INSERT INTO group_attachments SELECT id, 'w', 'g', 0 FROM saved;
         UPDATE secrets SET mac = (SELECT mac FROM saved), updated_at_ms = (SELECT updated_at_ms FROM saved)
         WHERE id = (SELECT id FROM saved);",
    );
    let group = ["invoke", "openai/models", "--method", "GET", "--workspace-id", "w", "--group-id", "g"];
    refused(&vault, &upstream, &group, "the set of group attachments (a row was added, removed or replaced)");
    doctor_lists(&vault, "the set of group attachments");

    // A credential the operator deleted, put back with its links.
    let (vault, upstream) = vault_with_everything();
    let conn = vault.sql();
    conn.batch(
        "CREATE TABLE saved_credentials AS SELECT * FROM credentials WHERE id = 'openai';
         CREATE TABLE saved_secrets AS SELECT * FROM credential_secrets WHERE credential_id = 'openai';
         CREATE TABLE saved_caps AS SELECT * FROM credential_capabilities WHERE credential_id = 'openai';",
    );
    vault.ok(&["credential", "delete", "openai"]);
    conn.batch(
        "INSERT INTO credentials SELECT * FROM saved_credentials;
         INSERT INTO credential_secrets SELECT * FROM saved_secrets;
         INSERT INTO credential_capabilities SELECT * FROM saved_caps;",
    );
    refused(
        &vault,
        &upstream,
        OPENAI_MODELS,
        "the set of credentials (a row was added, removed or replaced)",
    );
    doctor_lists(&vault, "the set of credentials");
    vault.assert_nowhere(OPENAI_KEY);
}

// A provider the operator disabled, re-enabled with its old approval row.
#[test]
fn replayed_approval_is_refused() {
    let vault = Vault::new();
    let dir = vault.path().join("providers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(artifacts::EXAMPLE_TELEGRAM, dir.join("telegram.wasm")).unwrap();
    vault.ok(&["provider", "enable", "telegram"]);
    vault.sql().execute("CREATE TABLE saved AS SELECT mac FROM provider_approvals").unwrap();
    vault.ok(&["provider", "disable", "telegram"]);
    vault.sql().execute("UPDATE provider_approvals SET enabled = 1, mac = (SELECT mac FROM saved)").unwrap();
    let err = vault.fails(&["capability", "describe", "telegram/bot"]);
    assert!(
        err.contains("provider telegram is not in use: the set of provider approvals was changed"),
        "{err}"
    );
    doctor_lists(&vault, "the set of provider approvals");
    // The operator decides: disable it again and accept the table as it is.
    vault.ok(&["provider", "disable", "telegram"]);
    vault.ok(&["doctor", "--reseal"]);
    let err = vault.fails(&["capability", "describe", "telegram/bot"]);
    assert!(err.contains("it is disabled"), "{err}");
}

// Rows no command can repair by use (a policy for a capability that does
// not exist, an approval for a file that does not exist, a row aivault
// cannot even read) are listed and can still be removed.
#[test]
fn every_forged_row_can_be_removed() {
    let (vault, upstream) = vault_with_everything();
    let conn = vault.sql();
    conn.execute(
        "INSERT INTO capability_policies (capability_id, response_block, updated_at_ms) VALUES ('x/y', '[]', 0)",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO provider_approvals (provider_id, file_name, sha256, manifest, enabled, approved_at_ms)
         VALUES ('ghost', '../../escape.wasm', 'abc', '{}', 1, 0)",
    )
    .unwrap();
    vault.ok(&[
        "capability",
        "create",
        "openai/mine",
        "--credential",
        "openai",
        "--method",
        "GET",
        "--path-prefix",
        "/v1",
    ]);
    conn.execute("UPDATE custom_capabilities SET methods = 'not a list'").unwrap();

    refused(&vault, &upstream, OPENAI_MODELS, "failed its integrity check");
    let (ok, out, _) = vault.run(&["doctor"]);
    assert!(!ok, "{out}");
    for what in [
        "the policy of `x/y`",
        "the approval of provider `ghost`",
        "a row of custom_capabilities that cannot be read",
    ] {
        assert!(out.contains(what), "doctor did not list {what:?}:\n{out}");
    }
    vault.ok(&["capability", "policy", "delete", "--capability", "x/y"]);
    let out = vault.ok(&["provider", "remove", "ghost"]);
    assert!(out.contains("no file was deleted"), "{out}");
    vault.ok(&["capability", "delete", "openai/mine"]);
    vault.ok(&["doctor"]);
    let (ok, _, err) = vault.call(&upstream, OPENAI_MODELS);
    assert!(ok, "{err}");
}
