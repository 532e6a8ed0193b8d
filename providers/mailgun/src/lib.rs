//! The Mailgun provider: a private API key sent with HTTP basic
//! authentication as the password of the fixed user `api`.

use aivault_sdk::prelude::*;

struct Mailgun;

/// `(id, description, methods, path prefixes)` of every api.mailgun.net capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("mailgun/domains", "Sending domains", &["DELETE", "GET", "POST", "PUT"], &["/v3/domains"]),
    ("mailgun/lists", "Mailing lists", &["DELETE", "GET", "POST", "PUT"], &["/v3/lists"]),
    ("mailgun/routes", "Inbound routes", &["DELETE", "GET", "POST", "PUT"], &["/v3/routes"]),
    (
        "mailgun/sending",
        "Send messages; events, stats, tags and suppressions of a domain",
        &["GET", "POST"],
        &["/v3/"],
    ),
];

impl Provider for Mailgun {
    fn describe() -> Manifest {
        Manifest::new("mailgun", env!("CARGO_PKG_VERSION"))
            .description("Mailgun API (US region)")
            .host("api.mailgun.net")
            .secret(
                "MAILGUN_API_KEY",
                "password",
                "private API key from https://app.mailgun.com/settings/api_security",
            )
            .auth(Auth::basic("api", "{{password}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Mailgun);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-01234567-89abcdef";

    // HTTP basic authentication: base64 of `api:<key>`.
    #[test]
    fn injects_basic_auth() {
        let secrets = Secrets::from_pairs([("password".into(), SECRET.into())]);
        let out =
            Mailgun::inject(Request::new("DELETE", "api.mailgun.net", "/v3/domains"), &secrets).unwrap();
        assert_eq!(
            out.header("authorization"),
            Some("Basic YXBpOjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmLTAxMjM0NTY3LTg5YWJjZGVm")
        );
    }
}
