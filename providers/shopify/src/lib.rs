//! The Shopify provider: an Admin API access token in the
//! `X-Shopify-Access-Token` header.

use aivault_sdk::prelude::*;

struct Shopify;

/// `(id, description, methods, path prefixes)` of every myshopify.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] =
    &[("shopify/admin", "Admin REST and GraphQL API", &["DELETE", "GET", "POST", "PUT"], &["/admin/api/"])];

impl Provider for Shopify {
    fn describe() -> Manifest {
        Manifest::new("shopify", env!("CARGO_PKG_VERSION"))
            .description("Shopify Admin API")
            .host("myshopify.com")
            .secret(
                "SHOPIFY_ACCESS_TOKEN",
                "secret",
                "Admin API access token of a custom app (Shopify admin: Settings, Apps, Develop apps)",
            )
            .auth(Auth::header("x-shopify-access-token", "{{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Shopify);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "shpat_0123456789abcdef0123456789abcdef";

    // The secret goes in the `X-Shopify-Access-Token` header.
    #[test]
    fn injects_key_header() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Shopify::inject(Request::new("DELETE", "myshopify.com", "/admin/api/x"), &secrets).unwrap();
        assert_eq!(out.header("x-shopify-access-token"), Some(SECRET));
    }
}
