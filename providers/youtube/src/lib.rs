//! The YouTube provider: a Google API key for the YouTube Data API v3, sent
//! as the `key` query parameter. An API key reads public data; writes need
//! OAuth, which this provider does not do.

use aivault_sdk::prelude::*;

struct YouTube;

/// `(id, description, methods, path prefixes)` of every www.googleapis.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("youtube/captions", "Caption tracks", &["DELETE", "GET", "POST", "PUT"], &["/youtube/v3/captions"]),
    (
        "youtube/channels",
        "Channels, channel sections and banners",
        &["GET", "PUT"],
        &["/youtube/v3/channelBanners", "/youtube/v3/channelSections", "/youtube/v3/channels"],
    ),
    (
        "youtube/comments",
        "Comments and comment threads",
        &["DELETE", "GET", "POST", "PUT"],
        &["/youtube/v3/commentThreads", "/youtube/v3/comments"],
    ),
    (
        "youtube/playlists",
        "Playlists and their items",
        &["DELETE", "GET", "POST", "PUT"],
        &["/youtube/v3/playlistItems", "/youtube/v3/playlists"],
    ),
    ("youtube/search", "Search videos, channels and playlists", &["GET"], &["/youtube/v3/search"]),
    ("youtube/subscriptions", "Subscriptions", &["DELETE", "GET", "POST"], &["/youtube/v3/subscriptions"]),
    ("youtube/videos", "Videos", &["DELETE", "GET", "POST", "PUT"], &["/youtube/v3/videos"]),
];

impl Provider for YouTube {
    fn describe() -> Manifest {
        Manifest::new("youtube", env!("CARGO_PKG_VERSION"))
            .description("YouTube Data API v3 (API key)")
            .host("www.googleapis.com")
            .secret(
                "YOUTUBE_API_KEY",
                "secret",
                "API key for the YouTube Data API v3, from https://console.cloud.google.com/apis/credentials",
            )
            .auth(Auth::query_param("key", "{{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(YouTube);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AIzaSyC0123456789abcdefghijklmnopqrstu";

    // The secret goes in the `key` query parameter, nothing in headers.
    #[test]
    fn injects_key_query_parameter() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out =
            YouTube::inject(Request::new("DELETE", "www.googleapis.com", "/youtube/v3/captions"), &secrets)
                .unwrap();
        assert_eq!(out.query_value("key"), Some(SECRET));
        assert!(out.headers.is_empty());
    }
}
