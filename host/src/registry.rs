//! The provider catalogue: every loaded component's manifest, capability
//! look-up with suggestions, and matching of vault secret names to the
//! provider that declares them.

use crate::plugins::{Capability, CredentialKind, Origin, Plugin, PluginError, Runtime, builtin_components};

/// Look-up failures, with a close match where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No loaded provider declares this capability.
    #[error("no capability `{id}`{}; `aivault capability list` shows them all", hint(suggestion))]
    UnknownCapability { id: String, suggestion: Option<String> },

    /// No loaded provider has this id.
    #[error("no provider `{id}`{}; `aivault capability list` shows the providers", hint(suggestion))]
    UnknownProvider { id: String, suggestion: Option<String> },

    /// A component failed to load.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

fn hint(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// The loaded providers, built-in first, each id unique.
pub struct Registry {
    providers: Vec<Plugin>,
}

/// A capability together with the provider that declares it.
#[derive(Clone, Copy)]
pub struct CapabilityRef<'a> {
    pub provider: &'a Plugin,
    pub capability: &'a Capability,
}

impl<'a> CapabilityRef<'a> {
    /// The credential kinds able to serve this capability.
    pub fn kinds(&self) -> impl Iterator<Item = &'a CredentialKind> + 'a {
        self.provider.manifest().kinds_for_capability(&self.capability.id)
    }
}

impl Registry {
    /// Loads every built-in provider. A built-in that fails to load is a bug
    /// in this build, reported as an error rather than skipped.
    pub fn load_builtin(runtime: &Runtime) -> Result<Self, RegistryError> {
        let providers = builtin_components()
            .iter()
            .map(|c| runtime.load(Origin::BuiltIn(c.name), c.bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Registry { providers })
    }

    /// Every loaded provider, sorted by id.
    pub fn providers(&self) -> &[Plugin] {
        &self.providers
    }

    /// The provider with `id`.
    pub fn provider(&self, id: &str) -> Result<&Plugin, RegistryError> {
        self.providers.iter().find(|p| p.id() == id).ok_or_else(|| RegistryError::UnknownProvider {
            id: id.to_string(),
            suggestion: closest(id, self.providers.iter().map(Plugin::id)),
        })
    }

    /// Every capability of every provider, in provider then capability order.
    pub fn capabilities(&self) -> impl Iterator<Item = CapabilityRef<'_>> {
        self.providers.iter().flat_map(|provider| {
            provider
                .manifest()
                .capabilities
                .iter()
                .map(move |capability| CapabilityRef { provider, capability })
        })
    }

    /// The capability with `id`, or an error suggesting the closest id.
    pub fn capability(&self, id: &str) -> Result<CapabilityRef<'_>, RegistryError> {
        self.capabilities().find(|c| c.capability.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.capabilities().map(|c| c.capability.id.as_str()).collect();
            RegistryError::UnknownCapability { id: id.to_string(), suggestion: closest(id, ids.into_iter()) }
        })
    }

    /// The provider that declares vault secret `name`, if any.
    pub fn provider_for_secret(&self, name: &str) -> Option<&Plugin> {
        self.providers.iter().find(|p| p.manifest().vault_secret(name).is_some())
    }
}

/// The candidate most like `input`: an exact match of the part after `/`
/// (so `chat-completions` finds `openai/chat-completions`), else the most
/// similar by edit distance if it is similar enough to be a typo.
pub fn closest<'a>(input: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let input_lower = input.to_ascii_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let lower = candidate.to_ascii_lowercase();
        let tail = lower.rsplit('/').next().unwrap_or(&lower);
        let score = if tail == input_lower {
            1.0
        } else {
            strsim::jaro_winkler(&input_lower, &lower).max(strsim::jaro_winkler(&input_lower, tail) - 0.02)
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.filter(|(score, _)| *score >= 0.85).map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: &[&str] = &["openai/chat-completions", "openai/models", "github/repos", "trello/cards"];

    // The bare capability name finds its full id.
    #[test]
    fn bare_name_suggests_full_id() {
        assert_eq!(closest("repos", IDS.iter().copied()).as_deref(), Some("github/repos"));
    }

    // A typo finds the intended id.
    #[test]
    fn typo_suggests_close_id() {
        assert_eq!(
            closest("openai/chat-completion", IDS.iter().copied()).as_deref(),
            Some("openai/chat-completions")
        );
        assert_eq!(closest("openai/modles", IDS.iter().copied()).as_deref(), Some("openai/models"));
    }

    // Case does not hide a close match.
    #[test]
    fn case_insensitive() {
        assert_eq!(
            closest("OPENAI_API_KY", ["OPENAI_API_KEY"].into_iter()).as_deref(),
            Some("OPENAI_API_KEY")
        );
    }

    // Nothing is suggested for an unrelated input.
    #[test]
    fn unrelated_suggests_nothing() {
        assert_eq!(closest("zzzz/qqqq", IDS.iter().copied()), None);
    }
}
