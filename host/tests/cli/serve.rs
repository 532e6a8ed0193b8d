//! `aivault serve` end to end: the real binary serving HTTP on loopback, a
//! real HTTP client library (reqwest) in front of it, and the loopback HTTPS
//! upstream behind it recording what arrives.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::{GITHUB_TOKEN, OPENAI_KEY, TRELLO_KEY, TRELLO_TOKEN, Vault};
use crate::upstream::Upstream;

pub(crate) const HOSTS: &[&str] = &["api.openai.com", "api.trello.com", "api.github.com"];

/// A running `aivault serve`, stopped (SIGTERM) when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(vault: &Vault, upstream: &Upstream, extra: &[&str]) -> Self {
        Self::start_with_env(vault, upstream, extra, &[])
    }

    /// As [`Server::start`], with `env` set for the server too.
    pub(crate) fn start_with_env(
        vault: &Vault,
        upstream: &Upstream,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut cmd = vault.std_cmd(&args);
        for (var, value) in upstream.env() {
            cmd.env(var, value);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("aivault serve listening on ")
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        Server { child, base }
    }

    /// The server's environment, as the kernel holds it.
    #[allow(dead_code)] // not used by the shared-database suite (cli_postgres)
    pub(crate) fn environ(&self) -> Vec<String> {
        let raw = std::fs::read(format!("/proc/{}/environ", self.child.id())).unwrap();
        raw.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    /// The server's process id.
    #[allow(dead_code)] // not used by the shared-database suite (cli_postgres)
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: the server dies mid-work, as on a lost machine.
    #[allow(dead_code)] // used by the shared-database suite (cli_postgres)
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        terminate(&self.child);
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&self.child);
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

pub(crate) fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

pub(crate) fn json_of(response: reqwest::blocking::Response) -> Value {
    let bytes = response.bytes().unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
}

pub(crate) fn with_json(
    request: reqwest::blocking::RequestBuilder,
    body: &Value,
) -> reqwest::blocking::RequestBuilder {
    request.header("content-type", "application/json").body(body.to_string())
}

pub(crate) fn token(vault: &Vault, args: &[&str]) -> String {
    token_and_id(vault, args).0
}

/// A new token and its id (`Token created: tok_… (…)` on stderr).
pub(crate) fn token_and_id(vault: &Vault, args: &[&str]) -> (String, String) {
    let mut full = vec!["token", "create"];
    full.extend_from_slice(args);
    let (ok, out, err) = vault.run(&full);
    assert!(ok, "{err}");
    let id = err.strip_prefix("Token created: ").and_then(|rest| rest.split(' ').next()).unwrap().to_string();
    (out.trim().to_string(), id)
}

pub(crate) fn vault_with_keys() -> Vault {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&["secrets", "create", "--name", "TRELLO_API_KEY", "--value", TRELLO_KEY]);
    vault.ok(&["secrets", "create", "--name", "TRELLO_TOKEN", "--value", TRELLO_TOKEN]);
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    vault
}

/// No request upstream saw carries a proxy token; no file of the vault holds `token`.
pub(crate) fn token_stays_home(vault: &Vault, upstream: &Upstream, token: &str) {
    for seen in upstream.seen() {
        assert!(!format!("{seen:?}").contains("aivt_"), "a proxy token reached upstream: {seen:?}");
    }
    for (path, bytes) in vault.all_files() {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} holds the token",
            path.display()
        );
    }
}

