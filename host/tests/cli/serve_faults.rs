//! `aivault serve` under fault: malformed and oversized requests, clients
//! that stall or vanish mid-stream, an upstream that hangs and a provider
//! that traps. Each is answered (one line of JSON) or cleaned up, costs at
//! most its own call slot, and the server goes on serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aivault_test_artifacts as artifacts;
use serde_json::Value;

use crate::serve::{HOSTS, Server, client, json_of, token, vault_with_keys};
use crate::support::OPENAI_KEY;
use crate::upstream::Upstream;

/// Sends `bytes` on a fresh connection; the status and body of the answer
/// (read until the server closes).
fn raw(server: &Server, bytes: &[u8]) -> (u16, Value) {
    let addr = server.base.strip_prefix("http://").unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("not one line of JSON: {text:?}"));
    (status, json)
}

fn models_ok(server: &Server, token: &str) -> bool {
    let response = client().get(server.url("/v/openai/v1/models")).bearer_auth(token).send().unwrap();
    response.status() == 200
}

// Malformed HTTP, an oversized head, an oversized body: a 4xx with one line
// of JSON, nothing sent upstream, and the server serves the next request.
#[test]
fn malformed_and_oversized_requests() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models", "--capability", "openai/chat-completions"]);
    let server = Server::start(&vault, &upstream, &["--max-body-bytes", "1024"]);
    let huge =
        format!("GET /v/openai/v1/models HTTP/1.1\r\nhost: x\r\nx-pad: {}\r\n\r\n", "a".repeat(80 << 10));
    let many: String = (0..150).map(|i| format!("x-h{i}: 1\r\n")).collect();
    let many = format!("GET /v/openai/v1/models HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    let cases: [(&[u8], u16, &str); 4] = [
        (b"GARBAGE\r\n\r\n", 400, "malformed HTTP request"),
        (b"GET /v/openai/v1/models HTTP/1.1\r\nbad header\r\n\r\n", 400, "malformed HTTP request"),
        (huge.as_bytes(), 431, "larger than 64 KiB"),
        (many.as_bytes(), 431, "more than 100 header fields"),
    ];
    for (bytes, status, why) in cases {
        let (got, body) = raw(&server, bytes);
        assert_eq!(got, status, "{why}: {body}");
        assert!(body["error"].as_str().unwrap().contains(why), "{why}: {body}");
    }
    let response = client()
        .post(server.url("/v/openai/v1/chat/completions"))
        .bearer_auth(&token)
        .body("x".repeat(4096))
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(json_of(response)["error"].as_str().unwrap().contains("larger than 1024 bytes"));
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    assert!(models_ok(&server, &token), "the server stopped serving");
}

