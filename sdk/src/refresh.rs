//! Token refresh (contract 0.2.0): a credential kind whose secrets yield a
//! short-lived token. The provider builds the token request, the aivault
//! host sends it (the component has no network) and hands back the answer,
//! and the provider reads the derived values out of it. The host keeps them
//! sealed and passes them to `inject` beside the secrets, under the
//! placeholders the kind declares.
//!
//! [`Refresh::oauth2_json`] covers OAuth2's refresh-token grant; anything
//! else implements [`crate::Provider::refresh`] and
//! [`crate::Provider::absorb_token`] directly.

use std::fmt;

use zeroize::Zeroizing;

use crate::{InjectError, SecretError, Secrets};

/// A request the host sends on the provider's behalf: a token request.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper-case HTTP method (the host allows POST and GET).
    pub method: String,
    /// One of the credential kind's hosts.
    pub host: String,
    /// Absolute path without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// The token endpoint's answer.
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body (wiped when dropped: it holds the new token).
    pub body: Zeroizing<Vec<u8>>,
}

/// What an answer yields: derived values by placeholder, and when they
/// expire (seconds since the Unix epoch), if the answer says.
pub struct Token {
    /// `(placeholder, value)` for every value the kind declares.
    pub values: Vec<(String, Zeroizing<String>)>,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// Why an answer could not be used. Never contains a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The endpoint refused the stored grant: the user must authorise again.
    Refused(String),
    /// The answer cannot be read.
    Malformed(String),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::Refused(why) | RefreshError::Malformed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RefreshError {}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A declarative token refresh, attached to a credential kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    strategy: Strategy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Strategy {
    /// OAuth2 refresh-token grant, the client and grant in one JSON secret.
    OAuth2Json { placeholder: String, token_host: String, token_path: String },
}

/// The fields an OAuth2 JSON secret must hold.
pub const OAUTH2_FIELDS: &[&str] = &["client_id", "client_secret", "refresh_token"];

/// The placeholder under which [`Refresh::oauth2_json`] derives the access token.
pub const ACCESS_TOKEN: &str = "access_token";

/// How long before its stated expiry an access token is treated as expired,
/// so a call does not set out with a token that lapses on the way.
const EXPIRY_MARGIN_SECS: u64 = 60;

impl Refresh {
    /// OAuth2's refresh-token grant (RFC 6749, section 6) at
    /// `https://<token_host><token_path>`, with `client_id`, `client_secret`
    /// and `refresh_token` read from the JSON secret under `placeholder`.
    /// Derives [`ACCESS_TOKEN`]; authenticate requests with it, e.g.
    /// `Auth::bearer("access_token")`.
    pub fn oauth2_json(placeholder: &str, token_host: &str, token_path: &str) -> Self {
        Refresh {
            strategy: Strategy::OAuth2Json {
                placeholder: placeholder.to_string(),
                token_host: token_host.to_string(),
                token_path: token_path.to_string(),
            },
        }
    }

    /// The placeholders of the values it derives.
    pub fn derived(&self) -> Vec<String> {
        match &self.strategy {
            Strategy::OAuth2Json { .. } => vec![ACCESS_TOKEN.to_string()],
        }
    }

    /// The host its token request goes to (the kind must be allowed to reach it).
    pub fn token_host(&self) -> &str {
        match &self.strategy {
            Strategy::OAuth2Json { token_host, .. } => token_host,
        }
    }

    /// The token request, built from `secrets`.
    pub fn request(&self, secrets: &Secrets) -> Result<HttpRequest, InjectError> {
        match &self.strategy {
            Strategy::OAuth2Json { placeholder, token_host, token_path } => {
                let json = secrets.get(placeholder)?;
                let field = |name: &str| {
                    crate::json::string_at(json, &[name])
                        .filter(|v| !v.is_empty())
                        .map(Zeroizing::new)
                        .ok_or_else(|| {
                            InjectError::MalformedSecret(format!("the OAuth JSON has no `{name}` string"))
                        })
                };
                let (id, secret, grant) =
                    (field("client_id")?, field("client_secret")?, field("refresh_token")?);
                let form = Zeroizing::new(form_encode(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("refresh_token", &grant),
                ]));
                Ok(HttpRequest {
                    method: "POST".into(),
                    host: token_host.clone(),
                    path: token_path.clone(),
                    query: Vec::new(),
                    headers: vec![
                        ("content-type".into(), "application/x-www-form-urlencoded".into()),
                        ("accept".into(), "application/json".into()),
                    ],
                    body: Some(form.as_bytes().to_vec()),
                })
            }
        }
    }

    /// Reads the token endpoint's `response` at time `now`.
    pub fn absorb(&self, response: &HttpResponse, now: u64) -> Result<Token, RefreshError> {
        match &self.strategy {
            Strategy::OAuth2Json { .. } => absorb_oauth2(response, now),
        }
    }
}

