//! Proxy tokens: what a program presents to `aivault serve` in place of an
//! API key. A token names the capabilities it may call, the context (scope
//! and consumer) every call runs in, and when it expires; it is shown once
//! at creation and only its hash is kept.

use std::time::Duration;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::audit::{self, Event};
use super::config_cache::stamped;
use super::management::{ManageError, check_token, ensure_capability_known};
use super::scope::Scope;
use super::store::TokenRow;
use super::unlock::KeyUse;
use super::{Result, Vault, VaultError, now_ms};
use crate::registry::Registry;

/// Every proxy token starts with this, so secret scanners can find a leaked one.
pub const TOKEN_PREFIX: &str = "aivt_";

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub capabilities: Vec<String>,
    /// The context its calls run in.
    pub scope: Scope,
    pub consumer: Option<String>,
    /// How long it is valid; `None` until revoked.
    pub ttl: Option<Duration>,
}

/// Why a presented token is not accepted. None of these quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("that is not an aivault proxy token (they start with `{TOKEN_PREFIX}`)")]
    Malformed,
    #[error("unknown proxy token: it was never issued, or it was revoked")]
    Unknown,
    #[error("proxy token {id} expired")]
    Expired { id: String },
    #[error("a token needs at least one --capability")]
    NoCapabilities,
    #[error("no proxy token `{0}`; `aivault token list` shows them")]
    UnknownId(String),
}

impl From<TokenError> for VaultError {
    fn from(e: TokenError) -> Self {
        VaultError::Token(e)
    }
}

/// SHA-256 of a token, hex: what is stored and looked up.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Vault {
    /// Creates a token; returns its row and the token itself, which is
    /// never stored and cannot be shown again.
    pub fn create_token(
        &mut self,
        registry: &Registry,
        new: NewToken,
    ) -> Result<(TokenRow, Zeroizing<String>)> {
        if new.capabilities.is_empty() {
            return Err(TokenError::NoCapabilities.into());
        }
        if let Some(consumer) = &new.consumer {
            check_token(consumer, "._-@").map_err(|()| ManageError::BadConsumer(consumer.clone()))?;
        }
        let tx = self.begin_write()?;
        for capability in &new.capabilities {
            ensure_capability_known(&tx, registry, capability)?;
        }
        let mut random = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(random.as_mut());
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random.as_ref())));
        let now = now_ms();
        let mut capabilities = new.capabilities.clone();
        capabilities.sort();
        capabilities.dedup();
        let row = TokenRow {
            id: format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            hash: token_hash(&token),
            capabilities,
            scope: new.scope,
            consumer: new.consumer,
            created_at_ms: now,
            expires_at_ms: new.ttl.map(|ttl| now.saturating_add(ttl.as_millis() as i64)),
        };
        tx.insert_token(&row)?;
        let details = json!({
            "capabilities": row.capabilities, "context": row.scope.to_string(), "consumer": row.consumer,
            "expiresAtMs": row.expires_at_ms,
        });
        audit::append(&tx, &Event::new("token.create", &row.id, details), now)?;
        tx.commit()?;
        Ok((row, token))
    }

    /// Every token (never the tokens themselves).
    pub fn tokens(&mut self) -> Result<Vec<TokenRow>> {
        Ok(self.begin_listing()?.tokens()?)
    }

    /// Revokes a token at once (also one that fails its integrity check).
    pub fn revoke_token(&mut self, id: &str) -> Result<()> {
        let mut tx = self.begin_write()?;
        tx.skip_checks();
        if !tx.delete_token(id)? {
            return Err(TokenError::UnknownId(id.to_string()).into());
        }
        audit::append(&tx, &Event::new("token.revoke", id, json!({})), now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// The token `presented` is, if it is a live one.
    pub fn token(&mut self, presented: &str) -> Result<TokenRow> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 128 {
            return Err(TokenError::Malformed.into());
        }
        let cache = self.cache.clone();
        let tx = self.begin_read(KeyUse::Required)?;
        let hash = token_hash(presented);
        let stamped = stamped(cache.as_deref(), &tx)?;
        let row = match stamped.as_ref().and_then(|(cache, stamp)| cache.token(stamp, &hash)) {
            Some(row) => row,
            None => {
                let row = tx.token_by_hash(&hash)?.ok_or(TokenError::Unknown)?;
                if let Some((cache, stamp)) = &stamped {
                    cache.keep_token(stamp, row.clone());
                }
                row
            }
        };
        if row.expires_at_ms.is_some_and(|at| at <= now_ms()) {
            return Err(TokenError::Expired { id: row.id }.into());
        }
        Ok(row)
    }
}