// With one call slot: a client that stalls mid-head takes none, and one
// that vanishes mid-stream gives its slot back once its call notices.
#[test]
fn stalled_and_vanished_clients_give_their_slot_back() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models", "--capability", "openai/chat-completions"]);
    let server = Server::start(&vault, &upstream, &["--max-concurrent", "1"]);

    let mut stalled = TcpStream::connect(server.base.strip_prefix("http://").unwrap()).unwrap();
    stalled.write_all(b"GET /v/openai/v1/models HTTP/1.1\r\nhost: x\r\n").unwrap();
    assert!(models_ok(&server, &token), "a stalled client took the only slot");

    let mut response = client()
        .post(server.url("/v/openai/v1/chat/completions/stream"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .unwrap();
    let mut first = [0u8; 64];
    assert!(response.read(&mut first).unwrap() > 0);
    drop(response);
    // The call's next piece finds the client gone (or, waiting on
    // upstream, the one after the release).
    upstream.release();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !models_ok(&server, &token) {
        assert!(Instant::now() < deadline, "the vanished client's slot never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "20"])).unwrap();
    // Polls refused while the slot was still taken are audited too (on a
    // loaded machine there may be some): the stream's own end is the one.
    let ended = events
        .iter()
        .find(|e| e["event"] == "invoke.failed" && e["details"]["path"] == "/v1/chat/completions/stream")
        .expect("the call's end was recorded");
    assert_eq!(ended["details"]["reason"], "the caller stopped reading the answer");
    drop(stalled);
}

// At most 256 connections are open at once (`MAX_CONNECTIONS` in
// serve.rs), however many threads accept them: one past that is closed at
// once, and once clients let theirs go the server serves again.
#[test]
fn connections_past_the_limit_are_closed_at_once() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    let addr = server.base.strip_prefix("http://").unwrap();
    let idle: Vec<TcpStream> = (0..256).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Every one of them accepted (each waits for its head) before the next.
    std::thread::sleep(Duration::from_millis(500));
    let mut one_more = TcpStream::connect(addr).unwrap();
    one_more.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let read = one_more.read(&mut [0u8; 16]);
    assert!(
        matches!(read, Ok(0))
            || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the 257th connection was kept: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "closed only after {:?}", started.elapsed());
    drop(idle);
    let served = || {
        let answer = client().get(server.url("/v/openai/v1/models")).bearer_auth(&token).send();
        answer.is_ok_and(|a| a.status() == 200)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !served() {
        assert!(Instant::now() < deadline, "the server did not serve again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// With the one call slot taken, a request without a body whose token is
// good waits for the slot and is answered once it frees; one with a bad
// token is refused at once, taking no slot to check it.
#[test]
fn a_checked_call_waits_for_a_taken_slot() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models", "--capability", "openai/chat-completions"]);
    let server = Server::start(&vault, &upstream, &["--max-concurrent", "1"]);
    std::thread::scope(|scope| {
        // A stream upstream holds open until released: the slot is taken.
        let holder = scope.spawn(|| {
            let url = server.url("/v/openai/v1/chat/completions/stream");
            client().post(url).bearer_auth(&token).body("{}").send().unwrap().text().unwrap()
        });
        while !upstream.seen().iter().any(|s| s.target.ends_with("/stream")) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let refused = client().get(server.url("/v/openai/v1/models")).bearer_auth("aivt_not-a-token").send();
        assert_eq!(refused.unwrap().status(), 401);
        assert!(started.elapsed() < Duration::from_secs(5), "the token check waited for the slot");
        let waiting =
            scope.spawn(|| client().get(server.url("/v/openai/v1/models")).bearer_auth(&token).send());
        std::thread::sleep(Duration::from_secs(1));
        assert!(!waiting.is_finished(), "answered while the slot was taken");
        upstream.release();
        assert_eq!(waiting.join().unwrap().unwrap().status(), 200);
        assert!(!holder.join().unwrap().is_empty());
    });
}

// A call waiting on upstream holds no connection to the vault and no
// thread: calls to a hanging upstream, one after another, leave the
// server a few connections open and a few threads started, not one each
// (its outcome is written by the recorder once it lands).
#[test]
fn calls_waiting_on_upstream_hold_no_connection_or_thread() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &["--max-concurrent", "32", "--timeout-ms", "2500"]);
    assert!(models_ok(&server, &token));
    let threads_before = threads(server.pid());
    let waiting = 24;
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..waiting)
            .map(|_| {
                let call = scope.spawn(|| {
                    let hang = server.url("/v/openai/v1/models/hang");
                    client().get(hang).bearer_auth(&token).send().unwrap().status().as_u16()
                });
                std::thread::sleep(Duration::from_millis(40));
                call
            })
            .collect();
        let open = databases_open(server.pid());
        let started = threads(server.pid()) - threads_before;
        for call in calls {
            assert_eq!(call.join().unwrap(), 502, "a hung call did not time out");
        }
        assert!(open < waiting / 2, "{open} connections open with {waiting} calls waiting on upstream");
        assert!(started < waiting / 2, "{started} threads started for {waiting} calls waiting on upstream");
    });
    assert!(models_ok(&server, &token));
}

/// How many threads `pid` runs.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

/// How many times `pid` has the vault's database open: once per connection.
fn databases_open(pid: u32) -> usize {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    fds.flatten().filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to.ends_with("vault.db"))).count()
}

// An upstream that hangs costs its own slot until the timeout, and a
// provider that traps or spins fails its own call: the others go on.
#[test]
fn a_hung_upstream_or_trapping_provider_fails_alone() {
    let vault = vault_with_keys();
    vault.ok(&["provider", "install", artifacts::HOSTILE]);
    vault.ok(&["secrets", "create", "--name", "HOSTILE_KEY", "--value", "hostile-secret-value-1"]);
    let upstream = Upstream::start(&["api.openai.com", "api.hostile.test"]);
    let token = token(&vault, &["--capability", "openai/models", "--capability", "hostile/any"]);
    let server = Server::start(&vault, &upstream, &["--max-concurrent", "2", "--timeout-ms", "1500"]);
    std::thread::scope(|scope| {
        let hung = scope.spawn(|| {
            let started = Instant::now();
            let response =
                client().get(server.url("/v/openai/v1/models/hang")).bearer_auth(&token).send().unwrap();
            (response.status().as_u16(), json_of(response), started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        for (path, why) in [("/trap", "panicked"), ("/loop", "CPU budget")] {
            let response =
                client().get(server.url(&format!("/v/hostile{path}"))).bearer_auth(&token).send().unwrap();
            assert!(response.status().is_server_error() || response.status().is_client_error());
            let error = json_of(response)["error"].as_str().unwrap().to_string();
            assert!(error.contains(why) && !error.contains('\n'), "{path}: {error}");
        }
        assert!(models_ok(&server, &token), "a failing call held up the others");
        let (status, body, took) = hung.join().unwrap();
        assert_eq!(status, 502, "{body}");
        assert!(body["error"].as_str().unwrap().contains("did not answer within 1.5s"), "{body}");
        assert!(took < Duration::from_secs(4), "the timeout did not cut the call short: {took:?}");
    });
    assert!(
        upstream.seen().iter().all(|s| s.sni.as_deref() != Some("api.hostile.test")),
        "the hostile provider's calls reached upstream"
    );
    assert!(models_ok(&server, &token));
    vault.assert_nowhere("hostile-secret-value-1");
    vault.assert_nowhere(OPENAI_KEY);
}
