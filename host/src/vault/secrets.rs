//! The secrets themselves: creating (checked, sealed, pinned to the
//! provider that declares the name, and provisioned), renaming and
//! aliasing, rotating a value, sharing with groups, and deleting with every
//! credential that used one. Values go in; only metadata comes out.

use serde_json::json;
use zeroize::Zeroizing;

use super::audit::{self, Event};
use super::crypto::{self, Binding};
use super::provision::{self, Provisioned, Waiting};
use super::store::{SecretFilter, SecretRow, Tx};
use super::unlock::KeyUse;
use super::{
    MAX_VALUE_BYTES, MIN_VALUE_CHARS, NameError, Result, Scope, Vault, VaultError, held_keys, management,
    names, now_ms, scope,
};
use crate::registry::{Registry, closest};

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

impl Vault {
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
            check_aliases(registry, &s.aliases)?;
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
        check_aliases(registry, add_aliases)?;
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
}

/// Each alias well formed and not a secret name a provider declares (a
/// provider's name must always mean that provider's secret).
fn check_aliases(registry: &Registry, aliases: &[String]) -> Result<()> {
    for alias in aliases {
        names::check_alias(alias)?;
        if let Some(p) = registry.provider_for_secret(alias) {
            return Err(NameError::AliasIsProviderName {
                alias: alias.clone(),
                provider: p.id().to_string(),
            }
            .into());
        }
    }
    Ok(())
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
pub(super) fn resolve_secret(tx: &Tx<'_>, label: &str) -> Result<SecretRow> {
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
