//! The OpenAI provider: API keys for api.openai.com, plus the ChatGPT/Codex
//! OAuth token for the Codex endpoints on chatgpt.com.

use aivault_sdk::json::first_string_at;
use aivault_sdk::prelude::*;

struct OpenAi;

const API_HOST: &str = "api.openai.com";
const CODEX_HOST: &str = "chatgpt.com";
const CODEX_KIND: &str = "codex-oauth";

/// Where the Codex CLI's `auth.json` keeps the two values we need; a bare
/// `{"access_token", "account_id"}` object is accepted too.
const ACCESS_TOKEN_PATHS: &[&[&str]] = &[&["tokens", "access_token"], &["access_token"]];
const ACCOUNT_ID_PATHS: &[&[&str]] = &[&["tokens", "account_id"], &["account_id"]];

/// `(id, description, methods, path prefixes)` of every api.openai.com capability.
const API_CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "openai/assistants",
        "Assistants and threads (beta)",
        &["DELETE", "GET", "POST"],
        &["/v1/assistants", "/v1/threads"],
    ),
    ("openai/batch", "Batch jobs", &["GET", "POST"], &["/v1/batches"]),
    ("openai/chat-completions", "Chat completions", &["GET", "POST"], &["/v1/chat/completions"]),
    ("openai/embeddings", "Text embeddings", &["POST"], &["/v1/embeddings"]),
    ("openai/files", "Upload, list and delete files", &["DELETE", "GET", "POST"], &["/v1/files"]),
    ("openai/fine-tuning", "Fine-tuning jobs", &["DELETE", "GET", "POST"], &["/v1/fine_tuning"]),
    ("openai/image-generation", "Generate and edit images", &["POST"], &["/v1/images"]),
    ("openai/models", "List, read and delete models", &["DELETE", "GET"], &["/v1/models"]),
    ("openai/moderation", "Content moderation", &["POST"], &["/v1/moderations"]),
    ("openai/realtime", "Realtime sessions", &["GET", "POST"], &["/v1/realtime"]),
    ("openai/responses", "Responses API", &["DELETE", "GET", "POST"], &["/v1/responses"]),
    ("openai/speech", "Text to speech", &["POST"], &["/v1/audio/speech"]),
    ("openai/transcription", "Speech to text (multipart upload)", &["POST"], &["/v1/audio/transcriptions"]),
    ("openai/translation", "Translate speech to English text", &["POST"], &["/v1/audio/translations"]),
    ("openai/uploads", "Multi-part uploads of large files", &["POST"], &["/v1/uploads"]),
    ("openai/vector-stores", "Vector stores", &["DELETE", "GET", "POST"], &["/v1/vector_stores"]),
    ("openai/videos", "Generate and manage videos", &["DELETE", "GET", "POST"], &["/v1/videos"]),
];

/// The Codex endpoints on chatgpt.com, with the upstream prefix each sits under.
const CODEX_CAPABILITIES: &[(&str, &str, &[&str], &str, &str)] = &[
    (
        "openai/codex-realtime",
        "Codex realtime calls (ChatGPT sign-in)",
        &["POST"],
        "/realtime/calls",
        "/backend-api/codex",
    ),
    (
        "openai/codex-responses",
        "Codex responses (ChatGPT sign-in)",
        &["POST"],
        "/responses",
        "/backend-api/codex",
    ),
    (
        "openai/codex-usage",
        "Codex usage and limits (ChatGPT sign-in)",
        &["GET"],
        "/wham/usage",
        "/backend-api",
    ),
];

