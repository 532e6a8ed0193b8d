//! Checks on what `inject` returns, before anything is sent: a provider may
//! add authentication, never redirect, rewrite or smuggle.
//!
//! A refusal never quotes what the component produced (a header or query
//! name, a header value, a new method, host or path): any of them may be a
//! secret or derived from one. It names the rule broken, the broker's own
//! values, and at most a header name from our own fixed list.

use super::OutgoingRequest;
use super::manifest::{HostPattern, check_path_prefix};

/// Headers only the HTTP client may set (neither a provider nor a caller):
/// the host and connection-level ones, and framing ones that could
/// desynchronise a proxy. `proxy-*` headers count too.
pub const CLIENT_OWNED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "expect",
    "http2-settings",
];

/// Limits on what injection may add, so a component cannot flood upstream.
const MAX_HEADERS: usize = 128;
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_PREFIX_BYTES: usize = 4 * 1024;

/// Why a returned request is refused; never quotes the component's output.
pub fn check_injected(
    before: &OutgoingRequest,
    after: &OutgoingRequest,
    allowed_hosts: &[HostPattern],
) -> Result<(), String> {
    if after.method != before.method {
        return Err(format!("it changed the method from {}", before.method));
    }
    if after.capability != before.capability || after.credential_kind != before.credential_kind {
        return Err("it changed the capability or credential kind".into());
    }
    if after.host != before.host {
        return Err(format!("it changed the host from `{}`", before.host));
    }
    // Also guards the caller: the broker should never have asked for such a
    // host. (The host is the broker's own here, since it was not changed.)
    if !allowed_hosts.iter().any(|p| p.matches(&after.host)) {
        return Err(format!("the request goes to `{}`, outside the provider's hosts", after.host));
    }
    check_path(&before.path, &after.path)?;
    if after.body != before.body {
        return Err("it changed the request body".into());
    }
    if after.headers.len() > MAX_HEADERS {
        return Err(format!("it set {} headers (at most {MAX_HEADERS})", after.headers.len()));
    }
    for (name, value) in &after.headers {
        check_header(name, value)?;
    }
    for (name, _) in &after.query {
        if name.is_empty() {
            return Err("it added a query parameter with an empty name".into());
        }
    }
    Ok(())
}

/// Why a token request built by `refresh` is refused: it must go to one of
/// the credential kind's hosts (a concrete name, never a wildcard), by POST
/// or GET, to a plain absolute path, with headers a provider may set.
pub fn check_token_request(request: &OutgoingRequest, kind_hosts: &[HostPattern]) -> Result<(), String> {
    if request.method != "POST" && request.method != "GET" {
        return Err("its token request is neither POST nor GET".into());
    }
    let host = HostPattern::parse(&request.host)
        .ok()
        .filter(|h| !h.is_wildcard() && h.as_str() == request.host)
        .ok_or("its token request goes to something that is not a host name")?;
    if !kind_hosts.iter().any(|k| host.within(k)) {
        return Err("its token request goes to a host the credential kind may not reach".into());
    }
    if request.path.is_empty()
        || request.path.len() > MAX_PREFIX_BYTES
        || check_path_prefix(&request.path).is_err()
    {
        return Err("its token request's path is not a plain absolute path".into());
    }
    if request.headers.len() > MAX_HEADERS {
        return Err(format!(
            "its token request sets {} headers (at most {MAX_HEADERS})",
            request.headers.len()
        ));
    }
    for (name, value) in &request.headers {
        check_header(name, value)?;
    }
    Ok(())
}

/// The original path must survive whole at the end; anything in front is a
/// prefix of plain segments.
fn check_path(before: &str, after: &str) -> Result<(), String> {
    let prefix =
        after.strip_suffix(before).ok_or("it rewrote the request path (only a prefix may be added)")?;
    if prefix.is_empty() {
        return Ok(());
    }
    // The same rule as a manifest's path prefixes, and no trailing `/`
    // (which would double the slash before the original path).
    if prefix.len() > MAX_PREFIX_BYTES || prefix.ends_with('/') {
        return Err("it added a path prefix that is not a plain absolute path".into());
    }
    // The prefix may hold a secret (`/bot<token>`), so the message never
    // quotes it: a truncated quote would also escape redaction.
    check_path_prefix(prefix).map_err(|_| {
        "it added a path prefix that is not a plain absolute path without `.` or `..` segments".to_string()
    })
}

/// Whether `lower` (a lower-case header name) is one only the client sets.
pub fn is_client_owned(lower: &str) -> bool {
    CLIENT_OWNED_HEADERS.contains(&lower) || lower.starts_with("proxy-")
}

/// How to name the client-owned header `lower` in a message: our own
/// constant, never the caller's or component's string.
fn client_owned_label(lower: &str) -> &'static str {
    CLIENT_OWNED_HEADERS.iter().find(|h| **h == lower).copied().unwrap_or("proxy-*")
}

