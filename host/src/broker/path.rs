//! Request paths: split off the query, decode, refuse traversal and
//! smuggled separators, normalise, and compare against prefixes on segment
//! boundaries. What is checked is exactly what is sent.
//!
//! Beyond plain `..`, refused are spellings that some server or proxy
//! upstream reads as something else: `;` parameters beside a dot (`..;`),
//! double encoding (`%25`), and Unicode look-alikes of `.`, `/` and `\`.

/// A caller's path after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath {
    /// Decoded, normalised path, e.g. `/v1/files/a b.txt`; used for checks.
    pub decoded: String,
    /// The same path, canonically percent-encoded; what is sent.
    pub encoded: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
}

/// Why a path was refused. Paths come from the caller, so echoing them is fine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("the path must start with `/`")]
    NotAbsolute,
    #[error("the path contains a `..` segment (path traversal is refused)")]
    Traversal,
    #[error("the path contains an encoded `/` or `\\` (%2F, %5C), which could hide traversal")]
    EncodedSeparator,
    #[error("the path contains a fragment (`#`)")]
    Fragment,
    #[error("the path contains a malformed percent-encoding")]
    BadEncoding,
    #[error("the path contains control characters or a backslash")]
    BadCharacter,
    #[error(
        "the path segment `{0}` has a `;` parameter next to a dot, which Tomcat and Spring may read as traversal (to them `..;` is `..`); leave the `;…` part out"
    )]
    DotParameter(String),
    #[error(
        "the path contains `%25`, an encoded `%` (double encoding: a server that decodes twice reads `%252e` as `.`); encode each character once"
    )]
    DoubleEncoding,
    #[error(
        "the path contains U+{code:04X} {name}, a look-alike of `{ascii}` that some servers fold into it; use plain ASCII"
    )]
    LookAlike { name: &'static str, code: u32, ascii: char },
}

/// Non-ASCII characters that Unicode normalisation (NFKC), IDNA mapping or
/// a lenient server may turn into `.`, `/` or `\`, with the ASCII character
/// each stands for: a path holding one could turn into traversal only after
/// our checks. U+2025 folds (NFKC) into `..` itself.
pub const LOOK_ALIKES: &[(char, &str, char)] = &[
    ('\u{2024}', "ONE DOT LEADER", '.'),
    ('\u{2025}', "TWO DOT LEADER", '.'),
    ('\u{2026}', "HORIZONTAL ELLIPSIS", '.'),
    ('\u{FE19}', "PRESENTATION FORM FOR VERTICAL HORIZONTAL ELLIPSIS", '.'),
    ('\u{FE30}', "PRESENTATION FORM FOR VERTICAL TWO DOT LEADER", '.'),
    ('\u{FE52}', "SMALL FULL STOP", '.'),
    ('\u{FF0E}', "FULLWIDTH FULL STOP", '.'),
    ('\u{3002}', "IDEOGRAPHIC FULL STOP", '.'),
    ('\u{FF61}', "HALFWIDTH IDEOGRAPHIC FULL STOP", '.'),
    ('\u{2215}', "DIVISION SLASH", '/'),
    ('\u{2044}', "FRACTION SLASH", '/'),
    ('\u{FF0F}', "FULLWIDTH SOLIDUS", '/'),
    ('\u{29F8}', "BIG SOLIDUS", '/'),
    ('\u{2571}', "BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT", '/'),
    ('\u{FF3C}', "FULLWIDTH REVERSE SOLIDUS", '\\'),
    ('\u{FE68}', "SMALL REVERSE SOLIDUS", '\\'),
    ('\u{2216}', "SET MINUS", '\\'),
    ('\u{29F5}', "REVERSE SOLIDUS OPERATOR", '\\'),
    ('\u{29F9}', "BIG REVERSE SOLIDUS", '\\'),
];

