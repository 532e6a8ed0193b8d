//! What commands share: the vault directory and, loaded on first use, the
//! wasm runtime and provider registry.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::broker::devmode::{self, DevOverrides};
use crate::plugins::{Runtime, SandboxLimits};

use crate::registry::Registry;
use crate::vault::Vault;

/// Per-invocation state.
pub struct Context {
    dir: PathBuf,
    dev: DevOverrides,
    runtime: OnceCell<Runtime>,
    registry: OnceCell<Registry>,
}

impl Context {
    /// `dir`, else `~/.aivault`.
    pub fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(dir) => dir,
            None => std::env::home_dir()
                .context("cannot find the home directory; set AIVAULT_DIR or pass --dir")?
                .join(".aivault"),
        };
        // Refused in release builds before anything else happens.
        let dev = devmode::from_env(|var| std::env::var(var).ok(), cfg!(debug_assertions))?;
        Ok(Context { dir, dev, runtime: OnceCell::new(), registry: OnceCell::new() })
    }

    /// Opens (creating if needed) the vault.
    pub fn vault(&self) -> anyhow::Result<Vault> {
        Ok(Vault::open(&self.dir)?)
    }

    /// Whether a vault exists yet (read-only commands do not create one).
    pub fn vault_exists(&self) -> bool {
        Vault::exists(&self.dir)
    }

    /// Test-build upstream overrides (empty otherwise).
    pub fn dev(&self) -> &DevOverrides {
        &self.dev
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The wasm runtime, caching compiled components under the vault directory.
    pub fn runtime(&self) -> anyhow::Result<&Runtime> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let runtime = Runtime::new(SandboxLimits::default(), Some(self.component_cache_dir()))?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// `<dir>/cache/components`. Test builds may share one cache between
    /// vaults through `AIVAULT_DEV_CACHE_DIR`; release builds ignore it, since
    /// whoever controls the environment would otherwise choose the native code
    /// aivault runs.
    fn component_cache_dir(&self) -> PathBuf {
        if cfg!(debug_assertions)
            && let Some(dir) = std::env::var_os("AIVAULT_DEV_CACHE_DIR")
        {
            return PathBuf::from(dir);
        }
        self.dir.join("cache").join("components")
    }

    /// Every loaded provider.
    pub fn registry(&self) -> anyhow::Result<&Registry> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let registry = Registry::load_builtin(self.runtime()?)?;
        Ok(self.registry.get_or_init(|| registry))
    }
}
