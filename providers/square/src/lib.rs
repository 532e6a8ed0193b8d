//! The Square provider: a production access token, sent as a bearer token.

use aivault_sdk::prelude::*;

struct Square;

/// `(id, description, methods, path prefixes)` of every connect.squareup.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "square/catalog",
        "Catalog items, variations and categories",
        &["DELETE", "GET", "POST", "PUT"],
        &["/v2/catalog"],
    ),
    ("square/customers", "Customers", &["DELETE", "GET", "POST", "PUT"], &["/v2/customers"]),
    ("square/inventory", "Inventory counts and adjustments", &["GET", "POST"], &["/v2/inventory"]),
    ("square/invoices", "Invoices", &["DELETE", "GET", "POST", "PUT"], &["/v2/invoices"]),
    ("square/locations", "Locations", &["GET"], &["/v2/locations"]),
    ("square/orders", "Orders", &["GET", "POST"], &["/v2/orders"]),
    ("square/payments", "Payments", &["GET", "POST"], &["/v2/payments"]),
];

impl Provider for Square {
    fn describe() -> Manifest {
        Manifest::new("square", env!("CARGO_PKG_VERSION"))
            .description("Square API (production)")
            .host("connect.squareup.com")
            .secret(
                "SQUARE_ACCESS_TOKEN",
                "secret",
                "production access token from https://developer.squareup.com/apps (app Credentials)",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Square);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "EAAAl0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefAB";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            Square::inject(Request::new("DELETE", "connect.squareup.com", "/v2/catalog"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
