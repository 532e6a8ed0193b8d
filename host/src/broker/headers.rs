//! Which headers a caller may send. aivault authenticates, the HTTP client
//! frames the request, and the capability fixes where it goes and with what
//! method: a caller's header may not take over any of those.

use super::BrokerError;
use crate::plugins::verify;

/// Headers that carry credentials: a caller may never send them (aivault
/// authenticates). Those only the HTTP client sets are refused too
/// ([`verify::is_client_owned`]).
const AUTH_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-api-key"];

/// Headers that servers, frameworks and proxies honour to change the method
/// (`X-HTTP-Method-Override: DELETE` on a GET), the path (`X-Original-URL`
/// on IIS and Symfony) or the host and client they believe in (`Forwarded`,
/// `X-Forwarded-*`, `X-Real-IP`): a capability allowing `GET /v1/models`
/// could otherwise reach anything. `x-forwarded-*` is matched as a prefix.
const ROUTING_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-host",
    "forwarded",
    "x-forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
];

/// Headers a caller may send but that never go upstream, for every front
/// end: asking for a compressed body, or for a byte range of one, would
/// hand back an echoed secret in a form (or in pieces) redaction cannot see.
/// aivault asks for the whole, uncompressed body itself.
const WITHHELD_HEADERS: &[&str] = &["accept-encoding", "range", "if-range"];

/// The caller's headers as they go to the provider: lower-cased names, and
/// without [`WITHHELD_HEADERS`].
pub(super) fn forwarded(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !WITHHELD_HEADERS.contains(&n.as_str()))
        .collect()
}

/// Refuses a caller's header that is malformed, carries credentials, belongs
/// to the HTTP client, or could re-route or re-method the request upstream.
pub(super) fn check_caller_headers(headers: &[(String, String)]) -> Result<(), BrokerError> {
    for (name, value) in headers {
        if !verify::is_header_name(name) || !verify::is_header_value(value) {
            return Err(BrokerError::BadHeader(name.clone()));
        }
        let lower = name.to_ascii_lowercase();
        if AUTH_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(BrokerError::AuthHeader(lower));
        }
        if verify::is_client_owned(&lower) {
            return Err(BrokerError::ClientHeader(lower));
        }
        if is_routing(&lower) {
            return Err(BrokerError::RoutingHeader(lower));
        }
    }
    Ok(())
}

/// Whether `lower` (a lower-case header name) is one of [`ROUTING_HEADERS`].
fn is_routing(lower: &str) -> bool {
    ROUTING_HEADERS.contains(&lower) || lower.starts_with("x-forwarded-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str) -> Result<(), BrokerError> {
        check_caller_headers(&[(name.to_string(), value.to_string())])
    }

    // Ordinary headers pass.
    #[test]
    fn ordinary_headers_pass() {
        for name in
            ["content-type", "accept", "OpenAI-Beta", "x-request-id", "if-none-match", "x-forwardedness"]
        {
            check(name, "1").unwrap();
        }
    }

    // Credential-bearing headers are refused, in any case.
    #[test]
    fn auth_headers_refused() {
        for name in ["Authorization", "cookie", "X-Api-Key", "proxy-authorization", "proxy-anything"] {
            assert!(matches!(check(name, "x"), Err(BrokerError::AuthHeader(_))), "{name}");
        }
    }

    // Headers only the HTTP client sets are refused.
    #[test]
    fn client_headers_refused() {
        for name in ["host", "Content-Length", "transfer-encoding", "connection"] {
            assert!(matches!(check(name, "x"), Err(BrokerError::ClientHeader(_))), "{name}");
        }
    }

    // Method overrides, URL rewrites and forwarding headers are refused.
    #[test]
    fn routing_headers_refused() {
        for name in [
            "X-HTTP-Method-Override",
            "x-http-method",
            "x-method-override",
            "x-original-url",
            "x-rewrite-url",
            "Forwarded",
            "x-forwarded-for",
            "X-Forwarded-Host",
            "x-forwarded-proto",
            "x-forwarded-prefix",
            "x-real-ip",
        ] {
            let err = check(name, "DELETE").unwrap_err();
            let lower = name.to_ascii_lowercase();
            assert!(matches!(&err, BrokerError::RoutingHeader(n) if *n == lower), "{name}: {err}");
            assert_eq!(
                err.to_string(),
                format!(
                    "header `{lower}` could re-route or re-method the request upstream; callers may not send it"
                )
            );
        }
    }

    // Malformed names and CR/LF in values are refused before anything else.
    #[test]
    fn malformed_headers_refused() {
        assert!(matches!(check("bad name", "1"), Err(BrokerError::BadHeader(_))));
        assert!(matches!(check("x-ok", "a\r\nx-forwarded-host: evil"), Err(BrokerError::BadHeader(_))));
    }
}
