//! The provider's half of a token refresh (contract 0.2.0): it builds the
//! token request from the credential's secrets, and reads the endpoint's
//! answer into the derived values it declared. The host sends the request
//! and keeps the values (see `broker::refresh`).

use zeroize::Zeroizing;

use super::adapter::{RefreshRefusal, Token, TokenResponse};
use super::manifest::CredentialKind;
use super::runtime::scrub;
use super::{OutgoingRequest, Plugin, PluginError, verify};

/// The most one derived value may hold (an access token is a few KiB at most).
const MAX_DERIVED_BYTES: usize = 16 * 1024;

impl Plugin {
    /// The token request for `kind`, built from its `secrets` at time `now`
    /// and checked: it goes to one of the kind's hosts, and nothing in it
    /// is quoted in a refusal.
    pub fn refresh(
        &self,
        kind: &CredentialKind,
        secrets: &[(String, Zeroizing<String>)],
        now: u64,
    ) -> Result<OutgoingRequest, PluginError> {
        let result = self
            .sandbox()?
            .call(self.label(), "refresh", |c, store| c.refresh(store, &kind.id, secrets, now))?;
        let request = result.map_err(|e| PluginError::InjectFailed {
            provider: self.label().to_string(),
            reason: scrub(&e.to_string(), secrets, None),
        })?;
        verify::check_token_request(&request, &kind.hosts).map_err(|reason| PluginError::InjectRefused {
            provider: self.label().to_string(),
            reason: scrub(&reason, secrets, None),
        })?;
        Ok(request)
    }

    /// What the provider reads from the token endpoint's `response`: every
    /// value `kind` declares, and nothing else. Its words are shown only
    /// with the secrets (and a successful answer's body) redacted.
    pub fn absorb_token(
        &self,
        kind: &CredentialKind,
        secrets: &[(String, Zeroizing<String>)],
        response: &TokenResponse,
        now: u64,
    ) -> Result<Token, PluginError> {
        let result = self
            .sandbox()?
            .call(self.label(), "absorb-token", |c, store| c.absorb_token(store, &kind.id, response, now))?;
        // A successful answer carries the new token, so nothing of it may be
        // quoted; a refusal carries the endpoint's reason, which may be.
        let mut needles: Vec<(String, Zeroizing<String>)> = secrets.to_vec();
        if (200..300).contains(&response.status) {
            needles
                .push((String::new(), Zeroizing::new(String::from_utf8_lossy(&response.body).into_owned())));
        }
        let token = match result {
            Ok(token) => token,
            Err(RefreshRefusal::Refused(why)) => {
                return Err(PluginError::RefreshRefused {
                    provider: self.label().to_string(),
                    reason: scrub(&why, &needles, None),
                });
            }
            Err(RefreshRefusal::Malformed(why)) => {
                return Err(PluginError::RefreshFailed {
                    provider: self.label().to_string(),
                    reason: scrub(&why, &needles, None),
                });
            }
        };
        let failed =
            |reason: String| PluginError::RefreshFailed { provider: self.label().to_string(), reason };
        if let Some((name, _)) = token.values.iter().find(|(name, _)| !kind.derived.contains(name)) {
            let name = scrub(name, &needles, None);
            return Err(failed(format!(
                "it derived `{name}`, which credential kind `{}` does not declare",
                kind.id
            )));
        }
        if let Some(missing) = kind.derived.iter().find(|d| !token.values.iter().any(|(name, _)| name == *d))
        {
            return Err(failed(format!("it did not derive `{missing}`")));
        }
        if let Some((name, _)) = token
            .values
            .iter()
            .find(|(_, v)| v.is_empty() || v.len() > MAX_DERIVED_BYTES || v.chars().any(char::is_control))
        {
            return Err(failed(format!("its `{name}` is empty, too long or holds control characters")));
        }
        Ok(token)
    }
}
