//! The `serve` passthrough request parser and its token extraction: any
//! request line and headers are taken apart without a panic, and no proxy
//! token is ever passed on upstream or left in an audited path.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    path: String,
    token: Option<String>,
    where_: u8,
    headers: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    let token = input.token.map(|t| format!("aivt_{t}"));
    let mut uri = format!("/v/{}", input.path);
    let mut request = hyper::Request::builder().method("GET");
    if let Some(token) = &token {
        match input.where_ % 5 {
            0 => request = request.header("authorization", format!("Bearer {token}")),
            1 => request = request.header("x-api-key", token.as_str()),
            2 => uri.push_str(&format!("?key={token}")),
            3 => uri.push_str(&format!("/bot{token}/getMe")),
            _ => {
                use base64::Engine as _;
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{token}"));
                request = request.header("authorization", format!("Basic {basic}"));
            }
        }
    }
    for (name, value) in &input.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let Ok(request) = request.uri(uri).body(()) else { return };
    let (parts, ()) = request.into_parts();
    aivault::serve::check_passthrough_parse(&parts);
});
