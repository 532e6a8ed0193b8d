//! What the caller gets back: the fields a policy blocks stripped (echoed
//! secrets are removed by [`crate::redact`] first).

use serde_json::Value;

/// Removes the dot-path `fields` (e.g. `data.token`) from a JSON body;
/// arrays apply the rest of the path to each element. Non-JSON bodies pass
/// through. Returns the body and whether anything was removed.
pub fn block_fields(body: Vec<u8>, fields: &[String]) -> (Vec<u8>, bool) {
    if fields.is_empty() {
        return (body, false);
    }
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return (body, false);
    };
    let mut removed = false;
    for field in fields {
        let path: Vec<&str> = field.split('.').collect();
        removed |= remove_path(&mut json, &path);
    }
    if !removed {
        return (body, false);
    }
    (serde_json::to_vec(&json).expect("a JSON value serialises"), true)
}

fn remove_path(value: &mut Value, path: &[&str]) -> bool {
    match value {
        Value::Array(items) => items.iter_mut().fold(false, |acc, item| remove_path(item, path) | acc),
        Value::Object(map) => match path {
            [] => false,
            [last] => map.remove(*last).is_some(),
            [first, rest @ ..] => map.get_mut(*first).is_some_and(|child| remove_path(child, rest)),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Blocked fields go, at any depth and inside arrays; the rest stays.
    #[test]
    fn blocks_nested_and_array_fields() {
        let body =
            br#"{"data":[{"id":1,"token":"t1"},{"id":2,"token":"t2"}],"meta":{"key":"k","n":3}}"#.to_vec();
        let (out, removed) = block_fields(body, &["data.token".into(), "meta.key".into()]);
        assert!(removed);
        let json: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json, serde_json::json!({"data":[{"id":1},{"id":2}],"meta":{"n":3}}));
    }

    // Non-JSON bodies are passed through untouched.
    #[test]
    fn non_json_untouched() {
        let (out, removed) = block_fields(b"plain text".to_vec(), &["token".into()]);
        assert_eq!((out.as_slice(), removed), (&b"plain text"[..], false));
    }
}
