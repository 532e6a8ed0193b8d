//! The encrypted vault: secrets sealed in SQLite, never returned, matched
//! against the providers' declared secret names to pin them and provision
//! credentials. Every public operation is one transaction, and either
//! completes with its audit events or changes nothing.

mod agents;
mod approvals;
pub mod audit;
mod config_cache;
mod crypto;
mod derived;
mod doctor;
mod group_commit;
pub mod integrity;
mod invocation;
pub mod keys;
mod management;
mod migrate;
mod names;
mod pool;
mod provision;
mod rotation;
mod schema;
pub mod scope;
mod secrets;
mod status;
mod store;
mod tokens;
mod unlock;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use agents::NewGrant;
pub use approvals::Approvals;
pub use audit::Verification;
pub use crypto::DecryptError;
pub use derived::{Derived, source_of};
pub use doctor::Diagnosis;
pub use integrity::IntegrityError;
pub use invocation::{InvocationData, Unsealer};
pub use keys::{KeyError, KeyProvider};
pub use management::{ManageError, NewCapability, NewCredential, PolicyChange};
pub use migrate::{MigrateError, Migrated};
pub use names::NameError;
pub use pool::{PooledVault, VaultPool};
pub use provision::{Provisioned, Waiting};
pub use scope::{Scope, ScopeError, ScopeKind};
pub use secrets::{Created, Deleted, NewSecret};
pub use status::Status;
pub use store::{
    ApprovalRow, AuditRow, BindingRow, CredentialRow, CustomCapabilityRow, GrantRow, KeyConfigRow, PolicyRow,
    SecretFilter, SecretRow, StoreError, TokenRow,
};
pub use tokens::{NewToken, TOKEN_PREFIX, TokenError};

pub use unlock::KeyCache;

use crate::plugins::PluginError;
pub use store::Location;
use store::{Store, Tx};
use unlock::KeyUse;

/// Largest value a secret may hold.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Shortest value a secret may hold: anything shorter would match ordinary
/// text, so it could not be redacted safely from what upstream or a
/// provider says.
pub const MIN_VALUE_CHARS: usize = 8;

/// Vault failures: each one line, none carrying a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error(transparent)]
    Token(TokenError),
    #[error(transparent)]
    Registry(Box<crate::registry::RegistryError>),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Migrate(MigrateError),

    #[error(
        "no secret with id, name or alias `{label}`{}; `aivault secrets list` shows them",
        suggest(suggestion)
    )]
    UnknownSecret { label: String, suggestion: Option<String> },
    #[error(
        "`{label}` names {count} secrets ({scopes}); pass the secret's id instead (see `aivault secrets list`)"
    )]
    AmbiguousSecret { label: String, count: usize, scopes: String },
    #[error("a secret {relation} `{label}` already exists in scope {scope}{}", other_name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
    Duplicate { label: String, scope: Scope, relation: &'static str, other_name: Option<String> },
    #[error("`{label}` appears twice in this import")]
    DuplicateInImport { label: String },
    #[error("the value for {name} is empty")]
    EmptyValue { name: String },
    #[error(
        "the value for {name} is shorter than {MIN_VALUE_CHARS} characters; a value that short cannot be redacted safely, so it is refused"
    )]
    ValueTooShort { name: String },
    #[error("the value for {name} is larger than {MAX_VALUE_BYTES} bytes")]
    ValueTooLarge { name: String },
    #[error("{name} is pinned to provider {provider}; its name is fixed (add an alias instead)")]
    PinnedName { name: String, provider: String },
    #[error(
        "`{name}` is the secret name of provider {provider}; create a new secret with that name so it is checked and pinned"
    )]
    ProviderName { name: String, provider: String },
    #[error(
        "{name} is pinned to provider {provider}, which is not loaded, so its new value cannot be checked"
    )]
    ProviderMissing { name: String, provider: String },
    #[error("{name} could not be decrypted: its row was altered, moved or re-scoped in the database")]
    Tampered { name: String },
    #[error("{name} is already attached to group {workspace}/{group}")]
    AlreadyAttached { name: String, workspace: String, group: String },
    #[error("{name} is not attached to group {workspace}/{group}")]
    NotAttached { name: String, workspace: String, group: String },
    #[error(
        "the vault is already set up with the {0} key provider; use `aivault rotate-master --provider …` to change it"
    )]
    AlreadyInitialised(String),
    #[error("nothing to update: pass --name, --alias or --clear-aliases")]
    NothingToUpdate,
    #[error(
        "the vault's key check was replaced with one from before its rows were authenticated; the vault may have been edited outside aivault"
    )]
    KeyCheckReplaced,
    #[error("the vault has no master key yet; `aivault secrets create` or `aivault init` sets one up")]
    NotInitialised,
    #[error(
        "the vault holds secrets or authenticated rows but its key configuration is missing; restore vault.db from a backup"
    )]
    KeyConfigMissing,
}

