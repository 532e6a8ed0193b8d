//! The Spotify provider: an OAuth access token for the Spotify Web API, sent
//! as a bearer token. Access tokens expire after an hour; refreshing them is
//! not part of this provider.

use aivault_sdk::prelude::*;

struct Spotify;

/// `(id, description, methods, path prefixes)` of every api.spotify.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "spotify/catalog",
        "Catalogue: albums, artists, tracks, shows, episodes, audiobooks, search",
        &["GET"],
        &[
            "/v1/albums",
            "/v1/artists",
            "/v1/audio-analysis",
            "/v1/audio-features",
            "/v1/audiobooks",
            "/v1/browse",
            "/v1/chapters",
            "/v1/episodes",
            "/v1/genres",
            "/v1/markets",
            "/v1/recommendations",
            "/v1/search",
            "/v1/shows",
            "/v1/tracks",
        ],
    ),
    (
        "spotify/me",
        "The current user: profile, library, playback, follows, top items",
        &["DELETE", "GET", "POST", "PUT"],
        &["/v1/me"],
    ),
    ("spotify/playlists", "Playlists and their items", &["DELETE", "GET", "POST", "PUT"], &["/v1/playlists"]),
    ("spotify/users", "User profiles and their playlists", &["GET"], &["/v1/users"]),
];

impl Provider for Spotify {
    fn describe() -> Manifest {
        Manifest::new("spotify", env!("CARGO_PKG_VERSION"))
            .description("Spotify Web API")
            .host("api.spotify.com")
            .secret(
                "SPOTIFY_TOKEN",
                "secret",
                "OAuth access token (valid for an hour) of your app at https://developer.spotify.com",
            )
            .auth(Auth::bearer("secret"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(Spotify);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "BQDAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789";

    // The token goes in the authorization header as a bearer token.
    #[test]
    fn injects_bearer_token() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = Spotify::inject(Request::new("GET", "api.spotify.com", "/v1/albums"), &secrets).unwrap();
        assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
}