// The SDK shapes: each provider's clients put their key somewhere else; the
// proxy token goes there, and upstream gets the real credential instead.
#[test]
fn passthrough_takes_each_providers_key_shape() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(
        &vault,
        &["--capability", "openai/models", "--capability", "trello/members", "--capability", "github/users"],
    );
    let server = Server::start(&vault, &upstream, &[]);
    let http = client();

    // OpenAI SDK: `Authorization: Bearer <api key>`, base URL .../v/openai/v1.
    let response = http
        .get(server.url("/v/openai/v1/models"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_of(response);
    assert_eq!(body["data"][0]["id"], "gpt-4o");
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(seen.target, "/v1/models");
    assert!(seen.header("accept-encoding").is_none_or(|v| !v.contains("gzip")));

    // Trello: key and token as query parameters.
    let url = server.url(&format!("/v/trello/1/members/me?fields=fullName&key={token}&token={token}"));
    let response = http.get(url).send().unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.target, format!("/1/members/me?fields=fullName&key={TRELLO_KEY}&token={TRELLO_TOKEN}"));

    // GitHub (octokit): `Authorization: token <pat>`.
    let response = http
        .get(server.url("/v/github/user"))
        .header("authorization", format!("token {token}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {GITHUB_TOKEN}").as_str()));
    assert_eq!(seen.target, "/user");

    // Each call is audited as made through the token.
    let events = vault.events_once("invoke", 3, 20);
    let calls: Vec<&Value> = events.iter().filter(|e| e["event"] == "invoke").collect();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|e| e["details"]["via"].as_str().unwrap().starts_with("serve token tok_")));
    token_stays_home(&vault, &upstream, &token);
    for value in [OPENAI_KEY, TRELLO_KEY, TRELLO_TOKEN, GITHUB_TOKEN] {
        vault.assert_nowhere(value);
    }
    assert!(server.stop().success());
}

// The JSON API: the envelope of `invoke --request`, and the token's own list.
#[test]
fn invoke_and_capabilities_endpoints() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/chat-completions", "--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    let http = client();

    let caps = json_of(http.get(server.url("/aivault/capabilities")).bearer_auth(&token).send().unwrap());
    let ids: Vec<&str> =
        caps["capabilities"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["openai/chat-completions", "openai/models"]);
    assert_eq!(caps["context"], "global");

    let envelope = json!({
        "capability": "openai/chat-completions",
        "method": "POST",
        "path": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": []},
    });
    let answer = json_of(
        with_json(http.post(server.url("/aivault/invoke")).header("x-api-key", &token), &envelope)
            .send()
            .unwrap(),
    );
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["path"], "/v1/chat/completions");
    assert_eq!(answer["credential"], "openai");
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(serde_json::from_slice::<Value>(&seen.body).unwrap()["model"], "gpt-4o-mini");
    token_stays_home(&vault, &upstream, &token);
    vault.assert_nowhere(OPENAI_KEY);
}

