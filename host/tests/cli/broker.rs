//! `aivault invoke` end to end: the real binary, real HTTPS to a loopback
//! server that records what it receives, and the real provider components.

use serde_json::Value;

use crate::support::{GITHUB_TOKEN, OPENAI_KEY, TRELLO_KEY, TRELLO_TOKEN, Vault};
use crate::upstream::{Seen, Upstream};

const HOSTS: &[&str] = &["api.openai.com", "api.trello.com", "api.github.com", "chatgpt.com"];

fn openai_vault() -> (Vault, Upstream) {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    (vault, Upstream::start(HOSTS))
}

fn only_request(upstream: &Upstream) -> Seen {
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    seen.into_iter().next().unwrap()
}

// OpenAI: upstream gets exactly `authorization: Bearer <key>` over TLS to
// api.openai.com; the caller gets the body and never the key.
#[test]
fn openai_invoke_injects_bearer() {
    let (vault, upstream) = openai_vault();
    let (ok, out, err) = vault
        .call(&upstream, &["invoke", "openai/models", "--method", "get", "--path", "/v1/models?limit=2"]);
    assert!(ok, "{err}");
    assert_eq!(err.trim(), "HTTP 200 OK");
    assert!(out.contains("\"gpt-4o\""), "{out}");
    let seen = only_request(&upstream);
    assert_eq!(seen.sni.as_deref(), Some("api.openai.com"));
    assert_eq!((seen.method.as_str(), seen.target.as_str()), ("GET", "/v1/models?limit=2"));
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(seen.header("host"), Some("api.openai.com"));
    assert!(seen.header("cookie").is_none() && seen.header("x-api-key").is_none());
    vault.assert_nowhere(OPENAI_KEY);
}

// Trello: key and token arrive as query parameters, nothing in headers.
#[test]
fn trello_invoke_injects_query() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "TRELLO_API_KEY", "--value", TRELLO_KEY]);
    vault.ok(&["secrets", "create", "--name", "TRELLO_TOKEN", "--value", TRELLO_TOKEN]);
    let upstream = Upstream::start(HOSTS);
    let (ok, _, err) = vault.call(
        &upstream,
        &["invoke", "trello/members", "--method", "GET", "--path", "/1/members/me?fields=fullName"],
    );
    assert!(ok, "{err}");
    let seen = only_request(&upstream);
    assert_eq!(seen.sni.as_deref(), Some("api.trello.com"));
    assert_eq!(seen.target, format!("/1/members/me?fields=fullName&key={TRELLO_KEY}&token={TRELLO_TOKEN}"));
    assert!(seen.header("authorization").is_none());
    // The audit log records the path without the query that carried secrets.
    let audit = vault.ok(&["audit"]);
    assert!(audit.contains("\"path\":\"/1/members/me\""), "{audit}");
    vault.assert_nowhere(TRELLO_KEY);
    vault.assert_nowhere(TRELLO_TOKEN);
}

// GitHub: bearer token plus the User-Agent, Accept and API-version headers.
#[test]
fn github_invoke_injects_bearer_and_client_headers() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    let upstream = Upstream::start(HOSTS);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "github/users", "--path", "/user"]);
    assert!(ok, "{err}");
    let seen = only_request(&upstream);
    assert_eq!(seen.sni.as_deref(), Some("api.github.com"));
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {GITHUB_TOKEN}").as_str()));
    assert_eq!(seen.header("accept"), Some("application/vnd.github+json"));
    assert!(seen.header("user-agent").unwrap().starts_with("aivault/"));
    assert_eq!(seen.header("x-github-api-version"), Some("2022-11-28"));
    vault.assert_nowhere(GITHUB_TOKEN);
}

