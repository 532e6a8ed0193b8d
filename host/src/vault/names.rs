//! Rules for secret names and aliases.

/// A name or alias that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error(
        "secret name `{0}` is not allowed: start with a letter or `_`, then letters, digits, `_`, `.` or `-` (at most 128)"
    )]
    BadName(String),
    #[error("alias `{0}` is not allowed: letters, digits, `_`, `.` or `-` (at most 128)")]
    BadAlias(String),
    #[error("alias `{alias}` is the secret name of provider {provider}; pick another alias")]
    AliasIsProviderName { alias: String, provider: String },
}

/// Environment-variable-like names: `OPENAI_API_KEY`, `my.key-2`.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 128 && name.chars().all(is_label_char) {
        Ok(())
    } else {
        Err(NameError::BadName(printable(name)))
    }
}

/// Short handles such as `openai` or `gpt-key`.
pub fn check_alias(alias: &str) -> Result<(), NameError> {
    if !alias.is_empty() && alias.len() <= 128 && alias.chars().all(is_label_char) {
        Ok(())
    } else {
        Err(NameError::BadAlias(printable(alias)))
    }
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

/// Names come from the command line, not from values, so echoing them is
/// safe; control characters are escaped so the error stays on one line.
fn printable(s: &str) -> String {
    s.chars().take(128).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Names look like environment variables; aliases are plain tokens.
    #[test]
    fn name_and_alias_rules() {
        for ok in ["OPENAI_API_KEY", "_x", "my.key-2"] {
            assert_eq!(check_name(ok), Ok(()));
        }
        for bad in ["", "1KEY", "A B", "A=B", "KEY\n"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_alias("gpt-key"), Ok(()));
        assert!(check_alias("gpt key").is_err());
        assert!(check_alias("").is_err());
    }
}
