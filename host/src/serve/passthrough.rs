//! `/v/<provider-or-credential>/<upstream path>`: a request exactly as an
//! unmodified SDK sends it, with a proxy token where the SDK puts its API
//! key. The token is found wherever a provider's clients put their key (an
//! `authorization` bearer, basic or `token` header, `x-api-key` and other
//! headers, a query parameter such as Trello's `key`/`token`, a path
//! segment such as Telegram's `/bot<token>`), taken out everywhere it
//! appears, and the provider injects the real credential instead. The
//! capability is the one among the token's whose method and path prefix fit.

use base64::Engine as _;
use hyper::StatusCode;
use hyper::http::request::Parts;

use super::Shared;
use crate::broker::{normalise, under_prefix};
use crate::vault::{TOKEN_PREFIX, TokenRow, Vault};

/// Headers that describe this hop, not the request: never forwarded.
/// `accept-encoding` too, so upstream answers uncompressed and an echoed
/// secret can be found and removed.
const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "accept-encoding",
    "proxy-connection",
];

/// A passthrough request, taken apart.
pub(super) struct Parsed {
    /// The provider id or credential id after `/v/`.
    pub(super) name: String,
    pub(super) method: String,
    /// The upstream path and query, with the token taken out.
    pub(super) path_and_query: String,
    /// The headers to forward, with the token and hop headers taken out.
    pub(super) headers: Vec<(String, String)>,
    /// The proxy token, if exactly one was presented.
    pub(super) token: Option<String>,
}

impl Parsed {
    /// The request taken apart, or why it is malformed (a 400).
    pub(super) fn from_request(parts: &Parts) -> Result<Self, String> {
        let rest = parts.uri.path().strip_prefix("/v/").unwrap_or_default();
        let (name, path) = match rest.split_once('/') {
            Some((name, path)) => (name, format!("/{path}")),
            None => (rest, "/".to_string()),
        };
        let name = percent_decode(name)
            .ok_or_else(|| "the provider or credential name is not valid UTF-8".to_string())?;
        if name.is_empty() {
            return Err("the path must be /v/<provider or credential>/<upstream path>".into());
        }
        let mut found = Vec::new();

        // Path segments carrying a token (Telegram's `/bot<token>`) go whole.
        let mut segments = Vec::new();
        for segment in path.split('/').skip(1) {
            match token_in(&decoded_lossy(segment)) {
                Some(token) => found.push(token),
                None => segments.push(segment),
            }
        }
        let mut path = format!("/{}", segments.join("/"));

        // Query parameters carrying a token (Trello's `key` and `token`) go,
        // whether in the value or (a client's mistake) in the name.
        if let Some(query) = parts.uri.query() {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| match token_in(&decoded_lossy(&pair.replace('+', " "))) {
                    Some(token) => {
                        found.push(token);
                        false
                    }
                    None => true,
                })
                .collect();
            if !kept.is_empty() {
                path = format!("{path}?{}", kept.join("&"));
            }
        }

        let mut headers = Vec::new();
        for (name, value) in &parts.headers {
            let name = name.as_str().to_ascii_lowercase();
            if HOP_HEADERS.contains(&name.as_str()) || name.starts_with("proxy-") {
                continue;
            }
            let Ok(value) = value.to_str() else {
                return Err(format!("header `{name}` is not text"));
            };
            match header_token(value) {
                Some(token) => found.push(token),
                None => headers.push((name, value.to_string())),
            }
        }
        found.sort();
        found.dedup();
        if found.len() > 1 {
            return Err("the request carries several different proxy tokens".into());
        }
        Ok(Parsed {
            name,
            method: parts.method.as_str().to_string(),
            path_and_query: path,
            headers,
            token: found.pop(),
        })
    }
}

