//! The Intercom provider: an access token for the Intercom REST API, sent as
//! a bearer token.

use aivault_sdk::prelude::*;

struct Intercom;

/// `(id, description, methods, path prefixes)` of every api.intercom.io capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("intercom/admins", "Admins and the current admin", &["GET", "PUT"], &["/admins", "/me"]),
    ("intercom/articles", "Help center articles", &["DELETE", "GET", "POST", "PUT"], &["/articles"]),
    (
        "intercom/contacts",
        "Contacts and companies",
        &["DELETE", "GET", "POST", "PUT"],
        &["/companies/", "/contacts"],
    ),
    (
        "intercom/conversations",
        "Conversations: read, reply, assign, close, search",
        &["GET", "POST", "PUT"],
        &["/conversations"],
    ),
    ("intercom/data_attributes", "Data attributes", &["GET", "POST", "PUT"], &["/data_attributes"]),
    (
        "intercom/help_center",
        "Help centers and collections",
        &["DELETE", "GET", "POST", "PUT"],
        &["/help_center"],
    ),
    ("intercom/messages", "Send messages", &["GET", "POST"], &["/messages"]),
    ("intercom/segments", "Segments", &["GET"], &["/segments"]),
    ("intercom/tags", "Tags", &["DELETE", "GET", "POST", "PUT"], &["/tags"]),
    ("intercom/teams", "Teams", &["GET"], &["/teams"]),
    ("intercom/tickets", "Tickets", &["GET", "POST", "PUT"], &["/tickets"]),
];

impl Provider for Intercom {
    fn describe() -> Manifest {
        Manifest::new("intercom", env!("CARGO_PKG_VERSION"))
            .description("Intercom REST API")
            .host("api.intercom.io")
            .secret(
                "INTERCOM_TOKEN",
                "secret",
                "access token from your app's Authentication page in the Intercom Developer Hub",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Intercom);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "dG9rOjAxMjM0NTY3Xzg5YWJfY2RlZl8wMTIzXzQ1Njc4OWFiY2RlZjoxOjA=";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Intercom::inject(Request::new("GET", "api.intercom.io", "/admins"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
