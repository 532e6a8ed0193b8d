//! The tools `aivault mcp` offers, their input schemas, reading their
//! arguments, and rendering an answer as text a model can read. No tool
//! returns a secret, a credential's value or a proxy token, and none
//! changes the vault: creating secrets, credentials, providers or policies
//! stays with the operator at the CLI.

use std::sync::Arc;

use base64::Engine as _;
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{Map, Value, json};

use crate::broker::listing::CapabilityInfo;
use crate::broker::{Answer, Invocation};

pub const LIST: &str = "list_capabilities";
pub const DESCRIBE: &str = "describe_capability";
pub const INVOKE: &str = "invoke";

/// The largest request body a tool call may carry.
pub const MAX_BODY_BYTES: usize = 8 << 20;

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("schemas are objects"),
    }
}

/// The properties of a call, shared by `invoke` and per-capability tools.
fn call_properties() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "method": {"type": "string", "description": "HTTP method, e.g. GET or POST; may be left out when the capability allows one"},
        "path": {"type": "string", "description": "Request path under one of the capability's path prefixes, e.g. /v1/models; may include a query"},
        "query": {"type": "object", "description": "Query parameters to add", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "headers": {"type": "object", "description": "Request headers (never credentials: aivault adds those)", "additionalProperties": {"type": "string"}},
        "body": {"description": "Request body: JSON (sent as application/json) or a string (sent as is)"},
        "credential": {"type": "string", "description": "Which credential to use, when several could serve the call"}
    }) else {
        unreachable!()
    };
    map
}

/// The three tools every session has.
pub fn general() -> Vec<Tool> {
    let mut invoke = call_properties();
    invoke.insert(
        "capability".into(),
        json!({"type": "string", "description": "Capability id, e.g. openai/models"}),
    );
    vec![
        Tool::new(
            LIST,
            "List the API capabilities this session may invoke: id, methods, path prefixes and a one-line description.",
            schema(json!({
                "type": "object",
                "properties": {"provider": {"type": "string", "description": "Only this provider's capabilities, e.g. openai"}},
            })),
        ),
        Tool::new(
            DESCRIBE,
            "Describe one capability: its provider, methods, path prefixes and hosts.",
            schema(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "Capability id, e.g. github/repos"}},
                "required": ["id"],
            })),
        ),
        Tool::new(
            INVOKE,
            "Call an API through aivault: it adds the credential (you never see it) and returns status, content type and body.",
            schema(json!({"type": "object", "properties": invoke, "required": ["capability"]})),
        ),
    ]
}

/// A tool name for capability `id` within MCP's rules (letters, digits,
/// `_` and `-`, at most 64): `openai/chat-completions` ->
/// `openai__chat-completions`.
pub fn tool_name(id: &str) -> String {
    let name: String = id
        .replace('/', "__")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    name.chars().take(64).collect()
}

/// One tool per capability (`--tools-per-capability`).
pub fn per_capability(capabilities: &[CapabilityInfo]) -> Vec<Tool> {
    capabilities
        .iter()
        .map(|c| {
            let description = format!(
                "{} ({}; methods {}; paths under {})",
                c.description,
                c.id,
                c.methods.join(", "),
                c.path_prefixes.join(", ")
            );
            Tool::new(
                tool_name(&c.id),
                description,
                schema(json!({"type": "object", "properties": call_properties()})),
            )
        })
        .collect()
}

fn bad(message: impl Into<String>) -> ErrorData {
    ErrorData::invalid_params(message.into(), None)
}

/// A string argument, if present.
pub fn text(args: &JsonObject, name: &str) -> Result<Option<String>, ErrorData> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("`{name}` must be a string"))),
    }
}

/// The invocation `args` describe, for `capability`.
pub fn invocation(capability: String, args: &JsonObject) -> Result<Invocation, ErrorData> {
    let known = ["capability", "method", "path", "query", "headers", "body", "credential"];
    if let Some(unknown) = args.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(bad(format!("unknown argument `{unknown}` (expected {})", known.join(", "))));
    }
    let mut path = text(args, "path")?;
    match args.get("query") {
        None | Some(Value::Null) => {}
        Some(Value::Object(query)) => {
            let mut pairs = Vec::new();
            for (name, value) in query {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(bad(format!(
                            "query parameter `{name}` must be a string, number or boolean"
                        )));
                    }
                };
                pairs.push(format!("{}={}", encode(name), encode(&value)));
            }
            if !pairs.is_empty() {
                let base = path.take().ok_or_else(|| bad("`query` needs a `path`"))?;
                let joiner = if base.contains('?') { '&' } else { '?' };
                path = Some(format!("{base}{joiner}{}", pairs.join("&")));
            }
        }
        Some(_) => return Err(bad("`query` must be an object of parameters")),
    }
    let mut headers = Vec::new();
    match args.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(bad(format!("header `{name}` must be a string")));
                };
                headers.push((name.to_ascii_lowercase(), value.clone()));
            }
        }
        Some(_) => return Err(bad("`headers` must be an object of header values")),
    }
    let body = match args.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(json) => {
            if !headers.iter().any(|(n, _)| n == "content-type") {
                headers.push(("content-type".into(), "application/json".into()));
            }
            Some(json.to_string().into_bytes())
        }
    };
    if body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(bad(format!("the body is larger than {MAX_BODY_BYTES} bytes")));
    }
    Ok(Invocation {
        capability,
        method: text(args, "method")?,
        path,
        headers,
        body,
        credential: text(args, "credential")?,
        ..Invocation::default()
    })
}

/// RFC 3986 percent-encoding of a query name or value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An answer as the model reads it: status line, content type, then the
/// body (JSON pretty-printed), cut at `max_bytes` with a note saying so;
/// the same as structured content.
pub fn answer(answer: &Answer, max_bytes: usize) -> CallToolResult {
    let content_type = answer.content_type.clone().unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let (mut shown, kind) = match (&parsed, std::str::from_utf8(&answer.body)) {
        (Some(json), _) => (serde_json::to_string_pretty(json).unwrap_or_default(), "json"),
        (None, Ok(text)) => (text.to_string(), "text"),
        (None, Err(_)) => (
            format!(
                "({} bytes of binary content, base64 below)\n{}",
                answer.body.len(),
                base64::engine::general_purpose::STANDARD.encode(&answer.body)
            ),
            "binary",
        ),
    };
    let total = shown.len();
    let truncated = total > max_bytes;
    if truncated {
        let mut cut = max_bytes;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str(&format!("\n[truncated: {max_bytes} of {total} bytes shown]"));
    }
    let mut head = format!("HTTP {} {}", answer.status, answer.reason);
    if !content_type.is_empty() {
        head.push_str(&format!("\ncontent-type: {content_type}"));
    }
    if let Some(location) = &answer.redirect {
        head.push_str(&format!("\nlocation: {location} (not followed)"));
    }
    if answer.redacted {
        head.push_str("\nnote: a secret upstream echoed was removed from the body");
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(format!("{head}\n\n{shown}"))]);
    result.structured_content = Some(json!({
        "status": answer.status,
        "contentType": answer.content_type,
        "body": if truncated { Value::Null } else { parsed.unwrap_or(Value::Null) },
        "bodyKind": kind,
        "truncated": truncated,
        "redacted": answer.redacted,
    }));
    if answer.status >= 400 {
        result.is_error = Some(true);
    }
    result
}

/// A refusal or failure, one line, as a tool error the model reads.
pub fn failure(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.replace(['\n', '\r'], " "))])
}
