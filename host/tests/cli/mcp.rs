//! `aivault mcp` end to end: the real binary as an MCP server on stdio,
//! driven by the official Rust MCP client (rmcp, as agents embed it),
//! against the loopback HTTPS upstream.

use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::{OPENAI_KEY, Vault};
use crate::upstream::Upstream;

/// An MCP client that introduces itself by name.
pub(crate) struct Agent;

impl ClientHandler for Agent {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info.name = "test-agent".into();
        info
    }
}

pub(crate) type Client = RunningService<RoleClient, Agent>;

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// `aivault mcp <args>` as a child process, connected.
async fn connect(vault: &Vault, upstream: &Upstream, args: &[&str]) -> Client {
    let mut full = vec!["mcp"];
    full.extend_from_slice(args);
    let mut cmd = vault.std_cmd(&full);
    for (var, value) in upstream.env() {
        cmd.env(var, value);
    }
    let (transport, _) =
        TokioChildProcess::builder(tokio::process::Command::from(cmd)).stderr(Stdio::null()).spawn().unwrap();
    Agent.serve(transport).await.unwrap()
}

fn args(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => panic!("arguments are an object"),
    }
}

pub(crate) async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args(arguments)))
        .await
        .unwrap()
}

/// The text the model reads.
pub(crate) fn text_of(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

fn vault_with_keys() -> Vault {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault
}

// The agent lists its tools and capabilities, invokes one, and reads the
// body; upstream got the key, the agent never did; the audit log names it.
#[test]
fn an_agent_lists_and_invokes() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(&["api.openai.com"]);
    let mut seen_by_agent = String::new();
    runtime().block_on(async {
        let client = connect(&vault, &upstream, &[]).await;
        let tools: Vec<String> =
            client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
        assert_eq!(tools, ["list_capabilities", "describe_capability", "invoke"]);

        let listed = call(&client, "list_capabilities", json!({"provider": "openai"})).await;
        let ids: Vec<String> = listed.structured_content.as_ref().unwrap()["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert!(ids.contains(&"openai/models".to_string()) && ids.len() == 17, "{ids:?}");
        let described = call(&client, "describe_capability", json!({"id": "openai/models"})).await;
        assert_eq!(described.structured_content.as_ref().unwrap()["pathPrefixes"], json!(["/v1/models"]));

        let answer = call(
            &client,
            "invoke",
            json!({"capability": "openai/models", "method": "GET", "path": "/v1/models", "query": {"limit": 2}}),
        )
        .await;
        let text = text_of(&answer);
        assert!(text.starts_with("HTTP 200 OK") && text.contains("gpt-4o"), "{text}");
        assert_eq!(answer.structured_content.as_ref().unwrap()["body"]["data"][0]["id"], "gpt-4o");
        seen_by_agent.push_str(&format!("{answer:?}"));

        // An API that echoes the key back: the agent gets it redacted.
        let echo = call(&client, "invoke", json!({"capability": "openai/models", "method": "GET", "path": "/v1/models/echo"})).await;
        let text = text_of(&echo);
        assert!(text.contains("[REDACTED]") && text.contains("a secret upstream echoed was removed"), "{text}");
        seen_by_agent.push_str(&format!("{echo:?}{listed:?}{described:?}"));
        client.cancel().await.unwrap();
    });
    let seen = upstream.seen();
    assert_eq!(seen[0].target, "/v1/models?limit=2");
    assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert!(!seen_by_agent.contains(OPENAI_KEY), "the agent received the key");
    let audit = vault.ok(&["audit", "--limit", "10"]);
    assert!(audit.contains("mcp client test-agent"), "{audit}");
    vault.assert_nowhere(OPENAI_KEY);
}

// The session's scope is fixed at start: a workspace session uses the
// workspace's key; a token session sees and calls only its capabilities;
// a call cannot name another context.
#[test]
fn the_scope_is_fixed_at_start() {
    let vault = vault_with_keys();
    let workspace_key = "sk-proj-WorkspaceKeyAbcdefGhijklMnopqrStuvwx0123456789";
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        workspace_key,
        "--scope",
        "workspace",
        "--workspace-id",
        "w1",
    ]);
    let (ok, token, err) = vault.run(&["token", "create", "--capability", "openai/models"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let upstream = Upstream::start(&["api.openai.com"]);
    runtime().block_on(async {
        let client = connect(&vault, &upstream, &["--workspace-id", "w1"]).await;
        let answer = call(
            &client,
            "invoke",
            json!({"capability": "openai/models", "path": "/v1/models", "method": "GET"}),
        )
        .await;
        assert!(text_of(&answer).starts_with("HTTP 200"), "{}", text_of(&answer));
        let err = client
            .call_tool(
                CallToolRequestParams::new("invoke")
                    .with_arguments(args(json!({"capability": "openai/models", "workspaceId": "other"}))),
            )
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("unknown argument `workspaceId`"), "{err:?}");
        client.cancel().await.unwrap();

        let client = connect(&vault, &upstream, &["--token", &token]).await;
        let listed = call(&client, "list_capabilities", json!({})).await;
        let ids = listed.structured_content.as_ref().unwrap()["capabilities"].as_array().unwrap().len();
        assert_eq!(ids, 1, "{listed:?}");
        let refused = call(
            &client,
            "invoke",
            json!({"capability": "openai/chat-completions", "path": "/v1/chat/completions", "body": {}}),
        )
        .await;
        assert_eq!(refused.is_error, Some(true));
        assert!(text_of(&refused).contains("may not call openai/chat-completions"), "{}", text_of(&refused));
        client.cancel().await.unwrap();
    });
    assert_eq!(upstream.seen()[0].header("authorization"), Some(format!("Bearer {workspace_key}").as_str()));
    assert_eq!(upstream.seen().len(), 1, "a refused call reached upstream");
    vault.assert_nowhere(OPENAI_KEY);
    // `token create` printed the token once, as it must; no file holds it.
    for (path, bytes) in vault.all_files() {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} holds the token",
            path.display()
        );
    }
}

