//! The Replicate provider: an API token sent as a bearer token.

use aivault_sdk::prelude::*;

struct Replicate;

/// `(id, description, methods, path prefixes)` of every api.replicate.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("replicate/collections", "Model collections", &["GET"], &["/v1/collections"]),
    (
        "replicate/deployments",
        "Deployments and their predictions",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v1/deployments"],
    ),
    ("replicate/files", "Uploaded files", &["DELETE", "GET", "POST"], &["/v1/files"]),
    (
        "replicate/models",
        "Models, their versions and predictions",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v1/models"],
    ),
    ("replicate/predictions", "Predictions: create, read, cancel", &["GET", "POST"], &["/v1/predictions"]),
    ("replicate/trainings", "Trainings", &["GET", "POST"], &["/v1/trainings"]),
];

impl Provider for Replicate {
    fn describe() -> Manifest {
        Manifest::new("replicate", env!("CARGO_PKG_VERSION"))
            .description("Replicate API")
            .host("api.replicate.com")
            .secret(
                "REPLICATE_API_TOKEN",
                "secret",
                "API token from https://replicate.com/account/api-tokens",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(value, "a Replicate API token", &["r8_"], 40, &[])
    }
}

aivault_sdk::export_provider!(Replicate);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "r8_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789a";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            Replicate::inject(Request::new("GET", "api.replicate.com", "/v1/collections"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        assert_eq!(Replicate::validate_secret("REPLICATE_API_TOKEN", SECRET), Ok(()));
        for bad in ["r8-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789a", "r8_short"] {
            assert!(Replicate::validate_secret("REPLICATE_API_TOKEN", bad).is_err(), "{bad}");
        }
    }
}
