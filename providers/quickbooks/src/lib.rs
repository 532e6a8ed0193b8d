//! The QuickBooks provider: an OAuth 2.0 access token for the QuickBooks
//! Online Accounting API, sent as a bearer token. Intuit access tokens
//! expire after an hour; refreshing them is not part of this provider.

use aivault_sdk::prelude::*;

struct QuickBooks;

/// `(id, description, methods, path prefixes)` of every quickbooks.api.intuit.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[(
    "quickbooks/accounting",
    "Entities, queries and reports of a company (realm)",
    &["DELETE", "GET", "POST"],
    &["/v3/company/"],
)];

impl Provider for QuickBooks {
    fn describe() -> Manifest {
        Manifest::new("quickbooks", env!("CARGO_PKG_VERSION"))
            .description("QuickBooks Online Accounting API")
            .host("quickbooks.api.intuit.com")
            .secret(
                "QUICKBOOKS_TOKEN",
                "secret",
                "OAuth 2.0 access token (valid for an hour) of your app at https://developer.intuit.com",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(QuickBooks);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..AbCdEf0123456789.payload.tag";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = QuickBooks::inject(
            Request::new("DELETE", "quickbooks.api.intuit.com", "/v3/company/x"),
            &secrets,
        )
        .unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
