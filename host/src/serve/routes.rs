//! Request handling: authenticate the proxy token, turn the request into an
//! [`Invocation`] in the token's context, run it through the broker on a
//! blocking thread (bounded), and answer. Every refusal is one line of JSON
//! (`{"error": "..."}`) and nothing reaches upstream.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::stream::{self, ChannelBody, ChannelSink, Start};
use super::{Shared, passthrough};
use crate::broker::envelope::Envelope;
use crate::broker::{Answer, Broker, BrokerError, Invocation};
use crate::vault::{TokenError, TokenRow, Vault, VaultError, audit::Event};

/// An answer to send.
pub(super) struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
}

impl Reply {
    fn json(status: StatusCode, value: &Value) -> Self {
        Reply { status, content_type: Some("application/json".into()), body: Bytes::from(value.to_string()) }
    }

    /// A refusal: one line of JSON.
    pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> Self {
        let line = message.to_string().replace(['\n', '\r'], " ");
        Reply::json(status, &json!({ "error": line }))
    }

    fn into_response(self) -> HttpResponse {
        respond(self.status, self.content_type, Either::Left(Full::new(self.body)))
    }
}

/// A response whose body is whole, or follows as it arrives.
type HttpResponse = Response<Either<Full<Bytes>, ChannelBody>>;

fn respond(
    status: StatusCode,
    content_type: Option<String>,
    body: Either<Full<Bytes>, ChannelBody>,
) -> HttpResponse {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(value) = content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// One request, start to end.
pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    Ok(route(shared, req).await)
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let known = matches!(
        (req.method(), path.as_str()),
        (&Method::GET, "/aivault/capabilities") | (&Method::POST, "/aivault/invoke")
    ) || path.starts_with("/v/");
    if !known {
        return Reply::error(StatusCode::NOT_FOUND, format!("no route {} {path}", req.method()))
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, shared.options.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {} bytes", shared.options.max_body_bytes),
            )
            .into_response();
        }
    };
    let request = Received { parts, body };
    match path.as_str() {
        "/aivault/capabilities" => {
            blocking(shared, move |shared, vault| capabilities(shared, vault, &request)).await.into_response()
        }
        "/aivault/invoke" => {
            blocking(shared, move |shared, vault| invoke(shared, vault, &request)).await.into_response()
        }
        _ => streamed(shared, request).await,
    }
}

/// A passthrough call: its answer is passed on as it arrives.
async fn streamed(shared: Arc<Shared>, request: Received) -> HttpResponse {
    let (mut sink, start, body) = stream::channel();
    let work = blocking(shared, move |shared, vault| {
        match passthrough(shared, vault, &request, &mut sink) {
            Ok(()) => sink.finish(Reply::error(StatusCode::BAD_GATEWAY, "upstream sent no answer")),
            Err(reply) => sink.finish(reply),
        }
        Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "done")
    });
    // The call runs on; the response goes out as soon as its start is known.
    let task = tokio::spawn(work);
    match start.await {
        Ok(Start::Whole(reply)) => reply.into_response(),
        Ok(Start::Streamed { status, content_type }) => respond(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            content_type,
            Either::Right(body),
        ),
        // The call ended without a word: a busy server, or a panic.
        Err(_) => task
            .await
            .unwrap_or_else(|_| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
            .into_response(),
    }
}

/// A request with its body read.
pub(super) struct Received {
    pub(super) parts: hyper::http::request::Parts,
    pub(super) body: Bytes,
}

