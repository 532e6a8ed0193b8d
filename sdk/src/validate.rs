//! Checks for secret values. Messages describe the problem and the expected
//! shape, never the value itself.

use crate::SecretError;

/// Refuses empty and whitespace-only values.
pub fn not_blank(value: &str) -> Result<(), SecretError> {
    if value.trim().is_empty() { Err(SecretError::Empty) } else { Ok(()) }
}

/// A single-line token of printable ASCII: no spaces, tabs or line breaks
/// (the usual copy-and-paste accidents) and no control characters.
pub fn token(value: &str) -> Result<(), SecretError> {
    not_blank(value)?;
    if value.chars().any(|c| c == '\n' || c == '\r') {
        return Err(SecretError::Malformed(
            "the value contains a line break; paste the key alone on one line".into(),
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(SecretError::Malformed(
            "the value contains whitespace; API keys never do (check for a stray space)".into(),
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SecretError::Malformed(
            "the value contains characters that never appear in an API key".into(),
        ));
    }
    Ok(())
}

/// A [`token`] made only of `[A-Za-z0-9_]` plus `extra`, at least `min_len`
/// long, starting with one of `prefixes` (if any are given). `what` names the
/// credential in messages, e.g. "an OpenAI API key".
pub fn prefixed_token(
    value: &str,
    what: &str,
    prefixes: &[&str],
    min_len: usize,
    extra: &[char],
) -> Result<(), SecretError> {
    token(value)?;
    if !prefixes.is_empty() && !prefixes.iter().any(|p| value.starts_with(p)) {
        return Err(SecretError::Malformed(format!("{what} starts with {}", quoted_list(prefixes))));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c)) {
        let extra: String = extra.iter().map(|c| format!(", `{c}`")).collect();
        return Err(SecretError::Malformed(format!("{what} holds only letters, digits, `_`{extra}")));
    }
    if value.len() < min_len {
        return Err(SecretError::Malformed(format!(
            "too short for {what} ({} characters; at least {min_len} expected)",
            value.len()
        )));
    }
    Ok(())
}

/// Exactly `len` hexadecimal digits.
pub fn hex_of_len(value: &str, what: &str, len: usize) -> Result<(), SecretError> {
    token(value)?;
    if value.len() != len || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(SecretError::Malformed(format!(
            "{what} is {len} hexadecimal characters (got {} characters)",
            value.len()
        )));
    }
    Ok(())
}

fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|p| format!("\"{p}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The usual paste accidents are refused with a reason.
    #[test]
    fn token_refuses_paste_accidents() {
        assert_eq!(token(""), Err(SecretError::Empty));
        assert_eq!(token("  \n"), Err(SecretError::Empty));
        assert!(matches!(token("abc\ndef"), Err(SecretError::Malformed(m)) if m.contains("line break")));
        assert!(matches!(token("abc def"), Err(SecretError::Malformed(m)) if m.contains("whitespace")));
        assert!(matches!(token("abcé"), Err(SecretError::Malformed(_))));
        assert_eq!(token("abc-DEF_123"), Ok(()));
    }

    // Prefix, charset and length are each checked, messages never echo the value.
    #[test]
    fn prefixed_token_checks_shape() {
        let check = |v| prefixed_token(v, "a key", &["sk-", "pk-"], 10, &['-']);
        assert_eq!(check("sk-abcdefghij"), Ok(()));
        let Err(SecretError::Malformed(m)) = check("xx-abcdefghij") else { panic!() };
        assert_eq!(m, "a key starts with \"sk-\" or \"pk-\"");
        assert!(!m.contains("xx-abc"));
        assert!(matches!(check("sk-abc.defghij"), Err(SecretError::Malformed(_))));
        assert!(matches!(check("sk-abc"), Err(SecretError::Malformed(m)) if m.contains("too short")));
    }

    // Hex keys must have exactly the expected length.
    #[test]
    fn hex_of_len_checks_length_and_digits() {
        assert_eq!(hex_of_len("0123456789abcdef", "k", 16), Ok(()));
        assert!(hex_of_len("0123456789abcdeg", "k", 16).is_err());
        assert!(hex_of_len("0123", "k", 16).is_err());
    }
}
