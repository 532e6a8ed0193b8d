//! The redactor: whatever the body and the secrets, no encoding it claims
//! to cover survives in what it returns, whole or streamed in pieces of any
//! size: the value itself, percent-encoded (either hex case), base64
//! standard and URL-safe with or without padding, and the part of a longer
//! base64 text that the value alone determines, at any alignment. The
//! encodings are computed here, not taken from the redactor.
#![no_main]

use aivault_runtime::redact::{Forms, Needles, StreamRedactor};
use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    secrets: Vec<String>,
    /// Pieces of the body; `Err(n)` places encoding `n` of a secret there,
    /// inside base64 of other bytes when `n` says so.
    body: Vec<Result<Vec<u8>, (u8, Vec<u8>)>>,
    chunk: u16,
}

fn percent(secret: &[u8], upper: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in secret {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b);
        } else if upper {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        }
    }
    out
}

/// What must never be seen: each covered encoding of `secret`.
fn searched(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![secret.to_vec(), percent(secret, true), percent(secret, false)];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret).into_bytes());
    }
    for engine in [&STANDARD, &URL_SAFE] {
        for lead in 0..3usize {
            let mut input = vec![0u8; lead];
            input.extend_from_slice(secret);
            let encoded = engine.encode(&input).into_bytes();
            let (start, end) = ((lead * 8).div_ceil(6), input.len() * 8 / 6);
            if end > start {
                forms.push(encoded[start..end].to_vec());
            }
        }
    }
    forms
}

/// How `secret` is placed in a body: one of its encodings, or inside
/// base64 of `around` bytes on both sides.
fn placed(secret: &[u8], how: u8, around: &[u8]) -> Vec<u8> {
    let plain = searched(secret);
    match how as usize % (plain.len() + 2) {
        n if n < plain.len() => plain[n].clone(),
        n => {
            let engine = if n == plain.len() { &STANDARD } else { &URL_SAFE };
            let lead = &around[..around.len().min(2)];
            engine.encode([lead, secret, around].concat()).into_bytes()
        }
    }
}

fuzz_target!(|input: Input| {
    let secrets: Vec<String> = input.secrets.into_iter().filter(|s| s.len() >= 8).take(4).collect();
    if secrets.is_empty() {
        return;
    }
    let mut needles = Needles::new();
    for secret in &secrets {
        needles.secret(secret);
    }
    let redactor = needles.redactor(Forms::Encoded);
    let mut body = Vec::new();
    for (i, piece) in input.body.iter().enumerate() {
        match piece {
            Ok(bytes) => body.extend_from_slice(bytes),
            Err((how, around)) => body.extend(placed(secrets[i % secrets.len()].as_bytes(), *how, around)),
        }
    }
    let forms: Vec<Vec<u8>> = secrets.iter().flat_map(|s| searched(s.as_bytes())).filter(|f| f.len() >= 8).collect();
    let leak = |out: &[u8]| forms.iter().find(|f| out.windows(f.len()).any(|w| w == f.as_slice())).cloned();
    assert_eq!(leak(&redactor.bytes(&body)), None, "a form survives whole redaction");
    let mut stream = StreamRedactor::new(&redactor);
    let size = usize::from(input.chunk % 4096).max(1);
    let mut out: Vec<u8> = body.chunks(size).flat_map(|c| stream.push(c)).collect();
    out.extend(stream.finish());
    assert_eq!(leak(&out), None, "a form survives streamed redaction in pieces of {size}");
});