/// Runs `work` on a blocking thread with its own vault connection, once a
/// slot is free (a 503 if none frees up in time).
async fn blocking(
    shared: Arc<Shared>,
    work: impl FnOnce(&Shared, &mut Vault) -> Reply + Send + 'static,
) -> Reply {
    let slot =
        tokio::time::timeout(shared.options.queue_timeout, Arc::clone(&shared.permits).acquire_owned()).await;
    let Ok(Ok(permit)) = slot else {
        return Reply::error(StatusCode::SERVICE_UNAVAILABLE, "aivault serve is busy; try again shortly");
    };
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match Vault::open_with(&shared.dir, shared.keys.clone()) {
            Ok(mut vault) => work(&shared, &mut vault),
            Err(e) => Reply::error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    });
    task.await.unwrap_or_else(|_| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// The proxy token an `/aivault/…` request carries: `Authorization:
/// Bearer`, or `x-api-key`.
fn presented_token(parts: &hyper::http::request::Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let api_key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or(api_key).map(|t| t.trim().to_string())
}

/// The live token `presented`, or the refusal (audited).
pub(super) fn authenticate(
    vault: &mut Vault,
    presented: Option<&str>,
    request: &Received,
) -> Result<TokenRow, Reply> {
    let refused = |vault: &mut Vault, status: StatusCode, reason: String| {
        deny(vault, request, None, &reason);
        Reply::error(status, reason)
    };
    let Some(presented) = presented else {
        let reason = "no proxy token: send one (`aivault token create`) as the API key".to_string();
        return Err(refused(vault, StatusCode::UNAUTHORIZED, reason));
    };
    match vault.token(presented) {
        Ok(row) => Ok(row),
        Err(VaultError::Token(
            e @ (TokenError::Malformed | TokenError::Unknown | TokenError::Expired { .. }),
        )) => Err(refused(vault, StatusCode::UNAUTHORIZED, e.to_string())),
        Err(e @ VaultError::Key(_)) => Err(Reply::error(StatusCode::SERVICE_UNAVAILABLE, e)),
        Err(e) => Err(refused(vault, StatusCode::FORBIDDEN, e.to_string())),
    }
}

/// Audits a refusal made before the broker saw the call. A refusal that
/// cannot be audited is still refused; the server carries on.
pub(super) fn deny(vault: &mut Vault, request: &Received, token: Option<&TokenRow>, reason: &str) {
    let details = json!({
        "method": request.parts.method.as_str(),
        "path": request.parts.uri.path(),
        "token": token.map(|t| t.id.as_str()),
        "reason": reason,
    });
    let event = Event::new("serve.denied", request.parts.uri.path().to_string(), details);
    let _ = vault.record(event.kind, &event.subject, event.details);
}

/// A token may call only its own capabilities.
pub(super) fn check_allowed(
    vault: &mut Vault,
    request: &Received,
    token: &TokenRow,
    capability: &str,
) -> Result<(), Reply> {
    if token.capabilities.iter().any(|c| c == capability) {
        return Ok(());
    }
    let reason = format!(
        "proxy token {} may not call {capability} (it may call {})",
        token.id,
        token.capabilities.join(", ")
    );
    deny(vault, request, Some(token), &reason);
    Err(Reply::error(StatusCode::FORBIDDEN, reason))
}

/// An invocation in the token's context, never the request's.
pub(super) fn invocation(shared: &Shared, token: &TokenRow, capability: String) -> Invocation {
    Invocation {
        capability,
        workspace_id: Some(token.scope.workspace_id().to_string()).filter(|w| !w.is_empty()),
        group_id: Some(token.scope.group_id().to_string()).filter(|g| !g.is_empty()),
        consumer: token.consumer.clone(),
        timeout: shared.options.timeout,
        via: Some(format!("serve token {}", token.id)),
        ..Invocation::default()
    }
}

/// Runs `call` through the broker.
pub(super) fn call(shared: &Shared, vault: &mut Vault, call: &Invocation) -> Result<Answer, Reply> {
    Broker::new(vault, &shared.registry, &shared.dev).invoke(call).map_err(|e| Reply::error(status_of(&e), e))
}

/// The HTTP status of a broker error.
fn status_of(e: &BrokerError) -> StatusCode {
    match e {
        BrokerError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        BrokerError::Upstream(_) | BrokerError::ResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
        BrokerError::Vault(VaultError::Key(_)) => StatusCode::SERVICE_UNAVAILABLE,
        BrokerError::Registry(_) => StatusCode::NOT_FOUND,
        e if e.is_refusal() => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `GET /aivault/capabilities`: what the token may call.
fn capabilities(shared: &Shared, vault: &mut Vault, request: &Received) -> Reply {
    let token = match authenticate(vault, presented_token(&request.parts).as_deref(), request) {
        Ok(token) => token,
        Err(reply) => return reply,
    };
    let custom = vault.custom_capabilities().unwrap_or_default();
    let list: Vec<Value> = token
        .capabilities
        .iter()
        .map(|id| match shared.registry.capability(id) {
            Ok(c) => json!({
                "id": id, "provider": c.provider.id(), "description": c.capability.description,
                "methods": c.capability.methods, "pathPrefixes": c.capability.path_prefixes,
            }),
            Err(_) => match custom.iter().find(|c| c.id == *id) {
                Some(c) => json!({
                    "id": id, "description": c.description, "methods": c.methods, "pathPrefixes": c.path_prefixes,
                }),
                None => json!({ "id": id, "unavailable": true }),
            },
        })
        .collect();
    Reply::json(
        StatusCode::OK,
        &json!({
            "token": token.id, "context": token.scope.to_string(), "consumer": token.consumer,
            "expiresAtMs": token.expires_at_ms, "capabilities": list,
        }),
    )
}

/// `POST /aivault/invoke`: the envelope of `invoke --request`, plus
/// `capability` and optional `credential`; the context is the token's.
fn invoke(shared: &Shared, vault: &mut Vault, request: &Received) -> Reply {
    let token = match authenticate(vault, presented_token(&request.parts).as_deref(), request) {
        Ok(token) => token,
        Err(reply) => return reply,
    };
    let bad = |reason: String| Reply::error(StatusCode::BAD_REQUEST, reason);
    let Ok(value) = serde_json::from_slice::<Value>(&request.body) else {
        return bad("the request body is not a JSON envelope".into());
    };
    for field in ["workspaceId", "workspace_id", "groupId", "group_id", "consumer"] {
        if value.get(field).is_some() {
            return bad(format!("`{field}` comes from the proxy token, not the request"));
        }
    }
    let fields = Envelope::parse(&value).and_then(|e| {
        Ok((e, Envelope::text_field(&value, "capability")?, Envelope::text_field(&value, "credential")?))
    });
    let (envelope, capability, credential) = match fields {
        Ok((e, Some(capability), credential)) => (e, capability, credential),
        Ok((_, None, _)) => return bad("the envelope needs `capability`".into()),
        Err(e) => return bad(e.to_string()),
    };
    if let Err(reply) = check_allowed(vault, request, &token, &capability) {
        return reply;
    }
    let call = Invocation {
        method: envelope.method,
        path: envelope.path,
        headers: envelope.headers,
        body: envelope.body,
        credential,
        ..invocation(shared, &token, capability)
    };
    match self::call(shared, vault, &call) {
        Ok(answer) => Reply::json(StatusCode::OK, &answer_json(&answer)),
        Err(reply) => reply,
    }
}

/// What `/aivault/invoke` returns: the upstream status, content type and
/// body (JSON as JSON, text as a string, anything else as base64).
fn answer_json(answer: &Answer) -> Value {
    use base64::Engine as _;
    let body = match serde_json::from_slice::<Value>(&answer.body) {
        Ok(json) => json!({ "body": json }),
        Err(_) => match std::str::from_utf8(&answer.body) {
            Ok(text) => json!({ "body": text }),
            Err(_) => json!({ "bodyBase64": base64::engine::general_purpose::STANDARD.encode(&answer.body) }),
        },
    };
    let mut out = json!({
        "status": answer.status, "reason": answer.reason, "contentType": answer.content_type,
        "credential": answer.credential, "redacted": answer.redacted,
    });
    if let (Some(out), Some(body)) = (out.as_object_mut(), body.as_object()) {
        out.extend(body.clone());
    }
    out
}

/// `/v/<provider-or-credential>/…`: the request as an SDK sent it; the
/// answer goes to `sink` as it arrives, a refusal comes back as the error.
fn passthrough(
    shared: &Shared,
    vault: &mut Vault,
    request: &Received,
    sink: &mut ChannelSink,
) -> Result<(), Reply> {
    let parsed = passthrough::Parsed::from_request(&request.parts)?;
    let token = authenticate(vault, parsed.token.as_deref(), request)?;
    let (capability, credential) = match passthrough::target(shared, vault, &token, &parsed) {
        Ok(found) => found,
        Err(reason) => {
            deny(vault, request, Some(&token), &reason.1);
            return Err(Reply::error(reason.0, reason.1));
        }
    };
    let call = Invocation {
        method: Some(parsed.method.clone()),
        path: Some(parsed.path_and_query.clone()),
        headers: parsed.headers.clone(),
        body: Some(request.body.to_vec()).filter(|b| !b.is_empty()),
        credential,
        ..invocation(shared, &token, capability)
    };
    Broker::new(vault, &shared.registry, &shared.dev)
        .invoke_into(&call, sink)
        .map(|_| ())
        .map_err(|e| Reply::error(status_of(&e), e))
}
