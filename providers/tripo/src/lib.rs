//! The Tripo provider: an API key for the Tripo 3D generation API, sent as a
//! bearer token.

use aivault_sdk::prelude::*;

struct Tripo;

/// `(id, description, methods, path prefixes)` of every api.tripo3d.ai capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[(
    "tripo/image-to-3d",
    "Upload images; create and poll 3D generation tasks",
    &["GET", "POST"],
    &["/v2/openapi/task", "/v2/openapi/upload/sts"],
)];

impl Provider for Tripo {
    fn describe() -> Manifest {
        Manifest::new("tripo", env!("CARGO_PKG_VERSION"))
            .description("Tripo 3D generation API")
            .host("api.tripo3d.ai")
            .secret("TRIPO_API_KEY", "secret", "API key from https://platform.tripo3d.ai/api-keys")
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Tripo);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "tsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Tripo::inject(Request::new("GET", "api.tripo3d.ai", "/v2/openapi/task"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
