//! The Reddit provider: an OAuth access token for oauth.reddit.com, sent as
//! a bearer token, plus a User-Agent: Reddit throttles or refuses requests
//! without a descriptive one.

use aivault_sdk::prelude::*;

struct Reddit;

/// `(id, description, methods, path prefixes)` of every oauth.reddit.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "reddit/api",
        "Actions: vote, submit, comment, save, subscribe and more",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/api/"],
    ),
    (
        "reddit/content",
        "Listings, posts, comments, subreddits, users, messages and wikis",
        &["GET"],
        &[
            "/about/",
            "/best",
            "/by_id/",
            "/comments/",
            "/controversial",
            "/duplicates/",
            "/hot",
            "/message/",
            "/new",
            "/prefs/",
            "/r/",
            "/rising",
            "/search",
            "/subreddits/",
            "/top",
            "/user/",
            "/users/",
            "/wiki/",
        ],
    ),
];

impl Provider for Reddit {
    fn describe() -> Manifest {
        let auth = Auth::bearer("secret")
            .and(Auth::default_header("user-agent", concat!("aivault/", env!("CARGO_PKG_VERSION"))));
        Manifest::new("reddit", env!("CARGO_PKG_VERSION"))
            .description("Reddit API (OAuth)")
            .host("oauth.reddit.com")
            .secret(
                "REDDIT_TOKEN",
                "secret",
                "OAuth access token of your app from https://www.reddit.com/prefs/apps (valid for an hour)",
            )
            .auth(auth)
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Reddit);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0MnhfMTIzIn0.sig";

    // The token goes in the authorization header as a bearer token, plus the `user-agent` header the API
    // requires.
    #[test]
    fn injects_bearer_token_and_user_agent() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Reddit::inject(Request::new("DELETE", "oauth.reddit.com", "/api/x"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
        assert!(out.header("user-agent").unwrap().starts_with("aivault/"));
    }
}
