//! The host's own view of a provider manifest, independent of the contract
//! version it arrived in, and the rules every manifest must follow.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a provider declares about itself, checked by [`ProviderManifest::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderManifest {
    pub id: String,
    pub version: String,
    pub description: String,
    pub hosts: Vec<HostPattern>,
    pub vault_secrets: Vec<VaultSecret>,
    pub credential_kinds: Vec<CredentialKind>,
    pub capabilities: Vec<Capability>,
    pub needs_body: bool,
}

/// A secret the provider needs: vault name and template placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultSecret {
    pub name: String,
    pub placeholder: String,
    pub description: String,
}

/// One way of authenticating with the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialKind {
    pub id: String,
    pub secrets: Vec<String>,
    pub hosts: Vec<HostPattern>,
    pub capabilities: Vec<String>,
    pub auth_summary: String,
    /// Placeholders of the values a token refresh derives from the secrets
    /// (contract 0.2.0); empty when the kind needs no refresh.
    pub derived: Vec<String>,
}

/// A slice of the upstream API callers may invoke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    pub id: String,
    pub description: String,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub hosts: Vec<HostPattern>,
}

/// A host name (never an IP address), or `*.` followed by a domain of at
/// least two labels that is not itself a public suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct HostPattern(String);

impl From<HostPattern> for String {
    fn from(pattern: HostPattern) -> String {
        pattern.0
    }
}

/// Read back from a cached manifest: parsed and checked again.
impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        HostPattern::parse(&raw)
    }
}

/// HTTP methods a capability may allow.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Caps on what one manifest may declare, so a hostile one cannot make every
/// command slow.
const MAX_ITEMS: usize = 256;
const MAX_TEXT: usize = 512;

impl HostPattern {
    /// Parses and checks a pattern; lower-cases it. IP literals and
    /// wildcards over a public suffix (`*.co.uk`, `*.github.io`) are refused.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let pattern = raw.to_ascii_lowercase();
        let domain = pattern.strip_prefix("*.").unwrap_or(&pattern);
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if pattern.starts_with("*.") && labels.len() < 2 {
            return Err(format!("wildcard `{raw}` is too broad; name a domain like *.example.com"));
        }
        if domain.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(format!("`{raw}` is not a host name (like api.example.com or *.example.com)"));
        }
        if is_ipv4_like(&labels) {
            return Err(format!(
                "`{raw}` is an IP address (URL parsers read a numeric last label as IPv4); \
                 name the API by its DNS name, like api.example.com"
            ));
        }
        if pattern.starts_with("*.") && is_public_suffix(domain) {
            return Err(format!(
                "wildcard `{raw}` covers every site registered under the public suffix {domain}; \
                 name a domain of your own, like *.yourcompany.{domain}"
            ));
        }
        Ok(HostPattern(pattern))
    }

    /// Whether `host` is this host, or a subdomain for a wildcard.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self.0.strip_prefix("*.") {
            Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == self.0,
        }
    }

    /// Whether everything this pattern matches, `other` matches too.
    pub fn within(&self, other: &HostPattern) -> bool {
        match (self.0.strip_prefix("*."), other.0.strip_prefix("*.")) {
            (None, _) => other.matches(&self.0),
            (Some(mine), Some(theirs)) => mine == theirs || other.matches(mine),
            (Some(_), None) => false,
        }
    }

    /// Whether this is a `*.` pattern, which cannot be contacted as such.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a host with these labels is an IPv4 address to a WHATWG URL
