//! The Plaid provider: a client id and a secret, sent as the
//! `PLAID-CLIENT-ID` and `PLAID-SECRET` headers.

use aivault_sdk::prelude::*;

struct Plaid;

/// `(id, description, methods, path prefixes)` of every production.plaid.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("plaid/accounts", "Accounts and balances", &["POST"], &["/accounts"]),
    ("plaid/assets", "Asset reports", &["GET", "POST"], &["/asset_report"]),
    ("plaid/auth", "Account and routing numbers (Auth)", &["POST"], &["/auth"]),
    ("plaid/categories", "Transaction categories", &["POST"], &["/categories"]),
    ("plaid/identity", "Account holder identity", &["POST"], &["/identity"]),
    ("plaid/institutions", "Institutions", &["POST"], &["/institutions"]),
    ("plaid/investments", "Investment holdings and transactions", &["POST"], &["/investments"]),
    ("plaid/investments-sync", "Investment holdings of an Item", &["POST"], &["/investments/holdings/get"]),
    (
        "plaid/item-public-token-exchange",
        "Exchange a public token for an access token",
        &["POST"],
        &["/item/public_token/exchange"],
    ),
    ("plaid/item-remove", "Remove an Item", &["POST"], &["/item/remove"]),
    ("plaid/items", "Items: read, update, exchange tokens, remove", &["POST"], &["/item"]),
    (
        "plaid/liabilities",
        "Liabilities: credit cards, student loans, mortgages",
        &["POST"],
        &["/liabilities"],
    ),
    ("plaid/liabilities-sync", "Liabilities of an Item", &["POST"], &["/liabilities/get"]),
    ("plaid/link-token", "Link tokens: create and read", &["POST"], &["/link/token"]),
    ("plaid/link-token-create", "Create a Link token", &["POST"], &["/link/token/create"]),
    ("plaid/link-token-update", "Create a Link token for update mode", &["POST"], &["/link/token/create"]),
    ("plaid/statements", "Bank statements", &["GET", "POST"], &["/statements"]),
    ("plaid/transactions", "Transactions: sync, get, refresh", &["POST"], &["/transactions"]),
];

impl Provider for Plaid {
    fn describe() -> Manifest {
        Manifest::new("plaid", env!("CARGO_PKG_VERSION"))
            .description("Plaid API (production)")
            .host("production.plaid.com")
            .secret(
                "PLAID_CLIENT_ID",
                "client_id",
                "client ID from https://dashboard.plaid.com/developers/keys",
            )
            .secret(
                "PLAID_SECRET",
                "secret",
                "production secret from https://dashboard.plaid.com/developers/keys",
            )
            .auth(Auth::headers(&[("plaid-client-id", "{{client_id}}"), ("plaid-secret", "{{secret}}")]))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Plaid);

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_ID: &str = "0123456789abcdef01234567";
    const SECRET: &str = "fedcba9876543210fedcba98765432";

    // Each secret goes in its own header.
    #[test]
    fn injects_both_headers() {
        let secrets =
            Secrets::from_pairs([("client_id".into(), CLIENT_ID.into()), ("secret".into(), SECRET.into())]);
        let out = Plaid::inject(Request::new("POST", "production.plaid.com", "/accounts"), &secrets).unwrap();
        assert_eq!(out.header("plaid-client-id"), Some(CLIENT_ID));
        assert_eq!(out.header("plaid-secret"), Some(SECRET));
    }
}
