//! The request a provider authenticates.

use std::fmt;

/// An outgoing request: what `inject` receives and returns.
///
/// The host refuses a returned request whose method, host, body or original
/// path changed; only headers, query parameters and a path prefix may be added
/// or replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The capability being invoked, e.g. `openai/models`.
    pub capability: String,
    /// The credential kind whose secrets are supplied.
    pub credential_kind: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Upstream host name.
    pub host: String,
    /// Absolute path without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers, in order; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body, only when the manifest asked for it.
    pub body: Option<Vec<u8>>,
    /// The host's clock, in seconds since the Unix epoch (for signing);
    /// 0 when built against contract 0.1.0, which has no clock.
    pub now: u64,
}

impl Request {
    /// A request with no query, headers or body (handy in tests).
    pub fn new(method: &str, host: &str, path: &str) -> Self {
        Request {
            capability: String::new(),
            credential_kind: crate::manifest::DEFAULT_KIND.to_string(),
            method: method.to_string(),
            host: host.to_string(),
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            now: 0,
        }
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Sets header `name`, replacing every existing value.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets header `name` unless the request already has one.
    pub fn with_default_header(self, name: &str, value: &str) -> Self {
        if self.header(name).is_some() { self } else { self.with_header(name, value) }
    }

    /// Sets query parameter `name`, replacing every existing value.
    pub fn with_query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.to_string(), value.into()));
        self
    }

    /// `authorization: Bearer <token>`.
    pub fn with_bearer(self, token: &str) -> Self {
        self.with_header("authorization", format!("Bearer {token}"))
    }

    /// Puts `prefix` (e.g. `/backend-api`) in front of the path.
    pub fn with_path_prefix(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        self.path = format!("{prefix}{}", self.path);
        self
    }
}

/// Shows header names but never their values, which may hold secrets.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        let query: Vec<&str> = self.query.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("capability", &self.capability)
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &"<redacted>")
            .field("query", &query)
            .field("headers", &headers)
            .finish_non_exhaustive()
    }
}
