//! Removes secret values from text and bytes before anyone sees them: error
//! messages from providers, and upstream response bodies that echo a secret
//! raw, base64-encoded or percent-encoded.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a removed value is replaced with.
pub const MARKER: &str = "[REDACTED]";

/// Shorter values are not searched for: they would match ordinary text, and
/// no provider accepts a secret this short.
const MIN_SECRET_LEN: usize = 4;

/// Encoded fragments shorter than this are not searched for, for the same reason.
const MIN_FRAGMENT_LEN: usize = 8;

/// `text` with every form of every secret replaced by [`MARKER`].
pub fn text(text: &str, secrets: &[&str]) -> String {
    let out = bytes(text.as_bytes(), secrets);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `data` with every form of every secret replaced by [`MARKER`].
pub fn bytes(data: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        needles.extend(forms(secret.as_bytes()));
    }
    // Longest first, so a value is never half-replaced by a shorter form.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    let mut out = data.to_vec();
    for needle in needles.iter().filter(|n| n.len() >= MIN_SECRET_LEN) {
        out = replace_all(&out, needle, MARKER.as_bytes());
    }
    out
}

/// The raw value, its percent-encoding, and the parts of its base64
/// encodings that do not depend on neighbouring bytes (at each of the three
/// alignments a value can have inside a longer encoded string).
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![secret.to_vec()];
    let percent = percent_encode(secret);
    if percent != secret {
        forms.push(percent.clone());
        forms.push(percent.to_ascii_lowercase());
    }
    for engine in [&STANDARD, &URL_SAFE] {
        for lead in 0..3usize {
            let mut input = vec![0u8; lead];
            input.extend_from_slice(secret);
            let encoded = engine.encode(&input).into_bytes();
            let start = (lead * 8).div_ceil(6);
            let end = (input.len() * 8) / 6;
            if end > start && end - start >= MIN_FRAGMENT_LEN {
                forms.push(encoded[start..end].to_vec());
            }
        }
    }
    // Whole-value encodings too, padding included or not.
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret).into_bytes());
    }
    forms
}

fn percent_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &b in data {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-test-1234567890abcdef+/=";

    // The raw value is replaced.
    #[test]
    fn raw_value_removed() {
        let out = text(&format!("echo: {SECRET}!"), &[SECRET]);
        assert_eq!(out, format!("echo: {MARKER}!"));
    }

    // Percent-encoded forms (either hex case) are replaced.
    #[test]
    fn percent_encoded_removed() {
        let encoded = String::from_utf8(percent_encode(SECRET.as_bytes())).unwrap();
        assert!(!text(&encoded, &[SECRET]).contains("1234567890"));
        assert!(!text(&encoded.to_lowercase(), &[SECRET]).contains("1234567890"));
    }

    // Base64 of the value, alone or inside a longer encoded string at any
    // alignment (e.g. basic auth `user:secret`), is replaced.
    #[test]
    fn base64_any_alignment_removed() {
        for lead in ["", "u", "us", "use", "user:"] {
            let encoded = STANDARD.encode(format!("{lead}{SECRET}"));
            let out = text(&encoded, &[SECRET]);
            assert!(out.contains(MARKER), "lead {lead:?}: {out}");
            for form in forms(SECRET.as_bytes()).iter().skip(1) {
                assert!(!out.as_bytes().windows(form.len()).any(|w| w == form.as_slice()));
            }
        }
    }

    // Text without secrets is untouched.
    #[test]
    fn clean_text_untouched() {
        assert_eq!(text("nothing to see", &[SECRET]), "nothing to see");
    }
}
