//! `aivault serve` at its edges: keys in paths and query names, keys echoed
//! in small and large answers, compressed or partial answers never asked for, an upstream that breaks mid-stream,
//! and `serve` inside aivaultd following the daemon's lock.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use serde_json::json;

use crate::daemon::{ENV_KEY, env_vault, run_with, signal};
use crate::dropin::{TELEGRAM_TOKEN, drop_in};
use crate::serve::{HOSTS, Server, client, json_of, token, token_stays_home, vault_with_keys, with_json};
use crate::support::{OPENAI_KEY, Vault};
use crate::upstream::Upstream;

// Telegram's clients put the bot token in the path (`/bot<token>/getMe`):
// the proxy token goes there, and upstream gets the real one in its place.
#[test]
fn a_token_in_the_path() {
    let vault = Vault::new();
    drop_in(&vault, aivault_test_artifacts::EXAMPLE_TELEGRAM, "telegram.wasm");
    vault.ok(&["provider", "enable", "telegram"]);
    vault.ok(&["secrets", "create", "--name", "TELEGRAM_BOT_TOKEN", "--value", TELEGRAM_TOKEN]);
    let upstream = Upstream::start(&["api.telegram.org"]);
    let token = token(&vault, &["--capability", "telegram/bot"]);
    let server = Server::start(&vault, &upstream, &[]);
    let response = client().get(server.url(&format!("/v/telegram/bot{token}/getMe"))).send().unwrap();
    assert_eq!(response.status(), 200);
    // The echoed path held the real token: removed on the way back.
    assert_eq!(json_of(response)["path"], "/bot[REDACTED]/getMe");
    assert_eq!(upstream.seen()[0].target, format!("/bot{TELEGRAM_TOKEN}/getMe"));
    // Refused calls are audited with the path, never the token in it.
    let response = client().get(server.url(&format!("/v/telegram/bot{token}/sendMessage"))).send().unwrap();
    assert_eq!(response.status(), 403);
    let audit = vault.ok(&["audit", "-v", "--limit", "20"]);
    assert!(audit.contains("/v/telegram/botaivt_…/sendMessage"), "{audit}");
    token_stays_home(&vault, &upstream, &token);
    vault.assert_nowhere(TELEGRAM_TOKEN);
}

// An echoed key is removed from a small answer and from a large one (made
// safe away from the server's runtime threads) alike, raw and base64, and
// the call is audited as redacted.
#[test]
fn echoed_keys_are_removed_from_answers_small_and_large() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {OPENAI_KEY}"));
    for (path, padding) in [("/v/openai/v1/models/echo", 0), ("/v/openai/v1/models/echo-large", 256 << 10)] {
        let response = client().get(server.url(path)).bearer_auth(&token).send().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().unwrap();
        assert!(!text.contains(OPENAI_KEY) && !text.contains(&b64[8..40]), "{path}: the key came back");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["authorization"], "Bearer [REDACTED]", "{path}");
        assert_eq!(body["padding"].as_str().unwrap().len(), padding, "{path}");
    }
    let events = vault.events_once("invoke", 2, 10);
    let calls: Vec<_> = events.iter().filter(|e| e["event"] == "invoke").collect();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|e| e["details"]["redacted"] == true), "{calls:?}");
    vault.assert_nowhere(OPENAI_KEY);
}

// A token in a query parameter's name is taken out as surely as one in its
// value; two different tokens in one request are refused and audited.
#[test]
fn tokens_anywhere_in_the_query() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let other = crate::serve::token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    let url = server.url(&format!("/v/openai/v1/models?{token}=1&limit=2"));
    assert_eq!(client().get(url).send().unwrap().status(), 200);
    assert_eq!(upstream.seen()[0].target, "/v1/models?limit=2");

    let url = server.url(&format!("/v/openai/v1/models?key={other}"));
    let response = client().get(url).bearer_auth(&token).send().unwrap();
    assert_eq!(response.status(), 400);
    assert!(json_of(response)["error"].as_str().unwrap().contains("several different proxy tokens"));
    assert_eq!(upstream.seen().len(), 1, "the refused request was not sent");
    let audit = vault.ok(&["audit", "-v", "--limit", "20"]);
    assert!(audit.contains("several different proxy tokens"), "{audit}");
    token_stays_home(&vault, &upstream, &token);
    token_stays_home(&vault, &upstream, &other);
}

