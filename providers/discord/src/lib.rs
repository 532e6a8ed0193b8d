//! The Discord provider: a bot token for the Discord HTTP API, sent as
//! `Authorization: Bot <token>`, plus the `DiscordBot (url, version)`
//! User-Agent Discord requires of every client.

use aivault_sdk::prelude::*;

struct Discord;

/// `(id, description, methods, path prefixes)` of every discord.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "discord/applications",
        "Applications, their commands and role connections",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/api/v10/applications"],
    ),
    (
        "discord/channels",
        "Channels, messages, threads, reactions and pins",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/api/v10/channels"],
    ),
    ("discord/gateway", "Gateway URL and bot gateway information", &["GET"], &["/api/v10/gateway"]),
    (
        "discord/guilds",
        "Guilds (servers): members, roles, channels, bans",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/api/v10/guilds"],
    ),
    ("discord/invites", "Read and delete invites", &["DELETE", "GET"], &["/api/v10/invites"]),
    (
        "discord/stage-instances",
        "Stage instances",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/api/v10/stage-instances"],
    ),
    ("discord/stickers", "Standard sticker packs", &["GET"], &["/api/v10/sticker-packs"]),
    (
        "discord/users",
        "Users: the bot's own user, its guilds and DMs",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/api/v10/users"],
    ),
    ("discord/voice", "Voice regions", &["GET"], &["/api/v10/voice"]),
    (
        "discord/webhooks",
        "Webhooks and webhook messages",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/api/v10/webhooks"],
    ),
];

impl Provider for Discord {
    fn describe() -> Manifest {
        let auth = Auth::header("authorization", "Bot {{secret}}").and(Auth::default_header(
            "user-agent",
            concat!("DiscordBot (https://github.com/aivault/aivault, ", env!("CARGO_PKG_VERSION"), ")"),
        ));
        Manifest::new("discord", env!("CARGO_PKG_VERSION"))
            .description("Discord HTTP API v10 (bot)")
            .host("discord.com")
            .secret(
                "DISCORD_BOT_TOKEN",
                "secret",
                "bot token from https://discord.com/developers/applications (your app, then Bot)",
            )
            .auth(auth)
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Discord);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab";

    // The secret goes in the `authorization` header as `Bot <secret>`, plus the `user-agent` header the
    // API requires.
    #[test]
    fn injects_key_header_and_user_agent() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Discord::inject(Request::new("DELETE", "discord.com", "/api/v10/applications"), &secrets)
            .unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bot {SECRET}").as_str()));
        assert!(out.header("user-agent").unwrap().starts_with("DiscordBot (https://"));
    }
}