// A token is bound to its capabilities, context and lifetime: anything else
// is refused with one line of JSON, audited, and nothing is sent upstream.
#[test]
fn refusals_send_nothing() {
    let vault = vault_with_keys();
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        "sk-proj-WorkspaceKeyAbcdefGhijklMnopqrStuvwx0123456789",
        "--scope",
        "workspace",
        "--workspace-id",
        "w1",
    ]);
    let upstream = Upstream::start(HOSTS);
    let openai = token(&vault, &["--capability", "openai/models"]);
    let expiring = token(&vault, &["--capability", "openai/models", "--ttl", "1s"]);
    let (revoked, revoked_id) = token_and_id(&vault, &["--capability", "openai/models"]);
    vault
        .sql()
        .execute(&format!("CREATE TABLE saved AS SELECT * FROM proxy_tokens WHERE id = '{revoked_id}'"))
        .unwrap();
    vault.ok(&["token", "revoke", &revoked_id]);
    let server = Server::start(&vault, &upstream, &[]);
    let http = client();
    std::thread::sleep(Duration::from_millis(1100));

    let cases: Vec<(reqwest::blocking::RequestBuilder, u16, &str)> = vec![
        (http.get(server.url("/v/openai/v1/models")), 401, "no proxy token"),
        (http.get(server.url("/v/openai/v1/models")).bearer_auth("aivt_bogus"), 401, "unknown proxy token"),
        (
            http.get(server.url("/aivault/capabilities")).bearer_auth("sk-not-ours"),
            401,
            "not an aivault proxy token",
        ),
        (http.get(server.url("/v/openai/v1/models")).bearer_auth("sk-not-ours"), 401, "no proxy token"),
        (http.get(server.url("/v/openai/v1/models")).bearer_auth(&expiring), 401, "expired"),
        (http.get(server.url("/v/openai/v1/models")).bearer_auth(&revoked), 401, "unknown proxy token"),
        (http.get(server.url("/v/openai/v1/files")).bearer_auth(&openai), 403, "none of the capabilities"),
        (http.get(server.url("/v/github/user")).bearer_auth(&openai), 403, "none of the capabilities"),
        (http.get(server.url("/v/nobody/x")).bearer_auth(&openai), 404, "no provider or credential `nobody`"),
        (http.get(server.url("/v/openai/v1/models/..;/admin")).bearer_auth(&openai), 403, "`;`"),
        (
            with_json(
                http.post(server.url("/aivault/invoke")).bearer_auth(&openai),
                &json!({"capability": "openai/files"}),
            ),
            403,
            "may not call openai/files",
        ),
        (
            with_json(
                http.post(server.url("/aivault/invoke")).bearer_auth(&openai),
                &json!({"capability": "openai/models", "workspaceId": "w1"}),
            ),
            400,
            "comes from the proxy token",
        ),
        (
            http.post(server.url("/aivault/invoke")).bearer_auth(&openai).body("not json"),
            400,
            "not a JSON envelope",
        ),
        (http.get(server.url("/elsewhere")), 404, "no route"),
    ];
    for (request, status, why) in cases {
        let response = request.send().unwrap();
        assert_eq!(response.status().as_u16(), status, "{why}");
        let body = json_of(response);
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(why) && !error.contains('\n'), "{why}: {error}");
    }
    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());
    let audit = vault.ok(&["audit", "--limit", "100"]);
    assert!(audit.matches("serve.denied").count() >= 8, "{audit}");
    // The workspace key is used only by a token made for that workspace.
    let scoped = token(&vault, &["--capability", "openai/models", "--workspace-id", "w1"]);
    assert_eq!(
        http.get(server.url("/v/openai/v1/models")).bearer_auth(&scoped).send().unwrap().status(),
        200
    );
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-proj-WorkspaceKeyAbcdefGhijklMnopqrStuvwx0123456789")
    );
    // Rows edited or put back outside aivault are refused: a token given
    // more capabilities, and the revoked token restored with its old MAC.
    let count = upstream.seen().len();
    vault
        .sql()
        .execute("UPDATE proxy_tokens SET capabilities = '[\"openai/files\",\"openai/models\"]'")
        .unwrap();
    let response = http.get(server.url("/v/openai/v1/files")).bearer_auth(&openai).send().unwrap();
    assert_eq!(response.status(), 403);
    assert!(json_of(response)["error"].as_str().unwrap().contains("failed its integrity check"));
    vault.sql().batch("DELETE FROM proxy_tokens; INSERT INTO proxy_tokens SELECT * FROM saved;");
    let response = http.get(server.url("/v/openai/v1/models")).bearer_auth(&revoked).send().unwrap();
    assert_eq!(response.status(), 403);
    assert!(json_of(response)["error"].as_str().unwrap().contains("the set of proxy tokens"));
    assert_eq!(upstream.seen().len(), count, "nothing more was sent");
    token_stays_home(&vault, &upstream, &openai);
    vault.assert_nowhere(OPENAI_KEY);
}

