//! Property tests of the path normaliser: whatever a caller writes after a
//! capability's prefix, a path that passes is still under that prefix; a
//! normal path normalises to itself; and what is sent (the encoded form)
//! reads back as exactly what was checked.

use proptest::prelude::*;

use super::*;

/// Path prefixes as manifests write them.
const PREFIXES: &[&str] = &["/v1/models", "/v1/", "/repos", "/1/members/me", "/bot", "/"];

/// Pieces a hostile caller strings together, encoded and not.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just("%2f".to_string()),
        Just("%5C".to_string()),
        Just("%25".to_string()),
        Just(";".to_string()),
        Just("?".to_string()),
        Just("#".to_string()),
        Just("&a=b".to_string()),
        Just("\u{FF0E}".to_string()),
        Just("\\".to_string()),
        "[a-zA-Z0-9 _~+-]{1,6}",
        any::<String>(),
    ]
}

fn tail() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..10).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_outside_its_prefix(which in 0..PREFIXES.len(), tail in tail()) {
        let prefix = PREFIXES[which];
        let raw = if prefix.ends_with('/') { format!("{prefix}{tail}") } else { format!("{prefix}/{tail}") };
        if let Ok(path) = normalise(&raw) {
            prop_assert!(under_prefix(&path.decoded, prefix), "{raw:?} -> {path:?} left {prefix}");
            prop_assert!(!path.decoded.split('/').any(|s| s == ".." || s == "."), "{path:?}");
        }
    }

    #[test]
    fn idempotent(raw in tail()) {
        if let Ok(path) = normalise(&format!("/{raw}")) {
            let again = normalise(&path.encoded).expect("a normal path passes again");
            prop_assert_eq!(&again.decoded, &path.decoded);
            prop_assert_eq!(&again.encoded, &path.encoded);
        }
    }

    #[test]
    fn siblings_never_match(name in "[a-z0-9._-]{1,8}") {
        let sibling = format!("/v1/models{name}");
        prop_assert!(!under_prefix(&sibling, "/v1/models"), "{}", sibling);
    }
}
