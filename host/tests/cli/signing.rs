//! A signing provider end to end: the built-in Amazon Bedrock component
//! signs each request with AWS Signature Version 4 (the host hands it the
//! body and the time), and the loopback upstream receives a signature that
//! verifies over exactly what it received.

use aivault_sdk::sign::{Canonical, Region, SigV4, sha256_hex};

use crate::support::Vault;
use crate::upstream::Upstream;

const HOST: &str = "bedrock-runtime.eu-west-1.amazonaws.com";
const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn bedrock_requests_arrive_signed() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "AWS_ACCESS_KEY_ID", "--value", KEY_ID]);
    vault.ok(&["secrets", "create", "--name", "AWS_SECRET_ACCESS_KEY", "--value", SECRET]);
    let upstream = Upstream::start(&[HOST]);
    let path = "/model/anthropic.claude-3-haiku-20240307-v1:0/converse";
    let call = |path: &str, credential: &[&str]| {
        let mut args = vec!["invoke", "aws-bedrock/models", "--path", path, "--body", r#"{"messages":[]}"#];
        args.extend_from_slice(&["--header", "content-type: application/json"]);
        args.extend_from_slice(credential);
        vault.call(&upstream, &args)
    };
    // The provisioned credential cannot pick one of fifteen regions.
    let (ok, _, err) = call(path, &[]);
    assert!(!ok && err.contains("needs a credential with a concrete host"), "{err}");
    vault.ok(&[
        "credential",
        "create",
        "bedrock-eu",
        "--provider",
        "aws-bedrock",
        "--secret-ref",
        "vault:secret:AWS_ACCESS_KEY_ID",
        "--secret-ref",
        "vault:secret:AWS_SECRET_ACCESS_KEY",
        "--host",
        HOST,
    ]);
    let (ok, _, err) = call(&format!("{path}?trace=1&b=a%20b"), &["--credential", "bedrock-eu"]);
    assert!(ok, "{err}");

    let seen = upstream.seen().pop().unwrap();
    assert!(seen.target.ends_with("?trace=1&b=a%20b"), "{}", seen.target);
    let amz_date = seen.header("x-amz-date").unwrap().to_string();
    let (target_path, query) = seen.target.split_once('?').unwrap_or((seen.target.as_str(), ""));
    let query: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map(|(n, v)| (percent_decode(n), percent_decode(v))).unwrap())
        .collect();
    let headers = vec![
        ("content-type".to_string(), seen.header("content-type").unwrap().to_string()),
        ("host".to_string(), seen.header("host").unwrap_or(HOST).to_string()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let canonical = Canonical {
        method: &seen.method,
        path: target_path,
        query: &query,
        headers,
        payload_hash: sha256_hex(&seen.body),
    };
    let signer = SigV4 {
        service: "bedrock".into(),
        region: Region::Fixed("eu-west-1".into()),
        access_key_id: String::new(),
        secret_access_key: String::new(),
    };
    let expected = signer.authorization(&canonical, KEY_ID, SECRET, "eu-west-1", &amz_date);
    assert_eq!(
        seen.header("authorization"),
        Some(expected.as_str()),
        "the signature does not verify upstream"
    );
    assert!(expected.contains("/eu-west-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date"));
    // Signed now, by the host's clock.
    let (now, _) = aivault_sdk::sign::utc_stamp(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    );
    assert_eq!(amz_date[..11], now[..11], "signed at {amz_date}, now {now}");
    vault.assert_nowhere(SECRET);
}