// Refusals are tool errors with the CLI's one line; unknown tools and bad
// arguments are protocol errors; the server stays up through all of them.
#[test]
fn bad_requests_leave_the_server_up() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(&["api.openai.com"]);
    runtime().block_on(async {
        let client = connect(&vault, &upstream, &[]).await;
        let refused = call(
            &client,
            "invoke",
            json!({"capability": "openai/models", "method": "GET", "path": "/v1/models/../../admin"}),
        )
        .await;
        assert_eq!(refused.is_error, Some(true));
        let line = text_of(&refused);
        assert!(line.contains("traversal") && !line.contains('\n'), "{line}");
        for (tool, arguments) in [
            ("no_such_tool", json!({})),
            ("invoke", json!({})),
            ("invoke", json!({"capability": 7})),
            ("invoke", json!({"capability": "openai/models", "headers": "x"})),
            ("describe_capability", json!({})),
        ] {
            let err =
                client.call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments))).await;
            assert!(err.is_err(), "{tool} was accepted");
        }
        let unknown = call(&client, "describe_capability", json!({"id": "opnai/models"})).await;
        assert!(text_of(&unknown).contains("did you mean"), "{}", text_of(&unknown));
        let answer = call(
            &client,
            "invoke",
            json!({"capability": "openai/models", "method": "GET", "path": "/v1/models"}),
        )
        .await;
        assert!(text_of(&answer).starts_with("HTTP 200"), "the server did not stay up");
        client.cancel().await.unwrap();
    });
    assert_eq!(upstream.seen().len(), 1);
    vault.assert_nowhere(OPENAI_KEY);
}

// `--tools-per-capability`: one tool per capability the session may call,
// named within MCP's rules, that invokes it.
#[test]
fn one_tool_per_capability() {
    let vault = vault_with_keys();
    let upstream = Upstream::start(&["api.openai.com"]);
    runtime().block_on(async {
        let client = connect(&vault, &upstream, &["--tools-per-capability"]).await;
        let tools: Vec<String> =
            client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
        assert_eq!(tools.len(), 3 + 17, "{tools:?}");
        assert!(
            tools
                .iter()
                .all(|t| t.len() <= 64 && t.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)))
        );
        let answer = call(&client, "openai__models", json!({"method": "GET", "path": "/v1/models"})).await;
        assert!(text_of(&answer).starts_with("HTTP 200"), "{}", text_of(&answer));
        client.cancel().await.unwrap();
    });
    assert_eq!(upstream.seen().len(), 1);
}

