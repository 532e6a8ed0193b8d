//! Requests that would mean something else upstream: paths a server reads as
//! traversal after our checks (`..;`, double encoding, Unicode look-alikes)
//! and headers that re-route or re-method a request. Each is refused by the
//! real binary with one line, audited, and never reaches the loopback
//! upstream.

use crate::support::{OPENAI_KEY, Vault};
use crate::upstream::Upstream;

/// Runs each `--path`/`--header` case against `openai/models` and checks
/// the refusal: one line naming `why` once, nothing sent, one
/// `invoke.denied` audit entry per case, the key nowhere.
fn assert_refused(cases: &[(&str, Option<&str>, &str)]) {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let upstream = Upstream::start(&["api.openai.com"]);
    // The same vault serves an ordinary call, so the refusals below are the
    // checks' doing and not a broken setup.
    let (ok, _, err) =
        vault.call(&upstream, &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"]);
    assert!(ok, "{err}");
    assert_eq!(upstream.seen().len(), 1);

    for (path, header, why) in cases {
        let mut args = vec!["invoke", "openai/models", "--method", "GET", "--path", path];
        if let Some(header) = header {
            args.extend(["--header", header]);
        }
        let (ok, out, err) = vault.call(&upstream, &args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches(why).count(), 1, "{args:?} should name the reason once: {err}");
    }
    assert_eq!(upstream.seen().len(), 1, "a refused request reached upstream: {:#?}", upstream.seen());
    let audit = vault.ok(&["audit", "--limit", "1000"]);
    assert_eq!(audit.matches("invoke.denied").count(), cases.len(), "{audit}");
    vault.assert_nowhere(OPENAI_KEY);
}

// A `;` parameter beside a dot is refused: Tomcat and Spring read `..;` as `..`.
#[test]
fn dot_parameters_refused() {
    let why = "has a `;` parameter next to a dot";
    assert_refused(&[
        ("/v1/models/..;/admin", None, why),
        ("/v1/models/.;x/y", None, why),
        ("/v1/models/b.json;jsessionid=1", None, why),
        ("/v1/models/..%3B/admin", None, why),
    ]);
}

// `%25` in the path is refused: a server decoding twice reads `%252e` as `.`.
#[test]
fn double_encoding_refused() {
    let why = "the path contains `%25`";
    assert_refused(&[("/v1/models/%252e%252e/admin", None, why), ("/v1/models/%252f", None, why)]);
}

// Every Unicode look-alike of `.`, `/` or `\` is refused, raw and percent-encoded.
#[test]
fn look_alikes_refused() {
    let chars: &[(char, &str)] = &[
        ('\u{2024}', "U+2024 ONE DOT LEADER, a look-alike of `.`"),
        ('\u{FE52}', "U+FE52 SMALL FULL STOP, a look-alike of `.`"),
        ('\u{FF0E}', "U+FF0E FULLWIDTH FULL STOP, a look-alike of `.`"),
        ('\u{3002}', "U+3002 IDEOGRAPHIC FULL STOP, a look-alike of `.`"),
        ('\u{FF61}', "U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP, a look-alike of `.`"),
        ('\u{2215}', "U+2215 DIVISION SLASH, a look-alike of `/`"),
        ('\u{2044}', "U+2044 FRACTION SLASH, a look-alike of `/`"),
        ('\u{FF0F}', "U+FF0F FULLWIDTH SOLIDUS, a look-alike of `/`"),
        ('\u{29F8}', "U+29F8 BIG SOLIDUS, a look-alike of `/`"),
        ('\u{2571}', "U+2571 BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT, a look-alike of `/`"),
        ('\u{FF3C}', "U+FF3C FULLWIDTH REVERSE SOLIDUS, a look-alike of `\\`"),
        ('\u{FE68}', "U+FE68 SMALL REVERSE SOLIDUS, a look-alike of `\\`"),
        ('\u{2216}', "U+2216 SET MINUS, a look-alike of `\\`"),
        ('\u{29F5}', "U+29F5 REVERSE SOLIDUS OPERATOR, a look-alike of `\\`"),
        ('\u{29F9}', "U+29F9 BIG REVERSE SOLIDUS, a look-alike of `\\`"),
    ];
    let mut paths = Vec::new();
    for (c, why) in chars {
        let encoded: String = c.to_string().bytes().map(|b| format!("%{b:02X}")).collect();
        paths.push((format!("/v1/models/{c}{c}{c}admin"), *why));
        paths.push((format!("/v1/models/x{encoded}{encoded}y"), *why));
    }
    let cases: Vec<(&str, Option<&str>, &str)> =
        paths.iter().map(|(p, why)| (p.as_str(), None, *why)).collect();
    assert_refused(&cases);
}

// Headers that re-route or re-method the request upstream are refused.
#[test]
fn routing_headers_refused() {
    let headers = [
        ("X-HTTP-Method-Override: DELETE", "x-http-method-override"),
        ("x-http-method: DELETE", "x-http-method"),
        ("x-method-override: DELETE", "x-method-override"),
        ("X-Original-URL: /v1/files", "x-original-url"),
        ("x-rewrite-url: /v1/files", "x-rewrite-url"),
        ("Forwarded: host=evil.example.com", "forwarded"),
        ("X-Forwarded-Host: evil.example.com", "x-forwarded-host"),
        ("x-forwarded-for: 127.0.0.1", "x-forwarded-for"),
        ("x-forwarded-proto: http", "x-forwarded-proto"),
        ("x-forwarded-prefix: /admin", "x-forwarded-prefix"),
        ("X-Real-IP: 127.0.0.1", "x-real-ip"),
    ];
    let whys: Vec<String> = headers
        .iter()
        .map(|(_, name)| {
            format!(
                "header `{name}` could re-route or re-method the request upstream; callers may not send it"
            )
        })
        .collect();
    let cases: Vec<(&str, Option<&str>, &str)> =
        headers.iter().zip(&whys).map(|((h, _), why)| ("/v1/models", Some(*h), why.as_str())).collect();
    assert_refused(&cases);
}
