//! Declarative authentication strategies built from `{{placeholder}}`
//! templates, covering what most HTTP APIs need.

use base64::Engine as _;

use crate::sign::{Encoding, HmacSignature, Region, SigV4};
use crate::{InjectError, Request, Secrets};

/// How a credential kind authenticates a request. Templates name secrets by
/// placeholder: `"Bearer {{secret}}"`, `"{{key}}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Sets header `name` to the rendered template, replacing any caller value.
    Header {
        /// Header name, lower case.
        name: String,
        /// Value template.
        template: String,
    },
    /// Sets header `name` only when the caller did not (e.g. a required
    /// `user-agent`). Plain text, no placeholders.
    DefaultHeader {
        /// Header name, lower case.
        name: String,
        /// Fixed value.
        value: String,
    },
    /// Sets query parameter `name` to the rendered template.
    Query {
        /// Parameter name.
        name: String,
        /// Value template.
        template: String,
    },
    /// HTTP basic authentication from two templates.
    Basic {
        /// User name template.
        username: String,
        /// Password template.
        password: String,
    },
    /// Puts the rendered template in front of the request path, e.g.
    /// `/bot{{token}}`.
    PathPrefix(String),
    /// AWS Signature Version 4 over the request, its body and the time.
    AwsSigV4(SigV4),
    /// An HMAC-SHA256 over a template of the request, in a header.
    Hmac(HmacSignature),
    /// Several strategies applied in order.
    All(Vec<Auth>),
}

impl Auth {
    /// `authorization: Bearer {{placeholder}}`.
    pub fn bearer(placeholder: &str) -> Self {
        Self::header("authorization", &format!("Bearer {{{{{placeholder}}}}}"))
    }

    /// A header from a template, e.g. `("x-api-key", "{{secret}}")`.
    pub fn header(name: &str, template: &str) -> Self {
        Auth::Header { name: name.to_ascii_lowercase(), template: template.to_string() }
    }

    /// Several headers from templates.
    pub fn headers(pairs: &[(&str, &str)]) -> Self {
        Auth::All(pairs.iter().map(|(n, t)| Self::header(n, t)).collect())
    }

    /// A fixed header sent unless the caller supplied one.
    pub fn default_header(name: &str, value: &str) -> Self {
        Auth::DefaultHeader { name: name.to_ascii_lowercase(), value: value.to_string() }
    }

    /// A query parameter from a template, e.g. `("key", "{{key}}")`.
    pub fn query_param(name: &str, template: &str) -> Self {
        Auth::Query { name: name.to_string(), template: template.to_string() }
    }

    /// Several query parameters from templates.
    pub fn query_params(pairs: &[(&str, &str)]) -> Self {
        Auth::All(pairs.iter().map(|(n, t)| Self::query_param(n, t)).collect())
    }

    /// HTTP basic authentication, e.g. `("{{account}}", "{{token}}")`.
    pub fn basic(username: &str, password: &str) -> Self {
        Auth::Basic { username: username.to_string(), password: password.to_string() }
    }

    /// A path prefix from a template, e.g. `/bot{{token}}`.
    pub fn path_prefix(template: &str) -> Self {
        Auth::PathPrefix(template.to_string())
    }

    /// AWS Signature Version 4 for `service` (its signing name, e.g.
    /// `bedrock`), the region taken from the host
    /// (`<service>.<region>.amazonaws.com`), with the access key id and
    /// secret access key under these placeholders. Asks for the body.
    pub fn aws_sigv4(service: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        Auth::AwsSigV4(SigV4 {
            service: service.to_string(),
            region: Region::FromHost,
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
        })
    }

    /// An HMAC-SHA256 of `message` (with `{timestamp}`, `{method}`, `{path}`
    /// and `{body}` filled in) under the secret `placeholder`, hex-encoded
    /// into `header`, and the timestamp into `timestamp_header`. Asks for
    /// the body. For other encodings or prefixes, build an
    /// [`HmacSignature`] and use [`Auth::Hmac`].
    pub fn hmac(placeholder: &str, message: &str, header: &str, timestamp_header: &str) -> Self {
        Auth::Hmac(HmacSignature {
            secret: placeholder.to_string(),
            message: message.to_string(),
            header: header.to_ascii_lowercase(),
            prefix: String::new(),
            timestamp_header: Some(timestamp_header.to_ascii_lowercase()),
            encoding: Encoding::Hex,
        })
    }

    /// Whether the strategy needs the request body (signing does).
    pub fn needs_body(&self) -> bool {
        match self {
            Auth::AwsSigV4(_) | Auth::Hmac(_) => true,
            Auth::All(steps) => steps.iter().any(Auth::needs_body),
            _ => false,
        }
    }