// Each refusal happens before anything reaches upstream, with one clear
// line, and is audited.
#[test]
fn refusals_never_reach_upstream() {
    let (vault, upstream) = openai_vault();
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        OPENAI_KEY,
        "--scope",
        "workspace",
        "--workspace-id",
        "w1",
    ]);
    let cases: [(&[&str], &str); 11] = [
        (&["invoke", "openai/models", "--method", "GET", "--path", "/v1/models/../../admin"], "traversal"),
        (
            &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models/%2e%2e/%2e%2e/admin"],
            "traversal",
        ),
        (
            &[
                "invoke",
                "openai/models",
                "--method",
                "GET",
                "--path",
                "/v1/models",
                "--header",
                "Authorization: Bearer mine",
            ],
            "header `authorization` carries credentials",
        ),
        (
            &[
                "invoke",
                "openai/models",
                "--method",
                "GET",
                "--path",
                "/v1/models",
                "--header",
                "x-api-key: k",
            ],
            "carries credentials",
        ),
        (
            &[
                "invoke",
                "openai/models",
                "--method",
                "GET",
                "--path",
                "/v1/models",
                "--header",
                "host: evil.example.com",
            ],
            "set by the HTTP client",
        ),
        (&["invoke", "openai/models", "--method", "PUT", "--path", "/v1/models"], "does not allow PUT"),
        (&["invoke", "openai/models", "--method", "GET", "--path", "/v1/files"], "outside openai/models"),
        (&["invoke", "openai/models", "--method", "GET", "--path", "/v1/modelsX"], "outside openai/models"),
        (&["invoke", "openai/models"], "allows DELETE, GET; say which (--method"),
        (
            &[
                "invoke",
                "openai/models",
                "--method",
                "GET",
                "--path",
                "/v1/models",
                "--group-id",
                "g1",
                "--workspace-id",
                "w2",
            ],
            "does not serve group w2/g1",
        ),
        (
            &[
                "invoke",
                "openai/models",
                "--method",
                "GET",
                "--path",
                "/v1/models",
                "--credential",
                "openai@w1",
            ],
            "cannot be used for global",
        ),
    ];
    for (args, why) in cases {
        let (ok, out, err) = vault.call(&upstream, args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());
    let audit = vault.ok(&["audit", "--limit", "100"]);
    assert_eq!(audit.matches("invoke.denied").count(), cases.len(), "{audit}");
    vault.assert_nowhere(OPENAI_KEY);
}

// Workspace isolation: w1's credential serves w1 and its groups, not w2
// (which falls back to the global one), and a group context uses the
// global credential only once its secret is attached.
#[test]
fn scopes_resolve_most_specific_first() {
    let vault = Vault::new();
    let ws_key = "sk-proj-W0rkspac3KeyAbcdefGhijklMnopqrStuvwx0123";
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        ws_key,
        "--scope",
        "workspace",
        "--workspace-id",
        "w1",
    ]);
    let upstream = Upstream::start(HOSTS);
    let get = |extra: &[&str]| {
        let mut args = vec!["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];
        args.extend_from_slice(extra);
        vault.call(&upstream, &args)
    };
    assert!(get(&["--workspace-id", "w1"]).0);
    assert!(get(&["--workspace-id", "w1", "--group-id", "g1"]).0);
    assert!(get(&["--workspace-id", "w2"]).0);
    let (ok, _, err) = get(&["--workspace-id", "w2", "--group-id", "g9"]);
    assert!(!ok && err.contains("attach its secrets"), "{err}");
    vault.ok(&[
        "secrets",
        "attach-group",
        "--id",
        &global_id(&vault),
        "--workspace-id",
        "w2",
        "--group-id",
        "g9",
    ]);
    assert!(get(&["--workspace-id", "w2", "--group-id", "g9"]).0);
    let auths: Vec<String> =
        upstream.seen().iter().map(|s| s.header("authorization").unwrap().to_string()).collect();
    let bearer = |k: &str| format!("Bearer {k}");
    assert_eq!(auths, [bearer(ws_key), bearer(ws_key), bearer(OPENAI_KEY), bearer(OPENAI_KEY)]);
    vault.assert_nowhere(ws_key);
}