/// Normalises `raw` (which may carry a `?query`): decodes percent-encoding,
/// drops `.` segments and empty segments (`//`), and refuses `..` segments,
/// encoded separators, fragments, control characters, `;` parameters beside
/// a dot, `%25` and [`LOOK_ALIKES`].
pub fn normalise(raw: &str) -> Result<NormalPath, PathError> {
    if raw.contains('#') {
        return Err(PathError::Fragment);
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // Only the path: `%25` in a query value is an ordinary percent sign.
    if path.contains("%25") {
        return Err(PathError::DoubleEncoding);
    }
    let mut segments = Vec::new();
    for raw_segment in path.split('/') {
        let bytes = percent_decode(raw_segment.as_bytes(), false)?;
        if bytes.iter().any(|b| *b == b'/' || *b == b'\\') {
            return Err(if raw_segment.contains('\\') {
                PathError::BadCharacter
            } else {
                PathError::EncodedSeparator
            });
        }
        let segment = String::from_utf8(bytes).map_err(|_| PathError::BadEncoding)?;
        if segment.chars().any(char::is_control) {
            return Err(PathError::BadCharacter);
        }
        if let Some(&(c, name, ascii)) = segment.chars().find_map(|c| LOOK_ALIKES.iter().find(|l| l.0 == c)) {
            return Err(PathError::LookAlike { name, code: c as u32, ascii });
        }
        // `..;x` is `..` to Tomcat and Spring, which strip path parameters
        // after our check; `b.json;x` may lose its parameter or its suffix.
        if segment.contains(';') && segment.contains('.') {
            return Err(PathError::DotParameter(segment));
        }
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err(PathError::Traversal),
            _ => segments.push(segment),
        }
    }
    // A trailing slash is meaningful to some APIs; keep it.
    let trailing = path.len() > 1 && path.ends_with('/');
    let join = |parts: Vec<String>| {
        let mut joined = format!("/{}", parts.join("/"));
        if trailing && joined.len() > 1 {
            joined.push('/');
        }
        joined
    };
    let encoded = join(segments.iter().map(|s| encode_segment(s)).collect());
    let decoded = join(segments);
    Ok(NormalPath { decoded, encoded, query: parse_query(query.unwrap_or(""))? })
}

