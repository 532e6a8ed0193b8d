//! The Deepgram provider: an API key sent as `Authorization: Token <key>`,
//! for the speech APIs on api.deepgram.com and the voice agent on
//! agent.deepgram.com.

use aivault_sdk::prelude::*;

struct Deepgram;

const API_HOST: &str = "api.deepgram.com";
const AGENT_HOST: &str = "agent.deepgram.com";

/// `(id, description, methods, path prefixes)` of every api.deepgram.com capability.
const API_CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("deepgram/models", "List and read models", &["GET"], &["/v1/models"]),
    ("deepgram/projects", "Projects, keys, members, usage and balances", &["GET", "POST"], &["/v1/projects"]),
    (
        "deepgram/text-intelligence",
        "Text intelligence: summaries, topics, intents, sentiment",
        &["POST"],
        &["/v1/read"],
    ),
    ("deepgram/text-to-speech", "Text to speech", &["GET", "POST"], &["/v1/speak"]),
    ("deepgram/transcription", "Speech to text, pre-recorded and live", &["GET", "POST"], &["/v1/listen"]),
];

impl Provider for Deepgram {
    fn describe() -> Manifest {
        API_CAPABILITIES.iter().fold(
            Manifest::new("deepgram", env!("CARGO_PKG_VERSION"))
                .description("Deepgram speech-to-text, text-to-speech and voice agent API")
                .host(AGENT_HOST)
                .host(API_HOST)
                .secret(
                    "DEEPGRAM_API_KEY",
                    "secret",
                    "API key from https://console.deepgram.com (Settings, API Keys)",
                )
                .auth(Auth::header("authorization", "Token {{secret}}"))
                .capability(
                    Capability::new("deepgram/voice-agent", "Voice agent sessions")
                        .methods(&["GET"])
                        .prefix("/v1/agent")
                        .host(AGENT_HOST),
                ),
            |manifest, (id, description, methods, prefixes)| {
                manifest.capability(
                    Capability::new(*id, *description).methods(methods).prefixes(prefixes).host(API_HOST),
                )
            },
        )
    }
}

aivault_sdk::export_provider!(Deepgram);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

    // The key goes in the authorization header as `Token <key>`, on both hosts.
    #[test]
    fn injects_token_header() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        for (host, path) in [(API_HOST, "/v1/listen"), (AGENT_HOST, "/v1/agent/converse")] {
            let out = Deepgram::inject(Request::new("GET", host, path), &secrets).unwrap();
            assert_eq!(out.header("authorization"), Some(format!("Token {SECRET}").as_str()));
        }
    }
}