fn global_id(vault: &Vault) -> String {
    let list: Value =
        serde_json::from_str(&vault.ok(&["secrets", "list", "-v", "--scope", "global"])).unwrap();
    list[0]["id"].as_str().unwrap().to_string()
}

// A caller may not set what the provider injects, e.g. Trello's `key`.
#[test]
fn provider_owned_query_refused() {
    let vault = Vault::new();
    vault.ok(&[
        "secrets",
        "import",
        "--entry",
        &format!("TRELLO_API_KEY={TRELLO_KEY}"),
        "--entry",
        &format!("TRELLO_TOKEN={TRELLO_TOKEN}"),
    ]);
    let upstream = Upstream::start(HOSTS);
    let (ok, _, err) = vault.call(
        &upstream,
        &["invoke", "trello/boards", "--method", "GET", "--path", "/1/boards/b1?key=attacker"],
    );
    assert!(!ok && err.contains("trello sets `query parameter key` itself"), "{err}");
    assert!(upstream.seen().is_empty());
}

// Policies: rate limit and body limit refuse before upstream; blocked
// response fields are stripped; an oversized response is discarded.
#[test]
fn policies_are_enforced() {
    let (vault, upstream) = openai_vault();
    vault.policy("openai/models", &["--rate-limit-per-minute", "2", "--response-block", "token"]);
    vault.policy("openai/embeddings", &["--max-request-body-bytes", "10"]);
    vault.policy("openai/files", &["--max-response-body-bytes", "100"]);
    let models = ["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];
    let (ok, out, _) = vault.call(&upstream, &models);
    assert!(ok && out.contains("gpt-4o") && !out.contains("should-be-blocked"), "{out}");
    assert!(vault.call(&upstream, &models).0);
    let (ok, _, err) = vault.call(&upstream, &models);
    assert!(!ok && err.contains("limited to 2 calls per minute"), "{err}");
    assert_eq!(upstream.seen().len(), 2);

    let (ok, _, err) =
        vault.call(&upstream, &["invoke", "openai/embeddings", "--body", "{\"input\":\"a long text\"}"]);
    assert!(!ok && err.contains("allows at most 10"), "{err}");
    assert_eq!(upstream.seen().len(), 2);

    let (ok, out, err) =
        vault.call(&upstream, &["invoke", "openai/files", "--method", "GET", "--path", "/v1/files/large"]);
    assert!(!ok && err.contains("larger than 100 bytes") && out.is_empty(), "{err}");
    let policies = vault.ok(&["capability", "policy", "list"]);
    assert!(policies.contains("openai/models (rate limit/min: 2"), "{policies}");
}

// A cross-host redirect comes back as is; nothing follows it.
#[test]
fn redirect_is_not_followed() {
    let (vault, upstream) = openai_vault();
    let (ok, _, err) = vault
        .call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models/redirect"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("HTTP 302 Found (redirect to https://evil.example.com/steal not followed)"),
        "{err}"
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen.iter().all(|s| s.sni.as_deref() == Some("api.openai.com")));
}

// An upstream that echoes the key (raw or base64) has it removed.
#[test]
fn echoed_secret_is_redacted() {
    let (vault, upstream) = openai_vault();
    let (ok, out, err) =
        vault.call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models/echo"]);
    assert!(ok, "{err}");
    assert!(out.contains("[REDACTED]"), "{out}");
    assert!(err.contains("upstream echoed a secret"), "{err}");
    vault.assert_nowhere(OPENAI_KEY);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {OPENAI_KEY}"));
    assert!(!out.contains(&b64[8..40]), "{out}");
}

// HTTP errors: the body still goes to stdout, the exit code is non-zero.
#[test]
fn http_error_exits_non_zero() {
    let (vault, upstream) = openai_vault();
    let (ok, out, err) = vault
        .call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models/not-found"]);
    assert!(!ok);
    assert_eq!(err.trim(), "HTTP 404 Not Found");
    assert_eq!(out, r#"{"error":"not found"}"#);
    // Response headers (e.g. set-cookie) never reach the caller.
    assert!(!out.contains("upstream=1") && !err.contains("upstream=1"));
}

// `json` pretty-prints; `markdown`/`md` renders for an LLM.
#[test]
fn json_and_markdown_rendering() {
    let (vault, upstream) = openai_vault();
    let (ok, out, _) =
        vault.call(&upstream, &["json", "openai/models", "--method", "GET", "--path", "/v1/models"]);
    assert!(ok);
    assert!(out.starts_with("{\n  \""), "{out}");
    let (ok, out, _) =
        vault.call(&upstream, &["md", "openai/models", "--method", "GET", "--path", "/v1/models"]);
    assert!(ok);
    assert!(out.contains("- **data**\n") && out.contains("- **object**: list"), "{out}");
}

// A JSON request envelope, and the capability invoke/call aliases.
#[test]
fn request_envelope_and_aliases() {
    let (vault, upstream) = openai_vault();
    let envelope =
        r#"{"method":"POST","path":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[]}}"#;
    let (ok, _, err) =
        vault.call(&upstream, &["capability", "call", "openai/chat-completions", "--request", envelope]);
    assert!(ok, "{err}");
    let seen = only_request(&upstream);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(serde_json::from_slice::<Value>(&seen.body).unwrap()["model"], "gpt-4o");
}

// openai/transcription with a multipart upload.
#[test]
fn multipart_upload() {
    let (vault, upstream) = openai_vault();
    let audio = vault.path().parent().unwrap().join(format!("{}-speech.mp3", std::process::id()));
    std::fs::write(&audio, b"ID3-fake-audio").unwrap();
    let file_arg = format!("file={};type=audio/mpeg", audio.display());
    let (ok, _, err) = vault.call(
        &upstream,
        &[
            "invoke",
            "openai/transcription",
            "--multipart-field",
            "model=whisper-1",
            "--multipart-file",
            &file_arg,
        ],
    );
    std::fs::remove_file(&audio).unwrap();
    assert!(ok, "{err}");
    let seen = only_request(&upstream);
    assert!(seen.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    let body = String::from_utf8_lossy(&seen.body);
    assert!(
        body.contains("name=\"model\"\r\n\r\nwhisper-1")
            && body.contains("filename=\"")
            && body.contains("ID3-fake-audio")
    );
}

// Two GitHub accounts: a second credential created by hand, chosen with --credential.
#[test]
fn several_credentials_per_provider() {
    let vault = Vault::new();
    let work_token = "ghp_W0rkAccountT0kenAbCdEfGhIjKlMnOpQrSt99";
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    vault.ok(&["secrets", "create", "--name", "GITHUB_WORK_TOKEN", "--value", work_token]);
    let out = vault.ok(&[
        "credential",
        "create",
        "github-work",
        "--provider",
        "github",
        "--secret-ref",
        "vault:secret:GITHUB_WORK_TOKEN",
    ]);
    assert_eq!(out, "Credential created: github-work (github, 9 capabilities enabled)\n");
    let upstream = Upstream::start(HOSTS);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "github/users", "--path", "/user"]);
    assert!(
        !ok && err.contains("several credentials enable github/users in global (github, github-work)"),
        "{err}"
    );
    assert!(
        vault
            .call(&upstream, &["invoke", "github/users", "--path", "/user", "--credential", "github-work"])
            .0
    );
    assert!(
        vault.call(&upstream, &["invoke", "github/users", "--path", "/user", "--credential", "github"]).0
    );
    let auths: Vec<String> =
        upstream.seen().iter().map(|s| s.header("authorization").unwrap().to_string()).collect();
    assert_eq!(auths, [format!("Bearer {work_token}"), format!("Bearer {GITHUB_TOKEN}")]);
    // The provider checks a hand-made credential's secret, and hosts stay the provider's.
    vault.ok(&["secrets", "create", "--name", "NOT_A_TOKEN", "--value", "hello-world"]);
    let err = vault.fails_unchanged(&[
        "credential",
        "create",
        "bad",
        "--provider",
        "github",
        "--secret-ref",
        "vault:secret:NOT_A_TOKEN",
    ]);
    assert!(err.contains("refused the value"), "{err}");
    let err = vault.fails_unchanged(&[
        "credential",
        "create",
        "gh-evil",
        "--provider",
        "github",
        "--secret-ref",
        "vault:secret:GITHUB_WORK_TOKEN",
        "--host",
        "evil.example.com",
    ]);
    assert!(err.contains("not one the credential may reach"), "{err}");
    vault.ok(&["credential", "delete", "github-work"]);
    assert!(vault.call(&upstream, &["invoke", "github/users", "--path", "/user"]).0);
    vault.assert_nowhere(work_token);
}

// Custom capabilities and consumer bindings.
#[test]
fn custom_capability_and_bindings() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    let out = vault.ok(&[
        "capability",
        "create",
        "github/rate-only",
        "--credential",
        "github",
        "--method",
        "GET",
        "--path-prefix",
        "/rate_limit",
    ]);
    assert!(out.starts_with("Capability created: github/rate-only"), "{out}");
    let err = vault.fails_unchanged(&[
        "capability",
        "create",
        "openai/x",
        "--credential",
        "github",
        "--method",
        "GET",
        "--path-prefix",
        "/x",
    ]);
    assert!(err.contains("must be `github/<name>`"), "{err}");
    let upstream = Upstream::start(HOSTS);
    assert!(vault.call(&upstream, &["invoke", "github/rate-only"]).0);
    assert_eq!(only_request(&upstream).target, "/rate_limit");

    vault.ok(&["capability", "bind", "github/rate-only", "--consumer", "agent-a"]);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "github/rate-only"]);
    assert!(!ok && err.contains("not bound"), "{err}");
    let (ok, _, err) = vault.call(&upstream, &["invoke", "github/rate-only", "--consumer", "agent-b"]);
    assert!(!ok && err.contains("agent-b is not bound"), "{err}");
    assert!(vault.call(&upstream, &["invoke", "github/rate-only", "--consumer", "agent-a"]).0);
    assert!(vault.ok(&["capability", "bindings"]).contains("agent-a"));
    vault.ok(&["capability", "unbind", "github/rate-only", "--consumer", "agent-a"]);
    assert!(vault.call(&upstream, &["invoke", "github/rate-only"]).0);
    vault.ok(&["capability", "delete", "github/rate-only"]);
    let (ok, _, err) = vault.call(&upstream, &["invoke", "github/rate-only"]);
    assert!(!ok && err.contains("no capability `github/rate-only`"), "{err}");
}

