//! The remove.bg provider: an API key in the `X-Api-Key` header.

use aivault_sdk::prelude::*;

struct RemoveBg;

/// `(id, description, methods, path prefixes)` of every api.remove.bg capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] =
    &[("remove-bg/background-removal", "Remove the background of an image", &["POST"], &["/v1.0/removebg"])];

impl Provider for RemoveBg {
    fn describe() -> Manifest {
        Manifest::new("remove-bg", env!("CARGO_PKG_VERSION"))
            .description("remove.bg API")
            .host("api.remove.bg")
            .secret("REMOVE_BG_API_KEY", "secret", "API key from https://www.remove.bg/dashboard#api-key")
            .auth(Auth::header("x-api-key", "{{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(RemoveBg);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AbCdEfGhIjKlMnOpQrStUvWx";

    // The secret goes in the `X-Api-Key` header.
    #[test]
    fn injects_key_header() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            RemoveBg::inject(Request::new("POST", "api.remove.bg", "/v1.0/removebg"), &secrets).unwrap();
        assert_eq!(out.header("x-api-key"), Some(SECRET));
    }
}
