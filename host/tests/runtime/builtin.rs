//! The built-in providers: manifests match the reference registry, and each
//! injects exactly the right authentication.

use std::collections::BTreeMap;

use serde_json::Value;

use aivault::plugins::builtin_components;

use crate::support::{builtin, hosts, request, secrets};

const OPENAI_KEY: &str = "sk-proj-Abc123_def456-GHI789jkl012MNO345pqr678";
const TRELLO_KEY: &str = "0123456789abcdef0123456789abcdef";
const TRELLO_TOKEN: &str = "ATTA89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567F00DBA5E";
const GITHUB_TOKEN: &str = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3sXY";

/// `id -> (sorted methods, prefixes, hosts)`.
type CapabilityTable = BTreeMap<String, (Vec<String>, Vec<String>, Vec<String>)>;

/// The document and capability table of a reference registry file.
fn reference(provider: &str) -> (Value, CapabilityTable) {
    let path = fixtures_dir().join(format!("{provider}.json"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        let mut list: Vec<String> =
            v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        list.sort();
        list
    };
    let caps = doc["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let allow = &c["allow"];
            (
                c["id"].as_str().unwrap().to_string(),
                (strings(&allow["methods"]), strings(&allow["pathPrefixes"]), strings(&allow["hosts"])),
            )
        })
        .collect();
    (doc, caps)
}

/// Reference providers that are deliberately not built in: Telegram is the
/// drop-in example.
const NOT_BUILT_IN: &[&str] = &["telegram"];

fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/registry")
}

fn builtin_names() -> Vec<&'static str> {
    builtin_components().iter().map(|c| c.name).collect()
}

// Every capability of the reference registry, exactly: same ids, methods,
// path prefixes and hosts; the same vault secret names and placeholders;
// and a credential kind for each credential alternative.
#[test]
fn manifests_match_reference_registry() {
    let mut checked = 0;
    for id in builtin_names() {
        if !fixtures_dir().join(format!("{id}.json")).exists() {
            continue;
        }
        checked += 1;
        let manifest = builtin(id).manifest();
        let (doc, expected) = reference(id);
        let actual: BTreeMap<_, _> = manifest
            .capabilities
            .iter()
            .map(|c| {
                let mut methods = c.methods.clone();
                methods.sort();
                let mut prefixes = c.path_prefixes.clone();
                prefixes.sort();
                let mut hosts: Vec<String> = c.hosts.iter().map(|h| h.to_string()).collect();
                hosts.sort();
                (c.id.clone(), (methods, prefixes, hosts))
            })
            .collect();
        assert_eq!(actual, expected, "{id}");
        for (name, placeholder) in doc["vaultSecrets"].as_object().unwrap() {
            let secret = manifest.vault_secret(name).unwrap_or_else(|| panic!("{id} lacks {name}"));
            assert_eq!(secret.placeholder, placeholder.as_str().unwrap(), "{id} {name}");
        }
        for host in doc["hosts"].as_array().unwrap() {
            assert!(manifest.hosts.iter().any(|h| h.as_str() == host.as_str().unwrap()), "{id} {host}");
        }
        // An alternative may be its own kind (fal) or share one with
        // another alternative of the same secrets and hosts (openai's Codex
        // kinds): each capability must be served by a kind that needs
        // exactly the alternative's secrets and reaches its hosts.
        for alternative in doc["credentialAlternatives"].as_array().into_iter().flatten() {
            let secrets: Vec<&str> =
                alternative["vaultSecrets"].as_object().unwrap().keys().map(String::as_str).collect();
            let hosts: Vec<&str> =
                alternative["hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
            for capability in alternative["capabilities"].as_array().unwrap() {
                let capability = capability.as_str().unwrap();
                assert!(
                    manifest.kinds_for_capability(capability).any(|k| {
                        k.secrets.iter().map(String::as_str).eq(secrets.iter().copied())
                            && k.hosts.iter().map(|h| h.as_str()).eq(hosts.iter().copied())
                    }),
                    "{id}: no kind with {secrets:?} on {hosts:?} serves {capability}"
                );
            }
        }
    }
    assert!(checked >= 41, "only {checked} built-ins have a fixture");
}

// Every reference provider with a fixture is built in, except the ones
// deliberately left out, which are not.
#[test]
fn every_fixture_is_built_in() {
    let builtins = builtin_names();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else { continue };
        assert_eq!(builtins.contains(&id), !NOT_BUILT_IN.contains(&id), "{id}");
    }
    for id in NOT_BUILT_IN {
        assert!(!builtins.contains(id), "{id} must not be built in");
    }
}