impl VaultError {
    /// Whether the database could not be reached or dropped the connection:
    /// a server answers "try again" rather than "refused".
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            VaultError::Store(
                StoreError::ConnectionLost | StoreError::LostWhileCommitting | StoreError::Open { .. }
            )
        )
    }
}

fn suggest(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

type Result<T> = std::result::Result<T, VaultError>;

/// An open vault: its directory (key file, compiled components, config)
/// and its database there or on a server.
pub struct Vault {
    dir: PathBuf,
    location: Location,
    store: Store,
    keys: KeyCache,
    /// Where a pooled connection's audit records are written together.
    group: Option<Arc<group_commit::GroupCommit>>,
    /// Where a pooled connection keeps checked rows between calls.
    cache: Option<Arc<config_cache::ConfigCache>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Vault {
    /// Where the vault of `dir` keeps its rows: the database
    /// `AIVAULT_DATABASE_URL` or `[storage] url` names, else `vault.db` in it.
    pub fn location_of(dir: &Path) -> Result<Location> {
        Self::location_in(dir, &crate::config::Config::load(dir)?)
    }

    /// [`Vault::location_of`] with `dir`'s configuration already read.
    pub fn location_in(dir: &Path, config: &crate::config::Config) -> Result<Location> {
        Ok(match config.database_url() {
            Some(url) => Location::postgres(&url)?,
            None => Location::Sqlite(dir.to_path_buf()),
        })
    }

    /// Whether the vault of `dir` exists: its `vault.db`, or a database
    /// server it is configured to use (whose tables the first connection
    /// creates).
    pub fn exists(dir: &Path) -> bool {
        match Self::location_of(dir) {
            Ok(Location::Sqlite(_)) => Store::path_in(dir).exists(),
            // A configured server, or a configuration that is wrong: opening
            // says which.
            _ => true,
        }
    }

    /// Opens the vault in `dir`, creating it (owner-only) if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, KeyCache::default())
    }

    /// Opens the vault sharing `keys` with other handles, so the master key
    /// is unlocked once (one passphrase prompt per process).
    pub fn open_with(dir: &Path, keys: KeyCache) -> Result<Self> {
        Self::open_at(dir, Self::location_of(dir)?, keys)
    }

    /// Opens the vault of `dir` with its rows at `location`.
    pub fn open_at(dir: &Path, location: Location, keys: KeyCache) -> Result<Self> {
        // The directory holds key files and compiled code wherever the rows are.
        crate::fsutil::create_private_dir(dir)
            .map_err(|e| StoreError::Open { location: dir.display().to_string(), source: e.into() })?;
        Ok(Vault {
            dir: dir.to_path_buf(),
            store: Store::open_at(&location)?,
            location,
            keys,
            group: None,
            cache: None,
        })
    }

    /// Makes every later commit of this connection durable against power
    /// loss when it returns (see [`Store::durable_commits`]): what an
    /// operator's command changes must not depend on a later checkpoint.
    /// Brokers' commits, the audit records of calls, do not wait for the
    /// disk: on power loss the last of them may be missing, never torn.
    pub fn durable_commits(&mut self) -> Result<()> {
        Ok(self.store.durable_commits()?)
    }

    /// Where this vault's rows are.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets up the master key with `provider`. Refused once a key exists.
    pub fn init(&mut self, provider: KeyProvider) -> Result<()> {
        self.begin_init(provider)?.commit()?;
        Ok(())
    }

    /// Every credential.
    pub fn credentials(&mut self) -> Result<Vec<CredentialRow>> {
        Ok(self.begin_listing()?.credentials()?)
    }

    /// Newest audit events first.
    pub fn audit(&mut self, limit: i64, before_ts_ms: Option<i64>) -> Result<Vec<AuditRow>> {
        Ok(self.begin_read(KeyUse::Skip)?.audit_page(limit, before_ts_ms)?)
    }

    /// Unlocks the master key now (asking for a passphrase if it must), so
    /// a long-running front-end never waits on a prompt mid-request.
    pub fn unlock(&mut self) -> Result<()> {
        let tx = self.begin_read(KeyUse::Required)?;
        if tx.keys().is_none() {
            return Err(VaultError::NotInitialised);
        }
        Ok(())
    }

    /// Checks the audit chain: the hashes, each event's MAC and the sealed
    /// head (which needs the key).
    pub fn verify_audit(&mut self) -> Result<Verification> {
        Ok(audit::verify(&self.begin_read(KeyUse::Required)?)?)
    }
}

/// The keys a write transaction holds.
fn held_keys(tx: &Tx<'_>) -> Result<std::sync::Arc<integrity::KeySet>> {
    Ok(tx.keys().cloned().ok_or(StoreError::Unkeyed)?)
}
