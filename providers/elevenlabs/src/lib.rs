//! The ElevenLabs provider: an API key in the `xi-api-key` header.

use aivault_sdk::prelude::*;

struct ElevenLabs;

/// `(id, description, methods, path prefixes)` of every api.elevenlabs.io capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("elevenlabs/audio-isolation", "Remove background noise from audio", &["POST"], &["/v1/audio-isolation"]),
    ("elevenlabs/audio-native", "Audio Native embedded players", &["GET", "POST"], &["/v1/audio-native"]),
    (
        "elevenlabs/conversational-ai",
        "Conversational AI agents, conversations and knowledge bases",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v1/convai"],
    ),
    (
        "elevenlabs/dubbing",
        "Dub audio and video into other languages",
        &["DELETE", "GET", "POST"],
        &["/v1/dubbing"],
    ),
    (
        "elevenlabs/forced-alignment",
        "Align a transcript to audio timings",
        &["POST"],
        &["/v1/forced-alignment"],
    ),
    ("elevenlabs/history", "History of generated audio", &["DELETE", "GET", "POST"], &["/v1/history"]),
    ("elevenlabs/models", "List models", &["GET"], &["/v1/models"]),
    (
        "elevenlabs/pronunciation-dictionaries",
        "Pronunciation dictionaries",
        &["DELETE", "GET", "POST"],
        &["/v1/pronunciation-dictionaries"],
    ),
    ("elevenlabs/sound-effects", "Generate sound effects from text", &["POST"], &["/v1/sound-generation"]),
    ("elevenlabs/studio", "Studio projects (long-form audio)", &["DELETE", "GET", "POST"], &["/v1/projects"]),
    ("elevenlabs/text-to-dialogue", "Multi-speaker dialogue from text", &["POST"], &["/v1/text-to-dialogue"]),
    ("elevenlabs/text-to-speech", "Text to speech", &["POST"], &["/v1/text-to-speech"]),
    ("elevenlabs/transcription", "Speech to text", &["POST"], &["/v1/speech-to-text"]),
    ("elevenlabs/voice-changer", "Speech to speech (voice changer)", &["POST"], &["/v1/speech-to-speech"]),
    (
        "elevenlabs/voice-design",
        "Design voices from a text description",
        &["POST"],
        &["/v1/text-to-voice", "/v1/voice-generation"],
    ),
    (
        "elevenlabs/voices",
        "Voices: list, add, edit, delete and their settings",
        &["DELETE", "GET", "POST"],
        &["/v1/voices", "/v2/voices"],
    ),
];

impl Provider for ElevenLabs {
    fn describe() -> Manifest {
        Manifest::new("elevenlabs", env!("CARGO_PKG_VERSION"))
            .description("ElevenLabs voice AI API")
            .host("api.elevenlabs.io")
            .secret(
                "ELEVENLABS_API_KEY",
                "secret",
                "API key from https://elevenlabs.io/app/settings/api-keys",
            )
            .auth(Auth::header("xi-api-key", "{{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(ElevenLabs);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk_0123456789abcdef0123456789abcdef0123456789abcdef";

    // The secret goes in the `xi-api-key` header.
    #[test]
    fn injects_key_header() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            ElevenLabs::inject(Request::new("POST", "api.elevenlabs.io", "/v1/audio-isolation"), &secrets)
                .unwrap();
        assert_eq!(out.header("xi-api-key"), Some(SECRET));
    }
}
