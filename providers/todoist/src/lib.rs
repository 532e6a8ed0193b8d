//! The Todoist provider: an API token for the REST v2 and Sync v9 APIs, sent
//! as a bearer token.

use aivault_sdk::prelude::*;

struct Todoist;

/// `(id, description, methods, path prefixes)` of every api.todoist.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("todoist/comments", "Comments", &["DELETE", "GET", "POST"], &["/rest/v2/comments"]),
    ("todoist/labels", "Labels", &["DELETE", "GET", "POST"], &["/rest/v2/labels"]),
    ("todoist/projects", "Projects", &["DELETE", "GET", "POST"], &["/rest/v2/projects"]),
    ("todoist/sections", "Sections", &["DELETE", "GET", "POST"], &["/rest/v2/sections"]),
    ("todoist/sync", "Sync API: batched reads and commands", &["POST"], &["/sync/v9"]),
    ("todoist/tasks", "Tasks", &["DELETE", "GET", "POST"], &["/rest/v2/tasks"]),
];

impl Provider for Todoist {
    fn describe() -> Manifest {
        Manifest::new("todoist", env!("CARGO_PKG_VERSION"))
            .description("Todoist REST API v2 and Sync API v9")
            .host("api.todoist.com")
            .secret(
                "TODOIST_TOKEN",
                "secret",
                "API token from https://app.todoist.com/app/settings/integrations/developer",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Todoist);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Todoist::inject(Request::new("DELETE", "api.todoist.com", "/rest/v2/comments"), &secrets)
            .unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
