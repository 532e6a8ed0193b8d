//! The Trello provider: an API key and a user token, sent as the `key` and
//! `token` query parameters.

use aivault_sdk::prelude::*;

struct Trello;

/// `(id, description, methods, path prefixes)` of every api.trello.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("trello/actions", "Actions (activity on boards and cards)", &["DELETE", "GET", "PUT"], &["/1/actions"]),
    ("trello/batch", "Several GET requests in one", &["GET"], &["/1/batch"]),
    ("trello/boards", "Boards", &["DELETE", "GET", "POST", "PUT"], &["/1/boards"]),
    ("trello/cards", "Cards", &["DELETE", "GET", "POST", "PUT"], &["/1/cards"]),
    ("trello/checklists", "Checklists", &["DELETE", "GET", "POST", "PUT"], &["/1/checklists"]),
    (
        "trello/custom-fields",
        "Custom fields",
        &["DELETE", "GET", "POST", "PUT"],
        &["/1/customField", "/1/customFields"],
    ),
    ("trello/emoji", "Available emoji", &["GET"], &["/1/emoji"]),
    ("trello/enterprises", "Enterprises", &["GET"], &["/1/enterprises"]),
    ("trello/labels", "Labels", &["DELETE", "GET", "POST", "PUT"], &["/1/labels"]),
    ("trello/lists", "Lists", &["GET", "POST", "PUT"], &["/1/lists"]),
    ("trello/members", "Members", &["GET", "PUT"], &["/1/members"]),
    ("trello/notifications", "Notifications", &["GET", "PUT"], &["/1/notifications"]),
    (
        "trello/organizations",
        "Workspaces (organizations)",
        &["DELETE", "GET", "POST", "PUT"],
        &["/1/organizations"],
    ),
    ("trello/plugins", "Power-Ups", &["GET"], &["/1/plugins"]),
    ("trello/search", "Search", &["GET"], &["/1/search"]),
    ("trello/tokens", "Tokens", &["DELETE", "GET"], &["/1/tokens"]),
    ("trello/webhooks", "Webhooks", &["DELETE", "GET", "POST", "PUT"], &["/1/webhooks"]),
];

impl Provider for Trello {
    fn describe() -> Manifest {
        Manifest::new("trello", env!("CARGO_PKG_VERSION"))
            .description("Trello REST API")
            .host("api.trello.com")
            .secret("TRELLO_API_KEY", "key", "API key from https://trello.com/power-ups/admin")
            .secret("TRELLO_TOKEN", "token", "user token authorised for that API key")
            .auth(Auth::query_params(&[("key", "{{key}}"), ("token", "{{token}}")]))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(name: &str, value: &str) -> Result<(), SecretError> {
        if name == "TRELLO_API_KEY" {
            return validate::hex_of_len(value, "a Trello API key", 32);
        }
        // Tokens are `ATTA` + hex since 2023; older ones are 64 hex digits.
        validate::token(value)?;
        let hex = value.strip_prefix("ATTA").unwrap_or(value);
        let modern = value.starts_with("ATTA") && hex.len() >= 64;
        let legacy = !value.starts_with("ATTA") && hex.len() == 64;
        if (modern || legacy) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err(SecretError::Malformed(
                "a Trello token is \"ATTA\" followed by hexadecimal digits (or 64 hexadecimal digits for older tokens)".into(),
            ))
        }
    }
}

aivault_sdk::export_provider!(Trello);

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "ATTA0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefA1B2C3D4";

    // Both secrets go into the query, nothing into headers.
    #[test]
    fn injects_key_and_token_as_query() {
        let secrets = Secrets::from_pairs([("key".into(), KEY.into()), ("token".into(), TOKEN.into())]);
        let out = Trello::inject(Request::new("GET", "api.trello.com", "/1/members/me"), &secrets).unwrap();
        assert_eq!(out.query_value("key"), Some(KEY));
        assert_eq!(out.query_value("token"), Some(TOKEN));
        assert!(out.headers.is_empty());
    }

    // Real key and token formats pass; impossible ones do not.
    #[test]
    fn validates_formats() {
        assert_eq!(Trello::validate_secret("TRELLO_API_KEY", KEY), Ok(()));
        assert_eq!(Trello::validate_secret("TRELLO_TOKEN", TOKEN), Ok(()));
        assert_eq!(Trello::validate_secret("TRELLO_TOKEN", &"ab".repeat(32)), Ok(()));
        assert!(Trello::validate_secret("TRELLO_API_KEY", "trello-key").is_err());
        assert!(Trello::validate_secret("TRELLO_TOKEN", "ATTAxyz").is_err());
    }
}
