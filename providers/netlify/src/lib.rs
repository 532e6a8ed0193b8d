//! The Netlify provider: a personal access token for the Netlify API, sent
//! as a bearer token.

use aivault_sdk::prelude::*;

struct Netlify;

/// `(id, description, methods, path prefixes)` of every api.netlify.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "netlify/deploys",
        "Deploys, and the deploys of a site",
        &["GET", "POST"],
        &["/api/v1/deploys", "/api/v1/sites"],
    ),
    ("netlify/sites", "Sites", &["DELETE", "GET", "POST"], &["/api/v1/sites"]),
    ("netlify/user", "The current user", &["GET"], &["/api/v1/user"]),
];

impl Provider for Netlify {
    fn describe() -> Manifest {
        Manifest::new("netlify", env!("CARGO_PKG_VERSION"))
            .description("Netlify API")
            .host("api.netlify.com")
            .secret(
                "NETLIFY_TOKEN",
                "secret",
                "personal access token from https://app.netlify.com/user/applications#personal-access-tokens",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Netlify);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "nfp_0123456789abcdefABCDEF0123456789abcd";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            Netlify::inject(Request::new("GET", "api.netlify.com", "/api/v1/deploys"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
