//! Parsing `KEY=VALUE` entries and dotenv files for `secrets import`.
//!
//! Dotenv syntax: blank lines and `#` comments, an optional `export ` prefix,
//! unquoted values (trimmed; ` #` starts a comment), single-quoted values
//! (literal) and double-quoted values (with `\n`, `\t`, `\"`, `\\` escapes,
//! and may span lines). Errors name the line, never the value.

use zeroize::Zeroizing;

/// One `KEY=VALUE` pair; the value is wiped on drop.
pub struct Entry {
    pub key: String,
    pub value: Zeroizing<String>,
    /// 1-based line (dotenv) or position (`--entry`), for messages.
    pub position: usize,
}

/// A malformed entry or line. Never contains a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("--entry #{0} has no `=`; write it as --entry KEY=VALUE")]
    EntryWithoutEquals(usize),
    #[error("--entry #{0} has an empty key; write it as --entry KEY=VALUE")]
    EntryWithoutKey(usize),
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
}

/// Parses one `--entry KEY=VALUE` argument (split at the first `=`).
pub fn parse_entry(raw: &str, position: usize) -> Result<Entry, ParseError> {
    let (key, value) = raw.split_once('=').ok_or(ParseError::EntryWithoutEquals(position))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(ParseError::EntryWithoutKey(position));
    }
    Ok(Entry { key: key.to_string(), value: Zeroizing::new(value.to_string()), position })
}

/// Parses a dotenv document.
pub fn parse_dotenv(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((line_no, raw)) = lines.next() {
        let err = |reason| ParseError::Line { line: line_no, reason };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let (key, rest) = line.split_once('=').ok_or_else(|| err("expected KEY=VALUE"))?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(err("the key must be letters, digits, `_`, `.` or `-`"));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some('\'') => {
                let body = &rest[1..];
                let end = body.find('\'').ok_or_else(|| err("unterminated single quote"))?;
                check_trailing(&body[end + 1..]).map_err(err)?;
                Zeroizing::new(body[..end].to_string())
            }
            Some('"') => {
                let mut value = Zeroizing::new(String::new());
                let mut body = rest[1..].to_string();
                loop {
                    match unescape_until_quote(&body, &mut value) {
                        Some(after) => {
                            check_trailing(&body[after..]).map_err(err)?;
                            break;
                        }
                        None => {
                            // The value continues on the next line.
                            let (_, next) = lines.next().ok_or_else(|| err("unterminated double quote"))?;
                            value.push('\n');
                            body = next.to_string();
                        }
                    }
                }
                value
            }
            _ => {
                let unquoted = match rest.find(" #") {
                    Some(comment) => &rest[..comment],
                    None => rest,
                };
                Zeroizing::new(unquoted.trim_end().to_string())
            }
        };
        entries.push(Entry { key: key.to_string(), value, position: line_no });
    }
    Ok(entries)
}

/// Appends the unescaped text of `body` up to its closing quote to `out`
/// and returns the index just past the quote, or `None` if the line ends
/// first (having appended everything).
fn unescape_until_quote(body: &str, out: &mut String) -> Option<usize> {
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(i + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, other)) => out.push(other),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

fn check_trailing(rest: &str) -> Result<(), &'static str> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err("unexpected text after the closing quote")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_dotenv(text).unwrap().into_iter().map(|e| (e.key, e.value.to_string())).collect()
    }

    // The usual dotenv forms all parse to the intended values.
    #[test]
    fn dotenv_forms() {
        let text = "# comment\n\nexport A=1\nB = two words # note\nC='lit #\\n'\nD=\"esc\\n\\\"q\\\"\"\nE=\"multi\nline\"\nF=\n";
        assert_eq!(
            pairs(text),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "lit #\\n".into()),
                ("D".into(), "esc\n\"q\"".into()),
                ("E".into(), "multi\nline".into()),
                ("F".into(), "".into()),
            ]
        );
    }

    // Errors name the line and never repeat the value.
    #[test]
    fn dotenv_errors_name_the_line() {
        let err = parse_dotenv("A=1\nB='sk-secret-value\n").err().unwrap();
        assert_eq!(err.to_string(), "line 2: unterminated single quote");
        let err = parse_dotenv("sk-secret-value\n").err().unwrap();
        assert_eq!(err.to_string(), "line 1: expected KEY=VALUE");
    }

    // An entry splits at the first `=`, so values may contain `=`.
    #[test]
    fn entry_splits_at_first_equals() {
        let e = parse_entry("K=a=b", 1).unwrap();
        assert_eq!((e.key.as_str(), e.value.as_str()), ("K", "a=b"));
        assert_eq!(parse_entry("sk-secret", 3).err(), Some(ParseError::EntryWithoutEquals(3)));
        assert!(!parse_entry("sk-secret", 3).err().unwrap().to_string().contains("sk-secret"));
    }
}
