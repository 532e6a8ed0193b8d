//! The Google Places provider: an API key for the Places API (New) in the
//! `x-goog-api-key` header. Text search and details also need the caller's
//! `X-Goog-FieldMask` header, whose value is the caller's choice.

use aivault_sdk::prelude::*;

struct GooglePlaces;

/// `(id, description, methods, path prefixes)` of every places.googleapis.com capability.
const CAPABILITIES: &[(&str, &str, &[&str], &[&str])] = &[
    ("google-places/autocomplete", "Autocomplete place predictions", &["POST"], &["/v1/places:autocomplete"]),
    ("google-places/details", "Place details and photos", &["GET"], &["/v1/places"]),
    ("google-places/search-text", "Search places by text", &["POST"], &["/v1/places:searchText"]),
];

impl Provider for GooglePlaces {
    fn describe() -> Manifest {
        Manifest::new("google-places", env!("CARGO_PKG_VERSION"))
            .description("Google Places API (New)")
            .host("places.googleapis.com")
            .secret(
                "GOOGLE_PLACES_API_KEY",
                "secret",
                "API key for the Places API (New), from https://console.cloud.google.com/apis/credentials",
            )
            .auth(Auth::header("x-goog-api-key", "{{secret}}"))
            .capabilities(CAPABILITIES)
    }
}

aivault_sdk::export_provider!(GooglePlaces);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AIzaSyB0123456789abcdefghijklmnopqrstu";

    // The secret goes in the `x-goog-api-key` header.
    #[test]
    fn injects_key_header() {
        let secrets = Secrets::from_pairs([("secret".into(), SECRET.into())]);
        let out = GooglePlaces::inject(
            Request::new("POST", "places.googleapis.com", "/v1/places:autocomplete"),
            &secrets,
        )
        .unwrap();
        assert_eq!(out.header("x-goog-api-key"), Some(SECRET));
    }
}
