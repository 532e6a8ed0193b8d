//! The forms of a secret a redactor searches for: what an upstream's
//! encoders make of a value (percent-encoding, base64 at any alignment),
//! and what only a deliberate disguise produces (hex, every byte escaped).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// The raw value, its percent-encoding, and the parts of its base64
/// encodings that do not depend on neighbouring bytes (at each of the three
/// alignments a value can have inside a longer encoded string).
pub(super) fn encoded_forms(secret: &[u8], forms: &mut Vec<Zeroizing<Vec<u8>>>) {
    forms.push(Zeroizing::new(secret.to_vec()));
    let percent = percent_encode(secret, is_unreserved);
    if *percent != secret {
        // Lower-case hex digits with the value's own letters as they are
        // (what an encoder that writes `%3a` produces), and the whole
        // encoding lower-cased.
        forms.push(percent_encode_lower_hex(secret, is_unreserved));
        forms.push(Zeroizing::new(percent.to_ascii_lowercase()));
        forms.push(percent);
    }
    for engine in [&STANDARD, &URL_SAFE] {
        for lead in 0..3usize {
            let mut input = Zeroizing::new(vec![0u8; lead]);
            input.extend_from_slice(secret);
            let encoded = Zeroizing::new(engine.encode(&*input).into_bytes());
            let start = (lead * 8).div_ceil(6);
            let end = (input.len() * 8) / 6;
            if end > start {
                forms.push(Zeroizing::new(encoded[start..end].to_vec()));
            }
        }
    }
    // Whole-value encodings too, padding included or not.
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(Zeroizing::new(engine.encode(secret).into_bytes()));
    }
}

/// Forms only a deliberate disguise produces (matched ignoring ASCII case,
/// so one hex case stands for both): percent-encoding of every byte but
/// letters and digits, and of every byte; hex.
pub(super) fn disguised_forms(secret: &[u8], forms: &mut Vec<Zeroizing<Vec<u8>>>) {
    forms.push(percent_encode(secret, |b| b.is_ascii_alphanumeric()));
    forms.push(percent_encode(secret, |_| false));
    forms.push(Zeroizing::new(hex::encode(secret).into_bytes()));
}

/// RFC 3986's unreserved characters, which a URL never needs to escape.
pub(super) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~".contains(&b)
}

/// `data` with every byte `keep` rejects written as `%XX`.
pub(super) fn percent_encode(data: &[u8], keep: fn(u8) -> bool) -> Zeroizing<Vec<u8>> {
    percent_encode_with(data, keep, false)
}

/// [`percent_encode`] with lower-case hex digits.
fn percent_encode_lower_hex(data: &[u8], keep: fn(u8) -> bool) -> Zeroizing<Vec<u8>> {
    percent_encode_with(data, keep, true)
}

fn percent_encode_with(data: &[u8], keep: fn(u8) -> bool, lower_hex: bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
    for &b in data {
        if keep(b) {
            out.push(b);
        } else if lower_hex {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}
