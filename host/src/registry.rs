//! The provider catalogue: every loaded component's manifest, capability
//! look-up with suggestions, and matching of vault secret names to the
//! provider that declares them.

pub mod dropin;

use std::path::Path;

use crate::plugins::{Capability, CredentialKind, Plugin, PluginError, Runtime, builtin_components};
use crate::vault::ApprovalRow;

/// Look-up failures, with a close match where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No loaded provider declares this capability.
    #[error("no capability `{id}`{}; `aivault capability list` shows them all", hint(suggestion))]
    UnknownCapability { id: String, suggestion: Option<String> },

    /// No loaded provider has this id.
    #[error("no provider `{id}`{}; `aivault provider list` shows the providers", hint(suggestion))]
    UnknownProvider { id: String, suggestion: Option<String> },

    /// A dropped-in provider exists but is not in use.
    #[error("provider {id} is not in use: {reason}")]
    NotInUse { id: String, reason: String },

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
    /// Approved drop-ins that were not loaded, with the reason.
    refused: Vec<(String, String)>,
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
        // Each was described when this binary was built: nothing is
        // compiled here, whatever the vault's caches hold.
        let providers =
            builtin_components().iter().map(|c| runtime.load_builtin(c)).collect::<Result<_, _>>()?;
        Ok(Registry { providers, refused: Vec::new() })
    }

    /// The built-ins plus every enabled drop-in in `dir` whose file still has
    /// its approved digest and claims nothing another provider claims.
    /// Unapproved and changed files are never compiled (a changed file is
    /// code nobody approved); refused ones are remembered to explain
    /// look-up failures.
    pub fn load(runtime: &Runtime, dir: &Path, approvals: &[ApprovalRow]) -> Result<Self, RegistryError> {
        let mut registry = Self::load_builtin(runtime)?;
        let builtin_count = registry.providers.len();
        for approval in approvals.iter().filter(|a| !a.enabled) {
            let reason = format!(
                "it is disabled; `aivault provider enable {}` turns it back on",
                approval.provider_id
            );
            registry.refused.push((approval.provider_id.clone(), reason));
        }
        for approval in approvals.iter().filter(|a| a.enabled) {
            let refuse = |registry: &mut Registry, reason: String| {
                registry.refused.push((approval.provider_id.clone(), reason));
            };
            let file = match dropin::read(&dir.join(&approval.file_name)) {
                Ok(file) => file,
                Err(e) => {
                    refuse(&mut registry, format!("its file {} cannot be read ({e})", approval.file_name));
                    continue;
                }
            };
            if file.sha256 != approval.sha256 {
                refuse(&mut registry, dropin::changed_reason(approval, &file));
                continue;
            }
            let plugin = match dropin::load(runtime, &file) {
                Ok(plugin) => plugin,
                Err(reason) => {
                    refuse(&mut registry, reason);
                    continue;
                }
            };
            let others: Vec<_> = registry
                .providers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.manifest(), i < builtin_count))
                .collect();
            if let Some(reason) = dropin::conflict(plugin.manifest(), &others) {
                refuse(&mut registry, reason);
                continue;
            }
            registry.providers.push(plugin);
        }
        Ok(registry)
    }

    /// Records that approved provider `id` is not used, and why (e.g. its
    /// approval failed its integrity check).
    pub fn refuse(&mut self, id: String, reason: String) {
        self.refused.push((id, reason));
    }

    /// Approved drop-ins that were not loaded, with the reason.
    pub fn refused(&self) -> &[(String, String)] {
        &self.refused
    }

    /// Every loaded provider, sorted by id.
    pub fn providers(&self) -> &[Plugin] {
        &self.providers
    }

    /// The provider with `id`.
    pub fn provider(&self, id: &str) -> Result<&Plugin, RegistryError> {
        self.providers.iter().find(|p| p.id() == id).ok_or_else(|| self.not_loaded(id))
    }

    fn not_loaded(&self, id: &str) -> RegistryError {
        match self.refused.iter().find(|(refused, _)| refused == id) {
            Some((id, reason)) => RegistryError::NotInUse { id: id.clone(), reason: reason.clone() },
            None => RegistryError::UnknownProvider {
                id: id.to_string(),
                suggestion: closest(id, self.providers.iter().map(Plugin::id)),
            },
        }
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
        // A capability's id starts with its provider's (every manifest is
        // validated so), and provider ids are unique: only that provider's
        // manifest needs decoding.
        let provider = id.split_once('/').and_then(|(provider, _)| self.provider(provider).ok());
        if let Some(provider) = provider
            && let Some(capability) = provider.manifest().capabilities.iter().find(|c| c.id == id)
        {
            return Ok(CapabilityRef { provider, capability });
        }
        self.capabilities().find(|c| c.capability.id == id).ok_or_else(|| {
            // `acme/x` of a refused provider `acme` gets that provider's reason.
            if let Some((provider, _)) = id.split_once('/')
                && self.refused.iter().any(|(refused, _)| refused == provider)
            {
                return self.not_loaded(provider);
            }
            let ids: Vec<&str> = self.capabilities().map(|c| c.capability.id.as_str()).collect();
            RegistryError::UnknownCapability { id: id.to_string(), suggestion: closest(id, ids.into_iter()) }
        })
    }

    /// The provider that declares vault secret `name`, if any.
    pub fn provider_for_secret(&self, name: &str) -> Option<&Plugin> {
        self.providers.iter().find(|p| p.declares_secret(name))
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
