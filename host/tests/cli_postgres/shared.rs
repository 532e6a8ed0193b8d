//! What only a shared database has: several brokers on one vault (each its
//! own machine: its own directory, the key from the environment), and the
//! errors of a server that is not there, refuses us, or is not ours.

use std::process::Command;
use std::thread;

use serde_json::Value;

use crate::serve::{HOSTS, Server, client, token_and_id};
use crate::support::{OPENAI_KEY, OPENAI_KEY_2, Vault};
use crate::upstream::Upstream;
use aivault_test_postgres::USER;

/// A command's success, stdout and stderr.
type Outcome = (bool, String, String);

const ENV_KEY: &str = "q0L2wJb9m8n7b6v5c4x3z2a1s0d9f8g7h6j5k4l3m2o=";
const OTHER_ENV_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A vault on the test server whose key comes from `AIVAULT_KEY`, as every
/// broker of a team gets it, holding an OpenAI key.
fn team_vault() -> Vault {
    let vault = Vault::new();
    vault.set_env("AIVAULT_KEY", ENV_KEY);
    vault.ok(&["init", "--provider", "env"]);
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault
}

/// `GET /v/openai/v1/models` through `server`: the status, or 0 when the
/// server could not be reached.
fn models(server_url: &str, token: &str) -> u16 {
    client()
        .get(format!("{server_url}/v/openai/v1/models"))
        .bearer_auth(token)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// A dotenv file of 3,000 secrets beside `vault`: an import long enough to
/// be cut part-way.
fn bulk_file(vault: &Vault) -> std::path::PathBuf {
    let entries: Vec<String> = (0..3000).map(|i| format!("BULK_{i}=bulk-value-{i:06}")).collect();
    let file = vault.path().join("bulk.env");
    std::fs::write(&file, entries.join("\n")).unwrap();
    file
}

fn events(vault: &Vault) -> Vec<Value> {
    serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "100000"])).unwrap()
}

