//! `KEY=VALUE` entries and dotenv files: any text parses or is refused
//! without a panic, and entries written the way a dotenv file quotes them
//! read back exactly.
#![no_main]

use aivault::dotenv::{parse_dotenv, parse_entry};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    entries: Vec<(u8, String)>,
}

/// A double-quoted dotenv value: the escapes the parser reads.
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fuzz_target!(|input: Input<'_>| {
    let _ = parse_dotenv(input.text);
    if let Ok(entry) = parse_entry(input.text, 1) {
        let (key, value) = input.text.split_once('=').expect("an entry has `=`");
        assert_eq!((entry.key.as_str(), entry.value.as_str()), (key.trim(), value));
    }

    // Keys as the parser accepts them; values with no `\r` (a line ending).
    let entries: Vec<(String, String)> = input
        .entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (format!("KEY_{i}_{k}"), v.replace('\r', "")))
        .collect();
    let file: String = entries.iter().map(|(k, v)| format!("{k}={}\n", quoted(v))).collect();
    let parsed = parse_dotenv(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let read: Vec<(String, String)> = parsed.iter().map(|e| (e.key.clone(), e.value.to_string())).collect();
    assert_eq!(read, entries, "{file:?}");
});
