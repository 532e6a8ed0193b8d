//! The rows a long-running front-end's calls are decided on, kept between
//! calls while the vault stands still: the proxy tokens presented, and the
//! credentials, secrets, custom capabilities, policies and bindings of the
//! broker's snapshot. Reading and checking them took a third of what
//! `serve` added to a call (a dozen statements, every row's MAC and four
//! tables' seals), and under load most of it was SQLite reading again pages
//! another connection's commit had made it drop.
//!
//! Every committed write moves the vault's generation on ([`Tx::commit`]),
//! except the broker's own audit records and rate counts, which nothing
//! kept here depends on. A call still opens its read transaction with the
//! key as before (a locked vault refuses it), reads the generation, and
//! uses what is kept only if it was read and checked at that generation
//! under the same keys. So a rotation, a revocation or a new policy written
//! by any process, on any machine sharing the database, is in force at the
//! next call, as without the cache; everything kept passed every integrity
//! check when it was read. A row edited outside aivault is not read again
//! until the generation moves: the copy checked before is used instead of
//! it, never the edit, and the edit is reported when anything is next
//! written, by `doctor`, and by every other process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::integrity::KeySet;
use super::store::{BindingRow, CredentialRow, CustomCapabilityRow, PolicyRow, TokenRow, Tx};
use super::{Result, SecretRow};

/// Tokens kept at most; past it they are forgotten and read again.
const MAX_TOKENS: usize = 1024;

/// What a pool's connections keep between calls.
#[derive(Default)]
pub struct ConfigCache {
    kept: Mutex<Option<Kept>>,
}

/// Rows read and checked at one generation under one set of keys.
struct Kept {
    stamp: Stamp,
    snapshot: Option<Arc<Snapshot>>,
    /// Tokens by hash (unknown ones are never kept: each is looked up).
    tokens: HashMap<String, TokenRow>,
}

/// When rows were read: the generation, and the keys they were checked
/// with (weakly: locking the vault must leave no key material behind).
#[derive(Clone)]
pub(super) struct Stamp {
    generation: i64,
    keys: Weak<KeySet>,
}

impl Stamp {
    /// The stamp of what `tx` reads, if it checks what it reads (a vault
    /// without its key, or one whose rows predate MACs, keeps nothing).
    fn of(tx: &Tx<'_>) -> Result<Option<Stamp>> {
        let Some(keys) = tx.keys().filter(|_| tx.checks_rows()) else { return Ok(None) };
        Ok(Some(Stamp { generation: tx.generation()?, keys: Arc::downgrade(keys) }))
    }

    fn is(&self, other: &Stamp) -> bool {
        self.generation == other.generation && Weak::ptr_eq(&self.keys, &other.keys)
    }
}

/// Every row the broker decides a call on, checked.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub credentials: Vec<CredentialRow>,
    /// Secrets used by those credentials, by id.
    pub secrets: HashMap<String, SecretRow>,
    pub custom_capabilities: Vec<CustomCapabilityRow>,
    pub policies: Vec<PolicyRow>,
    pub bindings: Vec<BindingRow>,
}

impl Snapshot {
    /// Reads and checks every row (each table's seal with it).
    pub(super) fn read(tx: &Tx<'_>) -> Result<Self> {
        Ok(Snapshot {
            credentials: tx.credentials()?,
            secrets: tx.secrets_of_credentials()?.into_iter().map(|s| (s.id.clone(), s)).collect(),
            custom_capabilities: tx.custom_capabilities()?,
            policies: tx.policies()?,
            bindings: tx.bindings()?,
        })
    }
}

/// `cache` with the stamp of what `tx` reads, if there is a cache and `tx`
/// checks what it reads.
pub(super) fn stamped<'c>(
    cache: Option<&'c ConfigCache>,
    tx: &Tx<'_>,
) -> Result<Option<(&'c ConfigCache, Stamp)>> {
    match cache {
        Some(cache) => Ok(Stamp::of(tx)?.map(|stamp| (cache, stamp))),
        None => Ok(None),
    }
}

impl ConfigCache {
    /// The snapshot kept at `stamp`.
    pub(super) fn snapshot(&self, stamp: &Stamp) -> Option<Arc<Snapshot>> {
        self.at(stamp).as_ref()?.snapshot.clone()
    }

    pub(super) fn keep_snapshot(&self, stamp: &Stamp, snapshot: Arc<Snapshot>) {
        self.keep(stamp, |kept| kept.snapshot = Some(snapshot));
    }

    /// The token with `hash` kept at `stamp`.
    pub(super) fn token(&self, stamp: &Stamp, hash: &str) -> Option<TokenRow> {
        self.at(stamp).as_ref()?.tokens.get(hash).cloned()
    }

