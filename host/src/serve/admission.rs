//! Who may call: the proxy token a request presents, checked against the
//! vault (live, unexpired, in its scope), and every refusal made before the
//! broker sees a call audited without any token in what is recorded.

use hyper::StatusCode;
use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;
use serde_json::json;

use super::passthrough;
use super::routes::Reply;
use crate::vault::{TokenError, TokenRow, Vault, VaultError, audit::Event};

/// The proxy token an `/aivault/…` request carries: `Authorization:
/// Bearer`, or `x-api-key`.
pub(super) fn presented_token(parts: &Parts) -> Option<String> {
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
    head: &Parts,
) -> Result<TokenRow, Reply> {
    let refused = |vault: &mut Vault, status: StatusCode, reason: String| {
        deny(vault, head, None, &reason);
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
        Err(e) if e.is_unavailable() => Err(Reply::error(StatusCode::SERVICE_UNAVAILABLE, e)),
        Err(e) => Err(refused(vault, StatusCode::FORBIDDEN, e.to_string())),
    }
}

/// Audits a refusal made before the broker saw the call. A refusal that
/// cannot be audited is still refused; the server carries on. The path is
/// recorded without any proxy token in it (Telegram-style clients put the
/// key in the path), and never its query.
pub(super) fn deny(vault: &mut Vault, head: &Parts, token: Option<&TokenRow>, reason: &str) {
    let path = passthrough::without_tokens(head.uri.path());
    let details = json!({
        "method": head.method.as_str(),
        "path": path,
        "token": token.map(|t| t.id.as_str()),
        "reason": passthrough::without_tokens(reason),
    });
    let event = Event::new("serve.denied", path, details);
    let _ = vault.record(event.kind, &event.subject, event.details);
}
