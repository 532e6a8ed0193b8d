//! The Vercel provider: an access token for the Vercel REST API, sent as a
//! bearer token.

use aivault_sdk::prelude::*;

struct Vercel;

/// `(id, description, methods, path prefixes)` of every api.vercel.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("vercel/deployments", "Create and read deployments", &["GET", "POST"], &["/v13/deployments"]),
    ("vercel/files", "Upload deployment files", &["POST"], &["/v2/files"]),
    ("vercel/projects", "Projects", &["GET", "PATCH", "POST"], &["/v9/projects"]),
    ("vercel/teams", "Teams", &["GET"], &["/v2/teams"]),
    ("vercel/user", "The current user", &["GET"], &["/v2/user"]),
];

impl Provider for Vercel {
    fn describe() -> Manifest {
        Manifest::new("vercel", env!("CARGO_PKG_VERSION"))
            .description("Vercel REST API")
            .host("api.vercel.com")
            .secret("VERCEL_TOKEN", "secret", "access token from https://vercel.com/account/settings/tokens")
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Vercel);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AbCdEfGhIjKlMnOpQrStUvWx";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            Vercel::inject(Request::new("GET", "api.vercel.com", "/v13/deployments"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
