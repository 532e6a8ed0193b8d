//! The JSON API of `serve`: `GET /aivault/capabilities` (what a token may
//! call) and `POST /aivault/invoke` (the envelope of `invoke --request`,
//! plus `capability` and optional `credential`), both for a token already
//! checked.

use hyper::StatusCode;
use serde_json::{Value, json};

use super::Shared;
use super::admission::deny;
use super::routes::{Received, Reply, invocation};
use crate::broker::envelope::Envelope;
use crate::broker::{Answer, Broker, Invocation};
use crate::vault::{TokenRow, Vault};

/// `GET /aivault/capabilities`: what the token may call.
pub(super) fn capabilities(shared: &Shared, vault: &mut Vault, token: &TokenRow) -> Reply {
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
pub(super) fn invoke(shared: &Shared, vault: &mut Vault, request: &Received, token: &TokenRow) -> Reply {
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
    if !token.capabilities.contains(&capability) {
        let reason = format!(
            "proxy token {} may not call {capability} (it may call {})",
            token.id,
            token.capabilities.join(", ")
        );
        deny(vault, &request.head, Some(token), &reason);
        return Reply::error(StatusCode::FORBIDDEN, reason);
    }
    let call = Invocation {
        method: envelope.method,
        path: envelope.path,
        headers: envelope.headers,
        body: envelope.body,
        credential,
        ..invocation(shared, token, capability)
    };
    match Broker::new(vault, &shared.registry, &shared.dev).invoke(&call) {
        Ok(answer) => Reply::json(StatusCode::OK, &answer_json(&answer)),
        Err(e) => Reply::broker_error(&e),
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
