//! Every built-in provider end to end, driven by its reference registry
//! file: with a value of valid shape stored under each reference secret
//! name, invoking the provider's first capability delivers exactly the
//! authentication the reference declares to the loopback upstream, and no
//! value is left anywhere in the vault directory or the output.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::support::{GITHUB_TOKEN, OPENAI_KEY, TRELLO_KEY, TRELLO_TOKEN, Vault};
use crate::upstream::Upstream;

/// Values for the secrets whose provider checks their shape; every other
/// secret gets a generic token (see [`value_for`]).
const SHAPED: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", OPENAI_KEY),
    ("TRELLO_API_KEY", TRELLO_KEY),
    ("TRELLO_TOKEN", TRELLO_TOKEN),
    ("GITHUB_TOKEN", GITHUB_TOKEN),
    ("ANTHROPIC_API_KEY", "sk-ant-api03-T3stOnlyKeyAbcdefGhijklMnopqrStuvwx0123456789-AbCdEfAA"),
    ("NOTION_TOKEN", "ntn_T3stOnly0123456789AbcdefGhijklMnopqrStuvwxYz01"),
    ("OPENROUTER_API_KEY", "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("REPLICATE_API_TOKEN", "r8_T3stOnlyAbcdefGhijklMnopqrStuvwx012345"),
    ("SENDGRID_API_KEY", "SG.T3stOnlyAbcdefGhijklMn.T3stOnlyAbcdefGhijklMnopqrStuvwx0123456789ab"),
    ("SLACK_BOT_TOKEN", "xoxb-1234567890123-1234567890123-T3stOnlyAbcdefGhijklMnop"),
    ("STRIPE_API_KEY", "sk_test_T3stOnlyAbcdefGhijklMnopqr"),
    ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
];

/// Basic-auth users the reference leaves implicit: it declares only the
/// password secret, and the API documents a fixed user name.
const BASIC_USERS: &[(&str, &str)] = &[("mailgun", "api")];

fn value_for(name: &str) -> String {
    match SHAPED.iter().find(|(n, _)| *n == name) {
        Some((_, value)) => value.to_string(),
        None => format!("t3st-{}-0123456789abcdef", name.to_ascii_lowercase()),
    }
}

