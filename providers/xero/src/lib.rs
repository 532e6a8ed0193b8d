//! The Xero provider: an OAuth 2.0 access token for the Xero Accounting API,
//! sent as a bearer token. Access tokens expire after 30 minutes; refreshing
//! them is not part of this provider. Most endpoints also need the caller's
//! `xero-tenant-id` header.

use aivault_sdk::prelude::*;

struct Xero;

/// `(id, description, methods, path prefixes)` of every api.xero.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[(
    "xero/accounting",
    "Invoices, contacts, accounts, payments, reports and more",
    &["DELETE", "GET", "POST", "PUT"],
    &["/api.xro/2.0/"],
)];

impl Provider for Xero {
    fn describe() -> Manifest {
        Manifest::new("xero", env!("CARGO_PKG_VERSION"))
            .description("Xero Accounting API")
            .host("api.xero.com")
            .secret(
                "XERO_TOKEN",
                "secret",
                "OAuth 2.0 access token (valid for 30 minutes) of your app at https://developer.xero.com",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Xero);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjFDQUY4RTY2NzcyRDZEQzAyOEQ2NzI2RkQwMjYxNTgxNTcwRUZDMTkifQ.payload.sig";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Xero::inject(Request::new("DELETE", "api.xero.com", "/api.xro/2.0/x"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
