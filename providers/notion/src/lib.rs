//! The Notion provider: an integration secret sent as a bearer token, plus
//! the `Notion-Version` header the API requires of every request.

use aivault_sdk::prelude::*;

struct Notion;

/// `(id, description, methods, path prefixes)` of every api.notion.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "notion/blocks",
        "Blocks and their children (page content)",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/v1/blocks"],
    ),
    ("notion/comments", "Comments", &["GET", "POST"], &["/v1/comments"]),
    ("notion/databases", "Databases and their queries", &["GET", "POST"], &["/v1/databases"]),
    ("notion/pages", "Pages and their properties", &["GET", "PATCH", "POST"], &["/v1/pages"]),
    ("notion/search", "Search pages and databases shared with the integration", &["POST"], &["/v1/search"]),
    ("notion/users", "Users and the integration's bot user", &["GET"], &["/v1/users"]),
];

impl Provider for Notion {
    fn describe() -> Manifest {
        let auth = Auth::bearer("secret").and(Auth::default_header("notion-version", "2022-06-28"));
        Manifest::new("notion", env!("CARGO_PKG_VERSION"))
            .description("Notion API")
            .host("api.notion.com")
            .secret(
                "NOTION_TOKEN",
                "secret",
                "internal integration secret from https://www.notion.so/profile/integrations",
            )
            .auth(auth)
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(value, "a Notion integration secret", &["ntn_", "secret_"], 40, &[])
    }
}

aivault_sdk::export_provider!(Notion);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "ntn_012345678901AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

    // The token goes in the authorization header as a bearer token, plus the `notion-version` header the
    // API requires.
    #[test]
    fn injects_bearer_token_and_notion_version() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Notion::inject(Request::new("DELETE", "api.notion.com", "/v1/blocks"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
        assert_eq!(out.header("notion-version"), Some("2022-06-28"));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        for ok in [SECRET, "secret_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg"] {
            assert_eq!(Notion::validate_secret("NOTION_TOKEN", ok), Ok(()), "{ok}");
        }
        for bad in ["ntn-0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "ntn_short"] {
            assert!(Notion::validate_secret("NOTION_TOKEN", bad).is_err(), "{bad}");
        }
    }
}
