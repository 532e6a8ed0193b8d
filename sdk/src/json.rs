//! Reading fields out of JSON-valued secrets (e.g. OAuth token files).

/// The string at `path` inside a JSON document, e.g.
/// `string_at(doc, &["tokens", "access_token"])`. `None` when the document
/// does not parse or the field is absent or not a string.
pub fn string_at(document: &str, path: &[&str]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(document).ok()?;
    let mut cursor = &value;
    for key in path {
        cursor = cursor.get(key)?;
    }
    cursor.as_str().map(str::to_string)
}

/// The first of several `paths` that yields a string.
pub fn first_string_at(document: &str, paths: &[&[&str]]) -> Option<String> {
    paths.iter().find_map(|path| string_at(document, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Nested fields are reached by path; the first present path wins.
    #[test]
    fn finds_nested_strings() {
        let doc = r#"{"tokens":{"access_token":"a","n":1}}"#;
        assert_eq!(string_at(doc, &["tokens", "access_token"]).as_deref(), Some("a"));
        assert_eq!(string_at(doc, &["tokens", "n"]), None);
        assert_eq!(
            first_string_at(doc, &[&["access_token"], &["tokens", "access_token"]]).as_deref(),
            Some("a")
        );
        assert_eq!(string_at("not json", &["a"]), None);
    }
}