/// parser: one whose last label is a number (decimal, or `0x` hex, which
/// also covers all-numeric hosts like `127.0.0.1` and `0x7f.1`).
fn is_ipv4_like(labels: &[&str]) -> bool {
    labels.last().is_some_and(|last| {
        let hex = last.strip_prefix("0x");
        last.bytes().all(|b| b.is_ascii_digit())
            || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// Whether `domain` is itself a public suffix, ICANN (`co.uk`) or private
/// (`github.io`), per the list compiled into the `psl` crate. A name whose
/// TLD the list does not know (`hostile.test`) is not: only its last label
/// is a suffix by the implicit `*` rule.
fn is_public_suffix(domain: &str) -> bool {
    use psl::Psl as _;
    psl::List.suffix(domain.as_bytes()).is_some_and(|s| s.as_bytes() == domain.as_bytes())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ProviderManifest {
    /// Checks every rule; the error names the first broken one.
    pub fn validate(&self) -> Result<(), String> {
        check_ident(
            &self.id,
            "provider id",
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            40,
        )?;
        if self.version.is_empty()
            || self.version.len() > 64
            || !self.version.chars().all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c))
        {
            return Err(format!("version `{}` is not a version number", self.version));
        }
        check_text(&self.description, "description")?;
        check_count(self.hosts.len(), "hosts")?;
        check_count(self.vault_secrets.len(), "vault secrets")?;
        check_count(self.credential_kinds.len(), "credential kinds")?;
        check_count(self.capabilities.len(), "capabilities")?;
        self.validate_secrets()?;
        self.validate_capabilities()?;
        self.validate_kinds()
    }

    fn validate_secrets(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        let mut placeholders = HashSet::new();
        for s in &self.vault_secrets {
            check_ident(
                &s.name,
                "vault secret name",
                |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_',
                64,
            )?;
            check_ident(
                &s.placeholder,
                "placeholder",
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
                32,
            )?;
            check_text(&s.description, "secret description")?;
            if !names.insert(&s.name) {
                return Err(format!("vault secret `{}` is declared twice", s.name));
            }
            if !placeholders.insert(&s.placeholder) {
                return Err(format!("placeholder `{}` is used twice", s.placeholder));
            }
        }
        Ok(())
    }

    fn validate_capabilities(&self) -> Result<(), String> {
        let prefix = format!("{}/", self.id);
        let mut ids = HashSet::new();
        for cap in &self.capabilities {
            let name = cap
                .id
                .strip_prefix(&prefix)
                .ok_or_else(|| format!("capability `{}` must start with `{prefix}`", cap.id))?;
            check_ident(
                name,
                "capability name",
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c),
                64,
            )?;
            if !ids.insert(&cap.id) {
                return Err(format!("capability `{}` is declared twice", cap.id));
            }
            check_text(&cap.description, "capability description")?;
            if cap.methods.is_empty() || cap.path_prefixes.is_empty() || cap.hosts.is_empty() {
                return Err(format!(
                    "capability `{}` needs at least one method, path prefix and host",
                    cap.id
                ));
            }
            if let Some(m) = cap.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
                return Err(format!(
                    "capability `{}` allows unknown method `{m}` (use one of {})",
                    cap.id,
                    METHODS.join(", ")
                ));
            }
            for p in &cap.path_prefixes {
                check_path_prefix(p).map_err(|why| format!("capability `{}`: {why}", cap.id))?;
            }
            self.check_hosts_declared(&cap.hosts, &format!("capability `{}`", cap.id))?;
        }
        Ok(())
    }

    fn validate_kinds(&self) -> Result<(), String> {
        if self.credential_kinds.is_empty() {
            return Err("declares no credential kind".into());
        }
        let mut ids = HashSet::new();
        let mut served = HashSet::new();
        for kind in &self.credential_kinds {
            check_ident(
                &kind.id,
                "credential kind id",
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
                40,
            )?;
            if !ids.insert(&kind.id) {
                return Err(format!("credential kind `{}` is declared twice", kind.id));
            }
            check_text(&kind.auth_summary, "auth summary")?;
            if kind.secrets.is_empty() || kind.hosts.is_empty() {
                return Err(format!("credential kind `{}` needs at least one secret and one host", kind.id));
            }
            if let Some(s) = kind.secrets.iter().find(|s| !self.vault_secrets.iter().any(|v| &v.name == *s)) {
                return Err(format!("credential kind `{}` uses undeclared secret `{s}`", kind.id));
            }
            self.check_hosts_declared(&kind.hosts, &format!("credential kind `{}`", kind.id))?;
            self.check_derived(kind)?;
            for cap_id in &kind.capabilities {
                let cap = self.capability(cap_id).ok_or_else(|| {
                    format!("credential kind `{}` serves undeclared capability `{cap_id}`", kind.id)
                })?;
                if let Some(h) = cap.hosts.iter().find(|h| !kind.hosts.iter().any(|k| h.within(k))) {
                    return Err(format!(
                        "capability `{cap_id}` talks to `{h}`, which credential kind `{}` may not reach",
                        kind.id
                    ));
                }
                served.insert(cap_id);
            }
        }
        if let Some(cap) = self.capabilities.iter().find(|c| !served.contains(&c.id)) {
            return Err(format!("capability `{}` is served by no credential kind", cap.id));
        }
        Ok(())
    }

    fn check_hosts_declared(&self, hosts: &[HostPattern], what: &str) -> Result<(), String> {
        match hosts.iter().find(|h| !self.hosts.iter().any(|d| h.within(d))) {
            Some(h) => Err(format!("{what} uses host `{h}`, which the provider does not declare")),
            None => Ok(()),
        }
    }

    /// The capability with this id.
    pub fn capability(&self, id: &str) -> Option<&Capability> {
        self.capabilities.iter().find(|c| c.id == id)
    }

    /// The secret declaration with this vault name.
    pub fn vault_secret(&self, name: &str) -> Option<&VaultSecret> {
        self.vault_secrets.iter().find(|s| s.name == name)
    }

    /// A kind's derived values are named like placeholders, each once, and
    /// never like a secret's placeholder (`inject` gets both in one list).
    fn check_derived(&self, kind: &CredentialKind) -> Result<(), String> {
        check_count(kind.derived.len(), "derived values")?;
        let mut seen = HashSet::new();
        for name in &kind.derived {
            check_ident(
                name,
                "derived value placeholder",
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_',
                40,
            )?;
            if !seen.insert(name) {
                return Err(format!("credential kind `{}` derives `{name}` twice", kind.id));
            }
            if self.vault_secrets.iter().any(|s| &s.placeholder == name) {
                return Err(format!(
                    "credential kind `{}` derives `{name}`, the placeholder of a secret",
                    kind.id
                ));
            }
        }
        Ok(())
    }

    /// The credential kind with this id.
    pub fn credential_kind(&self, id: &str) -> Option<&CredentialKind> {
        self.credential_kinds.iter().find(|k| k.id == id)
    }

    /// The credential kinds that can serve capability `id`.
    pub fn kinds_for_capability<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a CredentialKind> {
        self.credential_kinds.iter().filter(move |k| k.capabilities.iter().any(|c| c == id))
    }
}