/// An OAuth2 token response (RFC 6749, section 5): `access_token` and
/// `expires_in` on success; `error` (such as `invalid_grant`) on refusal.
fn absorb_oauth2(response: &HttpResponse, now: u64) -> Result<Token, RefreshError> {
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    let text = |name: &str| body.get(name).and_then(|v| v.as_str());
    if !(200..300).contains(&response.status) {
        // The error code is a fixed vocabulary, safe to repeat; the
        // description is the server's prose, which the host redacts.
        let code = text("error").filter(|c| c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let why = match (code, text("error_description")) {
            (Some(code), Some(description)) => format!("{code}: {description}"),
            (Some(code), None) => code.to_string(),
            _ => format!("HTTP {}", response.status),
        };
        // invalid_grant: the refresh token was revoked or expired;
        // invalid_client / unauthorized_client: the client is no longer valid.
        return Err(match code {
            Some("invalid_grant" | "invalid_client" | "unauthorized_client") => RefreshError::Refused(why),
            _ if response.status == 400 || response.status == 401 => RefreshError::Refused(why),
            _ => RefreshError::Malformed(format!("the token endpoint answered {why}")),
        });
    }
    let token = text(ACCESS_TOKEN)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RefreshError::Malformed("the answer has no access_token".into()))?;
    let expires_at = body
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .map(|secs| now.saturating_add(secs).saturating_sub(EXPIRY_MARGIN_SECS));
    Ok(Token { values: vec![(ACCESS_TOKEN.to_string(), Zeroizing::new(token.to_string()))], expires_at })
}

/// Checks an OAuth2 JSON secret at `secrets create` time: an object with a
/// non-empty string for each of [`OAUTH2_FIELDS`]. Messages name the
/// field, never its value.
pub fn validate_oauth2_json(value: &str) -> Result<(), SecretError> {
    let document: serde_json::Value = serde_json::from_str(value).map_err(|_| {
        SecretError::Malformed(
            "expected a JSON object with client_id, client_secret and refresh_token (it does not parse as JSON)"
                .into(),
        )
    })?;
    let object = document.as_object().ok_or_else(|| {
        SecretError::Malformed(
            "expected a JSON object with client_id, client_secret and refresh_token".into(),
        )
    })?;
    for field in OAUTH2_FIELDS {
        match object.get(*field) {
            None => return Err(SecretError::Malformed(format!("the OAuth JSON lacks `{field}`"))),
            Some(v) if v.as_str().is_none_or(|s| s.trim().is_empty()) => {
                return Err(SecretError::Malformed(format!(
                    "the OAuth JSON's `{field}` must be a non-empty string"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are,
/// everything else percent-encoded.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str =
        r#"{"client_id":"cid.apps.example","client_secret":"s3cr3t/+","refresh_token":"1//rt"}"#;

    fn google() -> Refresh {
        Refresh::oauth2_json("secret", "oauth2.googleapis.com", "/token")
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, headers: Vec::new(), body: Zeroizing::new(body.as_bytes().to_vec()) }
    }

    // The refresh-token grant, form-encoded, to the token endpoint.
    #[test]
    fn builds_the_refresh_token_grant() {
        let secrets = Secrets::from_pairs([("secret".to_string(), JSON.to_string())]);
        let request = google().request(&secrets).unwrap();
        assert_eq!(
            (request.method.as_str(), request.host.as_str(), request.path.as_str()),
            ("POST", "oauth2.googleapis.com", "/token")
        );
        let body = String::from_utf8(request.body.unwrap()).unwrap();
        assert_eq!(
            body,
            "grant_type=refresh_token&client_id=cid.apps.example&client_secret=s3cr3t%2F%2B&refresh_token=1%2F%2Frt"
        );
        let missing = Secrets::from_pairs([("secret".to_string(), r#"{"client_id":"x"}"#.to_string())]);
        assert_eq!(
            google().request(&missing).unwrap_err(),
            InjectError::MalformedSecret("the OAuth JSON has no `client_secret` string".into())
        );
    }

    // A good answer yields the access token and its expiry, a minute early.
    #[test]
    fn reads_the_access_token_and_expiry() {
        let token =
            google().absorb(&response(200, r#"{"access_token":"ya29.a","expires_in":3599}"#), 1_000).unwrap();
        assert_eq!(token.values[0].0, ACCESS_TOKEN);
        assert_eq!(token.values[0].1.as_str(), "ya29.a");
        assert_eq!(token.expires_at, Some(1_000 + 3599 - 60));
        assert!(matches!(google().absorb(&response(200, "{}"), 0), Err(RefreshError::Malformed(_))));
    }

    // A refused grant says so (re-authorise); a server error is not that.
    #[test]
    fn tells_a_refused_grant_from_a_failure() {
        let refused = google().absorb(
            &response(
                400,
                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
            ),
            0,
        );
        assert_eq!(
            refused.err(),
            Some(RefreshError::Refused("invalid_grant: Token has been expired or revoked.".into()))
        );
        assert!(matches!(google().absorb(&response(503, "busy"), 0), Err(RefreshError::Malformed(_))));
    }

    // The secret must hold every field; the message names the field only.
    #[test]
    fn validates_the_oauth_json() {
        assert_eq!(validate_oauth2_json(JSON), Ok(()));
        let err = validate_oauth2_json(r#"{"client_id":"x","client_secret":"topsecretvalue"}"#).unwrap_err();
        assert_eq!(err, SecretError::Malformed("the OAuth JSON lacks `refresh_token`".into()));
        let err =
            validate_oauth2_json(r#"{"client_id":"","client_secret":"topsecretvalue","refresh_token":"r"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("`client_id` must be a non-empty string"));
        assert!(!validate_oauth2_json("topsecretvalue").unwrap_err().to_string().contains("topsecretvalue"));
    }
}
