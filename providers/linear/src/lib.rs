//! The Linear provider, for the GraphQL API on api.linear.app and uploaded
//! files on uploads.linear.app. An OAuth access token goes in as a bearer
//! token; a personal API key (`lin_api_…`) goes in bare, as Linear wants
//! it (it refuses one sent as `Bearer`).

use aivault_sdk::prelude::*;

struct Linear;

const API_HOST: &str = "api.linear.app";
const UPLOADS_HOST: &str = "uploads.linear.app";

impl Provider for Linear {
    fn describe() -> Manifest {
        Manifest::new("linear", env!("CARGO_PKG_VERSION"))
            .description("Linear GraphQL API")
            .host(API_HOST)
            .host(UPLOADS_HOST)
            .secret(
                "LINEAR_API_KEY",
                "secret",
                "OAuth access token or API key from https://linear.app/settings/account/security",
            )
            .auth(Auth::bearer("secret"))
            .capability(
                Capability::new("linear/graphql", "GraphQL API: issues, projects, teams, comments and more")
                    .methods(&["POST"])
                    .prefix("/graphql")
                    .host(API_HOST),
            )
            .capability(
                Capability::new("linear/storage", "Download uploaded files")
                    .methods(&["GET"])
                    .prefix("/")
                    .host(UPLOADS_HOST),
            )
    }

    fn inject(req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        let secret = secrets.get("secret")?;
        if secret.starts_with("lin_api_") {
            return Ok(req.with_header("authorization", secret));
        }
        Self::describe().auth_for(&req.credential_kind)?.apply(req, secrets)
    }
}

aivault_sdk::export_provider!(Linear);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "lin_oauth_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    // A personal API key goes in bare.
    #[test]
    fn injects_api_keys_bare() {
        let key = "lin_api_0123456789abcdef0123456789abcdef01234567";
        let secrets = Secrets::from_pairs([("secret".into(), key.into())]);
        let out = Linear::inject(Request::new("POST", API_HOST, "/graphql"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(key));
    }

    // An OAuth token goes in the authorization header as a bearer token, on both hosts.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        for (method, host, path) in [("POST", API_HOST, "/graphql"), ("GET", UPLOADS_HOST, "/org/file")] {
            let out = Linear::inject(Request::new(method, host, path), &secrets).unwrap();
            assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
        }
    }
}
