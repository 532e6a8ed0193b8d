//! The GitHub provider: a personal access, OAuth, app or Actions token as a
//! bearer token, plus the headers the GitHub REST API requires of clients.

use aivault_sdk::prelude::*;

struct GitHub;

/// `(id, description, methods, path prefixes)` of every api.github.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("github/gists", "Gists", &["DELETE", "GET", "PATCH", "POST"], &["/gists"]),
    ("github/graphql", "GraphQL API", &["POST"], &["/graphql"]),
    ("github/issues", "Issues assigned to the user", &["GET"], &["/issues"]),
    (
        "github/meta",
        "Meta, emojis, gitignore and license templates, rate limit",
        &["GET"],
        &["/emojis", "/gitignore", "/licenses", "/meta", "/rate_limit"],
    ),
    ("github/notifications", "Notifications", &["DELETE", "GET", "PATCH", "PUT"], &["/notifications"]),
    (
        "github/orgs",
        "Organizations",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/organizations", "/orgs"],
    ),
    (
        "github/repos",
        "Repositories, their issues, pulls, contents and more",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/repos"],
    ),
    ("github/search", "Search", &["GET"], &["/search"]),
    ("github/users", "The authenticated user and other users", &["GET"], &["/user", "/users"]),
];

/// Token prefixes GitHub issues: classic PAT, OAuth, user-to-server,
/// server-to-server (apps and Actions), refresh, fine-grained PAT.
const TOKEN_PREFIXES: &[&str] = &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"];

impl Provider for GitHub {
    fn describe() -> Manifest {
        let auth = Auth::bearer("secret")
            .and(Auth::default_header("accept", "application/vnd.github+json"))
            .and(Auth::default_header("user-agent", concat!("aivault/", env!("CARGO_PKG_VERSION"))))
            .and(Auth::default_header("x-github-api-version", "2022-11-28"));
        Manifest::new("github", env!("CARGO_PKG_VERSION"))
            .description("GitHub REST and GraphQL API")
            .host("api.github.com")
            .secret(
                "GITHUB_TOKEN",
                "secret",
                "personal access token from https://github.com/settings/tokens, or an app/Actions token",
            )
            .auth(auth)
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        if value.len() == 40 && value.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(()); // a pre-2021 token
        }
        if value.starts_with("github_pat_") {
            return validate::prefixed_token(value, "a fine-grained GitHub token", &["github_pat_"], 50, &[]);
        }
        validate::prefixed_token(value, "a GitHub token", TOKEN_PREFIXES, 40, &[])
    }
}

aivault_sdk::export_provider!(GitHub);

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

    // Bearer auth plus the client headers GitHub requires.
    #[test]
    fn injects_bearer_and_required_headers() {
        let secrets = Secrets::from_pairs([("secret".into(), TOKEN.into())]);
        let out = GitHub::inject(Request::new("GET", "api.github.com", "/user"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert_eq!(out.header("accept"), Some("application/vnd.github+json"));
        assert!(out.header("user-agent").unwrap().starts_with("aivault/"));
        assert_eq!(out.header("x-github-api-version"), Some("2022-11-28"));
    }

    // Every token format GitHub issues is accepted; placeholders are not.
    #[test]
    fn validates_formats() {
        for ok in [
            TOKEN,
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert_eq!(GitHub::validate_secret("GITHUB_TOKEN", ok), Ok(()), "{ok}");
        }
        for bad in ["ghp-...", "ghp_short", "sk-abcdefghijklmnopqrstuvwxyz0123456789AB"] {
            assert!(GitHub::validate_secret("GITHUB_TOKEN", bad).is_err(), "{bad}");
        }
    }
}