/// Whether `name` is an HTTP token.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// Whether `value` is free of CR, LF and NUL (header smuggling).
pub fn is_header_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// A header name can be a secret (a provider may put its key in the name),
/// so messages describe the header without naming it.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !is_header_name(name) {
        return Err("it set a header whose name is not a valid HTTP token".into());
    }
    let lower = name.to_ascii_lowercase();
    if is_client_owned(&lower) {
        let label = client_owned_label(&lower);
        return Err(format!("it set the `{label}` header, which only the HTTP client may set"));
    }
    if !is_header_value(value) {
        return Err("it set a header whose value contains CR, LF or NUL".into());
    }
    if name.len() + value.len() > MAX_HEADER_BYTES {
        return Err(format!("it set a header whose name and value exceed {MAX_HEADER_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> OutgoingRequest {
        OutgoingRequest {
            capability: "ex/items".into(),
            credential_kind: "default".into(),
            method: "GET".into(),
            host: "api.example.com".into(),
            path: path.into(),
            query: vec![],
            headers: vec![],
            body: None,
        }
    }

    fn hosts() -> Vec<HostPattern> {
        vec![HostPattern::parse("api.example.com").unwrap()]
    }

    fn check(after: &OutgoingRequest) -> Result<(), String> {
        check_injected(&req("/v1/items"), after, &hosts())
    }

    // Added auth headers and query parameters pass.
    #[test]
    fn plain_auth_passes() {
        let mut after = req("/v1/items");
        after.headers.push(("authorization".into(), "Bearer x".into()));
        after.query.push(("key".into(), "k".into()));
        check(&after).unwrap();
    }

    // A prefix in front of the intact path passes; a rewrite does not.
    #[test]
    fn path_prefix_only() {
        check(&req("/backend-api/v1/items")).unwrap();
        assert!(check(&req("/v2/items")).unwrap_err().contains("rewrote"));
        assert!(check(&req("/../v1/items")).unwrap_err().contains("`..`"));
        assert!(check(&req("/a?b=/v1/items")).is_err());
        assert!(check(&req("x/v1/items")).is_err());
    }

    // The host and method are the broker's, not the provider's.
    #[test]
    fn host_and_method_fixed() {
        let mut after = req("/v1/items");
        after.host = "evil.example.com".into();
        assert!(check(&after).unwrap_err().contains("changed the host"));
        assert!(check_injected(&after, &after, &hosts()).unwrap_err().contains("outside"));
        let mut after = req("/v1/items");
        after.method = "DELETE".into();
        assert!(check(&after).unwrap_err().contains("changed the method"));
    }

    // Host, hop-by-hop, framing and CR/LF-bearing headers are refused.
    #[test]
    fn dangerous_headers_refused() {
        for (name, value) in [
            ("Host", "evil"),
            ("connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("content-length", "0"),
            ("proxy-authorization", "x"),
            ("x-ok", "a\r\nx-injected: 1"),
            ("bad name", "1"),
        ] {
            let mut after = req("/v1/items");
            after.headers.push((name.into(), value.into()));
            assert!(check(&after).is_err(), "{name}");
        }
    }

    // A refusal never quotes a header name, header value, method or host the
    // component produced, and names client-owned headers by our constant.
    #[test]
    fn refusals_quote_nothing_the_component_wrote() {
        const SECRET: &str = "Secret-Name-0123456789";
        let long = "v".repeat(MAX_HEADER_BYTES);
        let cases: [(&str, &str, &str); 5] = [
            (SECRET, "a\r\nb", "CR, LF or NUL"),
            (SECRET, &long, "exceed"),
            ("Secret Name 0123456789", "1", "not a valid HTTP token"),
            ("HoSt", "x", "`host` header"),
            ("Proxy-Secret-Name-0123456789", "x", "`proxy-*` header"),
        ];
        for (name, value, why) in cases {
            let mut after = req("/v1/items");
            after.headers.push((name.into(), value.into()));
            let err = check(&after).unwrap_err();
            assert!(err.contains(why), "{err}");
            assert!(!err.to_lowercase().contains("secret"), "{err}");
        }
        let mut after = req("/v1/items");
        after.method = SECRET.into();
        let err = check(&after).unwrap_err();
        assert!(err.contains("changed the method") && !err.contains(SECRET), "{err}");
        let mut after = req("/v1/items");
        after.host = format!("{SECRET}.example.com");
        let err = check(&after).unwrap_err();
        assert!(err.contains("changed the host") && !err.contains(SECRET), "{err}");
    }

    // The body is never the provider's to change.
    #[test]
    fn body_fixed() {
        let mut after = req("/v1/items");
        after.body = Some(b"x".to_vec());
        assert!(check(&after).unwrap_err().contains("body"));
    }
}
