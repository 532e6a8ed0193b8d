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
mod status;
mod store;
mod tokens;
mod unlock;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use zeroize::Zeroizing;

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
pub use status::Status;
pub use store::{
    ApprovalRow, AuditRow, BindingRow, CredentialRow, CustomCapabilityRow, GrantRow, KeyConfigRow, PolicyRow,
    SecretFilter, SecretRow, StoreError, TokenRow,
};
pub use tokens::{NewToken, TOKEN_PREFIX, TokenError};

pub use unlock::KeyCache;

use crate::plugins::PluginError;
use crate::registry::{Registry, closest};
use audit::Event;
use crypto::Binding;
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

/// A secret to create: its value is wiped when dropped.
pub struct NewSecret {
    pub name: String,
    pub value: Zeroizing<String>,
    pub scope: Scope,
    pub aliases: Vec<String>,
}

/// What creating one secret did, for the spec's printed lines.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub name: String,
    pub pinned_provider: Option<String>,
    pub provisioned: Vec<Provisioned>,
    /// Credential kinds this secret belongs to that still lack secrets.
    pub waiting: Vec<Waiting>,
}

/// What deleting a secret removed.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub name: String,
    pub credentials: Vec<String>,
}

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

    /// Creates `secrets` in one transaction, as if each were created alone:
    /// names checked, values checked by their provider, then stored, pinned,
    /// and provisioned. Nothing is written unless every entry is valid.
    /// `progress` is called after each entry is checked.
    pub fn create(
        &mut self,
        registry: &Registry,
        secrets: Vec<NewSecret>,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Created>> {
        let total = secrets.len();
        let mut seen = std::collections::HashSet::new();
        for (i, s) in secrets.iter().enumerate() {
            names::check_name(&s.name)?;
            for alias in &s.aliases {
                names::check_alias(alias)?;
                if let Some(p) = registry.provider_for_secret(alias) {
                    return Err(NameError::AliasIsProviderName {
                        alias: alias.clone(),
                        provider: p.id().to_string(),
                    }
                    .into());
                }
            }
            for label in std::iter::once(&s.name).chain(&s.aliases) {
                if !seen.insert((s.scope.clone(), label.clone())) {
                    return Err(VaultError::DuplicateInImport { label: label.clone() });
                }
            }
            check_value(&s.name, &s.value)?;
            if let Some(provider) = registry.provider_for_secret(&s.name) {
                provider.validate_secret(&s.name, &s.value)?;
            }
            progress(i + 1, total);
        }

        let tx = self.begin_write()?;
        let keys = held_keys(&tx)?;
        let now = now_ms();
        let mut created = Vec::with_capacity(secrets.len());
        for s in secrets {
            for label in std::iter::once(&s.name).chain(&s.aliases) {
                ensure_label_free(&tx, &s.scope, label, None)?;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let pinned = registry.provider_for_secret(&s.name).map(|p| p.id().to_string());
            let binding = Binding {
                secret_id: &id,
                scope: &s.scope,
                pinned_provider: pinned.as_deref(),
                value_version: 1,
            };
            let row = SecretRow {
                id: id.clone(),
                name: s.name.clone(),
                scope: s.scope.clone(),
                pinned_provider: pinned.clone(),
                value_version: 1,
                sealed: crypto::seal(keys.kek(), &binding, s.value.as_bytes()),
                kek_id: keys.kek_id().to_string(),
                created_at_ms: now,
                updated_at_ms: now,
                aliases: s.aliases.clone(),
                attachments: Vec::new(),
            };
            tx.insert_secret(&row)?;
            let details = json!({"id": id, "scope": s.scope.to_string(), "aliases": s.aliases});
            audit::append(&tx, &Event::new("secret.create", &s.name, details), now)?;
            let outcome = match &pinned {
                Some(provider) => {
                    audit::append(
                        &tx,
                        &Event::new("secret.pin", &s.name, json!({"id": id, "provider": provider})),
                        now,
                    )?;
                    provision::after_create(&tx, registry, provider, &s.name, &s.scope, now)?
                }
                None => provision::Outcome::default(),
            };
            created.push(Created {
                id,
                name: s.name,
                pinned_provider: pinned,
                provisioned: outcome.provisioned,
                waiting: outcome.waiting,
            });
        }
        tx.commit()?;
        Ok(created)
    }

    /// Secrets matching `filter`, metadata only.
    pub fn list(&mut self, filter: &SecretFilter) -> Result<Vec<SecretRow>> {
        let tx = self.begin_listing()?;
        Ok(tx.secrets(filter)?)
    }

    /// Finds a secret by id, or by a name or alias that is unique.
    pub fn find(&mut self, label: &str) -> Result<SecretRow> {
        let tx = self.begin_read(KeyUse::IfAvailable)?;
        resolve_secret(&tx, label)
    }

    /// Renames and/or changes aliases (`add` appended; `clear` first removes all).
    pub fn update(
        &mut self,
        registry: &Registry,
        label: &str,
        new_name: Option<&str>,
        add_aliases: &[String],
        clear_aliases: bool,
    ) -> Result<SecretRow> {
        if new_name.is_none() && add_aliases.is_empty() && !clear_aliases {
            return Err(VaultError::NothingToUpdate);
        }
        if let Some(name) = new_name {
            names::check_name(name)?;
        }
        for alias in add_aliases {
            names::check_alias(alias)?;
            if let Some(p) = registry.provider_for_secret(alias) {
                return Err(NameError::AliasIsProviderName {
                    alias: alias.clone(),
                    provider: p.id().to_string(),
                }
                .into());
            }
        }
        let tx = self.begin_write()?;
        let secret = resolve_secret(&tx, label)?;
        let now = now_ms();
        let mut details = serde_json::Map::new();
        details.insert("id".into(), json!(secret.id));
        if let Some(name) = new_name.filter(|n| *n != secret.name) {
            if let Some(provider) = &secret.pinned_provider {
                return Err(VaultError::PinnedName { name: secret.name, provider: provider.clone() });
            }
            if let Some(p) = registry.provider_for_secret(name) {
                return Err(VaultError::ProviderName {
                    name: name.to_string(),
                    provider: p.id().to_string(),
                });
            }
            ensure_label_free(&tx, &secret.scope, name, Some(&secret.id))?;
            tx.rename_secret(&secret.id, name, now)?;
            details.insert("renamedFrom".into(), json!(secret.name));
        }
        let mut aliases = if clear_aliases { Vec::new() } else { secret.aliases.clone() };
        for alias in add_aliases {
            if !aliases.contains(alias) {
                ensure_label_free(&tx, &secret.scope, alias, Some(&secret.id))?;
                aliases.push(alias.clone());
            }
        }
        if aliases != secret.aliases {
            tx.set_aliases(&secret.id, &secret.scope, &aliases, now)?;
            details.insert("aliases".into(), json!(aliases));
        }
        let name = new_name.unwrap_or(&secret.name).to_string();
        audit::append(&tx, &Event::new("secret.update", &name, details.into()), now)?;
        let updated = tx.secret(&secret.id)?.expect("the secret was just updated in this transaction");
        tx.commit()?;
        Ok(updated)
    }

    /// Replaces the value (checked by the pinned provider) under a fresh DEK
    /// and bumps the value version.
    pub fn rotate(
        &mut self,
        registry: &Registry,
        label: &str,
        value: Zeroizing<String>,
    ) -> Result<SecretRow> {
        let secret = self.find(label)?;
        check_value(&secret.name, &value)?;
        if let Some(provider) = &secret.pinned_provider {
            let plugin = registry.provider(provider).map_err(|_| VaultError::ProviderMissing {
                name: secret.name.clone(),
                provider: provider.clone(),
            })?;
            plugin.validate_secret(&secret.name, &value)?;
        }
        let tx = self.begin_write()?;
        // Re-read inside the write lock: another process may have rotated it.
        let secret = resolve_secret(&tx, &secret.id)?;
        let keys = held_keys(&tx)?;
        let version = secret.value_version + 1;
        let binding = Binding {
            secret_id: &secret.id,
            scope: &secret.scope,
            pinned_provider: secret.pinned_provider.as_deref(),
            value_version: version,
        };
        let sealed = crypto::seal(keys.kek(), &binding, value.as_bytes());
        let now = now_ms();
        tx.replace_value(&secret.id, version, &sealed, keys.kek_id(), now)?;
        let details = json!({"id": secret.id, "fromVersion": secret.value_version, "toVersion": version});
        audit::append(&tx, &Event::new("secret.rotate", &secret.name, details), now)?;
        let updated = tx.secret(&secret.id)?.expect("the secret was just rotated in this transaction");
        tx.commit()?;
        Ok(updated)
    }

    /// Deletes a secret and every credential (with its capabilities) that
    /// used it. Works on rows that fail their integrity check too: deleting
    /// one is how it is repaired.
    pub fn delete(&mut self, registry: &Registry, label: &str) -> Result<Deleted> {
        let mut tx = self.begin_write()?;
        tx.skip_checks();
        let secret = resolve_secret(&tx, label)?;
        let now = now_ms();
        let mut credentials = Vec::new();
        for credential in tx.credentials_using(&secret.id)? {
            management::delete_credential_in(
                &tx,
                registry,
                &credential,
                &format!("secret {} deleted", secret.name),
                now,
            )?;
            credentials.push(credential.id);
        }
        tx.delete_secret(&secret.id)?;
        let details = json!({"id": secret.id, "scope": secret.scope.to_string()});
        audit::append(&tx, &Event::new("secret.delete", &secret.name, details), now)?;
        tx.commit()?;
        Ok(Deleted { name: secret.name, credentials })
    }

    /// Shares a secret with one group.
    pub fn attach_group(&mut self, label: &str, workspace: &str, group: &str) -> Result<SecretRow> {
        self.change_attachment(label, workspace, group, true)
    }

    /// Stops sharing a secret with one group.
    pub fn detach_group(&mut self, label: &str, workspace: &str, group: &str) -> Result<SecretRow> {
        self.change_attachment(label, workspace, group, false)
    }

    fn change_attachment(
        &mut self,
        label: &str,
        workspace: &str,
        group: &str,
        attach: bool,
    ) -> Result<SecretRow> {
        let workspace = scope::check_id("workspace id", workspace)?;
        let group = scope::check_id("group id", group)?;
        let tx = self.begin_write()?;
        let secret = resolve_secret(&tx, label)?;
        let now = now_ms();
        let changed = if attach {
            tx.attach(&secret.id, &workspace, &group, now)?
        } else {
            tx.detach(&secret.id, &workspace, &group, now)?
        };
        if !changed {
            let (name, workspace, group) = (secret.name, workspace, group);
            return Err(if attach {
                VaultError::AlreadyAttached { name, workspace, group }
            } else {
                VaultError::NotAttached { name, workspace, group }
            });
        }
        let kind = if attach { "secret.attach_group" } else { "secret.detach_group" };
        let details = json!({"id": secret.id, "workspaceId": workspace, "groupId": group});
        audit::append(&tx, &Event::new(kind, &secret.name, details), now)?;
        let updated = tx.secret(&secret.id)?.expect("the secret was just changed in this transaction");
        tx.commit()?;
        Ok(updated)
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

fn check_value(name: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(VaultError::EmptyValue { name: name.to_string() });
    }
    if value.chars().count() < MIN_VALUE_CHARS {
        return Err(VaultError::ValueTooShort { name: name.to_string() });
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(VaultError::ValueTooLarge { name: name.to_string() });
    }
    Ok(())
}

fn ensure_label_free(tx: &Tx<'_>, scope: &Scope, label: &str, except: Option<&str>) -> Result<()> {
    if let Some((other, is_name)) = tx.label_taken(scope, label, except)? {
        let other_name =
            if is_name { None } else { tx.secret(&other)?.map(|s| format!("an alias of {}", s.name)) };
        return Err(VaultError::Duplicate {
            label: label.to_string(),
            scope: scope.clone(),
            relation: if is_name { "named" } else { "aliased" },
            other_name,
        });
    }
    Ok(())
}

/// By id first, then by a name or alias that matches exactly one secret.
fn resolve_secret(tx: &Tx<'_>, label: &str) -> Result<SecretRow> {
    if let Some(secret) = tx.secret(label)? {
        return Ok(secret);
    }
    let mut matches = tx.secrets_named(label)?;
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => {
            let labels = tx.secret_labels()?;
            Err(VaultError::UnknownSecret {
                label: label.to_string(),
                suggestion: closest(label, labels.iter().map(String::as_str)),
            })
        }
        count => Err(VaultError::AmbiguousSecret {
            label: label.to_string(),
            count,
            scopes: matches.iter().map(|s| s.scope.to_string()).collect::<Vec<_>>().join(", "),
        }),
    }
}