impl Provider for OpenAi {
    fn describe() -> Manifest {
        let mut api_key =
            CredentialKind::new("api-key", Auth::bearer("secret")).secret("OPENAI_API_KEY").host(API_HOST);
        for (id, description, methods, prefixes) in API_CAPABILITIES {
            api_key =
                api_key.capability(Capability::new(*id, *description).methods(methods).prefixes(prefixes));
        }
        let mut codex = CredentialKind::custom(
            CODEX_KIND,
            "header authorization: Bearer <access_token>; header chatgpt-account-id: <account_id> (both from the OAuth JSON); path under /backend-api",
        )
        .secret("CODEX_OAUTH_JSON")
        .host(CODEX_HOST);
        for (id, description, methods, prefix, _) in CODEX_CAPABILITIES {
            codex = codex.capability(Capability::new(*id, *description).methods(methods).prefix(*prefix));
        }
        Manifest::new("openai", env!("CARGO_PKG_VERSION"))
            .description("OpenAI API (platform API keys) and Codex (ChatGPT sign-in)")
            .secret("OPENAI_API_KEY", "secret", "API key from https://platform.openai.com/api-keys")
            .secret(
                "CODEX_OAUTH_JSON",
                "oauth",
                "contents of ~/.codex/auth.json after `codex login` (access token and account id)",
            )
            .credential(api_key)
            .credential(codex)
    }

    fn validate_secret(name: &str, value: &str) -> Result<(), SecretError> {
        match name {
            "OPENAI_API_KEY" => validate::prefixed_token(value, "an OpenAI API key", &["sk-"], 20, &['-']),
            _ => codex_tokens(value).map(|_| ()).map_err(|why| SecretError::Malformed(why.into())),
        }
    }

    fn inject(req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        if req.credential_kind != CODEX_KIND {
            return Self::describe().auth_for(&req.credential_kind)?.apply(req, secrets);
        }
        let (access_token, account_id) =
            codex_tokens(secrets.get("oauth")?).map_err(|why| InjectError::MalformedSecret(why.into()))?;
        let prefix =
            CODEX_CAPABILITIES.iter().find(|c| c.0 == req.capability).map(|c| c.4).ok_or_else(|| {
                InjectError::Unsupported(format!("`{}` is not a Codex capability", req.capability))
            })?;
        Ok(req
            .with_bearer(&access_token)
            .with_header("chatgpt-account-id", account_id)
            .with_path_prefix(prefix))
    }
}

/// The access token and account id inside a Codex OAuth JSON document.
fn codex_tokens(document: &str) -> Result<(String, String), &'static str> {
    const SHAPE: &str =
        "expected the JSON of ~/.codex/auth.json, with tokens.access_token and tokens.account_id";
    let access_token = first_string_at(document, ACCESS_TOKEN_PATHS).ok_or(SHAPE)?;
    let account_id = first_string_at(document, ACCOUNT_ID_PATHS).ok_or(SHAPE)?;
    if validate::token(&access_token).is_err() || validate::token(&account_id).is_err() {
        return Err("the access token or account id in the OAuth JSON is empty or contains whitespace");
    }
    Ok((access_token, account_id))
}

aivault_sdk::export_provider!(OpenAi);

#[cfg(test)]
mod tests {
    use super::*;

    // Every real key format OpenAI issues is accepted.
    #[test]
    fn accepts_real_key_formats() {
        for key in [
            "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL",
            "sk-proj-Ab3_dE-fGhIjKlMnOpQrStUvWxYz0123456789",
            "sk-svcacct-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789",
            "sk-admin-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789",
        ] {
            assert_eq!(OpenAi::validate_secret("OPENAI_API_KEY", key), Ok(()), "{key}");
        }
    }

    // Values that cannot be an OpenAI key are refused.
    #[test]
    fn refuses_impossible_keys() {
        for key in ["sk-...", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "sk-short"] {
            assert!(OpenAi::validate_secret("OPENAI_API_KEY", key).is_err(), "{key}");
        }
    }

    // Codex injection sets both headers and moves the path under the backend prefix.
    #[test]
    fn codex_injects_two_headers_and_prefix() {
        let json = r#"{"tokens":{"access_token":"at-1","account_id":"acc-9"}}"#;
        let secrets = Secrets::from_pairs([("oauth".to_string(), json.to_string())]);
        let mut req = Request::new("GET", CODEX_HOST, "/wham/usage");
        req.capability = "openai/codex-usage".into();
        req.credential_kind = CODEX_KIND.into();
        let out = OpenAi::inject(req, &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some("Bearer at-1"));
        assert_eq!(out.header("chatgpt-account-id"), Some("acc-9"));
        assert_eq!(out.path, "/backend-api/wham/usage");
    }
}
