//! Builders for what a provider declares.

use crate::{Auth, InjectError, Refresh};

/// What a provider declares: id, version, hosts, vault secrets, credential
/// kinds and capabilities.
///
/// Simple providers declare secrets, hosts, one [`Auth`] and capabilities at
/// the top level; they form one credential kind named `default`. Providers
/// with several ways to authenticate add [`CredentialKind`]s instead.
#[derive(Debug, Clone)]
pub struct Manifest {
    id: String,
    version: String,
    description: String,
    hosts: Vec<String>,
    secrets: Vec<SecretDecl>,
    default_auth: Option<Auth>,
    default_refresh: Option<Refresh>,
    default_capabilities: Vec<Capability>,
    kinds: Vec<CredentialKind>,
    needs_body: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct SecretDecl {
    pub(crate) name: String,
    pub(crate) placeholder: String,
    pub(crate) description: String,
}

/// One way of authenticating: the vault secrets it needs, the hosts it may
/// reach, how it authenticates and the capabilities it serves.
#[derive(Debug, Clone)]
pub struct CredentialKind {
    id: String,
    secrets: Vec<String>,
    hosts: Vec<String>,
    auth: KindAuth,
    refresh: Option<Refresh>,
    capabilities: Vec<Capability>,
}

#[derive(Debug, Clone)]
enum KindAuth {
    Declarative(Auth),
    Custom(String),
}

/// A named slice of an upstream API: methods, path prefixes and hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) methods: Vec<String>,
    pub(crate) prefixes: Vec<String>,
    pub(crate) hosts: Vec<String>,
}

/// The manifest flattened into the shape of the WIT record.
pub(crate) struct Resolved {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) hosts: Vec<String>,
    pub(crate) secrets: Vec<SecretDecl>,
    pub(crate) kinds: Vec<ResolvedKind>,
    pub(crate) capabilities: Vec<Capability>,
    pub(crate) needs_body: bool,
}

pub(crate) struct ResolvedKind {
    pub(crate) id: String,
    pub(crate) secrets: Vec<String>,
    pub(crate) hosts: Vec<String>,
    pub(crate) capabilities: Vec<String>,
    pub(crate) auth_summary: String,
    #[cfg_attr(feature = "contract-0-1-0", allow(dead_code))]
    pub(crate) derived: Vec<String>,
}

/// Id of the credential kind formed by top-level declarations.
pub const DEFAULT_KIND: &str = "default";

impl Manifest {
    /// Starts a manifest for provider `id` (lower case, e.g. `openai`) at
    /// `version` (usually `env!("CARGO_PKG_VERSION")`).
    pub fn new(id: impl Into<String>, version: impl Into<String>) -> Self {
        Manifest {
            id: id.into(),
            version: version.into(),
            description: String::new(),
            hosts: Vec::new(),
            secrets: Vec::new(),
            default_auth: None,
            default_refresh: None,
            default_capabilities: Vec::new(),
            kinds: Vec::new(),
            needs_body: false,
        }
    }

