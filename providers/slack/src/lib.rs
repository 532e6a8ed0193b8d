//! The Slack provider: a bot or user OAuth token for the Slack Web API, sent
//! as a bearer token.

use aivault_sdk::prelude::*;

struct Slack;

/// `(id, description, methods, path prefixes)` of every slack.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("slack/admin", "Admin methods (Enterprise Grid)", &["GET", "POST"], &["/api/admin."]),
    ("slack/api", "Test the API (api.test)", &["GET", "POST"], &["/api/api."]),
    ("slack/apps", "Apps: manifests, connections, uninstall", &["GET", "POST"], &["/api/apps."]),
    ("slack/auth", "Test and revoke the token", &["GET", "POST"], &["/api/auth."]),
    ("slack/bookmarks", "Channel bookmarks", &["GET", "POST"], &["/api/bookmarks."]),
    ("slack/calls", "Calls", &["GET", "POST"], &["/api/calls."]),
    ("slack/chat", "Post, update, delete and schedule messages", &["POST"], &["/api/chat."]),
    (
        "slack/conversations",
        "Channels and DMs: history, members, replies",
        &["GET", "POST"],
        &["/api/conversations."],
    ),
    ("slack/dialog", "Open legacy dialogs", &["POST"], &["/api/dialog."]),
    ("slack/emoji", "Custom emoji", &["GET", "POST"], &["/api/emoji."]),
    ("slack/files", "Files", &["GET", "POST"], &["/api/files."]),
    ("slack/pins", "Pinned items", &["GET", "POST"], &["/api/pins."]),
    ("slack/reactions", "Reactions", &["GET", "POST"], &["/api/reactions."]),
    ("slack/reminders", "Reminders", &["GET", "POST"], &["/api/reminders."]),
    ("slack/search", "Search messages and files", &["POST"], &["/api/search."]),
    ("slack/stars", "Saved items (stars)", &["GET", "POST"], &["/api/stars."]),
    ("slack/team", "Workspace information, access and billing logs", &["GET", "POST"], &["/api/team."]),
    ("slack/usergroups", "User groups", &["GET", "POST"], &["/api/usergroups."]),
    ("slack/users", "Users, their presence and profiles", &["GET", "POST"], &["/api/users."]),
    ("slack/views", "Open, push, update and publish views (modals, App Home)", &["POST"], &["/api/views."]),
    ("slack/workflow", "Workflow steps", &["POST"], &["/api/workflow."]),
];

impl Provider for Slack {
    fn describe() -> Manifest {
        Manifest::new("slack", env!("CARGO_PKG_VERSION"))
            .description("Slack Web API")
            .host("slack.com")
            .secret(
                "SLACK_BOT_TOKEN",
                "secret",
                "bot (xoxb-) or user (xoxp-) token from https://api.slack.com/apps (OAuth & Permissions)",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(
            value,
            "a Slack bot, user or app token",
            &["xoxb-", "xoxp-", "xapp-", "xoxe.xoxb-", "xoxe.xoxp-"],
            20,
            &['-', '.'],
        )
    }
}

aivault_sdk::export_provider!(Slack);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Slack::inject(Request::new("GET", "slack.com", "/api/admin.x"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        for ok in [
            SECRET,
            "xoxp-1234567890-1234567890123-1234567890123-0123456789abcdef0123456789abcdef",
            "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAxMjM0LTEyMzQ1Njc4OTAxMjM0",
        ] {
            assert_eq!(Slack::validate_secret("SLACK_BOT_TOKEN", ok), Ok(()), "{ok}");
        }
        for bad in ["xoxe-1-My0xLTEyMzQ1Njc4OTAxMjM0LTEyMzQ1Njc4OTAxMjM0", "xoxb-short"] {
            assert!(Slack::validate_secret("SLACK_BOT_TOKEN", bad).is_err(), "{bad}");
        }
    }
}
