//! Gmail (and the People API's contacts, which mail clients read).
//! Google's APIs take short-lived OAuth2 access tokens: the vault holds the
//! OAuth client and its refresh token as one JSON secret, the aivault host
//! exchanges them at Google's token endpoint (`oauth2.googleapis.com/token`)
//! when the access token is missing or expired (or refused with a 401), and
//! requests carry the access token as a bearer token.

use aivault_sdk::prelude::*;
use aivault_sdk::refresh::validate_oauth2_json;

struct GoogleGmail;

const TOKEN_HOST: &str = "oauth2.googleapis.com";
const GMAIL_HOST: &str = "gmail.googleapis.com";
const PEOPLE_HOST: &str = "people.googleapis.com";

/// `(id, description, host, methods, path prefixes)` of a capability.
type CapabilityRow =
    (&'static str, &'static str, &'static str, &'static [&'static str], &'static [&'static str]);

/// Every capability.
const CAPABILITIES: &[CapabilityRow] = &[
    (
        "google-gmail/contacts-read",
        "Read the user's contacts (People API)",
        PEOPLE_HOST,
        &["GET"],
        &["/v1/people/me/connections", "/v1/people:searchContacts"],
    ),
    (
        "google-gmail/drafts",
        "Drafts",
        GMAIL_HOST,
        &["DELETE", "GET", "POST", "PUT"],
        &["/gmail/v1/users/me/drafts"],
    ),
    ("google-gmail/labels", "List labels", GMAIL_HOST, &["GET"], &["/gmail/v1/users/me/labels"]),
    (
        "google-gmail/messages-modify",
        "Modify, trash and untrash messages and threads",
        GMAIL_HOST,
        &["POST"],
        &["/gmail/v1/users/me/messages/", "/gmail/v1/users/me/threads/"],
    ),
    (
        "google-gmail/messages-read",
        "Read messages and threads",
        GMAIL_HOST,
        &["GET"],
        &[
            "/gmail/v1/users/me/messages",
            "/gmail/v1/users/me/messages/",
            "/gmail/v1/users/me/threads",
            "/gmail/v1/users/me/threads/",
        ],
    ),
    ("google-gmail/profile", "The mailbox's profile", GMAIL_HOST, &["GET"], &["/gmail/v1/users/me/profile"]),
    ("google-gmail/send", "Send mail", GMAIL_HOST, &["POST"], &["/gmail/v1/users/me/messages/send"]),
];

impl Provider for GoogleGmail {
    fn describe() -> Manifest {
        CAPABILITIES.iter().fold(
            Manifest::new("google-gmail", env!("CARGO_PKG_VERSION"))
                .description("Gmail and contacts (OAuth2; aivault refreshes the access token)")
                .host(TOKEN_HOST)
                .host(GMAIL_HOST)
                .host(PEOPLE_HOST)
                .secret(
                    "GOOGLE_GMAIL_OAUTH",
                    "secret",
                    "JSON {client_id, client_secret, refresh_token} of an OAuth client from the Google Cloud console",
                )
                .auth(Auth::bearer("access_token"))
                .refresh(Refresh::oauth2_json("secret", TOKEN_HOST, "/token")),
            // Each capability names its API host, so none reaches the token endpoint.
            |manifest, (id, description, host, methods, prefixes)| {
                manifest.capability(
                    Capability::new(*id, *description).methods(methods).prefixes(prefixes).host(*host),
                )
            },
        )
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate_oauth2_json(value)
    }
}

aivault_sdk::export_provider!(GoogleGmail);

#[cfg(test)]
mod tests {
    use super::*;

    // The access token the host derived goes in as a bearer token, for
    // Gmail and the People API alike.
    #[test]
    fn injects_the_derived_access_token() {
        let secrets = Secrets::from_pairs([("access_token".to_string(), "ya29.a0".to_string())]);
        for (host, path) in
            [(GMAIL_HOST, "/gmail/v1/users/me/profile"), (PEOPLE_HOST, "/v1/people/me/connections")]
        {
            let out = GoogleGmail::inject(Request::new("GET", host, path), &secrets).unwrap();
            assert_eq!(out.header("authorization"), Some("Bearer ya29.a0"));
        }
    }
}
