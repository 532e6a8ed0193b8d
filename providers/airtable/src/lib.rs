//! The Airtable provider: a personal access token for the Airtable Web API,
//! sent as a bearer token.

use aivault_sdk::prelude::*;

struct Airtable;

/// `(id, description, methods, path prefixes)` of every api.airtable.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "airtable/meta",
        "Base schemas: bases, tables and fields",
        &["GET", "PATCH", "POST"],
        &["/v0/meta/bases"],
    ),
    (
        "airtable/records",
        "Records of any table: list, read, create, update, delete",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/v0/"],
    ),
    ("airtable/webhooks", "Webhooks on bases", &["DELETE", "GET", "PATCH", "POST"], &["/v0/bases"]),
];

impl Provider for Airtable {
    fn describe() -> Manifest {
        Manifest::new("airtable", env!("CARGO_PKG_VERSION"))
            .description("Airtable Web API")
            .host("api.airtable.com")
            .secret(
                "AIRTABLE_API_KEY",
                "secret",
                "personal access token from https://airtable.com/create/tokens",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Airtable);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "patAbCdEfGh123456.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            Airtable::inject(Request::new("GET", "api.airtable.com", "/v0/meta/bases"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
