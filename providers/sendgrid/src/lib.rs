//! The SendGrid provider: an API key for the v3 API, sent as a bearer token.

use aivault_sdk::prelude::*;

struct SendGrid;

/// `(id, description, methods, path prefixes)` of every api.sendgrid.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("sendgrid/mail", "Send mail", &["POST"], &["/v3/mail"]),
    (
        "sendgrid/marketing",
        "Marketing campaigns: contacts, lists, segments, single sends",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v3/marketing"],
    ),
    ("sendgrid/stats", "Email statistics and categories", &["GET"], &["/v3/categories", "/v3/stats"]),
    (
        "sendgrid/suppressions",
        "Suppressions: bounces, blocks, spam reports, unsubscribes",
        &["DELETE", "GET"],
        &["/v3/suppression"],
    ),
    (
        "sendgrid/templates",
        "Transactional templates",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v3/templates"],
    ),
];

impl Provider for SendGrid {
    fn describe() -> Manifest {
        Manifest::new("sendgrid", env!("CARGO_PKG_VERSION"))
            .description("Twilio SendGrid v3 API")
            .host("api.sendgrid.com")
            .secret("SENDGRID_API_KEY", "secret", "API key from https://app.sendgrid.com/settings/api_keys")
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(value, "a SendGrid API key", &["SG."], 40, &['.', '-'])
    }
}

aivault_sdk::export_provider!(SendGrid);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "SG.AbCdEfGhIjKlMnOpQrStUv.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = SendGrid::inject(Request::new("POST", "api.sendgrid.com", "/v3/mail"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        assert_eq!(SendGrid::validate_secret("SENDGRID_API_KEY", SECRET), Ok(()));
        for bad in ["sg.AbCdEfGhIjKlMnOpQrStUv.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "SG.short"] {
            assert!(SendGrid::validate_secret("SENDGRID_API_KEY", bad).is_err(), "{bad}");
        }
    }
}
