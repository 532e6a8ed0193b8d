//! Google Calendar. Google's APIs take short-lived OAuth2 access tokens:
//! the vault holds the OAuth client and its refresh token as one JSON
//! secret, the aivault host exchanges them at Google's token endpoint
//! (`oauth2.googleapis.com/token`) when the access token is missing or
//! expired (or refused with a 401), and requests carry the access token as
//! a bearer token. The component never sees the network.

use aivault_sdk::prelude::*;
use aivault_sdk::refresh::validate_oauth2_json;

struct GoogleCalendar;

const TOKEN_HOST: &str = "oauth2.googleapis.com";
const API_HOST: &str = "www.googleapis.com";

/// `(id, description, methods, path prefixes)` of every capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "google-calendar/events",
        "Events of the user's calendars",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &["/calendar/v3/calendars/"],
    ),
    (
        "google-calendar/lists",
        "The user's calendar list and settings",
        &["GET"],
        &["/calendar/v3/users/me/calendarList", "/calendar/v3/users/me/settings"],
    ),
];

impl Provider for GoogleCalendar {
    fn describe() -> Manifest {
        CAPABILITIES.iter().fold(
            Manifest::new("google-calendar", env!("CARGO_PKG_VERSION"))
                .description("Google Calendar API (OAuth2; aivault refreshes the access token)")
                .host(TOKEN_HOST)
                .host(API_HOST)
                .secret(
                    "GOOGLE_CALENDAR_OAUTH",
                    "secret",
                    "JSON {client_id, client_secret, refresh_token} of an OAuth client from the Google Cloud console",
                )
                .auth(Auth::bearer("access_token"))
                .refresh(Refresh::oauth2_json("secret", TOKEN_HOST, "/token")),
            // Each capability names its API host, so none reaches the token endpoint.
            |manifest, (id, description, methods, prefixes)| {
                manifest.capability(
                    Capability::new(*id, *description).methods(methods).prefixes(prefixes).host(API_HOST),
                )
            },
        )
    }

    fn validate_secret(_name: &str, value: &str) -> Result<(), SecretError> {
        validate_oauth2_json(value)
    }
}

aivault_sdk::export_provider!(GoogleCalendar);

#[cfg(test)]
mod tests {
    use super::*;

    // The access token the host derived goes in as a bearer token.
    #[test]
    fn injects_the_derived_access_token() {
        let secrets = Secrets::from_pairs([
            (
                "secret".to_string(),
                r#"{"client_id":"c","client_secret":"s","refresh_token":"r"}"#.to_string(),
            ),
            ("access_token".to_string(), "ya29.a0".to_string()),
        ]);
        let req = Request::new("GET", API_HOST, "/calendar/v3/users/me/calendarList");
        let out = GoogleCalendar::inject(req, &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some("Bearer ya29.a0"));
    }

    // The OAuth JSON must hold the client and the refresh token.
    #[test]
    fn validates_the_oauth_json() {
        let good = r#"{"client_id":"c.apps.googleusercontent.com","client_secret":"GOCSPX-x","refresh_token":"1//0g"}"#;
        assert_eq!(GoogleCalendar::validate_secret("GOOGLE_CALENDAR_OAUTH", good), Ok(()));
        let err =
            GoogleCalendar::validate_secret("GOOGLE_CALENDAR_OAUTH", r#"{"client_id":"c"}"#).unwrap_err();
        assert!(err.to_string().contains("client_secret"), "{err}");
    }
}