// The OpenAI API key enables the 17 api.openai.com capabilities the spec's
// "17 capabilities enabled" line counts; the Codex ones need the OAuth JSON.
#[test]
fn openai_api_key_kind_serves_seventeen() {
    let manifest = builtin("openai").manifest();
    let api_key = manifest.credential_kind("api-key").unwrap();
    assert_eq!(api_key.secrets, vec!["OPENAI_API_KEY"]);
    assert_eq!(api_key.capabilities.len(), 17);
    let codex = manifest.credential_kind("codex-oauth").unwrap();
    assert_eq!(codex.secrets, vec!["CODEX_OAUTH_JSON"]);
    assert_eq!(codex.capabilities.len(), 3);
}

// OpenAI: one authorization header added; path, query, body, other headers intact.
#[test]
fn openai_injects_bearer_header() {
    let openai = builtin("openai");
    let req = request("openai/models", "api-key", "GET", "api.openai.com", "/v1/models");
    let out = openai.inject(&req, &secrets(&[("secret", OPENAI_KEY)]), &hosts(openai)).unwrap();
    assert_eq!(
        out.headers,
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("authorization".to_string(), format!("Bearer {OPENAI_KEY}")),
        ]
    );
    assert_eq!(out.query, req.query);
    assert_eq!((out.path.as_str(), out.host.as_str()), ("/v1/models", "api.openai.com"));
    assert_eq!(out.body, req.body);
}

// Codex: two headers from the OAuth JSON and the backend prefix on the path.
#[test]
fn openai_codex_injects_headers_and_prefix() {
    let openai = builtin("openai");
    let json = r#"{"tokens":{"access_token":"eyJhbGciOi.payload.sig","account_id":"acct-42"}}"#;
    let req = request("openai/codex-responses", "codex-oauth", "POST", "chatgpt.com", "/responses");
    let out = openai.inject(&req, &secrets(&[("oauth", json)]), &hosts(openai)).unwrap();
    assert_eq!(out.header("authorization"), Some("Bearer eyJhbGciOi.payload.sig"));
    assert_eq!(out.header("chatgpt-account-id"), Some("acct-42"));
    assert_eq!(out.path, "/backend-api/codex/responses");
}

// Trello: key and token as query parameters, after the caller's; no header.
#[test]
fn trello_injects_query_parameters() {
    let trello = builtin("trello");
    let req = request("trello/cards", "default", "GET", "api.trello.com", "/1/cards/abc");
    let out = trello
        .inject(&req, &secrets(&[("key", TRELLO_KEY), ("token", TRELLO_TOKEN)]), &hosts(trello))
        .unwrap();
    assert_eq!(
        out.query,
        vec![
            ("limit".to_string(), "5".to_string()),
            ("key".to_string(), TRELLO_KEY.to_string()),
            ("token".to_string(), TRELLO_TOKEN.to_string()),
        ]
    );
    assert_eq!(out.headers, req.headers);
}

// GitHub: bearer token plus the User-Agent, JSON Accept and API version
// headers GitHub requires of every client.
#[test]
fn github_injects_bearer_and_client_headers() {
    let github = builtin("github");
    let req = request("github/repos", "default", "GET", "api.github.com", "/repos/o/r");
    let out = github.inject(&req, &secrets(&[("secret", GITHUB_TOKEN)]), &hosts(github)).unwrap();
    let names: Vec<&str> = out.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["content-type", "authorization", "accept", "user-agent", "x-github-api-version"]);
    assert_eq!(out.header("authorization"), Some(format!("Bearer {GITHUB_TOKEN}").as_str()));
    assert_eq!(out.header("accept"), Some("application/vnd.github+json"));
    assert!(out.header("user-agent").unwrap().starts_with("aivault/"));
}