// Upstream is never asked for a compressed or partial answer, whoever
// asks (an SDK through passthrough, an envelope, the CLI): only a whole,
// plain body can be searched for an echoed secret.
#[test]
fn compressed_or_partial_answers_are_not_asked_for() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    let response = client()
        .get(server.url("/v/openai/v1/models"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip, br")
        .header("range", "bytes=0-10")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let envelope = json!({
        "capability": "openai/models",
        "method": "GET",
        "path": "/v1/models",
        "headers": {"Accept-Encoding": "gzip", "If-Range": "x", "Range": "bytes=0-1"},
    });
    let answer = json_of(
        with_json(client().post(server.url("/aivault/invoke")).bearer_auth(&token), &envelope)
            .send()
            .unwrap(),
    );
    assert_eq!(answer["status"], 200, "{answer}");
    let (ok, _, err) = vault.call(
        &upstream,
        &[
            "invoke",
            "openai/models",
            "--method",
            "GET",
            "--path",
            "/v1/models",
            "--header",
            "accept-encoding: br",
        ],
    );
    assert!(ok, "{err}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for request in seen {
        assert_eq!(request.header("accept-encoding"), Some("identity"), "{request:?}");
        assert!(request.header("range").is_none() && request.header("if-range").is_none(), "{request:?}");
    }
}

// An upstream that breaks mid-stream breaks the client's response too: it
// never ends as if it were complete.
#[test]
fn a_broken_upstream_stream_is_not_passed_off_as_whole() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/chat-completions"]);
    let server = Server::start(&vault, &upstream, &[]);
    let mut response = client()
        .post(server.url("/v/openai/v1/chat/completions/broken-stream"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received = Vec::new();
    let ended = response.read_to_end(&mut received);
    assert!(ended.is_err(), "the cut stream ended cleanly: {}", String::from_utf8_lossy(&received));
    assert!(String::from_utf8_lossy(&received).contains("data: first"));
    let events = vault.events_once("invoke.failed", 1, 5);
    let call = events.iter().find(|e| e["event"] == "invoke.failed").expect("the failure was recorded");
    let reason = call["details"]["reason"].as_str().unwrap();
    assert!(reason.contains("reading the response failed"), "{reason}");
}

// `aivault daemon --serve` serves HTTP on the daemon's key: answered while
// unlocked, 503 while locked, answered again after `aivault unlock`.
#[test]
fn serve_inside_the_daemon_follows_its_lock() {
    let vault = env_vault();
    let key = [("AIVAULT_KEY", ENV_KEY)];
    let (ok, token, err) = run_with(&vault, &["token", "create", "--capability", "openai/models"], &key);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let upstream = Upstream::start(&["api.openai.com"]);
    let mut cmd = vault.std_cmd(&["daemon", "--serve", "127.0.0.1:0"]);
    cmd.env("AIVAULT_KEY", ENV_KEY);
    for (var, value) in upstream.env() {
        cmd.env(var, value);
    }
    let mut daemon = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(daemon.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    lines.read_line(&mut first).unwrap();
    lines.read_line(&mut second).unwrap();
    assert!(first.contains("(unlocked)"), "{first}");
    let base =
        second.trim().strip_prefix("aivault serve listening on ").unwrap_or_else(|| panic!("{second}"));
    let models = || client().get(format!("{base}/v/openai/v1/models")).bearer_auth(&token).send().unwrap();

    assert_eq!(models().status(), 200);
    vault.ok(&["lock"]);
    let response = models();
    assert_eq!(response.status(), 503);
    assert!(json_of(response)["error"].as_str().unwrap().contains("locked"));
    assert_eq!(upstream.seen().len(), 1, "nothing is sent while locked");
    assert!(run_with(&vault, &["unlock"], &key).0);
    assert_eq!(models().status(), 200);

    signal(daemon.id(), libc::SIGTERM);
    assert!(daemon.wait().unwrap().success());
    token_stays_home(&vault, &upstream, &token);
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(ENV_KEY);
}

// A server starts itself again once, before it opens anything, on mimalloc
// (chosen by the mark the restart sets) and with glibc's per-thread caches
// of freed blocks made small (its memory under load, BENCHMARKS.md), and
// then serves; an operator's own setting of the caches is kept as is.
#[test]
fn a_server_restarts_once_on_its_allocator() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let own = "glibc.malloc.tcache_count=5";
    let cases = [
        (None, Some("GLIBC_TUNABLES=glibc.malloc.tcache_count=2")),
        // Started once more already: never again, whatever glibc left.
        (Some(("AIVAULT_MALLOC_RESTARTED", "1")), None),
        (Some(("GLIBC_TUNABLES", own)), Some("GLIBC_TUNABLES=glibc.malloc.tcache_count=5")),
    ];
    for (env, expected) in cases {
        let server = Server::start_with_env(&vault, &upstream, &[], env.as_slice());
        let environ = server.environ();
        let tunables: Vec<&String> = environ.iter().filter(|v| v.starts_with("GLIBC_TUNABLES=")).collect();
        assert_eq!(tunables, expected.iter().collect::<Vec<_>>(), "{env:?}");
        let marks = environ.iter().filter(|v| v.starts_with("AIVAULT_MALLOC_RESTARTED=")).count();
        assert_eq!(marks, 1, "the mark that puts the server on mimalloc: {env:?}");
        let answer = client().get(server.url("/v/openai/v1/models")).bearer_auth(&token).send().unwrap();
        assert_eq!(answer.status(), 200, "{env:?}");
    }
}

// Calls arriving together have their rate counts and audit records written
// together (vault/group_commit.rs): the limit still admits exactly as many
// as it allows, each admitted call was counted before it was sent, and
// every call, admitted or refused, is in the verified log.
#[test]
fn a_rate_limit_holds_for_calls_arriving_together() {
    const LIMIT: usize = 30;
    const CALLS: usize = 96;
    let vault = vault_with_keys();
    let limit = LIMIT.to_string();
    vault.policy("openai/models", &["--rate-limit-per-minute", &limit]);
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &["--max-concurrent", "16"]);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let http = client();
                    (0..CALLS / 16)
                        .map(|_| {
                            let url = server.url("/v/openai/v1/models");
                            http.get(url).bearer_auth(&token).send().unwrap().status().as_u16()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), LIMIT, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), CALLS - LIMIT, "{statuses:?}");
    assert_eq!(upstream.seen().len(), LIMIT);
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "1000"])).unwrap();
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(
        (count("invoke.intent"), count("invoke"), count("invoke.denied")),
        (LIMIT, LIMIT, CALLS - LIMIT)
    );
    assert!(vault.ok(&["audit", "verify"]).contains("sealed"));
}
