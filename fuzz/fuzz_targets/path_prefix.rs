//! Path normalisation and prefix matching: a path that passes is already
//! normal (normalising it again changes nothing), holds no traversal, and a
//! path written under a prefix is still under it once normalised.
#![no_main]

use aivault::broker::{normalise, under_prefix};
use libfuzzer_sys::fuzz_target;

const PREFIXES: &[&str] = &["/", "/v1/", "/v1/models", "/repos/", "/1/members/me", "/bot", "/api/v2."];

fuzz_target!(|input: (u8, &str)| {
    let (which, suffix) = input;
    let prefix = PREFIXES[which as usize % PREFIXES.len()];
    // Written under the prefix: after it, on a segment boundary.
    let under = if prefix.ends_with('/') { format!("{prefix}{suffix}") } else { format!("{prefix}/{suffix}") };
    for raw in [suffix.to_string(), format!("{prefix}{suffix}"), under.clone()] {
        let Ok(path) = normalise(&raw) else { continue };
        assert!(path.decoded.starts_with('/'), "{raw:?} -> {path:?}");
        assert!(
            !path.decoded.split('/').any(|s| s == ".." || s == "."),
            "{raw:?} normalised to a dot segment: {path:?}"
        );
        let again = normalise(&path.encoded).unwrap_or_else(|e| panic!("{raw:?} -> {path:?} refused again: {e}"));
        assert_eq!((&again.decoded, &again.encoded), (&path.decoded, &path.encoded), "{raw:?}");
        if raw == under {
            assert!(under_prefix(&path.decoded, prefix), "{raw:?} left {prefix}: {path:?}");
        }
        // Matching is on segment boundaries: a sibling never matches.
        if under_prefix(&path.decoded, "/v1/models") {
            assert!(path.decoded == "/v1/models" || path.decoded.starts_with("/v1/models/"), "{path:?}");
        }
    }
});
