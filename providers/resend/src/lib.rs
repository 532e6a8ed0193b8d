//! The Resend provider: an API key sent as a bearer token, plus a
//! User-Agent: Resend refuses requests without one (403).

use aivault_sdk::prelude::*;

struct Resend;

/// `(id, description, methods, path prefixes)` of every api.resend.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("resend/broadcasts", "Broadcasts", &["DELETE", "GET", "PATCH", "POST"], &["/broadcasts"]),
    ("resend/contacts", "Contacts", &["DELETE", "GET", "PATCH", "POST"], &["/contacts"]),
    ("resend/domains", "Sending domains", &["DELETE", "GET", "PATCH", "POST"], &["/domains"]),
    ("resend/emails", "Send, read, update and schedule emails", &["GET", "PATCH", "POST"], &["/emails"]),
];

impl Provider for Resend {
    fn describe() -> Manifest {
        let auth = Auth::bearer("secret")
            .and(Auth::default_header("user-agent", concat!("aivault/", env!("CARGO_PKG_VERSION"))));
        Manifest::new("resend", env!("CARGO_PKG_VERSION"))
            .description("Resend email API")
            .host("api.resend.com")
            .secret("RESEND_API_KEY", "secret", "API key from https://resend.com/api-keys")
            .auth(auth)
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Resend);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "re_AbCdEf12_3456789abcdefGhIjKlMnOpQr";

    // The token goes in the authorization header as a bearer token, plus the `user-agent` header the API
    // requires.
    #[test]
    fn injects_bearer_token_and_user_agent() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Resend::inject(Request::new("DELETE", "api.resend.com", "/broadcasts"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
        assert!(out.header("user-agent").unwrap().starts_with("aivault/"));
    }
}
