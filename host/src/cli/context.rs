//! What commands share: the vault directory, the test-build overrides and,
//! loaded on first use, `config.toml`, the wasm runtime and the registry.

use std::cell::{Cell, OnceCell, RefCell};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::broker::devmode::{self, DevOverrides};
use crate::config::Config;
use crate::plugins::{CacheConfig, Runtime};
use crate::registry::Registry;
use crate::vault::{KeyCache, Vault};

/// Per-invocation state.
pub struct Context {
    dir: PathBuf,
    /// Whether `dir` was named (--dir or AIVAULT_DIR) rather than defaulted.
    dir_given: bool,
    dev: DevOverrides,
    config: OnceCell<Config>,
    runtime: OnceCell<Runtime>,
    registry: OnceCell<Registry>,
    /// The master key, unlocked at most once per command.
    keys: KeyCache,
    /// The vault connection between uses, so a command opens (and SQLite
    /// parses the schema) once however many steps read or write it.
    open_vault: RefCell<Option<Vault>>,
    /// For a long-running front-end, how many component instances its
    /// runtime's pool holds (see [`Context::serving`], [`Runtime::pooled`]).
    pooled_instances: Cell<Option<u32>>,
    /// Whether this command only makes calls (`invoke`): its commits are
    /// audit records, as durable as a broker's (see [`Vault::durable_commits`]).
    calls_only: Cell<bool>,
}

/// The command's vault, lent out by [`Context::vault`] and given back when
/// dropped. A step that asks while another holds it gets a connection of its
/// own (correct, only slower), so no nesting of steps can fail.
pub struct VaultLease<'a> {
    ctx: &'a Context,
    vault: Option<Vault>,
}

impl Deref for VaultLease<'_> {
    type Target = Vault;
    fn deref(&self) -> &Vault {
        self.vault.as_ref().expect("held until dropped")
    }
}

impl DerefMut for VaultLease<'_> {
    fn deref_mut(&mut self) -> &mut Vault {
        self.vault.as_mut().expect("held until dropped")
    }
}

impl Drop for VaultLease<'_> {
    fn drop(&mut self) {
        let mut slot = self.ctx.open_vault.borrow_mut();
        if slot.is_none() {
            *slot = self.vault.take();
        }
    }
}

impl Context {
    /// `dir`, else `~/.aivault`.
    pub fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir_given = dir.is_some();
        let dir = match dir {
            Some(dir) => dir,
            None => std::env::home_dir()
                .context("cannot find the home directory; set AIVAULT_DIR or pass --dir")?
                .join(".aivault"),
        };
        // Refused in release builds before anything else happens.
        let dev = devmode::from_env(|var| std::env::var(var).ok(), devmode::HONOURED)?;
        Ok(Context {
            dir,
            dir_given,
            dev,
            config: OnceCell::new(),
            runtime: OnceCell::new(),
            registry: OnceCell::new(),
            keys: KeyCache::default(),
            open_vault: RefCell::new(None),
            pooled_instances: Cell::new(None),
            calls_only: Cell::new(false),
        })
    }

    /// `<dir>/config.toml`, read once.
    pub fn config(&self) -> anyhow::Result<&Config> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let config = Config::load(&self.dir)?;
        Ok(self.config.get_or_init(|| config))
    }

    /// The vault, opened (and created if needed) on first use.
    pub fn vault(&self) -> anyhow::Result<VaultLease<'_>> {
        let kept = self.open_vault.borrow_mut().take();
        let vault = match kept {
            Some(vault) => vault,
            None => {
                let location = Vault::location_in(&self.dir, self.config()?)?;
                let mut vault = Vault::open_at(&self.dir, location, self.keys.clone())?;
                if !self.calls_only.get() {
                    vault.durable_commits()?;
                }
                vault
            }
        };
        Ok(VaultLease { ctx: self, vault: Some(vault) })
    }

    /// Whether a vault exists yet (read-only commands do not create one).
    pub fn vault_exists(&self) -> bool {
        Vault::exists(&self.dir)
    }

    /// `read(vault)` when a vault exists, else the empty answer: read-only
    /// commands never create a vault.
    pub fn read_vault<T: Default>(
        &self,
        read: impl FnOnce(&mut Vault) -> Result<T, crate::vault::VaultError>,
    ) -> anyhow::Result<T> {
        if !self.vault_exists() {
            return Ok(T::default());
        }
        Ok(read(&mut *self.vault()?)?)
    }

    /// The key cache every vault this command opens shares.
    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// Test-build upstream overrides (empty otherwise).
    pub fn dev(&self) -> &DevOverrides {
        &self.dev
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the vault directory was named (--dir or AIVAULT_DIR).
    pub fn dir_given(&self) -> bool {
        self.dir_given
    }

    /// Marks this command as one that only makes calls (`invoke`). Call
    /// before the vault is first opened.
    pub fn calls_only(&self) {
        self.calls_only.set(true);
    }

    /// Marks this command as a long-running front-end making up to `calls`
    /// calls at once (the daemon, `serve`): pooled instances pay off there.
    /// Call before the runtime is first used.
    pub fn serving(&self, calls: usize) {
        // Room beyond the call slots: a call may instantiate twice in a row
        // (inject, then a token refresh), and MCP tool calls take no slot.
        let instances = calls.saturating_mul(2).saturating_add(8);
        self.pooled_instances.set(Some(u32::try_from(instances).unwrap_or(u32::MAX)));
    }

    /// The wasm runtime, caching compiled components under the vault directory.
    pub fn runtime(&self) -> anyhow::Result<&Runtime> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let (limits, cache) = (self.config()?.sandbox, self.component_cache());
        let runtime = match self.pooled_instances.get() {
            Some(instances) => Runtime::pooled(limits, cache, instances)?,
            None => Runtime::new(limits, cache)?,
        };
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// `<dir>/cache/components`, its entries authenticated by the key in
    /// `<dir>/keys/cache.key` (beside the master key, outside the cache).
    ///
    /// Test builds may share one cache between vaults through
    /// `AIVAULT_DEV_CACHE_DIR`, keyed by the sibling file `<that dir>.key`, so
    /// test vaults do not each recompile every built-in. Release builds ignore
    /// it, since whoever controls the environment would otherwise choose the
    /// native code aivault runs.
    fn component_cache(&self) -> Option<CacheConfig> {
        if devmode::HONOURED
            && let Some(dir) = std::env::var_os("AIVAULT_DEV_CACHE_DIR")
        {
            return CacheConfig::with_sibling_key(PathBuf::from(dir));
        }
        Some(CacheConfig::new(
            self.dir.join("cache").join("components"),
            self.dir.join("keys").join("cache.key"),
        ))
    }

    /// Every loaded provider.
    pub fn registry(&self) -> anyhow::Result<&Registry> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let registry = self.load_registry()?;
        Ok(self.registry.get_or_init(|| registry))
    }

    /// A registry of its own, for a front-end that shares it across threads.
    pub fn load_registry(&self) -> anyhow::Result<Registry> {
        let approvals = self.read_vault(|v| v.approvals())?;
        let mut registry =
            Registry::load(self.runtime()?, &self.config()?.providers_dir, &approvals.trusted)?;
        for (id, reason) in approvals.untrusted {
            registry.refuse(id, reason);
        }
        Ok(registry)
    }
}
