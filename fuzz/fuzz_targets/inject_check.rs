//! The host's check of what a component's `inject` returned: whatever the
//! component sends back, a request that passes goes to the broker's host,
//! with its method, body and path (a plain prefix at most added), headers
//! that cannot smuggle or impersonate the client; and a refusal never
//! quotes what the component wrote (it may hold a secret).
#![no_main]

use aivault_runtime::verify::{check_injected, is_client_owned, is_header_name, is_header_value};
use aivault_runtime::{HostPattern, OutgoingRequest};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Returned {
    method: Option<String>,
    host: Option<String>,
    path_prefix: String,
    path: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Option<Vec<u8>>>,
}

/// Marks every string the component wrote, to find it in a message.
const MARK: &str = "QQmarkQQ";

fuzz_target!(|returned: Returned| {
    let before = OutgoingRequest {
        capability: "openai/models".into(),
        credential_kind: "api-key".into(),
        method: "GET".into(),
        host: "api.openai.com".into(),
        path: "/v1/models".into(),
        query: vec![("limit".into(), "2".into())],
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
    };
    let after = OutgoingRequest {
        capability: before.capability.clone(),
        credential_kind: before.credential_kind.clone(),
        method: returned.method.unwrap_or_else(|| before.method.clone()),
        host: returned.host.unwrap_or_else(|| before.host.clone()),
        path: returned.path.unwrap_or_else(|| format!("{}{}", returned.path_prefix, before.path)),
        query: before.query.iter().cloned().chain(returned.query).collect(),
        headers: before.headers.iter().cloned().chain(returned.headers.into_iter().map(|(n, v)| (n, format!("{v}{MARK}")))).collect(),
        body: returned.body.unwrap_or_else(|| before.body.clone()),
    };
    let allowed = [HostPattern::parse("api.openai.com").expect("a host")];
    match check_injected(&before, &after, &allowed) {
        Ok(()) => {
            assert_eq!((&after.method, &after.host, &after.body), (&before.method, &before.host, &before.body));
            let prefix = after.path.strip_suffix(before.path.as_str()).expect("the path survives at the end");
            assert!(prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/')), "{prefix:?}");
            assert!(!prefix.split('/').any(|s| s == "." || s == ".."), "{prefix:?}");
            for (name, value) in &after.headers {
                assert!(is_header_name(name) && is_header_value(value), "{name:?}");
                assert!(!is_client_owned(&name.to_ascii_lowercase()), "{name:?}");
            }
            assert!(after.query.iter().all(|(n, _)| !n.is_empty()));
        }
        Err(why) => assert!(!why.contains(MARK), "a refusal quotes the component: {why}"),
    }
});