fn check_ident(value: &str, what: &str, allowed: impl Fn(char) -> bool, max: usize) -> Result<(), String> {
    let starts_ok = value.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_ok || value.len() > max || !value.chars().all(allowed) {
        return Err(format!(
            "{what} `{}` is not allowed (a letter, then [{}], at most {max} characters)",
            truncate(value),
            describe_class(what)
        ));
    }
    Ok(())
}

fn describe_class(what: &str) -> &'static str {
    match what {
        "vault secret name" => "A-Z 0-9 _",
        "placeholder" => "a-z 0-9 _",
        "capability name" => "a-z 0-9 - _ .",
        "derived value placeholder" => "a-z 0-9 - _",
        _ => "a-z 0-9 -",
    }
}

fn check_text(value: &str, what: &str) -> Result<(), String> {
    if value.len() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(format!("{what} is longer than {MAX_TEXT} bytes or contains control characters"));
    }
    Ok(())
}

fn check_count(n: usize, what: &str) -> Result<(), String> {
    if n > MAX_ITEMS {
        return Err(format!("declares {n} {what}; at most {MAX_ITEMS} are allowed"));
    }
    Ok(())
}

/// A prefix is an absolute path of plain segments: no `.`/`..`, no query,
/// fragment, percent-encoding or whitespace, so prefix checks in the broker
/// compare like with like.
pub fn check_path_prefix(prefix: &str) -> Result<(), String> {
    let plain = |c: char| c.is_ascii_graphic() && !"?#%\\".contains(c);
    if !prefix.starts_with('/') || !prefix.chars().all(plain) || prefix.contains("//") {
        return Err(format!(
            "path prefix `{}` must be an absolute path of plain characters",
            truncate(prefix)
        ));
    }
    if prefix.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!("path prefix `{}` contains a `.` or `..` segment", truncate(prefix)));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    if s.len() <= 80 {
        s.to_string()
    } else {
        let end = (0..=80).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    fn sample() -> ProviderManifest {
        ProviderManifest {
            id: "ex".into(),
            version: "1.0.0".into(),
            description: "example".into(),
            hosts: vec![host("api.example.com"), host("*.tenant.example.com")],
            vault_secrets: vec![VaultSecret {
                name: "EX_KEY".into(),
                placeholder: "secret".into(),
                description: String::new(),
            }],
            credential_kinds: vec![CredentialKind {
                id: "default".into(),
                secrets: vec!["EX_KEY".into()],
                hosts: vec![host("api.example.com"), host("*.tenant.example.com")],
                capabilities: vec!["ex/items".into()],
                auth_summary: String::new(),
                derived: Vec::new(),
            }],
            capabilities: vec![Capability {
                id: "ex/items".into(),
                description: String::new(),
                methods: vec!["GET".into()],
                path_prefixes: vec!["/v1/items".into()],
                hosts: vec![host("api.example.com")],
            }],
            needs_body: false,
        }
    }

    // A well-formed manifest passes.
    #[test]
    fn sample_is_valid() {
        sample().validate().unwrap();
    }

    // Wildcards match subdomains only, never the bare domain or look-alikes.
    #[test]
    fn wildcard_matching() {
        let p = host("*.example.com");
        assert!(p.matches("a.example.com"));
        assert!(p.matches("A.B.Example.com"));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("evilexample.com"));
        assert!(host("a.example.com").within(&p));
        assert!(!p.within(&host("a.example.com")));
    }

    // Host patterns must be real host names; bare TLD wildcards are refused.
    #[test]
    fn host_pattern_rules() {
        for bad in ["*.com", "localhost", "api.example.com/path", "a..b", "*", "exa mple.com", "-a.com"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    // IPv4 literals, in every spelling a URL parser accepts, are refused.
    #[test]
    fn ip_literals_refused() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "0177.0.0.1",
            "0x7f.0.0.1",
            "0x7f.1",
            "api.example.123",
            "a.0x1F",
            "a.0x",
        ] {
            let err = HostPattern::parse(bad).unwrap_err();
            assert!(err.contains("is an IP address") && err.contains("DNS name"), "{bad}: {err}");
        }
        for good in ["api.example.com", "123.example.com", "api.0xcafe.com", "s3.eu-west-1.amazonaws.com"] {
            HostPattern::parse(good).unwrap();
        }
    }

    // A wildcard over a public suffix (ICANN or private section) is refused.
    #[test]
    fn public_suffix_wildcards_refused() {
        for bad in ["*.co.uk", "*.herokuapp.com", "*.github.io", "*.com.au", "*.s3.amazonaws.com", "*.CO.UK"]
        {
            let err = HostPattern::parse(bad).unwrap_err();
            assert!(err.contains("public suffix") && err.contains("*.yourcompany."), "{bad}: {err}");
        }
        let err = HostPattern::parse("*.com").unwrap_err();
        assert!(err.contains("too broad"), "{err}");
    }

    // Wildcards under a registrable domain, and hosts under an unknown TLD, still load.
    #[test]
    fn own_domains_and_test_hosts_allowed() {
        for good in [
            "*.acme.com",
            "*.trello.com",
            "*.tenant.example.com",
            "*.example.co.uk",
            "*.myapp.herokuapp.com",
            "api.hostile.test",
            "*.hostile.test",
        ] {
            HostPattern::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    // Capability ids must carry the provider's prefix, so one provider cannot
    // shadow another's capabilities.
    #[test]
    fn capability_must_be_prefixed() {
        let mut m = sample();
        m.capabilities[0].id = "other/items".into();
        assert!(m.validate().unwrap_err().contains("must start with `ex/`"));
    }

    // Path prefixes with traversal or encodings are refused.
    #[test]
    fn path_prefix_rules() {
        for bad in ["v1", "/v1/../admin", "/v1/%2e%2e", "/v1?x", "/a//b", "/a b"] {
            let mut m = sample();
            m.capabilities[0].path_prefixes = vec![bad.into()];
            assert!(m.validate().is_err(), "{bad}");
        }
    }

    // A capability host outside the declared hosts is refused.
    #[test]
    fn capability_host_must_be_declared() {
        let mut m = sample();
        m.capabilities[0].hosts = vec![host("evil.example.org")];
        assert!(m.validate().unwrap_err().contains("does not declare"));
    }

    // Every capability must be reachable through some credential kind.
    #[test]
    fn orphan_capability_refused() {
        let mut m = sample();
        m.credential_kinds[0].capabilities.clear();
        assert!(m.validate().unwrap_err().contains("served by no credential kind"));
    }

    // Kinds may only use secrets the manifest declares.
    #[test]
    fn kind_secret_must_be_declared() {
        let mut m = sample();
        m.credential_kinds[0].secrets = vec!["OTHER_KEY".into()];
        assert!(m.validate().unwrap_err().contains("undeclared secret"));
    }
}