/// The token in a header value: anywhere in it (`Bearer aivt_…`, `token
/// aivt_…`, a bare key), or inside HTTP basic credentials.
fn header_token(value: &str) -> Option<String> {
    if let Some(token) = token_in(value) {
        return Some(token);
    }
    let encoded = value.trim().strip_prefix("Basic ").or_else(|| value.trim().strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    token_in(std::str::from_utf8(&decoded).ok()?)
}

/// `text` with every proxy token in it replaced by `aivt_…`.
pub(super) fn without_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(TOKEN_PREFIX) {
        out.push_str(&rest[..start]);
        out.push_str(TOKEN_PREFIX);
        out.push('…');
        let after = &rest[start + TOKEN_PREFIX.len()..];
        let len =
            after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The first proxy token inside `text`: the prefix followed by at least one
/// token character, wherever it is (a bare prefix before it hides nothing:
/// `aivt_~aivt_…` holds a token, found by the `serve_request` fuzz target).
fn token_in(text: &str) -> Option<String> {
    text.match_indices(TOKEN_PREFIX).find_map(|(start, _)| {
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        (token.len() > TOKEN_PREFIX.len()).then_some(token)
    })
}

/// `text` percent-decoded, with any invalid UTF-8 replaced: where tokens
/// are looked for, so junk beside a token cannot hide it (found by the
/// `serve_request` fuzz target: `%C0` in the same query pair).
fn decoded_lossy(text: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(text)).into_owned()
}

fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(text)).ok()
}

