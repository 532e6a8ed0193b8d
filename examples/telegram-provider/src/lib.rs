//! The Telegram Bot API as an aivault provider.
//!
//! Telegram puts the bot token in the path (`/bot<token>/getMe`), so the
//! provider uses the path-prefix strategy: callers ask for `/getMe`, and
//! aivault sends `/bot<token>/getMe` without the caller ever seeing it.

use aivault_sdk::prelude::*;

struct Telegram;

impl Provider for Telegram {
    fn describe() -> Manifest {
        Manifest::new("telegram", env!("CARGO_PKG_VERSION"))
            .description("Telegram Bot API")
            .host("api.telegram.org")
            .secret("TELEGRAM_BOT_TOKEN", "token", "bot token from @BotFather, like 123456789:AAF…")
            .auth(Auth::path_prefix("/bot{{token}}"))
            .capability(Capability::new("telegram/bot", "The bot's own profile").methods(&["GET", "POST"]).prefix("/getMe"))
            .capability(
                Capability::new("telegram/updates", "Incoming updates and webhooks")
                    .methods(&["GET", "POST"])
                    .prefixes(&["/getUpdates", "/setWebhook", "/deleteWebhook", "/getWebhookInfo"]),
            )
            .capability(
                Capability::new("telegram/messages", "Send, edit and delete messages")
                    .methods(&["POST"])
                    .prefixes(&["/sendMessage", "/editMessageText", "/deleteMessage", "/forwardMessage", "/copyMessage"]),
            )
    }

    /// Tokens are `<bot id>:<35 characters>`; anything else is a paste error.
    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::token(value)?;
        let shape = "a Telegram bot token looks like 123456789:AAF… (digits, a colon, then 35 letters, digits, `_` or `-`)";
        let (bot_id, key) = value.split_once(':').ok_or_else(|| SecretError::Malformed(shape.into()))?;
        let id_ok = !bot_id.is_empty() && bot_id.chars().all(|c| c.is_ascii_digit());
        let key_ok = key.len() >= 30 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if id_ok && key_ok { Ok(()) } else { Err(SecretError::Malformed(shape.into())) }
    }
}

aivault_sdk::export_provider!(Telegram);

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    // The token goes in front of the path, which stays intact behind it.
    #[test]
    fn token_becomes_a_path_prefix() {
        let secrets = Secrets::from_pairs([("token".to_string(), TOKEN.to_string())]);
        let out = Telegram::inject(Request::new("GET", "api.telegram.org", "/getMe"), &secrets).unwrap();
        assert_eq!(out.path, format!("/bot{TOKEN}/getMe"));
        assert!(out.headers.is_empty());
    }

    // Real tokens pass; placeholders and other providers' keys do not.
    #[test]
    fn validates_token_shape() {
        assert_eq!(Telegram::validate_secret("TELEGRAM_BOT_TOKEN", TOKEN), Ok(()));
        for bad in ["123:abc", "sk-abcdefghijklmnopqrstuvwxyz0123456789", "abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"] {
            assert!(Telegram::validate_secret("TELEGRAM_BOT_TOKEN", bad).is_err(), "{bad}");
        }
    }
}