    pub(super) fn keep_token(&self, stamp: &Stamp, row: TokenRow) {
        self.keep(stamp, |kept| {
            if kept.tokens.len() >= MAX_TOKENS {
                kept.tokens.clear();
            }
            kept.tokens.insert(row.hash.clone(), row);
        });
    }

    /// What is kept, if it was read at `stamp`.
    fn at(&self, stamp: &Stamp) -> MutexGuard<'_, Option<Kept>> {
        let mut kept = self.lock();
        if kept.as_ref().is_some_and(|k| !k.stamp.is(stamp)) {
            *kept = None;
        }
        kept
    }

    /// Adds to what is kept at `stamp`, forgetting anything read at another.
    fn keep(&self, stamp: &Stamp, add: impl FnOnce(&mut Kept)) {
        let mut kept = self.at(stamp);
        add(kept.get_or_insert_with(|| Kept {
            stamp: stamp.clone(),
            snapshot: None,
            tokens: HashMap::new(),
        }));
    }

    fn lock(&self) -> MutexGuard<'_, Option<Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use zeroize::Zeroizing;

    use crate::plugins::{Runtime, SandboxLimits};
    use crate::registry::Registry;
    use crate::vault::audit::Event;
    use crate::vault::{
        KeyCache, NewToken, PolicyChange, PooledVault, Scope, TokenError, TokenRow, Vault, VaultError,
        VaultPool,
    };

    fn generation(vault: &mut Vault) -> i64 {
        vault.store.read().unwrap().generation().unwrap()
    }

    /// A vault with a pooled connection that has checked (and kept) a
    /// token for `openai/models`.
    struct Kept {
        dir: tempfile::TempDir,
        registry: Registry,
        vault: PooledVault,
        row: TokenRow,
        token: Zeroizing<String>,
    }

    fn kept_token() -> Kept {
        let dir = tempfile::tempdir().unwrap();
        let registry =
            Registry::load_builtin(&Runtime::new(SandboxLimits::default(), None).unwrap()).unwrap();
        let pool = VaultPool::new(dir.path().to_path_buf(), KeyCache::default()).unwrap();
        let mut vault = pool.get().unwrap();
        let new = NewToken {
            capabilities: vec!["openai/models".into()],
            scope: Scope::Global,
            consumer: None,
            ttl: None,
        };
        let (row, token) = vault.create_token(&registry, new).unwrap();
        assert_eq!(vault.token(&token).unwrap(), row);
        Kept { dir, registry, vault, row, token }
    }

    // A pooled connection keeps the token and snapshot it checked while
    // only calls' records are written; a write by another process is in
    // force at the next call; a row edited outside aivault is never used,
    // and is reported as soon as anything moves the generation on.
    #[test]
    fn kept_rows_serve_until_anything_but_a_record_is_written() {
        let Kept { dir, registry, mut vault, token, .. } = kept_token();
        assert_eq!(vault.invocation_data("openai/models").unwrap().policy, None);
        let kept = vault.cache.clone().unwrap();
        assert!(kept.lock().as_ref().is_some_and(|k| k.snapshot.is_some() && k.tokens.len() == 1));

        // Calls' records leave the generation where it was.
        let before = generation(&mut vault);
        let intent = Event::new("invoke.intent", "openai/models", json!({}));
        vault.admit("openai/models", Some(10), intent).unwrap().unwrap();
        vault.record("invoke", "openai/models", json!({})).unwrap();
        assert_eq!(generation(&mut vault), before);

        // Widened outside aivault: the copy checked before serves, never the edit.
        let db = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
        db.execute("UPDATE proxy_tokens SET capabilities = '[\"openai/files\",\"openai/models\"]'", [])
            .unwrap();
        assert_eq!(vault.token(&token).unwrap().capabilities, ["openai/models"]);

        // Another process sets a policy: in force at the next call, and the
        // edit is found now that the generation moved.
        let mut other = Vault::open(dir.path()).unwrap();
        let limit = PolicyChange { rate_limit_per_minute: Some(5), ..PolicyChange::default() };
        other.set_policy(&registry, "openai/models", limit).unwrap();
        assert_eq!(
            vault.invocation_data("openai/models").unwrap().policy.unwrap().rate_limit_per_minute,
            Some(5)
        );
        let refused = vault.token(&token).unwrap_err().to_string();
        assert!(refused.contains("integrity"), "{refused}");
    }

    // A token revoked by another process no longer serves at the next call,
    // though it was kept.
    #[test]
    fn a_revocation_elsewhere_is_in_force_at_the_next_call() {
        let Kept { dir, mut vault, row, token, .. } = kept_token();
        Vault::open(dir.path()).unwrap().revoke_token(&row.id).unwrap();
        assert!(matches!(vault.token(&token), Err(VaultError::Token(TokenError::Unknown))));
    }
}