// Raw JSON-RPC on stdin, as a broken client might send it: a line that is
// not JSON, JSON that is not JSON-RPC and a message past the size limit
// each get a protocol error, and the next request is answered.
#[test]
fn malformed_messages_get_protocol_errors() {
    use std::io::{BufRead, BufReader, Write};
    let vault = vault_with_keys();
    let mut child = vault
        .std_cmd(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let huge = "a".repeat(17 << 20);
    for line in ["not json".to_string(), "[1,2]".to_string(), huge, init.to_string(), list.to_string()] {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    // The protocol errors and the answers come from different writers, in
    // no set order: read until all five are in (or give up after a while).
    let stdout = child.stdout.take().unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut answers: Vec<Value> = Vec::new();
    let done = |answers: &[Value]| {
        answers.iter().filter(|a| a["error"].is_object()).count() >= 3 && answers.iter().any(|a| a["id"] == 2)
    };
    while !done(&answers) {
        let line = received
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server left something unanswered: {answers:?}"));
        answers.push(serde_json::from_str(&line).unwrap());
    }
    drop(stdin);
    let _ = child.wait();
    let codes: Vec<i64> = answers.iter().filter_map(|a| a["error"]["code"].as_i64()).collect();
    assert_eq!(codes, [-32700, -32600, -32600], "{answers:?}");
    assert!(answers.iter().any(|a| a["id"] == 1 && a["result"]["serverInfo"]["name"] == "aivault"));
    assert!(
        answers.iter().any(|a| a["id"] == 2 && a["result"]["tools"].as_array().is_some_and(|t| t.len() == 3))
    );
}

// `aivault serve --mcp`: the same tools on Streamable HTTP at /mcp, each
// request authorised by a proxy token and each session acting as it; a
// revoked token stops the session; no token, no session.
#[test]
fn mcp_over_streamable_http() {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let vault = vault_with_keys();
    let upstream = Upstream::start(&["api.openai.com"]);
    let (ok, token, err) = vault.run(&["token", "create", "--capability", "openai/models"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let token_id = err.strip_prefix("Token created: ").and_then(|r| r.split(' ').next()).unwrap().to_string();
    let server = crate::serve::Server::start(&vault, &upstream, &["--mcp"]);
    let url = server.url("/mcp");
    let refused = reqwest::blocking::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401, "an MCP request without a token was served");
    runtime().block_on(async {
        let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token.clone());
        let client = Agent.serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
        assert_eq!(client.list_all_tools().await.unwrap().len(), 3);
        let listed = call(&client, "list_capabilities", json!({})).await;
        assert_eq!(listed.structured_content.as_ref().unwrap()["capabilities"].as_array().unwrap().len(), 1);
        let answer = call(
            &client,
            "invoke",
            json!({"capability": "openai/models", "method": "GET", "path": "/v1/models"}),
        )
        .await;
        assert!(text_of(&answer).starts_with("HTTP 200"), "{}", text_of(&answer));
        let refused = call(
            &client,
            "invoke",
            json!({"capability": "openai/files", "method": "GET", "path": "/v1/files"}),
        )
        .await;
        assert!(text_of(&refused).contains("may not call openai/files"), "{}", text_of(&refused));

        let (ok, _, err) = vault.run(&["token", "revoke", &token_id]);
        assert!(ok, "{err}");
        let after = client
            .call_tool(CallToolRequestParams::new("list_capabilities").with_arguments(args(json!({}))))
            .await;
        assert!(after.is_err(), "a revoked token's session went on: {after:?}");
        let _ = client.cancel().await;
    });
    assert_eq!(upstream.seen().len(), 1);
    let audit = vault.ok(&["audit", "--limit", "20"]);
    assert!(audit.contains(&format!("mcp client test-agent, token {token_id}")), "{audit}");
    vault.assert_nowhere(OPENAI_KEY);
}
