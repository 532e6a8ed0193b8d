//! The Anthropic provider: an API key for the Claude API in the `x-api-key`
//! header, plus the `anthropic-version` header the API requires of every
//! request.

use aivault_sdk::prelude::*;

struct Anthropic;

/// `(id, description, methods, path prefixes)` of every api.anthropic.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "anthropic/messages",
        "Messages, message batches and token counting",
        &["GET", "POST"],
        &["/v1/messages"],
    ),
    ("anthropic/models", "List and read models", &["GET"], &["/v1/models"]),
];

impl Provider for Anthropic {
    fn describe() -> Manifest {
        let auth = Auth::header("x-api-key", "{{secret}}")
            .and(Auth::default_header("anthropic-version", "2023-06-01"));
        Manifest::new("anthropic", env!("CARGO_PKG_VERSION"))
            .description("Anthropic Claude API")
            .host("api.anthropic.com")
            .secret("ANTHROPIC_API_KEY", "secret", "API key from https://console.anthropic.com/settings/keys")
            .auth(auth)
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(value, "an Anthropic API key", &["sk-ant-"], 40, &['-'])
    }
}

aivault_sdk::export_provider!(Anthropic);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str =
        "sk-ant-api03-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789_AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789AA";

    // The secret goes in the `x-api-key` header, plus the `anthropic-version` header the API requires.
    #[test]
    fn injects_key_header_and_anthropic_version() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            Anthropic::inject(Request::new("GET", "api.anthropic.com", "/v1/messages"), &secrets).unwrap();
        assert_eq!(out.header("x-api-key"), Some(SECRET));
        assert_eq!(out.header("anthropic-version"), Some("2023-06-01"));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        for ok in [SECRET, "sk-ant-admin01-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789abcdef"] {
            assert_eq!(Anthropic::validate_secret("ANTHROPIC_API_KEY", ok), Ok(()), "{ok}");
        }
        for bad in ["sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH", "sk-ant-short"] {
            assert!(Anthropic::validate_secret("ANTHROPIC_API_KEY", bad).is_err(), "{bad}");
        }
    }
}
