//! The Twilio provider: the Account SID and Auth Token, sent with HTTP basic
//! authentication.

use aivault_sdk::prelude::*;

struct Twilio;

/// `(id, description, methods, path prefixes)` of every api.twilio.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[(
    "twilio/api",
    "Messages, calls, phone numbers and the rest of the 2010-04-01 API",
    &["DELETE", "GET", "POST"],
    &["/2010-04-01"],
)];

impl Provider for Twilio {
    fn describe() -> Manifest {
        Manifest::new("twilio", env!("CARGO_PKG_VERSION"))
            .description("Twilio REST API (2010-04-01)")
            .host("api.twilio.com")
            .secret(
                "TWILIO_ACCOUNT_SID",
                "username",
                "Account SID (AC followed by 32 hexadecimal digits) from https://console.twilio.com",
            )
            .secret("TWILIO_AUTH_TOKEN", "password", "Auth Token from https://console.twilio.com")
            .auth(Auth::basic("{{username}}", "{{password}}"))
            .capabilities(CAPABILITIES)
    }

    fn validate_secret(name: &str, value: &str) -> Result<(), SecretError> {
        validate::token(value)?;
        if name != "TWILIO_ACCOUNT_SID" {
            return Ok(());
        }
        match value.strip_prefix("AC") {
            Some(hex) if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) => Ok(()),
            _ => Err(SecretError::Malformed(
                "a Twilio Account SID is \"AC\" followed by 32 hexadecimal digits".into(),
            )),
        }
    }
}

aivault_sdk::export_provider!(Twilio);

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "fedcba9876543210fedcba9876543210";

    // HTTP basic authentication: base64 of the account SID and auth token.
    #[test]
    fn injects_basic_auth() {
        let secrets =
            Secrets::from_pairs([("username".into(), SID.into()), ("password".into(), TOKEN.into())]);
        let out = Twilio::inject(Request::new("DELETE", "api.twilio.com", "/2010-04-01"), &secrets).unwrap();
        assert_eq!(
            out.header("authorization"),
            Some(
                "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpmZWRjYmE5ODc2NTQzMjEwZmVkY2JhOTg3NjU0MzIxMA=="
            )
        );
    }

    // Account SIDs are "AC" and 32 hex digits; the auth token only needs to be a token.
    #[test]
    fn validates_account_sid() {
        assert_eq!(Twilio::validate_secret("TWILIO_ACCOUNT_SID", SID), Ok(()));
        assert_eq!(Twilio::validate_secret("TWILIO_AUTH_TOKEN", TOKEN), Ok(()));
        for bad in
            ["SK0123456789abcdef0123456789abcdef", "AC0123456789abcdef", "AC0123456789abcdef0123456789abcdeg"]
        {
            assert!(Twilio::validate_secret("TWILIO_ACCOUNT_SID", bad).is_err(), "{bad}");
        }
    }
}
