//! A component that tries to smuggle its secret out through the text the
//! host shows: no form of the secret (raw, any case, reversed, percent-,
//! base64- or hex-encoded, or as a header name) survives into an error,
//! and each error still says what went wrong.

use aivault::plugins::{Plugin, PluginError};
use aivault::redact::MARKER;
use aivault_test_artifacts as artifacts;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::support::{hosts, load_test_component, request, secrets};

/// Has `+` and `/` (which encodings escape) and mixed case.
const SECRET: &str = "Leaky-Secret+Value/0123456789";

/// A secret that is also a valid header name, so only the rule the test
/// picks (not the name's syntax) makes the host refuse the header.
const TOKEN_SECRET: &str = "Leaky-Secret-Token-0123456789";

/// An OAuth-style secret: the component leaks one field of it.
const JSON_SECRET: &str =
    r#"{"access_token":"ya29.Leaky-Access-Token-0123","refresh_token":"1//Leaky-Refresh-0123"}"#;

fn leaky() -> Plugin {
    load_test_component(artifacts::LEAKY).unwrap()
}

/// Every way the component writes `value`, plus the same as the host would
/// encode it, in full.
fn disguises(value: &str) -> Vec<String> {
    let reversed: String = value.chars().rev().collect();
    let mut all = Vec::new();
    for v in [value.to_string(), value.to_lowercase(), value.to_uppercase(), reversed] {
        let percent: String = v
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let percent_all: String = v.bytes().map(|b| format!("%{b:02X}")).collect();
        all.extend([STANDARD.encode(&v), URL_SAFE_NO_PAD.encode(&v), STANDARD.encode(format!("user:{v}"))]);
        all.extend([percent, percent_all, hex::encode(&v), v]);
    }
    all
}

/// A 12-character stretch of some disguise of `value` found in `message`,
/// ignoring case (so a fragment left beside a marker counts).
fn trace(message: &str, value: &str) -> Option<String> {
    let lower = message.to_lowercase();
    disguises(value).into_iter().find_map(|form| {
        let chars: Vec<char> = form.to_lowercase().chars().collect();
        chars.windows(12).map(|w| w.iter().collect::<String>()).find(|piece| lower.contains(piece))
    })
}

fn assert_no_trace(message: &str, value: &str) {
    if let Some(piece) = trace(message, value) {
        panic!("`{piece}` of a disguised secret leaked: {message}");
    }
}

/// Calls `inject` on the path that selects a leak and returns the error.
fn provoke(path: &str, secret: &str) -> PluginError {
    let leaky = leaky();
    let req = request("leaky/any", "default", "GET", "api.leaky.test", path);
    let err = leaky.inject(&req, &secrets(&[("secret", secret)]), &hosts(&leaky)).expect_err(path);
    let message = err.to_string();
    assert!(message.contains("provider `leaky` 0.1.0"), "{path}: {message}");
    assert_eq!(message.lines().count(), 1, "{path}: {message}");
    assert_no_trace(&message, secret);
    err
}

// The leak checks can fail: unredacted, the component's text carries the secret.
#[test]
fn the_check_sees_an_unredacted_leak() {
    let reversed: String = SECRET.chars().rev().collect();
    assert!(trace(&format!("key {reversed} is revoked"), SECRET).is_some());
    let basic = STANDARD.encode(format!("user:{SECRET}"));
    assert!(trace(&format!("tried Basic {}[REDACTED]", &basic[..14]), SECRET).is_some());
    assert!(trace(&format!("tried Basic {}[REDACTED]", &basic[..8]), SECRET).is_none());
}

// An inject error disguising the secret (reversed, any case, percent-,
// base64-encoded at any alignment) is shown redacted, and keeps its words.
#[test]
fn inject_errors_lose_every_disguise() {
    let cases = [
        ("/reversed", "is revoked"),
        ("/upper", "is malformed"),
        ("/lower", "is malformed"),
        ("/percent", "see /keys?k="),
        ("/percent-all", "see /keys?k="),
        ("/base64", "tried"),
        ("/base64-basic", "tried Basic"),
        ("/base64-url", "tried"),
        ("/missing", "was not supplied"),
    ];
    for (path, words) in cases {
        let err = provoke(path, SECRET);
        assert!(matches!(err, PluginError::InjectFailed { .. }), "{path}: {err}");
        let message = err.to_string();
        assert!(message.contains("could not authenticate the request"), "{path}: {message}");
        assert!(message.contains(words) && message.contains(MARKER), "{path}: {message}");
    }
}

// A field of a JSON secret used alone is redacted like the secret itself.
#[test]
fn json_secret_field_is_redacted() {
    let err = provoke("/json-field", JSON_SECRET);
    let message = err.to_string();
    assert!(message.contains("has expired") && message.contains(MARKER), "{message}");
    assert_no_trace(&message, "ya29.Leaky-Access-Token-0123");
}

// A refused header whose name is the secret is described, never named.
#[test]
fn header_named_after_the_secret_is_not_echoed() {
    let cases = [
        ("/header-name-crlf", "a header whose value contains CR, LF or NUL"),
        ("/header-name-long", "a header whose name and value exceed"),
        ("/header-name-invalid", "a header whose name is not a valid HTTP token"),
        ("/header-name-proxy", "the `proxy-*` header, which only the HTTP client may set"),
    ];
    for (path, why) in cases {
        let err = provoke(path, TOKEN_SECRET);
        assert!(matches!(err, PluginError::InjectRefused { .. }), "{path}: {err}");
        assert!(err.to_string().contains(why), "{path}: {err}");
    }
}

// A value derived from the secret (unknowable to a redactor) in a refused
// request is not quoted either.
#[test]
fn derived_value_is_not_echoed() {
    let derived = {
        let hash = SECRET
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        format!("d{hash:016x}")
    };
    let err = provoke("/derived-host", SECRET);
    let message = err.to_string();
    assert!(message.contains("changed the host from `api.leaky.test`"), "{message}");
    assert!(!message.contains(&derived), "{message}");
}

// `validate-secret` echoing the value reversed or upper-cased is redacted,
// and the refusal still names the secret and the provider's complaint.
#[test]
fn validate_secret_echo_is_redacted() {
    let leaky = leaky();
    for name in ["LEAKY_KEY", "LEAKY_TOKEN"] {
        let err = leaky.validate_secret(name, SECRET).unwrap_err();
        assert!(matches!(err, PluginError::SecretRejected { .. }), "{name}: {err}");
        let message = err.to_string();
        assert!(message.contains(&format!("refused the value of {name}")), "{message}");
        assert!(message.contains("does not look right") && message.contains(MARKER), "{message}");
        assert_no_trace(&message, SECRET);
    }
}