    /// One line describing the provider.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// A host the top-level capabilities talk to (`*.` wildcards allowed).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        push_unique(&mut self.hosts, host.into());
        self
    }

    /// Declares vault secret `name` (e.g. `OPENAI_API_KEY`), handed to
    /// `inject` under `placeholder` (e.g. `secret`).
    pub fn secret(
        mut self,
        name: impl Into<String>,
        placeholder: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.secrets.push(SecretDecl {
            name: name.into(),
            placeholder: placeholder.into(),
            description: description.into(),
        });
        self
    }

    /// How the top-level capabilities authenticate.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.default_auth = Some(auth);
        self
    }

    /// A capability served by the top-level (default) credential kind.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.default_capabilities.push(capability);
        self
    }

    /// One top-level capability per `(id, description, methods, path
    /// prefixes)` row: a provider's capability table in one call.
    pub fn capabilities(self, table: &[(&str, &str, &[&str], &[&str])]) -> Self {
        table.iter().fold(self, |manifest, (id, description, methods, prefixes)| {
            manifest.capability(Capability::new(*id, *description).methods(methods).prefixes(prefixes))
        })
    }

    /// An explicit credential kind, for providers with several ways to
    /// authenticate.
    pub fn credential(mut self, kind: CredentialKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Asks the host to pass request bodies to `inject` (e.g. for signing).
    pub fn needs_body(mut self) -> Self {
        self.needs_body = true;
        self
    }

    /// The provider id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `name` is one of the declared vault secrets.
    pub fn declares_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s.name == name)
    }

    /// The token refresh of the top-level (`default`) credential kind; its
    /// token host must be among the manifest's hosts.
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.default_refresh = Some(refresh);
        self
    }

    /// The declared [`Refresh`] of credential kind `kind`.
    pub fn refresh_for(&self, kind: &str) -> Result<&Refresh, InjectError> {
        let found = if kind == DEFAULT_KIND && self.default_refresh.is_some() {
            self.default_refresh.as_ref()
        } else {
            self.kinds.iter().find(|k| k.id == kind).and_then(|k| k.refresh.as_ref())
        };
        found.ok_or_else(|| {
            InjectError::Unsupported(format!(
                "provider `{}` declares no token refresh for credential kind `{kind}`",
                self.id
            ))
        })
    }

    /// The declarative [`Auth`] of credential kind `kind`.
    pub fn auth_for(&self, kind: &str) -> Result<&Auth, InjectError> {
        let found = if kind == DEFAULT_KIND && self.default_auth.is_some() {
            self.default_auth.as_ref()
        } else {
            self.kinds.iter().find(|k| k.id == kind).and_then(|k| match &k.auth {
                KindAuth::Declarative(auth) => Some(auth),
                KindAuth::Custom(_) => None,
            })
        };
        found.ok_or_else(|| {
            InjectError::Unsupported(format!(
                "provider `{}` has no declarative auth for credential kind `{kind}`",
                self.id
            ))
        })
    }

    /// Flattens the builder into the WIT shape: the top-level declarations
    /// become the `default` kind, and a capability without hosts gets its
    /// kind's hosts.
    pub(crate) fn resolve(self) -> Resolved {
        let mut kinds = self.kinds;
        let signs = self.default_auth.as_ref().is_some_and(Auth::needs_body)
            || kinds.iter().any(|k| matches!(&k.auth, KindAuth::Declarative(auth) if auth.needs_body()));
        if !self.default_capabilities.is_empty() || self.default_auth.is_some() {
            let summary = self.default_auth.as_ref().map(Auth::summary).unwrap_or_default();
            kinds.insert(
                0,
                CredentialKind {
                    id: DEFAULT_KIND.to_string(),
                    secrets: self.secrets.iter().map(|s| s.name.clone()).collect(),
                    hosts: self.hosts.clone(),
                    auth: KindAuth::Custom(summary),
                    refresh: self.default_refresh,
                    capabilities: self.default_capabilities,
                },
            );
        }
        let mut hosts = self.hosts;
        let mut capabilities: Vec<Capability> = Vec::new();
        let mut resolved_kinds = Vec::new();
        for kind in kinds {
            for host in &kind.hosts {
                push_unique(&mut hosts, host.clone());
            }
            let mut ids = Vec::new();
            for mut cap in kind.capabilities {
                if cap.hosts.is_empty() {
                    cap.hosts = kind.hosts.clone();
                }
                ids.push(cap.id.clone());
                // A capability served by several kinds is declared once; the
                // host reports any disagreement between the copies.
                if !capabilities.contains(&cap) {
                    capabilities.push(cap);
                }
            }
            resolved_kinds.push(ResolvedKind {
                id: kind.id,
                secrets: kind.secrets,
                hosts: kind.hosts,
                capabilities: ids,
                auth_summary: match kind.auth {
                    KindAuth::Declarative(auth) => auth.summary(),
                    KindAuth::Custom(summary) => summary,
                },
                derived: kind.refresh.as_ref().map(Refresh::derived).unwrap_or_default(),
            });
        }
        Resolved {
            id: self.id,
            version: self.version,
            description: self.description,
            hosts,
            secrets: self.secrets,
            kinds: resolved_kinds,
            capabilities,
            // Signing needs the body, so declaring it asks for it.
            needs_body: self.needs_body || signs,
        }
    }
}

impl CredentialKind {
    /// A kind authenticated by a declarative [`Auth`].
    pub fn new(id: impl Into<String>, auth: Auth) -> Self {
        Self::with_auth(id.into(), KindAuth::Declarative(auth))
    }

    /// A kind whose injection the provider implements itself in
    /// [`crate::Provider::inject`]; `auth_summary` tells people what it does.
    pub fn custom(id: impl Into<String>, auth_summary: impl Into<String>) -> Self {
        Self::with_auth(id.into(), KindAuth::Custom(auth_summary.into()))
    }

