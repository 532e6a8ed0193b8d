//! The Firecrawl provider: an API key for the Firecrawl v2 API, sent as a
//! bearer token.

use aivault_sdk::prelude::*;

struct Firecrawl;

/// `(id, description, methods, path prefixes)` of every api.firecrawl.dev capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("firecrawl/agent", "Agent: gather data from the web from a prompt", &["GET", "POST"], &["/v2/agent"]),
    (
        "firecrawl/batch-scrape",
        "Scrape many URLs in one job",
        &["DELETE", "GET", "POST"],
        &["/v2/batch/scrape"],
    ),
    ("firecrawl/browser", "Remote browser sessions", &["DELETE", "GET", "POST"], &["/v2/browser"]),
    ("firecrawl/crawl", "Crawl a website", &["DELETE", "GET", "POST"], &["/v2/crawl"]),
    ("firecrawl/map", "List a website's URLs", &["POST"], &["/v2/map"]),
    ("firecrawl/parse", "Parse documents into clean content", &["POST"], &["/v2/parse"]),
    ("firecrawl/scrape", "Scrape one URL", &["POST"], &["/v2/scrape"]),
    ("firecrawl/search", "Search the web and scrape the results", &["POST"], &["/v2/search"]),
    ("firecrawl/support", "Requests to Firecrawl support", &["POST"], &["/v2/support"]),
];

impl Provider for Firecrawl {
    fn describe() -> Manifest {
        Manifest::new("firecrawl", env!("CARGO_PKG_VERSION"))
            .description("Firecrawl web scraping API v2")
            .host("api.firecrawl.dev")
            .secret("FIRECRAWL_API_KEY", "secret", "API key from https://www.firecrawl.dev/app/api-keys")
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Firecrawl);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "fc-0123456789abcdef0123456789abcdef";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Firecrawl::inject(Request::new("GET", "api.firecrawl.dev", "/v2/agent"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
