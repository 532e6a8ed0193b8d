//! The request handed to and returned by `inject`, in the host's own type.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// An outgoing request. After injection it carries secrets (in headers, the
/// query or the path), so it is wiped on drop and `Debug` shows no values.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct OutgoingRequest {
    pub capability: String,
    pub credential_kind: String,
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl OutgoingRequest {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// What a provider wrote into this request that `before` did not have:
    /// the values of added or changed headers and query parameters, the path
    /// prefix it added (or the whole path it rewrote) with each segment, and
    /// a changed method or host. Any may be a secret or derived from one, so
    /// all are redacted from anything reported about the request.
    pub fn injected_values<'a>(&'a self, before: &OutgoingRequest) -> Vec<&'a str> {
        let mut values = Vec::new();
        for (pairs, old) in [(&self.headers, &before.headers), (&self.query, &before.query)] {
            values.extend(pairs.iter().filter(|p| !old.contains(p)).map(|(_, v)| v.as_str()));
        }
        if self.path != before.path {
            let added = self.path.strip_suffix(before.path.as_str()).unwrap_or(&self.path);
            values.push(added);
            values.extend(added.split('/'));
        }
        for (now, was) in [(&self.method, &before.method), (&self.host, &before.host)] {
            if now != was {
                values.push(now);
            }
        }
        values
    }
}

impl fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| pairs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        f.debug_struct("OutgoingRequest")
            .field("capability", &self.capability)
            .field("method", &self.method)
            .field("host", &self.host)
            .field("query_names", &names(&self.query))
            .field("header_names", &names(&self.headers))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> OutgoingRequest {
        OutgoingRequest {
            capability: "ex/items".into(),
            credential_kind: "default".into(),
            method: "GET".into(),
            host: "api.example.com".into(),
            path: "/v1/items".into(),
            query: vec![("limit".into(), "5".into())],
            headers: vec![("content-type".into(), "application/json".into())],
            body: None,
        }
    }

    // Only what the provider added or changed counts as injected; the
    // caller's own headers and query are not needles.
    #[test]
    fn injected_values_are_what_changed() {
        let before = req();
        let mut after = req();
        after.headers.push(("authorization".into(), "Bearer tok".into()));
        after.headers[0].1 = "text/plain".into();
        after.query.push(("key".into(), "k".into()));
        after.path = "/botTOKEN/x/v1/items".into();
        after.host = "derived.example.com".into();
        assert_eq!(
            after.injected_values(&before),
            ["text/plain", "Bearer tok", "k", "/botTOKEN/x", "", "botTOKEN", "x", "derived.example.com"]
        );
        assert!(req().injected_values(&before).is_empty());
    }
}
