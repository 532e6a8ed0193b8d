//! The Postmark provider: a server API token in the
//! `X-Postmark-Server-Token` header, plus the `Accept: application/json`
//! header the API reference lists as required.

use aivault_sdk::prelude::*;

struct Postmark;

/// `(id, description, methods, path prefixes)` of every api.postmarkapp.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("postmark/bounces", "Bounces", &["GET"], &["/bounces"]),
    ("postmark/email", "Send email: single, batch, with templates", &["POST"], &["/email"]),
    (
        "postmark/message-streams",
        "Message streams",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/message-streams"],
    ),
    ("postmark/stats", "Outbound statistics", &["GET"], &["/stats"]),
    ("postmark/templates", "Templates", &["DELETE", "GET", "POST", "PUT"], &["/templates"]),
];

impl Provider for Postmark {
    fn describe() -> Manifest {
        let auth = Auth::header("x-postmark-server-token", "{{secret}}")
            .and(Auth::default_header("accept", "application/json"));
        Manifest::new("postmark", env!("CARGO_PKG_VERSION"))
            .description("Postmark API (server level)")
            .host("api.postmarkapp.com")
            .secret(
                "POSTMARK_SERVER_TOKEN",
                "secret",
                "Server API token (your server's API Tokens tab at https://account.postmarkapp.com)",
            )
            .auth(auth)
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Postmark);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "01234567-89ab-cdef-0123-456789abcdef";

    // The secret goes in the `X-Postmark-Server-Token` header, plus the `accept` header the API requires.
    #[test]
    fn injects_key_header_and_accept() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Postmark::inject(Request::new("GET", "api.postmarkapp.com", "/bounces"), &secrets).unwrap();
        assert_eq!(out.header("x-postmark-server-token"), Some(SECRET));
        assert_eq!(out.header("accept"), Some("application/json"));
    }
}
