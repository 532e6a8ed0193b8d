//! The HubSpot provider: a private app (or OAuth) access token, sent as a
//! bearer token.

use aivault_sdk::prelude::*;

struct HubSpot;

/// `(id, description, methods, path prefixes)` of every api.hubapi.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("hubspot/account", "Account details and API usage", &["GET"], &["/account-info/v3/"]),
    (
        "hubspot/automation",
        "Workflows and custom workflow actions",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/automation/v4/"],
    ),
    (
        "hubspot/cms",
        "CMS: blogs, pages, HubDB, domains, redirects and source code",
        &["DELETE", "GET", "PATCH", "POST", "PUT"],
        &[
            "/cms/v3/blogs/",
            "/cms/v3/domains/",
            "/cms/v3/hubdb/",
            "/cms/v3/pages/",
            "/cms/v3/site-pages/",
            "/cms/v3/source-code/",
            "/cms/v3/url-redirects/",
        ],
    ),
    (
        "hubspot/conversations",
        "Conversations inbox: threads and messages",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/conversations/v3/"],
    ),
    (
        "hubspot/crm-associations",
        "Associations between CRM records",
        &["DELETE", "GET", "POST", "PUT"],
        &["/crm/v4/associations/", "/crm/v4/objects/"],
    ),
    ("hubspot/crm-object-library", "Which CRM objects are enabled", &["GET"], &["/crm/v3/object-library/"]),
    (
        "hubspot/crm-objects",
        "CRM records: contacts, companies, deals, tickets and more",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/crm/v3/objects/"],
    ),
    (
        "hubspot/crm-pipelines",
        "Deal and ticket pipelines",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/crm/v3/pipelines/"],
    ),
    (
        "hubspot/crm-properties",
        "CRM object properties",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/crm/v3/properties/"],
    ),
    (
        "hubspot/events",
        "Custom events and their occurrences",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/events/v3/"],
    ),
    ("hubspot/files", "File manager", &["DELETE", "GET", "POST"], &["/files/v3/"]),
    (
        "hubspot/marketing",
        "Marketing: campaigns, emails, forms, events, transactional email",
        &["DELETE", "GET", "PATCH", "POST"],
        &[
            "/marketing/v3/campaigns/",
            "/marketing/v3/email/",
            "/marketing/v3/forms/",
            "/marketing/v3/marketing-events/",
            "/marketing/v3/transactional/",
        ],
    ),
    (
        "hubspot/settings",
        "Business units and users",
        &["DELETE", "GET", "PATCH", "POST"],
        &["/settings/v3/business-units/", "/settings/v3/users/"],
    ),
];

impl Provider for HubSpot {
    fn describe() -> Manifest {
        Manifest::new("hubspot", env!("CARGO_PKG_VERSION"))
            .description("HubSpot API")
            .host("api.hubapi.com")
            .secret(
                "HUBSPOT_TOKEN",
                "secret",
                "private app token (HubSpot Settings, Integrations, Private Apps) or OAuth access token",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(HubSpot);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "pat-na1-01234567-89ab-cdef-0123-456789abcdef";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            HubSpot::inject(Request::new("GET", "api.hubapi.com", "/account-info/v3/x"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
