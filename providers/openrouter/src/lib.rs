//! The OpenRouter provider: an API key for the OpenRouter API, sent as a
//! bearer token.

use aivault_sdk::prelude::*;

struct OpenRouter;

/// `(id, description, methods, path prefixes)` of every openrouter.ai capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "openrouter/api-keys",
        "Manage API keys (needs a provisioning key)",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/api/v1/api_keys"],
    ),
    ("openrouter/chat-completions", "Chat completions", &["POST"], &["/api/v1/chat/completions"]),
    ("openrouter/completions", "Text completions", &["POST"], &["/api/v1/completions"]),
    ("openrouter/credits", "Remaining credits", &["GET"], &["/api/v1/credits"]),
    ("openrouter/embeddings", "Embeddings", &["POST"], &["/api/v1/embeddings"]),
    ("openrouter/generation", "Statistics of a generation", &["GET"], &["/api/v1/generation"]),
    ("openrouter/models", "List models", &["GET"], &["/api/v1/models"]),
    ("openrouter/providers", "List providers", &["GET"], &["/api/v1/providers"]),
    ("openrouter/responses", "Responses API", &["DELETE", "GET", "POST"], &["/api/v1/responses"]),
];

impl Provider for OpenRouter {
    fn describe() -> Manifest {
        Manifest::new("openrouter", env!("CARGO_PKG_VERSION"))
            .description("OpenRouter API")
            .host("openrouter.ai")
            .secret("OPENROUTER_API_KEY", "secret", "API key from https://openrouter.ai/settings/keys")
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(value, "an OpenRouter API key", &["sk-or-"], 40, &['-'])
    }
}

aivault_sdk::export_provider!(OpenRouter);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = OpenRouter::inject(Request::new("DELETE", "openrouter.ai", "/api/v1/api_keys"), &secrets)
            .unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        assert_eq!(OpenRouter::validate_secret("OPENROUTER_API_KEY", SECRET), Ok(()));
        for bad in ["sk-0123456789abcdef0123456789abcdef0123456789abcdef", "sk-or-v1-short"] {
            assert!(OpenRouter::validate_secret("OPENROUTER_API_KEY", bad).is_err(), "{bad}");
        }
    }
}