/// Whether `path` is `prefix` or lies below it (`/user` matches `/user` and
/// `/user/repos`, not `/users`). A prefix ending in `.` names a family of
/// methods and matches any path starting with it (Slack's `/api/chat.`
/// matches `/api/chat.postMessage`, not `/api/chatx`).
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('.') {
        return path.starts_with(prefix);
    }
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Form-style query decoding (`+` is a space), the way servers read it.
fn parse_query(query: &str) -> Result<Vec<(String, String)>, PathError> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| {
            percent_decode(s.as_bytes(), true)
                .and_then(|b| String::from_utf8(b).map_err(|_| PathError::BadEncoding))
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

fn percent_decode(input: &[u8], plus_is_space: bool) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hex = input.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
                let text = std::str::from_utf8(hex).map_err(|_| PathError::BadEncoding)?;
                out.push(u8::from_str_radix(text, 16).map_err(|_| PathError::BadEncoding)?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// RFC 3986 `pchar`s stay as they are; everything else is `%XX`.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    // Every traversal spelling is refused.
    #[test]
    fn traversal_refused() {
        for raw in [
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/v1/%2E%2E",
            "/v1/.%2e/x",
            "/v1/..",
            "/v1%2f..%2fadmin",
            "/v1/a%5c..%5cb",
        ] {
            assert!(normalise(raw).is_err(), "{raw}");
        }
    }

    // `.`, `//` and encodings normalise to one canonical form.
    #[test]
    fn normalises_dots_slashes_and_encoding() {
        let p = normalise("/v1//models/./gpt%2D4").unwrap();
        assert_eq!(p.decoded, "/v1/models/gpt-4");
        assert_eq!(p.encoded, "/v1/models/gpt-4");
        let p = normalise("/repos/o/r/contents/a%20b.txt").unwrap();
        assert_eq!(
            (p.decoded.as_str(), p.encoded.as_str()),
            ("/repos/o/r/contents/a b.txt", "/repos/o/r/contents/a%20b.txt")
        );
        assert_eq!(normalise("/v1/items/").unwrap().encoded, "/v1/items/");
    }

    // The query is split off and decoded the way servers read it.
    #[test]
    fn query_is_decoded() {
        let p = normalise("/search/issues?q=repo:o/r+is:open&per_page=5&x=%2B").unwrap();
        assert_eq!(p.decoded, "/search/issues");
        assert_eq!(
            p.query,
            vec![
                ("q".into(), "repo:o/r is:open".into()),
                ("per_page".into(), "5".into()),
                ("x".into(), "+".into())
            ]
        );
    }

    // Relative paths, fragments, control characters and bad escapes are refused.
    #[test]
    fn malformed_refused() {
        assert_eq!(normalise("v1/models"), Err(PathError::NotAbsolute));
        assert_eq!(normalise("/v1#frag"), Err(PathError::Fragment));
        assert_eq!(normalise("/v1/%0a"), Err(PathError::BadCharacter));
        assert_eq!(normalise("/v1/%zz"), Err(PathError::BadEncoding));
    }

    // `;` parameters in a segment holding a dot are refused (Tomcat's `..;`).
    #[test]
    fn dot_parameter_refused() {
        for raw in
            ["/v1/..;/admin", "/v1/.;x/y", "/a/b.json;jsessionid=1", "/v1/..%3b/admin", "/v1/%2e%2e;/x"]
        {
            assert!(matches!(normalise(raw), Err(PathError::DotParameter(_))), "{raw}");
        }
        assert_eq!(normalise("/v1/..;/admin").unwrap_err().to_string().lines().count(), 1);
        // A `;` without a dot, and a dot without a `;`, are ordinary.
        assert_eq!(normalise("/v1/items;v=2").unwrap().decoded, "/v1/items;v=2");
        assert_eq!(normalise("/v1/a.json").unwrap().decoded, "/v1/a.json");
    }

    // `%25` anywhere in the path is refused (double encoding); in the query it is a `%`.
    #[test]
    fn double_encoding_refused() {
        for raw in ["/v1/%252e%252e/admin", "/v1/%252f", "/v1/100%25", "/%25"] {
            assert_eq!(normalise(raw), Err(PathError::DoubleEncoding), "{raw}");
        }
        assert_eq!(normalise("/v1/search?q=100%25").unwrap().query, vec![("q".into(), "100%".into())]);
    }

    // Every listed look-alike of `.`, `/` or `\` is refused, raw or encoded.
    #[test]
    fn look_alikes_refused() {
        for &(c, name, ascii) in LOOK_ALIKES {
            let raw = format!("/v1/{c}{c}/admin");
            let encoded: String = c.to_string().bytes().map(|b| format!("%{b:02X}")).collect();
            for path in [raw, format!("/v1/x{encoded}y")] {
                let err = normalise(&path).unwrap_err();
                assert_eq!(err, PathError::LookAlike { name, code: c as u32, ascii }, "{path}");
                assert!(err.to_string().contains(&format!("U+{:04X}", c as u32)), "{err}");
            }
        }
        // Other non-ASCII text is fine.
        assert_eq!(normalise("/v1/files/caf%C3%A9").unwrap().decoded, "/v1/files/café");
    }

    // Prefixes match whole segments only.
    #[test]
    fn prefix_on_segment_boundary() {
        assert!(under_prefix("/user", "/user"));
        assert!(under_prefix("/user/repos", "/user"));
        assert!(!under_prefix("/users", "/user"));
        assert!(!under_prefix("/v1/modelsX", "/v1/models"));
        assert!(under_prefix("/anything", "/"));
    }

    // A prefix ending in `.` matches the method family it starts.
    #[test]
    fn dot_prefix_matches_method_family() {
        assert!(under_prefix("/api/chat.postMessage", "/api/chat."));
        assert!(under_prefix("/api/chat.", "/api/chat."));
        assert!(!under_prefix("/api/chatx", "/api/chat."));
        assert!(!under_prefix("/api/chat", "/api/chat."));
        assert!(!under_prefix("/api/users.list", "/api/chat."));
    }
}