// Loopback only, unless the operator gives a reason.
#[test]
fn loopback_only_by_default() {
    let vault = vault_with_keys();
    let err = vault.fails(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(err.contains("is not a loopback address; pass --allow-remote"), "{err}");
}

// Many clients at once: every answer matches its request, every call is
// audited once, the log verifies, and SIGTERM stops the server cleanly.
#[test]
fn concurrent_clients_each_get_their_answer() {
    const CLIENTS: usize = 32;
    const REQUESTS: usize = 1000;
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models"]);
    let server = Server::start(&vault, &upstream, &[]);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let http = client();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= REQUESTS {
                        break;
                    }
                    let response = http
                        .get(server.url(&format!("/v/openai/v1/models/m{i}")))
                        .bearer_auth(&token)
                        .send()
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    let body = json_of(response);
                    assert_eq!(
                        body["path"],
                        format!("/v1/models/m{i}"),
                        "an answer went to the wrong request"
                    );
                }
            });
        }
    });
    assert!(server.stop().success(), "serve did not stop cleanly on SIGTERM");
    assert_eq!(upstream.seen().len(), REQUESTS);
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "5000"])).unwrap();
    assert_eq!(events.iter().filter(|e| e["event"] == "invoke").count(), REQUESTS);
    assert_eq!(events.iter().filter(|e| e["event"] == "invoke.intent").count(), REQUESTS);
    assert!(vault.ok(&["audit", "verify"]).contains("sealed"));
    token_stays_home(&vault, &upstream, &token);
    vault.assert_nowhere(OPENAI_KEY);
}

// A streamed answer (server-sent events, chunked) is passed on as it
// arrives: the first event reaches the client before upstream has finished,
// and a credential echoed across two chunks is still removed.
#[test]
fn passthrough_streams_as_it_arrives() {
    use std::io::Read as _;
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/chat-completions"]);
    let server = Server::start(&vault, &upstream, &[]);
    let mut response = client()
        .post(server.url("/v/openai/v1/chat/completions/stream"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"stream\":true}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&received).contains("data: first") {
        let n = response.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(upstream.streams_finished(), 0, "the first event came only after upstream finished");
    upstream.release();
    response.read_to_end(&mut received).unwrap();
    let text = String::from_utf8(received).unwrap();
    assert!(text.ends_with("data: last\n\n"), "{text}");
    assert!(text.contains("[REDACTED]") && !text.contains(OPENAI_KEY), "{text}");
    let events = vault.events_once("invoke", 1, 5);
    let call = events.iter().find(|e| e["event"] == "invoke").unwrap();
    assert_eq!(
        (call["details"]["streamed"].as_bool(), call["details"]["redacted"].as_bool()),
        (Some(true), Some(true))
    );
    vault.assert_nowhere(OPENAI_KEY);
}

// The OpenAI Python SDK, unmodified, pointed at `serve` with a proxy token
// as its API key: it lists models and posts a chat completion; upstream gets
// the real key, never the token. (`./scripts/test` installs the SDK.)
#[test]
fn openai_python_sdk_through_serve() {
    let Some(python) = std::env::var_os("AIVAULT_TEST_PYTHON") else {
        eprintln!(
            "skipped: AIVAULT_TEST_PYTHON (a python with the openai package) is not set; ./scripts/test sets it"
        );
        return;
    };
    let vault = vault_with_keys();
    let upstream = Upstream::start(HOSTS);
    let token = token(&vault, &["--capability", "openai/models", "--capability", "openai/chat-completions"]);
    let server = Server::start(&vault, &upstream, &[]);
    let script = r#"
import sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
print(client.models.list().data[0].id)
raw = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print(raw.http_response.status_code)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, &server.url("/v/openai/v1"), &token])
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["gpt-4o", "200"], "{stderr}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("GET", "/v1/models"));
    assert_eq!((seen[1].method.as_str(), seen[1].target.as_str()), ("POST", "/v1/chat/completions"));
    for request in &seen {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    }
    assert_eq!(serde_json::from_slice::<Value>(&seen[1].body).unwrap()["model"], "gpt-4o-mini");
    token_stays_home(&vault, &upstream, &token);
    vault.assert_nowhere(OPENAI_KEY);
}