    /// This strategy followed by `next`.
    pub fn and(self, next: Auth) -> Self {
        match self {
            Auth::All(mut steps) => {
                steps.push(next);
                Auth::All(steps)
            }
            first => Auth::All(vec![first, next]),
        }
    }

    /// Applies the strategy to `req`.
    pub fn apply(&self, req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        Ok(match self {
            Auth::Header { name, template } => req.with_header(name, render(template, secrets)?),
            Auth::DefaultHeader { name, value } => req.with_default_header(name, value),
            Auth::Query { name, template } => req.with_query(name, render(template, secrets)?),
            Auth::Basic { username, password } => {
                let pair = format!("{}:{}", render(username, secrets)?, render(password, secrets)?);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                req.with_header("authorization", format!("Basic {encoded}"))
            }
            Auth::PathPrefix(template) => req.with_path_prefix(&render(template, secrets)?),
            Auth::AwsSigV4(signer) => signer.apply(req, secrets)?,
            Auth::Hmac(signer) => signer.apply(req, secrets)?,
            Auth::All(steps) => {
                let mut req = req;
                for step in steps {
                    req = step.apply(req, secrets)?;
                }
                req
            }
        })
    }

    /// One line for people, with placeholders, never values.
    pub fn summary(&self) -> String {
        match self {
            Auth::Header { name, template } => format!("header {name}: {template}"),
            Auth::DefaultHeader { name, value } => format!("default header {name}: {value}"),
            Auth::Query { name, template } => format!("query {name}={template}"),
            Auth::Basic { username, password } => format!("basic auth {username}:{password}"),
            Auth::PathPrefix(template) => format!("path prefix {template}"),
            Auth::AwsSigV4(s) => format!(
                "AWS Signature Version 4 ({}, {{{{{}}}}} / {{{{{}}}}})",
                s.service, s.access_key_id, s.secret_access_key
            ),
            Auth::Hmac(s) => {
                format!("HMAC-SHA256 of {} with {{{{{}}}}} in header {}", s.message, s.secret, s.header)
            }
            Auth::All(steps) => steps.iter().map(Auth::summary).collect::<Vec<_>>().join("; "),
        }
    }
}

/// Renders `{{placeholder}}` references with secret values.
fn render(template: &str, secrets: &Secrets) -> Result<String, InjectError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            InjectError::Unsupported(format!("unterminated placeholder in template `{template}`"))
        })?;
        out.push_str(secrets.get(after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request {
        Request::new("GET", "api.example.com", "/v1/items")
    }

    fn secrets() -> Secrets {
        Secrets::from_pairs([
            ("secret".to_string(), "s3cr3t".to_string()),
            ("key".to_string(), "k1".to_string()),
            ("token".to_string(), "t1".to_string()),
        ])
    }

    // Bearer renders the placeholder into the authorization header.
    #[test]
    fn bearer_sets_authorization() {
        let out = Auth::bearer("secret").apply(req(), &secrets()).unwrap();
        assert_eq!(out.header("Authorization"), Some("Bearer s3cr3t"));
    }

    // Several query parameters are each rendered from their own secret.
    #[test]
    fn query_params_render_each_secret() {
        let auth = Auth::query_params(&[("key", "{{key}}"), ("token", "{{token}}")]);
        let out = auth.apply(req(), &secrets()).unwrap();
        assert_eq!(out.query, vec![("key".into(), "k1".into()), ("token".into(), "t1".into())]);
    }

    // Basic auth is base64 of user:password.
    #[test]
    fn basic_encodes_user_and_password() {
        let out = Auth::basic("{{key}}", "{{token}}").apply(req(), &secrets()).unwrap();
        assert_eq!(out.header("authorization"), Some("Basic azE6dDE="));
    }

    // A path prefix goes in front of the original path, which stays intact.
    #[test]
    fn path_prefix_keeps_original_path() {
        let out = Auth::path_prefix("/bot{{token}}").apply(req(), &secrets()).unwrap();
        assert_eq!(out.path, "/bott1/v1/items");
    }

    // A default header never overrides what the caller sent.
    #[test]
    fn default_header_respects_caller() {
        let caller = req().with_header("accept", "text/plain");
        let out = Auth::default_header("accept", "application/json").apply(caller, &secrets()).unwrap();
        assert_eq!(out.header("accept"), Some("text/plain"));
    }

    // A template naming an absent secret reports the placeholder, not a value.
    #[test]
    fn missing_placeholder_is_reported() {
        let err = Auth::bearer("nope").apply(req(), &secrets()).unwrap_err();
        assert_eq!(err, InjectError::MissingSecret("nope".into()));
    }

    // Summaries show templates, never values.
    #[test]
    fn summary_shows_templates() {
        let auth = Auth::bearer("secret").and(Auth::default_header("user-agent", "x"));
        assert_eq!(auth.summary(), "header authorization: Bearer {{secret}}; default header user-agent: x");
    }
}