// Two brokers on one database: one rate limit between them, a rotation or a
// revocation made on one machine in force on the other at its next call,
// concurrent writers from both, and one audit chain that verifies.
#[test]
fn two_brokers_one_truth() {
    let a = team_vault();
    let b = a.beside();
    let upstream = Upstream::start(HOSTS);
    a.policy("openai/models", &["--rate-limit-per-minute", "12"]);
    let (token, token_id) =
        token_and_id(&a, &["--capability", "openai/models", "--capability", "openai/chat-completions"]);
    let servers = [Server::start(&a, &upstream, &[]), Server::start(&b, &upstream, &[])];

    // 24 calls from 4 clients, alternating brokers: the limit counts them all.
    let statuses: Vec<u16> = thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let (servers, token) = (&servers, &token);
                s.spawn(move || (0..6).map(|j| models(&servers[(i + j) % 2].base, token)).collect::<Vec<_>>())
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 12, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 12, "{statuses:?}");

    // Rotated on b's machine: a's next call sends the new key.
    b.ok(&["secrets", "rotate", "--id", "OPENAI_API_KEY", "--value", OPENAI_KEY_2]);
    let chat = client()
        .post(servers[0].url("/v/openai/v1/chat/completions"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"model":"gpt-4o-mini","messages":[]}"#)
        .send()
        .unwrap();
    assert_eq!(chat.status(), 200);
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {OPENAI_KEY_2}").as_str()));

    // A binding added on one machine restricts the other at its next call;
    // removed, the call is served again. The same for a policy.
    let chat = |server: &Server, body: &str| {
        client()
            .post(server.url("/v/openai/v1/chat/completions"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let small = r#"{"model":"gpt-4o-mini","messages":[]}"#;
    a.ok(&["capability", "bind", "openai/chat-completions", "--consumer", "agent-z"]);
    assert_eq!(chat(&servers[1], small), 403);
    a.ok(&["capability", "unbind", "openai/chat-completions", "--consumer", "agent-z"]);
    assert_eq!(chat(&servers[1], small), 200);
    b.policy("openai/chat-completions", &["--max-request-body-bytes", "10"]);
    assert_eq!(chat(&servers[0], small), 403);
    b.ok(&["capability", "policy", "delete", "--capability", "openai/chat-completions"]);
    assert_eq!(chat(&servers[0], small), 200);

    // Concurrent writers on both machines.
    let creates: Vec<Command> = (0..8)
        .map(|i| {
            let vault = if i % 2 == 0 { &a } else { &b };
            vault.std_cmd(&[
                "secrets",
                "create",
                "--name",
                &format!("TEAM_KEY_{i}"),
                "--value",
                &format!("team-value-{i}"),
            ])
        })
        .collect();
    thread::scope(|s| {
        for mut create in creates {
            s.spawn(move || assert!(create.output().unwrap().status.success()));
        }
    });
    let listed = b.ok(&["secrets", "list"]);
    assert!((0..8).all(|i| listed.contains(&format!("TEAM_KEY_{i}"))), "{listed}");

    // Revoked on a's machine: b refuses the token at once.
    a.ok(&["token", "revoke", &token_id]);
    assert_eq!(models(&servers[1].base, &token), 401);

    // One chain, every call in it once.
    for vault in [&a, &b] {
        let verified = vault.ok(&["audit", "verify"]);
        assert!(verified.starts_with("audit log ok"), "{verified}");
    }
    let log = events(&a);
    let count = |kind: &str| log.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(count("invoke.intent"), 15, "twelve admitted models calls and three chats");
    assert_eq!(count("invoke"), 15);
    for value in [OPENAI_KEY, OPENAI_KEY_2] {
        a.assert_nowhere(value);
        b.assert_nowhere(value);
    }
}

// A broker killed mid-load: every call the other acknowledged is in the
// log, intent and outcome, the chain verifies, and the survivor serves on.
#[test]
fn a_killed_broker_loses_nothing_the_other_acknowledged() {
    let a = team_vault();
    let b = a.beside();
    let upstream = Upstream::start(HOSTS);
    let (token, _) = token_and_id(&a, &["--capability", "openai/models"]);
    let mut doomed = Server::start(&a, &upstream, &[]);
    let survivor = Server::start(&b, &upstream, &[]);
    let doomed_base = doomed.base.clone();

    let acknowledged: Vec<u16> = thread::scope(|s| {
        let survivor_calls: Vec<_> = (0..3)
            .map(|_| {
                let (base, token) = (&survivor.base, &token);
                s.spawn(move || (0..30).map(|_| models(base, token)).collect::<Vec<_>>())
            })
            .collect();
        let doomed_calls: Vec<_> = (0..3)
            .map(|_| {
                let (base, token) = (&doomed_base, &token);
                s.spawn(move || (0..30).map(|_| models(base, token)).collect::<Vec<_>>())
            })
            .collect();
        thread::sleep(std::time::Duration::from_millis(300));
        doomed.kill();
        for call in doomed_calls {
            call.join().unwrap();
        }
        survivor_calls.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(acknowledged.iter().all(|s| *s == 200), "{acknowledged:?}");

    let log = events(&b);
    let outcomes = log
        .iter()
        .filter(|e| {
            e["event"] == "invoke" && e["details"]["via"].as_str().is_some_and(|v| v.contains("serve token"))
        })
        .count();
    assert!(
        outcomes >= acknowledged.len(),
        "{outcomes} outcomes for {} acknowledged calls",
        acknowledged.len()
    );
    let verified = b.ok(&["audit", "verify"]);
    assert!(verified.starts_with("audit log ok"), "{verified}");
    assert_eq!(models(&survivor.base, &token), 200);
    b.ok(&["doctor"]);
}

// The errors of a server that is not there, refuses the password, or
// cannot prove who it is: one line naming the server, never the password;
// nothing created anywhere.
#[test]
fn connection_errors_name_the_server_never_the_password() {
    let vault = Vault::new();
    let db = vault.database().unwrap();
    let server = db.server();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cases = [
        (
            format!("postgres://{USER}:{}@127.0.0.1:{closed_port}/{}", server.password(), db.name()),
            format!("127.0.0.1:{closed_port}/{}", db.name()),
            "error connecting to server",
        ),
        (
            format!(
                "postgres://{USER}:WrongPassw0rdXyz@127.0.0.1:{}/{}?sslmode=disable",
                server.port(),
                db.name()
            ),
            format!("127.0.0.1:{}/{}", server.port(), db.name()),
            "password authentication failed",
        ),
        (
            // TLS required, and the server's authority not given.
            format!(
                "postgres://{USER}:{}@localhost:{}/{}?sslmode=verify-full",
                server.password(),
                server.port(),
                db.name()
            ),
            format!("localhost:{}/{}", server.port(), db.name()),
            "error performing TLS handshake",
        ),
    ];
    for (url, shown, why) in cases {
        let mut cmd = vault.cmd(&["secrets", "create", "--name", "X_KEY", "--value", "x-value-12345"]);
        cmd.env("AIVAULT_DATABASE_URL", &url);
        let (ok, _, err) = vault.run_cmd(cmd);
        assert!(!ok, "{url}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("cannot open the vault database {shown}")), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(!err.contains(server.password()) && !err.contains("WrongPassw0rdXyz"), "{err}");
    }
    let mut cmd = vault.cmd(&["secrets", "list"]);
    cmd.env("AIVAULT_DATABASE_URL", format!("mysql://root:Hunter2Secret@127.0.0.1/{}", db.name()));
    let (ok, _, err) = vault.run_cmd(cmd);
    assert!(!ok && err.lines().count() == 1 && !err.contains("Hunter2Secret"), "{err}");
    // Nothing was created: the database is still empty.
    let tables: i64 = db
        .client()
        .query_one("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'secrets'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

// A write rolled back after its audit event was inserted (a broker killed
// mid-call, a lost connection) leaves no gap: the log's high-water mark
// goes back with it, so the next event follows on and the log verifies.
#[test]
fn a_rolled_back_audit_event_leaves_no_gap() {
    let vault = team_vault();
    let db = vault.database().unwrap();
    let mut client = db.client();
    let last: i64 = client.query_one("SELECT MAX(seq) FROM audit", &[]).unwrap().get(0);
    let mut tx = client.transaction().unwrap();
    tx.execute(
        "INSERT INTO audit (seq, ts_ms, event, subject, details, prev_hash, hash) VALUES ($1, 0, 'x', 'x', '{}', 'x', 'x')",
        &[&(last + 1)],
    )
    .unwrap();
    tx.rollback().unwrap();
    let verified = vault.ok(&["audit", "verify"]);
    assert!(verified.starts_with("audit log ok"), "{verified}");
    vault.ok(&["secrets", "create", "--name", "AFTER_KEY", "--value", "after-value-12345"]);
    let next: i64 = client.query_one("SELECT MAX(seq) FROM audit", &[]).unwrap().get(0);
    assert_eq!(next, last + 1, "the next event took the rolled-back one's place");
    let verified = vault.ok(&["audit", "verify"]);
    assert!(verified.starts_with("audit log ok"), "{verified}");
}

// A database of the previous schema (the mark in a sequence) is upgraded
// with its mark: a log whose newest events were deleted still says so.
#[test]
fn an_older_database_keeps_its_high_water_mark() {
    let vault = team_vault();
    let db = vault.database().unwrap();
    let mut client = db.client();
    let last: i64 = client.query_one("SELECT MAX(seq) FROM audit", &[]).unwrap().get(0);
    // Back to version 7 as it was, with two newest events "deleted".
    client
        .batch_execute(
            "DROP TABLE audit_high_water;
             DROP TABLE generation;
             CREATE INDEX audit_by_time ON audit (ts_ms);
             CREATE SEQUENCE audit_seq_seq;
             CREATE OR REPLACE FUNCTION audit_high_water() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM setval('audit_seq_seq', GREATEST(NEW.seq, (SELECT last_value FROM audit_seq_seq)));
                 RETURN NEW;
             END $$;
             UPDATE aivault_schema SET version = 7;",
        )
        .unwrap();
    client.execute("SELECT setval('audit_seq_seq', $1)", &[&(last + 2)]).unwrap();
    let (ok, out, _) = vault.run(&["audit", "verify"]);
    assert!(!ok && out.contains(&format!("events #{} to #{} were deleted", last + 1, last + 2)), "{out}");
    let mark: i64 = client.query_one("SELECT seq FROM audit_high_water", &[]).unwrap().get(0);
    assert_eq!(mark, last + 2);
    let version: i64 = client.query_one("SELECT version FROM aivault_schema", &[]).unwrap().get(0);
    assert!(version > 7);
}

// A database migrated by a newer aivault is refused with both versions; a
// database of another vault (another key) does not open this one.
#[test]
fn a_database_not_for_this_aivault_or_this_vault_is_refused() {
    let vault = team_vault();
    let db = vault.database().unwrap();
    let version: i64 = db.client().query_one("SELECT version FROM aivault_schema", &[]).unwrap().get(0);
    db.client().execute("UPDATE aivault_schema SET version = 99", &[]).unwrap();
    let err = vault.fails(&["secrets", "list"]);
    assert!(
        err.contains(&format!("schema version 99, newer than this aivault understands ({version})")),
        "{err}"
    );
    db.client().execute("UPDATE aivault_schema SET version = $1", &[&version]).unwrap();

    let stranger = vault.beside();
    stranger.set_env("AIVAULT_KEY", OTHER_ENV_KEY);
    let err = stranger.fails_unchanged(&["secrets", "create", "--name", "X_KEY", "--value", "x-value-12345"]);
    assert!(err.contains("the key in AIVAULT_KEY does not open this vault"), "{err}");
}

// `migrate` copies a SQLite vault into PostgreSQL (every row; the copy
// checked with the key there) and back again; a target that already holds
// a vault is refused and the source is only ever read.
#[test]
fn migrate_to_postgres_and_back() {
    let source = Vault::on_sqlite();
    let upstream = Upstream::start(HOSTS);
    source.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY, "--alias", "oa"]);
    source.ok(&["secrets", "create", "--name", "PLAIN", "--value", "plain-value-1"]);
    source.ok(&["secrets", "attach-group", "--id", "PLAIN", "--workspace-id", "w", "--group-id", "g"]);
    source.policy("openai/models", &["--rate-limit-per-minute", "50"]);
    token_and_id(&source, &["--capability", "openai/models"]);
    let models = ["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];
    assert!(source.call(&upstream, &models).0);
    let before = source.snapshot();

    let db = aivault_test_postgres::Server::shared().database();
    let out = source.ok(&["migrate", "--to", &db.url()]);
    assert!(
        out.starts_with(&format!(
            "Copied the vault to postgres://127.0.0.1:{}/{}",
            db.server().port(),
            db.name()
        )),
        "{out}"
    );
    assert!(out.contains("checked with the vault's key") && !out.contains(db.server().password()), "{out}");
    assert_eq!(source.snapshot(), before, "the source is unchanged");

    // The same vault, read from the server: same listings, a verified
    // chain, and calls still work (and are audited there).
    let on_server = |args: &[&str]| {
        let mut cmd = source.cmd(args);
        cmd.env("AIVAULT_DATABASE_URL", db.url());
        for (var, value) in upstream.env() {
            cmd.env(var, value);
        }
        source.run_cmd(cmd)
    };
    // Listings, and the audit log as events: the copy's log is the
    // source's plus one `vault.migrate` event saying where it came from.
    let listings = |run: &dyn Fn(&[&str]) -> Outcome| {
        ["secrets list -v", "credential list -v"]
            .iter()
            .map(|args| run(&args.split(' ').collect::<Vec<_>>()).1)
            .collect::<String>()
    };
    let events = |run: &dyn Fn(&[&str]) -> Outcome| -> (Vec<Value>, Vec<Value>) {
        let all: Vec<Value> = serde_json::from_str(&run(&["audit", "-v", "--limit", "1000"]).1).unwrap();
        all.into_iter().partition(|e| e["event"] != "vault.migrate")
    };
    let source_run = |args: &[&str]| source.run(args);
    let (source_events, none) = events(&source_run);
    assert!(none.is_empty());
    assert_eq!(listings(&on_server), listings(&source_run));
    let (server_events, migrations) = events(&on_server);
    assert_eq!(server_events, source_events);
    assert_eq!(migrations.len(), 1, "{migrations:?}");
    assert_eq!(migrations[0]["details"]["from"], source.path().join("vault.db").display().to_string());
    assert_eq!(
        migrations[0]["details"]["to"],
        format!("postgres://127.0.0.1:{}/{}", db.server().port(), db.name())
    );
    let (ok, out, _) = on_server(&["audit", "verify"]);
    assert!(ok && out.starts_with("audit log ok"), "{out}");
    assert!(on_server(&models).0);

    // Into a database that holds a vault: refused, nothing changed.
    let (ok, _, err) = on_server(&["migrate", "--to", &db.url()]);
    assert!(!ok && err.contains("already keeps its rows"), "{err}");
    let (ok, _, err) = source.run(&["migrate", "--to", &db.url()]);
    assert!(!ok && err.lines().count() == 1 && err.contains("already holds a vault"), "{err}");

    // And back into a new directory (its key file goes with it).
    let back = tempfile::tempdir().unwrap();
    let (ok, out, err) = on_server(&["migrate", "--to", &format!("sqlite:{}", back.path().display())]);
    assert!(ok, "{err}");
    assert!(out.contains("the key file stays in"), "{out}");
    std::fs::create_dir_all(back.path().join("keys")).unwrap();
    for key in std::fs::read_dir(source.path().join("keys")).unwrap() {
        let key = key.unwrap().path();
        std::fs::copy(&key, back.path().join("keys").join(key.file_name().unwrap())).unwrap();
    }
    let in_back = |args: &[&str]| {
        let mut cmd = source.cmd(args);
        cmd.env("AIVAULT_DIR", back.path());
        source.run_cmd(cmd)
    };
    assert_eq!(listings(&in_back), listings(&on_server));
    let (server_events, _) = events(&on_server);
    let (back_events, migrations) = events(&in_back);
    assert_eq!(back_events, server_events);
    assert_eq!(migrations.len(), 2, "{migrations:?}");
    let (ok, out, _) = in_back(&["audit", "verify"]);
    assert!(ok && out.starts_with("audit log ok"), "{out}");
    for value in [OPENAI_KEY, "plain-value-1"] {
        source.assert_nowhere(value);
        let bytes = std::fs::read(back.path().join("vault.db")).unwrap();
        assert!(memchr::memmem::find(&bytes, value.as_bytes()).is_none());
    }
}

// A migration killed part-way leaves the source as it was and the target
// without a vault, so it can simply be run again.
#[test]
fn an_interrupted_migration_can_be_run_again() {
    let source = Vault::on_sqlite();
    let file = bulk_file(&source);
    source.ok(&["secrets", "import", "--env-file", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    let before = source.snapshot();
    let db = aivault_test_postgres::Server::shared().database();
    let mut cut = false;
    for delay_ms in [30, 80, 160, 320] {
        let mut migrate = source.std_cmd(&["migrate", "--to", &db.url()]);
        let mut child =
            migrate.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(source.snapshot(), before, "the source is unchanged");
        let held: bool = db
            .client()
            .query_opt("SELECT EXISTS (SELECT 1 FROM key_config)", &[])
            .ok()
            .flatten()
            .is_some_and(|r| r.get(0));
        if held {
            let secrets: i64 = db.client().query_one("SELECT COUNT(*) FROM secrets", &[]).unwrap().get(0);
            assert_eq!(secrets, 3000, "a vault appears only whole");
            break;
        }
        cut = true;
    }
    assert!(cut, "no run was cut short; the test proved nothing");
    // Finish it (or find it finished): the copy is whole and checks out.
    if !db.client().query_one("SELECT EXISTS (SELECT 1 FROM key_config)", &[]).unwrap().get::<_, bool>(0) {
        source.ok(&["migrate", "--to", &db.url()]);
    }
    let mut verify = source.cmd(&["doctor"]);
    verify.env("AIVAULT_DATABASE_URL", db.url());
    let (ok, out, err) = source.run_cmd(verify);
    assert!(ok, "{out}{err}");
}

// The server drops the connection mid-command: the command says so in one
// line, and its transaction is rolled back whole.
#[test]
fn a_lost_connection_rolls_back_and_says_so() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "FIRST_KEY", "--value", "first-value-1"]);
    let before = vault.snapshot();
    let file = bulk_file(&vault);
    let db = vault.database().unwrap();
    let mut lost = false;
    for _ in 0..5 {
        let mut import = vault.std_cmd(&["secrets", "import", "--env-file", file.to_str().unwrap()]);
        let child =
            import.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let admin = db.client();
        let killer = thread::spawn(move || {
            let mut admin = admin;
            for _ in 0..400 {
                let killed: i64 = admin
                    .query_one(
                        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE application_name = 'aivault' AND datname = current_database() AND state = 'idle in transaction'",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                if killed > 0 {
                    return true;
                }
                thread::sleep(std::time::Duration::from_millis(1));
            }
            false
        });
        let out = child.wait_with_output().unwrap();
        let terminated = killer.join().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        if out.status.success() {
            // Too quick to catch: undo and try again.
            assert!(!terminated, "{err}");
            let listed: Vec<Value> = serde_json::from_str(&vault.ok(&["secrets", "list", "-v"])).unwrap();
            for secret in listed.iter().filter(|s| s["name"].as_str().unwrap().starts_with("BULK_")) {
                vault.ok(&["secrets", "delete", "--id", secret["id"].as_str().unwrap()]);
            }
            continue;
        }
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("lost the connection to the vault database"), "{err}");
        assert_eq!(vault.snapshot(), before, "the import was rolled back whole");
        lost = true;
        break;
    }
    assert!(lost, "the connection was never cut mid-import");
}

// The server ends every session of a running broker (a restart, an
// administrator): the calls that meet a dead connection fail with one clear
// reason, the broker drops those connections, and it serves on without a
// restart of its own.
#[test]
fn a_broker_outlives_its_lost_connections() {
    let vault = team_vault();
    let upstream = Upstream::start(HOSTS);
    let (token, _) = token_and_id(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    assert_eq!(models(&server.base, &token), 200);
    let terminated: i64 = vault
        .database()
        .unwrap()
        .client()
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'aivault' AND datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(terminated > 0);
    let statuses: Vec<u16> = (0..40).map(|_| models(&server.base, &token)).collect();
    let first_ok = statuses.iter().position(|s| *s == 200).expect("the broker never recovered");
    assert!(statuses[first_ok..].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[..first_ok].iter().all(|s| *s == 503), "{statuses:?}");
    let verified = vault.ok(&["audit", "verify"]);
    assert!(verified.starts_with("audit log ok"), "{verified}");
}
