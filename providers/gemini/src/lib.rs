//! The Gemini provider: a Google AI Studio API key for the Gemini API, sent
//! as the `key` query parameter.

use aivault_sdk::prelude::*;

struct Gemini;

/// `(id, description, methods, path prefixes)` of every generativelanguage.googleapis.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("gemini/batches", "Batch jobs", &["DELETE", "GET", "PATCH", "POST"], &["/v1beta/batches"]),
    (
        "gemini/cached-content",
        "Context caches",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v1beta/cachedContents"],
    ),
    (
        "gemini/corpora",
        "Semantic retrieval corpora",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v1beta/corpora"],
    ),
    (
        "gemini/file-search",
        "File search stores and uploads into them",
        &["DELETE", "GET", "POST"],
        &["/upload/v1beta/fileSearchStores", "/v1beta/fileSearchStores"],
    ),
    (
        "gemini/files",
        "Upload, list and delete files",
        &["DELETE", "GET", "POST"],
        &["/upload/v1beta/files", "/v1beta/files"],
    ),
    ("gemini/generated-files", "Generated files", &["GET"], &["/v1beta/generatedFiles"]),
    (
        "gemini/models",
        "Models: list, generate content, embed, count tokens",
        &["GET", "POST"],
        &["/v1/models", "/v1beta/models"],
    ),
    ("gemini/tuned-models", "Tuned models", &["DELETE", "GET", "PATCH", "POST"], &["/v1beta/tunedModels"]),
];

impl Provider for Gemini {
    fn describe() -> Manifest {
        Manifest::new("gemini", env!("CARGO_PKG_VERSION"))
            .description("Google Gemini API")
            .host("generativelanguage.googleapis.com")
            .secret("GEMINI_API_KEY", "secret", "API key from https://aistudio.google.com/apikey")
            .auth(Auth::query_param("key", "{{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Gemini);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AIzaSyA0123456789abcdefghijklmnopqrstu";

    // The secret goes in the `key` query parameter, nothing in headers.
    #[test]
    fn injects_key_query_parameter() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Gemini::inject(
            Request::new("DELETE", "generativelanguage.googleapis.com", "/v1beta/batches"),
            &secrets,
        )
        .unwrap();
        assert_eq!(out.query_value("key"), Some(SECRET));
        assert!(out.headers.is_empty());
    }
}
