//! The DeepL provider: an authentication key for DeepL API Free, sent as
//! `Authorization: DeepL-Auth-Key <key>`.

use aivault_sdk::prelude::*;

struct DeepL;

/// `(id, description, methods, path prefixes)` of every api-free.deepl.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("deepl/languages", "Supported source and target languages", &["GET"], &["/v2/languages"]),
    ("deepl/translate", "Translate text", &["POST"], &["/v2/translate"]),
    ("deepl/usage", "Character usage and limits", &["GET"], &["/v2/usage"]),
];

impl Provider for DeepL {
    fn describe() -> Manifest {
        Manifest::new("deepl", env!("CARGO_PKG_VERSION"))
            .description("DeepL API Free")
            .host("api-free.deepl.com")
            .secret(
                "DEEPL_API_KEY",
                "secret",
                "DeepL API Free key (ends in `:fx`) from https://www.deepl.com/your-account/keys",
            )
            .auth(Auth::header("authorization", "DeepL-Auth-Key {{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(DeepL);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f:fx";

    // The secret goes in the `authorization` header as `DeepL-Auth-Key <secret>`.
    #[test]
    fn injects_key_header() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            DeepL::inject(Request::new("GET", "api-free.deepl.com", "/v2/languages"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("DeepL-Auth-Key {SECRET}").as_str()));
    }
}