fn fixture(provider: &str) -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/registry/{provider}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("built-in {provider} has no reference fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

/// Where the authentication must arrive.
#[derive(Debug)]
enum Expected {
    Header(String, String),
    Query(String, String),
}

/// `{{placeholder}}` references replaced by values.
fn render(template: &str, values: &BTreeMap<String, String>) -> String {
    values.iter().fold(template.to_string(), |out, (p, v)| out.replace(&format!("{{{{{p}}}}}"), v))
}

/// What a reference `auth` object (with `values` keyed by placeholder)
/// puts on the request.
fn expected_auth(provider: &str, auth: &Value, values: &BTreeMap<String, String>) -> Vec<Expected> {
    let header = |h: &Value| {
        Expected::Header(
            h["header_name"].as_str().unwrap().to_ascii_lowercase(),
            render(h["value_template"].as_str().unwrap(), values),
        )
    };
    let query = |q: &Value| {
        let value = match q["value_template"].as_str() {
            Some(template) => render(template, values),
            None => {
                assert_eq!(values.len(), 1, "{provider}: a query without template takes the only secret");
                values.values().next().unwrap().clone()
            }
        };
        Expected::Query(q["param_name"].as_str().unwrap().to_string(), value)
    };
    if auth == "basic" {
        let user = match values.get("username") {
            Some(user) => user.as_str(),
            None => BASIC_USERS.iter().find(|(p, _)| *p == provider).map(|(_, u)| *u).unwrap_or_else(|| {
                panic!("{provider}: basic auth without a username secret; add its fixed user to BASIC_USERS")
            }),
        };
        let pair = format!("{user}:{}", values["password"]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        return vec![Expected::Header("authorization".into(), format!("Basic {encoded}"))];
    }
    let (shape, spec) = auth.as_object().unwrap().iter().next().unwrap();
    match shape.as_str() {
        "header" => vec![header(spec)],
        "multi_header" => spec.as_array().unwrap().iter().map(header).collect(),
        "query" => vec![query(spec)],
        "multi_query" => spec.as_array().unwrap().iter().map(query).collect(),
        other => panic!("{provider}: auth shape `{other}` is not covered by this test"),
    }
}

/// Auth shapes with a test of their own: OAuth2 refresh (`refresh.rs`, with
/// a stand-in token endpoint) and AWS signing (`signing.rs`, which checks
/// the signature over what upstream received).
fn covered_elsewhere(auth: &Value) -> bool {
    auth.as_object().is_some_and(|shape| shape.contains_key("o_auth2") || shape.contains_key("aws_sigv4"))
}

/// Whether every template of an alternative's auth names one of its own
/// secrets. OpenAI's Codex alternatives take `access_token` and
/// `account_id` out of a JSON secret instead; the runtime tests cover them.
fn renders_from_own_secrets(alternative: &Value) -> bool {
    let placeholders: Vec<&str> =
        alternative["vaultSecrets"].as_object().unwrap().values().map(|p| p.as_str().unwrap()).collect();
    let auth = alternative["auth"].to_string();
    auth.split("{{").skip(1).all(|rest| placeholders.iter().any(|p| rest.starts_with(&format!("{p}}}}}"))))
}

/// Stores a value for each secret of `secrets` (name -> placeholder) and
/// returns the values by placeholder.
fn store(vault: &Vault, secrets: &Value) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for (name, placeholder) in secrets.as_object().unwrap() {
        let value = value_for(name);
        vault.ok(&["secrets", "create", "--name", name, "--value", &value]);
        values.insert(placeholder.as_str().unwrap().to_string(), value);
    }
    values
}

/// Invokes `capability` (through `credential`, if given) with its first
/// method and path prefix, and checks what upstream received.
fn invoke_and_check(
    vault: &Vault,
    upstream: &Upstream,
    provider: &str,
    capability: &Value,
    credential: Option<&str>,
    expected: &[Expected],
) {
    let id = capability["id"].as_str().unwrap();
    let allow = &capability["allow"];
    let method = strings(&allow["methods"])[0];
    let prefix = strings(&allow["pathPrefixes"])[0];
    let path = if prefix.ends_with('/') || prefix.ends_with('.') {
        format!("{prefix}catalogue")
    } else {
        prefix.to_string()
    };
    let mut args = vec!["invoke", id, "--method", method, "--path", &path];
    if let Some(credential) = credential {
        args.extend(["--credential", credential]);
    }
    let before = upstream.seen().len();
    let (ok, _, err) = vault.call(upstream, &args);
    assert!(ok, "{provider}: aivault {args:?} failed: {err}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), before + 1, "{provider}: {args:?}");
    let seen = &seen[before];
    assert_eq!(seen.sni.as_deref(), Some(strings(&allow["hosts"])[0]), "{provider}");
    assert_eq!(seen.method, method, "{provider}");
    let (target_path, query) = seen.target.split_once('?').unwrap_or((&seen.target, ""));
    assert_eq!(target_path, path, "{provider}");
    let params: Vec<&str> = query.split('&').collect();
    for expectation in expected {
        match expectation {
            Expected::Header(name, value) => {
                assert_eq!(seen.header(name), Some(value.as_str()), "{provider}: header {name}")
            }
            Expected::Query(name, value) => {
                assert!(params.contains(&format!("{name}={value}").as_str()), "{provider}: {name} in {query}")
            }
        }
    }
}

// Every built-in provider, its first capability, its reference auth; and
// each credential alternative made of plain secrets through its own
// credential.
#[test]
fn every_builtin_sends_the_reference_auth() {
    let providers: Vec<(&str, Value)> =
        aivault::plugins::builtin_components().iter().map(|c| (c.name, fixture(c.name))).collect();
    let mut hosts: Vec<&str> = providers.iter().flat_map(|(_, doc)| strings(&doc["hosts"])).collect();
    hosts.sort();
    hosts.dedup();
    let upstream = Upstream::start(&hosts);
    let vault = Vault::new();
    let mut stored = Vec::new();
    for (provider, doc) in &providers {
        if covered_elsewhere(&doc["auth"]) {
            continue;
        }
        let values = store(&vault, &doc["vaultSecrets"]);
        let expected = expected_auth(provider, &doc["auth"], &values);
        invoke_and_check(&vault, &upstream, provider, &doc["capabilities"][0], None, &expected);
        stored.extend(values.into_values());

        for alternative in doc["credentialAlternatives"].as_array().into_iter().flatten() {
            if !renders_from_own_secrets(alternative) {
                continue;
            }
            let values = store(&vault, &alternative["vaultSecrets"]);
            let expected = expected_auth(provider, &alternative["auth"], &values);
            let capability_id = strings(&alternative["capabilities"])[0];
            let capability =
                doc["capabilities"].as_array().unwrap().iter().find(|c| c["id"] == capability_id).unwrap();
            let credential = format!("{provider}-{}", alternative["id"].as_str().unwrap());
            invoke_and_check(&vault, &upstream, provider, capability, Some(&credential), &expected);
            stored.extend(values.into_values());
        }
    }
    assert!(providers.len() >= 41, "{} built-ins", providers.len());
    for value in &stored {
        vault.assert_nowhere(value);
    }
}

/// The built-ins' manifests ship in the binary: on a fresh vault with an
/// empty compiled-code cache, listing and matching compile nothing, and a
/// secret whose value a provider validates compiles that one provider only.
#[test]
fn listing_compiles_nothing_and_validation_one_provider() {
    let vault = Vault::new();
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("components");
    let run = |args: &[&str]| {
        let mut cmd = vault.std_cmd(args);
        cmd.env("AIVAULT_DEV_CACHE_DIR", &cache);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let compiled = || -> Vec<String> {
        std::fs::read_dir(&cache)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.ends_with(".cwasm"))
                    .collect()
            })
            .unwrap_or_default()
    };
    run(&["capability", "list"]);
    run(&["status"]);
    run(&["provider", "list"]);
    run(&["secrets", "create", "--name", "UNCLAIMED_BY_ANYONE", "--value", "t3st-unclaimed-0123456789"]);
    assert_eq!(compiled(), Vec::<String>::new(), "nothing is compiled to list, match or store unclaimed");

    run(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let openai = aivault::plugins::builtin_components().iter().find(|c| c.name == "openai").unwrap();
    let compiled = compiled();
    assert_eq!(compiled.len(), 1, "validating one value compiles its provider only: {compiled:?}");
    assert!(compiled[0].starts_with(openai.digest), "{compiled:?}");
}
