//! The JSON invoke envelope: any JSON is read or refused without a panic,
//! and what is read is what the JSON said.
#![no_main]

use aivault::broker::envelope::Envelope;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(envelope) = Envelope::parse(&value) else { return };
    assert_eq!(envelope.method.as_deref(), value.get("method").and_then(Value::as_str));
    assert_eq!(envelope.path.as_deref(), value.get("path").and_then(Value::as_str));
    match value.get("body") {
        None | Some(Value::Null) => assert!(envelope.body.is_none()),
        Some(Value::String(s)) => assert_eq!(envelope.body.as_deref(), Some(s.as_bytes())),
        Some(json) => {
            let body = envelope.body.as_deref().expect("a JSON body is kept");
            assert_eq!(&serde_json::from_slice::<Value>(body).expect("sent as JSON"), json);
            assert!(envelope.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")));
        }
    }
});