// validate-secret accepts every real format and refuses impossible values
// with a reason that never repeats the value.
#[test]
fn validate_secret_through_the_components() {
    let ok = [
        ("openai", "OPENAI_API_KEY", OPENAI_KEY),
        ("openai", "OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL"),
        ("openai", "CODEX_OAUTH_JSON", r#"{"tokens":{"access_token":"a.b.c","account_id":"x"}}"#),
        ("trello", "TRELLO_API_KEY", TRELLO_KEY),
        ("trello", "TRELLO_TOKEN", TRELLO_TOKEN),
        ("github", "GITHUB_TOKEN", GITHUB_TOKEN),
        (
            "github",
            "GITHUB_TOKEN",
            "github_pat_11AAAAAAA0abcdefghijklmn_opqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        ),
    ];
    for (provider, name, value) in ok {
        builtin(provider).validate_secret(name, value).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let bad = [
        ("openai", "OPENAI_API_KEY", "", "empty"),
        ("openai", "OPENAI_API_KEY", "sk-abc def ghi jkl mno pqr", "whitespace"),
        ("openai", "OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwxyz\n", "line break"),
        ("openai", "OPENAI_API_KEY", "pk-abcdefghijklmnopqrstuvwxyz0123", "starts with \"sk-\""),
        ("openai", "CODEX_OAUTH_JSON", "not-json-at-all", "auth.json"),
        ("trello", "TRELLO_API_KEY", "xyz0123456789abcdef0123456789abcd", "hexadecimal"),
        ("trello", "TRELLO_TOKEN", "ATTAshort", "ATTA"),
        ("github", "GITHUB_TOKEN", "ghp-placeholder-value-xxxxxxxxxxxxxxxxxx", "GitHub token"),
        ("github", "OPENAI_API_KEY", GITHUB_TOKEN, "declares no secret"),
    ];
    for (provider, name, value, why) in bad {
        let err = builtin(provider).validate_secret(name, value).unwrap_err().to_string();
        assert!(err.contains(why), "{name}={value:?}: {err}");
        assert!(value.trim().is_empty() || !err.contains(value.trim()), "message repeats the value: {err}");
        assert!(err.contains(&format!("provider `{provider}`")), "{err}");
    }
}

// Each built-in was built by host/build.rs for this build of aivault and
// reports the contract version it implements.
#[test]
fn builtins_report_version_and_digest() {
    for id in builtin_names() {
        let p = builtin(id);
        assert_eq!(p.wit_version(), "0.2.0");
        assert_eq!(p.digest().len(), 64);
    }
}

// What each built-in's build recorded is what its code says: the embedded
// manifest (used without compiling anything) validates, and equals what
// `describe` returns when the component is compiled and asked now.
#[test]
fn embedded_manifests_are_what_describe_says() {
    let runtime = aivault::plugins::Runtime::new(aivault::plugins::SandboxLimits::default(), None).unwrap();
    let check = |component: &aivault::plugins::BuiltinComponent| {
        let embedded = builtin(component.name);
        embedded.manifest().validate().unwrap_or_else(|e| panic!("{}: {e}", component.name));
        let origin = aivault::plugins::Origin::BuiltIn(component.name);
        let described = runtime.load_fresh(origin, component.bytes).unwrap();
        assert_eq!(embedded.manifest(), described.manifest(), "{}", component.name);
        assert_eq!(embedded.wit_version(), described.wit_version(), "{}", component.name);
    };
    // Compiling all of them is the slow part: on two threads.
    let (even, odd): (Vec<_>, Vec<_>) =
        builtin_components().iter().enumerate().partition(|(i, _)| i % 2 == 0);
    std::thread::scope(|scope| {
        for half in [even, odd] {
            scope.spawn(|| half.into_iter().for_each(|(_, c)| check(c)));
        }
    });
}
