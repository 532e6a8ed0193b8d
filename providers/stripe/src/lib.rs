//! The Stripe provider: a secret or restricted key, sent as a bearer token.
//! Every capability is read only.

use aivault_sdk::prelude::*;

struct Stripe;

/// `(id, description, methods, path prefixes)` of every api.stripe.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "stripe/billing",
        "Invoices, prices, products and subscriptions",
        &["GET"],
        &["/v1/invoices", "/v1/prices", "/v1/products", "/v1/subscriptions"],
    ),
    ("stripe/customers", "Customers", &["GET"], &["/v1/customers"]),
    ("stripe/disputes", "Disputes and payouts", &["GET"], &["/v1/disputes", "/v1/payouts"]),
    (
        "stripe/payments",
        "Charges, payment intents, refunds and balance transactions",
        &["GET"],
        &["/v1/balance_transactions", "/v1/charges", "/v1/payment_intents", "/v1/refunds"],
    ),
];

impl Provider for Stripe {
    fn describe() -> Manifest {
        Manifest::new("stripe", env!("CARGO_PKG_VERSION"))
            .description("Stripe API (read only)")
            .host("api.stripe.com")
            .secret(
                "STRIPE_API_KEY",
                "secret",
                "secret (sk_) or restricted (rk_) key from https://dashboard.stripe.com/apikeys",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate::prefixed_token(
            value,
            "a Stripe secret or restricted key",
            &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
            20,
            &[],
        )
    }
}

aivault_sdk::export_provider!(Stripe);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Stripe::inject(Request::new("GET", "api.stripe.com", "/v1/invoices"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }

    // Real key formats pass; values of another shape do not.
    #[test]
    fn validates_format() {
        for ok in [SECRET, "rk_live_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGh"] {
            assert_eq!(Stripe::validate_secret("STRIPE_API_KEY", ok), Ok(()), "{ok}");
        }
        for bad in ["pk_live_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "sk_test_short"] {
            assert!(Stripe::validate_secret("STRIPE_API_KEY", bad).is_err(), "{bad}");
        }
    }
}
