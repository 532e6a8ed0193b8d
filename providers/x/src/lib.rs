//! The X provider: an app-only bearer token for the X (Twitter) API v2.

use aivault_sdk::prelude::*;

struct X;

/// `(id, description, methods, path prefixes)` of every api.x.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("x/dm", "Direct messages", &["GET", "POST"], &["/2/dm_conversations", "/2/dm_events"]),
    ("x/lists", "Lists", &["DELETE", "GET", "POST", "PUT"], &["/2/lists"]),
    ("x/spaces", "Spaces", &["GET"], &["/2/spaces"]),
    ("x/tweets", "Posts: read, search, create, delete", &["DELETE", "GET", "POST"], &["/2/tweets"]),
    ("x/users", "Users, follows, likes, blocks and mutes", &["DELETE", "GET", "POST"], &["/2/users"]),
];

impl Provider for X {
    fn describe() -> Manifest {
        Manifest::new("x", env!("CARGO_PKG_VERSION"))
            .description("X (Twitter) API v2")
            .host("api.x.com")
            .secret(
                "X_BEARER_TOKEN",
                "secret",
                "bearer token of your app from https://developer.x.com/en/portal/dashboard (Keys and tokens)",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(X);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAbCdEfGhIjKlMnOpQrStUvWxYz0123456789%3DAbCdEfGhIj";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = X::inject(Request::new("GET", "api.x.com", "/2/dm_conversations"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