// A one-shot call drives its request on its own thread: an upstream that
// does not answer in time fails the call at the timeout, and a stream cut
// midway is reported, never passed off as whole. Each failure is one line,
// and the call's outcome is recorded as failed.
#[test]
fn a_one_shot_call_times_out_and_reports_a_cut_stream() {
    let (vault, upstream) = openai_vault();
    let call = |path: &str, timeout_ms: &str| {
        let started = std::time::Instant::now();
        let args = ["invoke", "openai/chat-completions", "--method", "POST", "--path", path, "--body", "{}"];
        let args = [&args[..], &["--timeout-ms", timeout_ms]].concat();
        let (ok, out, err) = vault.call(&upstream, &args);
        assert!(!ok, "{path}: {out}");
        (out, err, started.elapsed())
    };

    let (_, err, took) = call("/v1/chat/completions/hang", "1000");
    assert!(err.contains("api.openai.com did not answer within 1s"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(took < std::time::Duration::from_secs(3), "the timeout did not cut the call short: {took:?}");

    let (out, err, _) = call("/v1/chat/completions/broken-stream", "10000");
    assert!(out.contains("data: first"), "{out}");
    assert!(err.contains("reading the response failed"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{err}");

    let events = vault.events_once("invoke.failed", 2, 10);
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "invoke.failed")
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{events:#?}");
    vault.assert_nowhere(OPENAI_KEY);
}