    fn with_auth(id: String, auth: KindAuth) -> Self {
        CredentialKind {
            id,
            secrets: Vec::new(),
            hosts: Vec::new(),
            auth,
            refresh: None,
            capabilities: Vec::new(),
        }
    }

    /// A token refresh for this kind (contract 0.2.0): its derived values
    /// reach `inject` beside the secrets. Its token host must be one of the
    /// kind's hosts; give the kind's capabilities their own hosts so none
    /// of them can reach the token endpoint.
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// A vault secret (declared with [`Manifest::secret`]) this kind needs.
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        push_unique(&mut self.secrets, name.into());
        self
    }

    /// A host this kind may reach (`*.` wildcards allowed).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        push_unique(&mut self.hosts, host.into());
        self
    }

    /// A capability this kind serves.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }
}

impl Capability {
    /// A capability `id` (`<provider>/<name>`) with a one-line description.
    pub fn new(id: impl Into<String>, description: impl Into<String>) -> Self {
        Capability {
            id: id.into(),
            description: description.into(),
            methods: Vec::new(),
            prefixes: Vec::new(),
            hosts: Vec::new(),
        }
    }

    /// Allowed HTTP methods, upper case.
    pub fn methods(mut self, methods: &[&str]) -> Self {
        for method in methods {
            push_unique(&mut self.methods, method.to_string());
        }
        self
    }

    /// An allowed path prefix, e.g. `/v1/models`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        push_unique(&mut self.prefixes, prefix.into());
        self
    }

    /// Several allowed path prefixes.
    pub fn prefixes(self, prefixes: &[&str]) -> Self {
        prefixes.iter().fold(self, |cap, p| cap.prefix(*p))
    }

    /// Restricts the capability to `host`; without it the capability uses
    /// every host of its credential kind.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        push_unique(&mut self.hosts, host.into());
        self
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Top-level declarations become one `default` kind holding everything.
    #[test]
    fn top_level_declarations_form_the_default_kind() {
        let r = Manifest::new("ex", "1.0.0")
            .host("api.example.com")
            .secret("EX_KEY", "secret", "")
            .auth(Auth::bearer("secret"))
            .capability(Capability::new("ex/a", "").methods(&["GET"]).prefix("/a"))
            .resolve();
        assert_eq!(r.kinds.len(), 1);
        assert_eq!(r.kinds[0].id, DEFAULT_KIND);
        assert_eq!(r.kinds[0].secrets, vec!["EX_KEY"]);
        assert_eq!(r.kinds[0].capabilities, vec!["ex/a"]);
        assert_eq!(r.capabilities[0].hosts, vec!["api.example.com"]);
        assert_eq!(r.kinds[0].auth_summary, "header authorization: Bearer {{secret}}");
    }

    // A capability table adds one top-level capability per row, in order.
    #[test]
    fn capability_table_adds_each_row() {
        let r = Manifest::new("ex", "1.0.0")
            .host("api.example.com")
            .secret("EX_KEY", "secret", "")
            .auth(Auth::bearer("secret"))
            .capabilities(&[
                ("ex/a", "A", &["GET"], &["/a"]),
                ("ex/b", "B", &["DELETE", "POST"], &["/b", "/c/"]),
            ])
            .resolve();
        assert_eq!(r.kinds[0].capabilities, vec!["ex/a", "ex/b"]);
        let b = &r.capabilities[1];
        assert_eq!(
            (b.description.as_str(), &b.methods, &b.prefixes),
            ("B", &vec!["DELETE".to_string(), "POST".into()], &vec!["/b".to_string(), "/c/".into()])
        );
        assert_eq!(b.hosts, vec!["api.example.com"]);
    }

    // Kind hosts join the manifest's host list so the host can check them.
    #[test]
    fn explicit_kinds_contribute_their_hosts() {
        let r = Manifest::new("ex", "1.0.0")
            .secret("EX_JSON", "json", "")
            .credential(
                CredentialKind::custom("oauth", "custom")
                    .secret("EX_JSON")
                    .host("other.example.com")
                    .capability(Capability::new("ex/b", "").methods(&["POST"]).prefix("/b")),
            )
            .resolve();
        assert_eq!(r.hosts, vec!["other.example.com"]);
        assert_eq!(r.kinds[0].auth_summary, "custom");
    }
}
