//! Renders a JSON document as Markdown for an LLM's context: objects as
//! bullet lists, arrays of flat objects as tables, scalars inline.

use serde_json::Value;

/// Markdown for `value`.
pub fn render(value: &Value) -> String {
    let mut out = String::new();
    block(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn block(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("_(empty)_\n"),
        Value::Object(map) => {
            for (key, v) in map {
                item(&format!("**{}**", escape(key)), v, depth, out);
            }
        }
        Value::Array(items) if items.is_empty() => out.push_str("_(none)_\n"),
        Value::Array(items) => {
            if depth == 0
                && let Some(table) = table(items)
            {
                out.push_str(&table);
                return;
            }
            for (i, v) in items.iter().enumerate() {
                item(&format!("{}.", i + 1), v, depth, out);
            }
        }
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn item(label: &str, value: &Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(&format!("{indent}- {label}\n"));
            block(value, depth + 1, out);
        }
        Value::Array(a) if !a.is_empty() && !a.iter().all(is_scalar) => {
            out.push_str(&format!("{indent}- {label}\n"));
            block(value, depth + 1, out);
        }
        Value::Array(a) if !a.is_empty() => {
            let list: Vec<String> = a.iter().map(inline).collect();
            out.push_str(&format!("{indent}- {label}: {}\n", list.join(", ")));
        }
        other => out.push_str(&format!("{indent}- {label}: {}\n", inline(other))),
    }
}

/// A table when every item is an object of scalars.
fn table(items: &[Value]) -> Option<String> {
    let mut columns: Vec<&str> = Vec::new();
    for item in items {
        let map = item.as_object()?;
        for (key, v) in map {
            if !is_scalar(v) {
                return None;
            }
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    if columns.is_empty() || columns.len() > 12 {
        return None;
    }
    let mut out = format!("| {} |\n", columns.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | "));
    out.push_str(&format!("|{}\n", " --- |".repeat(columns.len())));
    for item in items {
        let cells: Vec<String> =
            columns.iter().map(|c| item.get(*c).map(inline).unwrap_or_default()).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    Some(out)
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "_null_".to_string(),
        Value::String(s) if s.is_empty() => "\"\"".to_string(),
        Value::String(s) => escape(&s.replace('\n', " ")),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        other => other.to_string(),
    }
}

/// Escapes the characters that would change Markdown structure.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Objects become bullets, nested objects nest, scalar lists stay inline.
    #[test]
    fn objects_as_bullets() {
        let doc = json!({"id": "m1", "owner": {"name": "openai"}, "tags": ["a", "b"], "none": null});
        assert_eq!(
            render(&doc),
            "- **id**: m1\n- **none**: _null_\n- **owner**\n  - **name**: openai\n- **tags**: a, b\n"
        );
    }

    // An array of flat objects becomes a table.
    #[test]
    fn flat_arrays_as_tables() {
        let doc = json!([{"id": "a", "n": 1}, {"id": "b|c", "n": 2}]);
        assert_eq!(render(&doc), "| id | n |\n| --- | --- |\n| a | 1 |\n| b\\|c | 2 |\n");
    }
}