fn percent_decode_bytes(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Which of the token's capabilities serves this request (the one whose
/// method fits and whose path prefix matches longest), and the credential
/// named by the URL, if it named one. The reason is why none does.
pub(super) fn target(
    shared: &Shared,
    vault: &mut Vault,
    token: &TokenRow,
    parsed: &Parsed,
) -> Result<(String, Option<String>), (StatusCode, String)> {
    let (provider, credential) = match shared.registry.provider(&parsed.name) {
        Ok(provider) => (provider.id().to_string(), None),
        Err(_) => {
            let credentials =
                vault.credentials().map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            match credentials.into_iter().find(|c| c.id == parsed.name) {
                Some(c) => (c.provider, Some(c.id)),
                None => {
                    return Err((
                        StatusCode::NOT_FOUND,
                        format!("no provider or credential `{}`", parsed.name),
                    ));
                }
            }
        }
    };
    let path = normalise(&parsed.path_and_query).map_err(|e| (StatusCode::FORBIDDEN, e.to_string()))?;
    // Read only if a capability of the token is not a built-in one.
    let mut custom = None;
    let mut best: Option<(usize, &String)> = None;
    for id in
        token.capabilities.iter().filter(|id| id.strip_prefix(&provider).is_some_and(|r| r.starts_with('/')))
    {
        let (methods, prefixes) = match shared.registry.capability(id) {
            Ok(c) => (c.capability.methods.clone(), c.capability.path_prefixes.clone()),
            Err(_) => match custom
                .get_or_insert_with(|| vault.custom_capabilities().unwrap_or_default())
                .iter()
                .find(|c| c.id == *id)
            {
                Some(c) => (c.methods.clone(), c.path_prefixes.clone()),
                None => continue,
            },
        };
        if !methods.iter().any(|m| m.eq_ignore_ascii_case(&parsed.method)) {
            continue;
        }
        let fit = prefixes.iter().filter(|p| under_prefix(&path.decoded, p)).map(|p| p.len()).max();
        if let Some(len) = fit
            && best.is_none_or(|(l, _)| len > l)
        {
            best = Some((len, id));
        }
    }
    match best {
        Some((_, id)) => Ok((id.clone(), credential)),
        None => Err((
            StatusCode::FORBIDDEN,
            format!(
                "none of the capabilities proxy token {} may call covers {} {} at {provider}",
                token.id, parsed.method, path.decoded
            ),
        )),
    }
}

/// Parses `parts` as `serve` does and panics if the result breaks a promise:
/// no proxy token reaches upstream (in the path, the query or a header),
/// several different tokens are refused, and an audited path shows none.
/// For the fuzz target `serve_request` (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub fn check_parse(parts: &Parts) {
    let looks_like_token = |text: &str| {
        text.match_indices(TOKEN_PREFIX).any(|(at, _)| {
            text[at + TOKEN_PREFIX.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
    };
    assert!(!looks_like_token(&without_tokens(parts.uri.path())), "a token survives without_tokens");
    let Ok(parsed) = Parsed::from_request(parts) else { return };
    for segment in parsed.path_and_query.split(['/', '?', '&']) {
        let decoded = decoded_lossy(&segment.replace('+', " "));
        assert!(!looks_like_token(&decoded), "a token is forwarded in the path or query");
    }
    for (name, value) in &parsed.headers {
        assert!(!looks_like_token(value) && header_token(value).is_none(), "a token is forwarded in {name}");
        assert!(!HOP_HEADERS.contains(&name.as_str()), "hop header {name} is forwarded");
    }
    if let Some(token) = &parsed.token {
        assert!(token.len() > TOKEN_PREFIX.len() && token.starts_with(TOKEN_PREFIX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str, headers: &[(&str, &str)]) -> Parsed {
        let mut req = hyper::Request::builder().method("GET").uri(uri);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        Parsed::from_request(&parts).unwrap_or_else(|_| panic!("{uri} refused"))
    }

    const TOKEN: &str = "aivt_AbC123-_xyz";

    // The token is found and taken out wherever a client puts its key.
    #[test]
    fn token_found_and_removed_everywhere() {
        let p =
            parse("/v/openai/v1/models", &[("authorization", &format!("Bearer {TOKEN}")), ("accept", "*/*")]);
        assert_eq!((p.name.as_str(), p.path_and_query.as_str()), ("openai", "/v1/models"));
        assert_eq!(p.token.as_deref(), Some(TOKEN));
        assert_eq!(p.headers, vec![("accept".to_string(), "*/*".to_string())]);

        let p = parse(&format!("/v/trello/1/members/me?fields=id&key={TOKEN}&token={TOKEN}"), &[]);
        assert_eq!((p.path_and_query.as_str(), p.token.as_deref()), ("/1/members/me?fields=id", Some(TOKEN)));

        let p = parse(&format!("/v/telegram/bot{TOKEN}/getMe"), &[]);
        assert_eq!((p.path_and_query.as_str(), p.token.as_deref()), ("/getMe", Some(TOKEN)));

        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{TOKEN}"));
        let p =
            parse("/v/github/user", &[("authorization", &format!("Basic {basic}")), ("x-api-key", TOKEN)]);
        assert_eq!((p.token.as_deref(), p.headers.len()), (Some(TOKEN), 0));
    }

    // Hop headers never pass, and accept-encoding is dropped so responses
    // can be searched for echoed secrets.
    #[test]
    fn hop_headers_dropped() {
        let p = parse(
            "/v/openai/v1/models",
            &[("accept-encoding", "gzip"), ("connection", "close"), ("x-ok", "1")],
        );
        assert_eq!(p.headers, vec![("x-ok".to_string(), "1".to_string())]);
        assert_eq!(p.token, None);
    }

    // A bare prefix before a token, or bytes that are not UTF-8 beside it,
    // do not hide it (fuzz finds).
    #[test]
    fn a_token_after_a_bare_prefix_is_found() {
        let p = parse(&format!("/v/openai/v1/models?x=%C0-{TOKEN}"), &[]);
        assert_eq!((p.path_and_query.as_str(), p.token.as_deref()), ("/v1/models", Some(TOKEN)));
        let p = parse(&format!("/v/openai/v1/models?key=aivt_~~{TOKEN}"), &[]);
        assert_eq!((p.path_and_query.as_str(), p.token.as_deref()), ("/v1/models", Some(TOKEN)));
        let (parts, ()) = hyper::Request::builder()
            .uri("/v/openai/v1/models?x=aivt_~aivt_other")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(())
            .unwrap()
            .into_parts();
        assert!(Parsed::from_request(&parts).is_err(), "two different tokens");
    }

    // Two different tokens in one request are refused.
    #[test]
    fn two_tokens_refused() {
        let (parts, ()) = hyper::Request::builder()
            .uri(format!("/v/openai/v1/models?key={TOKEN}"))
            .header("x-api-key", "aivt_other")
            .body(())
            .unwrap()
            .into_parts();
        assert!(Parsed::from_request(&parts).is_err());
    }
}
