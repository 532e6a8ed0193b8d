//! The Calendly provider: a personal access token (or OAuth access token)
//! for the Calendly API v2, sent as a bearer token.

use aivault_sdk::prelude::*;

struct Calendly;

/// `(id, description, methods, path prefixes)` of every api.calendly.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "calendly/availability",
        "Availability schedules and busy times of users",
        &["GET"],
        &["/user_availability_schedules", "/user_busy_times"],
    ),
    (
        "calendly/event_types",
        "Event types and their available times",
        &["GET"],
        &["/event_type_available_times", "/event_types"],
    ),
    ("calendly/organizations", "Organizations, memberships and invitations", &["GET"], &["/organizations"]),
    ("calendly/routing_forms", "Routing forms and their submissions", &["GET"], &["/routing_forms"]),
    ("calendly/scheduled_events", "Scheduled events and their invitees", &["GET"], &["/scheduled_events"]),
    (
        "calendly/scheduling_links",
        "Single-use scheduling links",
        &["DELETE", "GET", "POST"],
        &["/scheduling_links"],
    ),
    ("calendly/users", "Users, including the current user", &["GET"], &["/users"]),
    ("calendly/webhooks", "Webhook subscriptions", &["DELETE", "GET", "POST"], &["/webhook_subscriptions"]),
];

impl Provider for Calendly {
    fn describe() -> Manifest {
        Manifest::new("calendly", env!("CARGO_PKG_VERSION"))
            .description("Calendly API v2")
            .host("api.calendly.com")
            .secret(
                "CALENDLY_API_KEY",
                "secret",
                "personal access token from https://calendly.com/integrations/api_webhooks",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Calendly);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str =
        "eyJraWQiOiIxY2UxZTEzNjE3ZGNmNzY2YjNjZWJjY2Y4ZGM1YmFmYSIsInR5cCI6IkpXVCJ9.payload.sig";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Calendly::inject(
            Request::new("GET", "api.calendly.com", "/user_availability_schedules"),
            &secrets,
        )
        .unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
