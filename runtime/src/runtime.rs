//! One wasmtime [`Engine`] for the whole process. Loading a component
//! yields its validated manifest; its code is compiled (or loaded from the
//! cache) and linked only when it is first called, so listing or matching
//! names across a large catalogue compiles nothing. A manifest comes from an
//! authenticated cache entry when the component was described before.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use zeroize::Zeroizing;

use super::adapter::{InjectRefusal, SecretRefusal};
use super::cache::{ArtifactCache, CacheConfig, CacheError};
use super::manifest::{HostPattern, ProviderManifest};
use super::sandbox::{
    CallStats, MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES, Sandbox, SandboxLimits, root_cause,
};
use super::{Origin, OutgoingRequest, PluginError, verify, version};
use crate::builtin::BuiltinComponent;
use crate::redact::{Forms, Needles};

/// How much of a pooled slot's memory is reset in place after a call
/// instead of being discarded (see [`Runtime::pooled`]).
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Compiles and loads components. Cheap to share by reference.
pub struct Runtime {
    engine: Engine,
    limits: SandboxLimits,
    cache: Option<Arc<ArtifactCache>>,
    cache_refused: Option<CacheError>,
}

/// A loaded provider: its validated manifest, and its code, ready to be
/// compiled and called.
pub struct Plugin {
    origin: Origin,
    digest: String,
    wit_version: String,
    id: String,
    /// Decoded on first use from `embedded` for a built-in: a command that
    /// calls one provider then decodes one manifest, not the catalogue's.
    manifest: OnceLock<ProviderManifest>,
    embedded: &'static [u8],
    /// A built-in's vault secret names, recorded beside its manifest.
    embedded_secrets: Option<&'static [&'static str]>,
    code: Code,
    label: OnceLock<String>,
}

/// A component's code, compiled and linked on first use and kept after.
struct Code {
    engine: Engine,
    cache: Option<Arc<ArtifactCache>>,
    bytes: Cow<'static, [u8]>,
    /// The contract version it implements.
    wit_version: String,
    limits: SandboxLimits,
    /// The linked sandbox, or why the component could not be linked.
    linked: OnceLock<Result<Sandbox, LinkFailure>>,
}

/// Whether a load may take the manifest from the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Describe {
    /// A cached manifest will do.
    Cached,
    /// Call `describe` (the conformance kit checks that it is pure).
    Fresh,
}

impl Runtime {
    /// An engine configured for fuel metering; compiled components are cached
    /// as `cache` says when given. A cache that cannot be used safely (see
    /// [`Runtime::cache_refused`]) is not used at all: components are then
    /// compiled in memory, which costs time, never correctness.
    pub fn new(limits: SandboxLimits, cache: Option<CacheConfig>) -> Result<Self, PluginError> {
        Self::with_config(Config::new(), limits, cache)
    }

    /// [`Runtime::new`] for a long-running front-end with up to `calls`
    /// component instances alive at once: instances come from wasmtime's
    /// pooling allocator, whose slots are reserved once and reset (memories
    /// back to their initial image, tables cleared) after every call, so a
    /// call costs less and still starts from nothing. Past `calls`,
    /// instantiating fails with wasmtime's error rather than waiting.
    /// A one-shot command should not use it: reserving the pool costs more
    /// than the one call it makes.
    pub fn pooled(
        limits: SandboxLimits,
        cache: Option<CacheConfig>,
        calls: u32,
    ) -> Result<Self, PluginError> {
        let calls = calls.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(calls)
            .total_core_instances(calls * MAX_CORE_INSTANCES)
            // A memory slot reserves gigabytes of address space (bounds
            // checks elided, as in the on-demand engine, so both share
            // compiled code): room for two per call, not the maximum.
            .total_memories(calls * 2)
            .total_tables(calls * MAX_TABLES)
            .max_core_instances_per_component(MAX_CORE_INSTANCES)
            .max_memories_per_component(MAX_MEMORIES)
            .max_tables_per_component(MAX_TABLES)
            .max_memory_size(limits.memory_bytes);
        // Where Linux can say which pages a call wrote (PAGEMAP_SCAN, 6.7+),
        // a returned slot is reset by writing those pages back to the
        // image's contents rather than by discarding them: `madvise` makes
        // every other CPU running this process flush its TLB, and the next
        // call faults every page in again. Pages past the cap (a component
        // that grew its memory) are still discarded. Without the scan,
        // keeping pages would mean rewriting the whole cap every call.
        // Pooled inject 33 -> 12 µs (BENCHMARKS.md).
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .table_keep_resident(KEEP_RESIDENT_BYTES / 16);
        }
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Self::with_config(config, limits, cache)
    }

    fn with_config(
        mut config: Config,
        limits: SandboxLimits,
        cache: Option<CacheConfig>,
    ) -> Result<Self, PluginError> {
        config.wasm_component_model(true);
        config.consume_fuel(true);
        // Unwind tables are for native unwinders and profilers walking
        // through guest frames; nothing here needs them (wasmtime's own
        // traps and backtraces do not). Registering them with the system
        // unwinder as compiled code loads, and removing them as it is
        // dropped, costs time for every function (quadratic on some
        // platforms): a tenth of a one-shot call.
        config.native_unwind_info(false);
        // The map from native code back to wasm offsets serves backtraces
        // of guest frames, which no message here shows (a trap is reported
        // by its cause). Without it the compiled code is a tenth smaller,
        // and a one-shot call copies, authenticates and maps that much less.
        config.generate_address_map(false);
        let engine = Engine::new(&config)
            .map_err(|e| PluginError::Load { origin: Origin::BuiltIn("engine"), reason: e.to_string() })?;
        let (cache, cache_refused) = match cache.map(|c| ArtifactCache::open(&c, &engine)) {
            None => (None, None),
            Some(Ok(cache)) => (Some(Arc::new(cache)), None),
            Some(Err(why)) => (None, Some(why)),
        };
        Ok(Runtime { engine, limits, cache, cache_refused })
    }

    /// Why the requested cache is not being used, if it is not.
    pub fn cache_refused(&self) -> Option<&CacheError> {
        self.cache_refused.as_ref()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    /// Loads the component `bytes`: its manifest from the cache if it was
    /// described before, else by compiling it and calling `describe`.
    pub fn load(&self, origin: Origin, bytes: &[u8]) -> Result<Plugin, PluginError> {
        let digest = hex::encode(Sha256::digest(bytes));
        self.load_code(origin, Cow::Owned(bytes.to_vec()), digest, Describe::Cached)
    }

    /// Loads a built-in component from what its build recorded (digest,
    /// contract version, manifest): nothing is compiled or called until one
    /// of its functions is.
    pub fn load_builtin(&self, component: &BuiltinComponent) -> Result<Plugin, PluginError> {
        let origin = Origin::BuiltIn(component.name);
        version::check_supported(&origin, component.wit_version)?;
        // Validated when the binary was built, by this same code (the build
        // script runs this crate): not checked again on every command, and
        // decoded only when needed.
        let code = self.code(Cow::Borrowed(component.bytes), component.wit_version);
        Ok(Plugin {
            origin,
            digest: component.digest.to_string(),
            wit_version: component.wit_version.to_string(),
            id: component.id.to_string(),
            manifest: OnceLock::new(),
            embedded: component.manifest,
            embedded_secrets: Some(component.secrets),
            code,
            label: OnceLock::new(),
        })
    }

    /// Loads the component `bytes` and calls `describe` whatever the cache
    /// holds, as a component's author testing it needs.
    pub fn load_fresh(&self, origin: Origin, bytes: &[u8]) -> Result<Plugin, PluginError> {
        let digest = hex::encode(Sha256::digest(bytes));
        self.load_code(origin, Cow::Owned(bytes.to_vec()), digest, Describe::Fresh)
    }

    /// The cached manifest of the component `digest`, checked again (the
    /// rules are this binary's).
    fn cached_manifest(&self, origin: &Origin, digest: &str) -> Option<(String, ProviderManifest)> {
        let (wit_version, manifest) = self.cache.as_ref()?.load_manifest(digest)?;
        (version::check_supported(origin, &wit_version).is_ok() && manifest.validate().is_ok())
            .then_some((wit_version, manifest))
    }

    fn load_code(
        &self,
        origin: Origin,
        bytes: Cow<'static, [u8]>,
        digest: String,
        describe: Describe,
    ) -> Result<Plugin, PluginError> {
        if describe == Describe::Cached
            && let Some((wit_version, manifest)) = self.cached_manifest(&origin, &digest)
        {
            let code = self.code(bytes, &wit_version);
            return Ok(Plugin::new(origin, digest, wit_version, manifest, code));
        }

        let wit_version = version::exported_wit_version(&origin, &bytes)?;
        version::check_supported(&origin, &wit_version)?;
        let code = self.code(bytes, &wit_version);
        let sandbox = code.sandbox(&origin, &digest)?;
        let described = sandbox.call(&origin.to_string(), "describe", |c, store| c.describe(store))?;
        let invalid = |reason: String| PluginError::InvalidManifest { origin: origin.clone(), reason };
        let manifest = described.map_err(invalid)?;
        manifest.validate().map_err(invalid)?;
        if let Some(cache) = &self.cache {
            // A cache that cannot be written only costs speed next time.
            let _ = cache.store_manifest(&digest, &wit_version, &manifest);
        }
        Ok(Plugin::new(origin, digest, wit_version, manifest, code))
    }
}

impl Runtime {
    fn code(&self, bytes: Cow<'static, [u8]>, wit_version: &str) -> Code {
        Code {
            engine: self.engine.clone(),
            cache: self.cache.clone(),
            bytes,
            wit_version: wit_version.to_string(),
            limits: self.limits,
            linked: OnceLock::new(),
        }
    }
}

/// Why a component's code could not be linked (kept, as the code is).
enum LinkFailure {
    /// It does not export the provider interface it claims.
    NotAProvider,
    /// Compiling or linking failed; the reason.
    Load(String),
}

impl Code {
    /// The linked component, compiled (or loaded from the cache) the first
    /// time it is asked for.
    fn sandbox(&self, origin: &Origin, digest: &str) -> Result<&Sandbox, PluginError> {
        let linked = self.linked.get_or_init(|| {
            let component = self.compile(digest).map_err(|e| LinkFailure::Load(root_cause(&e)))?;
            Sandbox::link(&self.engine, &component, &self.wit_version, self.limits, origin).map_err(|e| {
                match e {
                    PluginError::NotAProvider { .. } => LinkFailure::NotAProvider,
                    PluginError::Load { reason, .. } => LinkFailure::Load(reason),
                    other => LinkFailure::Load(other.to_string()),
                }
            })
        });
        linked.as_ref().map_err(|failure| match failure {
            LinkFailure::NotAProvider => PluginError::NotAProvider { origin: origin.clone() },
            LinkFailure::Load(reason) => PluginError::Load { origin: origin.clone(), reason: reason.clone() },
        })
    }

    fn compile(&self, digest: &str) -> wasmtime::Result<Component> {
        if let Some(component) = self.cache.as_ref().and_then(|c| c.load(&self.engine, digest)) {
            return Ok(component);
        }
        let component = Component::new(&self.engine, &self.bytes)?;
        if let Some(cache) = &self.cache {
            // A cache that cannot be written only costs speed next time.
            let _ = cache.store(digest, &component);
        }
        Ok(component)
    }
}

impl Plugin {
    fn new(
        origin: Origin,
        digest: String,
        wit_version: String,
        manifest: ProviderManifest,
        code: Code,
    ) -> Self {
        Plugin {
            origin,
            digest,
            wit_version,
            id: manifest.id.clone(),
            manifest: OnceLock::from(manifest),
            embedded: &[],
            embedded_secrets: None,
            code,
            label: OnceLock::new(),
        }
    }

    /// The linked component, compiled on first use.
    pub(super) fn sandbox(&self) -> Result<&Sandbox, PluginError> {
        self.code.sandbox(&self.origin, &self.digest)
    }

    /// How messages name it: `provider `<id>` <version>`.
    pub(super) fn label(&self) -> &str {
        self.label.get_or_init(|| format!("provider `{}` {}", self.id, self.manifest().version))
    }

    /// Where the component came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// SHA-256 of the component bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The contract version the component implements.
    pub fn wit_version(&self) -> &str {
        &self.wit_version
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> SandboxLimits {
        self.code.limits
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &ProviderManifest {
        self.manifest.get_or_init(|| {
            postcard::from_bytes(self.embedded)
                .expect("a built-in's manifest decodes: this binary's build encoded it with this type")
        })
    }

    /// The provider id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether its manifest declares the vault secret `name`.
    pub fn declares_secret(&self, name: &str) -> bool {
        match self.embedded_secrets {
            Some(names) => names.contains(&name),
            None => self.manifest().vault_secret(name).is_some(),
        }
    }

    /// Asks the provider whether `value` can be the secret `name`. Its
    /// answer is shown only after every disguise of the value (and of each
    /// string in it, for a JSON value) is removed.
    pub fn validate_secret(&self, name: &str, value: &str) -> Result<(), PluginError> {
        let verdict = self
            .sandbox()?
            .call(self.label(), "validate-secret", |c, store| c.validate_secret(store, name, value))?;
        verdict.map_err(|e| {
            let redactor = Needles::new().secret(value).redactor(Forms::Disguised);
            let reason = match e {
                SecretRefusal::Empty => "the value is empty".to_string(),
                SecretRefusal::Malformed(why) => redactor.text(&why),
                SecretRefusal::UnknownName(n) => format!("it declares no secret named {}", redactor.text(&n)),
            };
            PluginError::SecretRejected { provider: self.label().to_string(), name: name.to_string(), reason }
        })
    }

    /// Has the provider authenticate `req` with `secrets` (placeholder,
    /// value), then checks the result against `allowed_hosts` and the rules
    /// in [`verify`].
    pub fn inject(
        &self,
        req: &OutgoingRequest,
        secrets: &[(String, Zeroizing<String>)],
        allowed_hosts: &[HostPattern],
    ) -> Result<OutgoingRequest, PluginError> {
        self.measured_inject(req, secrets, allowed_hosts, unix_now()).0
    }

    /// [`Plugin::inject`] at the time `now` (seconds since the Unix epoch),
    /// also reporting what the call used.
    pub fn measured_inject(
        &self,
        req: &OutgoingRequest,
        secrets: &[(String, Zeroizing<String>)],
        allowed_hosts: &[HostPattern],
        now: u64,
    ) -> (Result<OutgoingRequest, PluginError>, CallStats) {
        let sandbox = match self.sandbox() {
            Ok(sandbox) => sandbox,
            Err(e) => return (Err(e), CallStats::default()),
        };
        let with_body = self.manifest().needs_body;
        let (result, stats) = sandbox
            .measured_call(self.label(), "inject", |c, store| c.inject(store, req, with_body, secrets, now));
        (self.check_injection(req, secrets, allowed_hosts, result), stats)
    }

    /// Turns what `inject` returned into a request to send or an error. Any
    /// text the component wrote, or that quotes what it wrote, is shown only
    /// after every disguise of every secret it was handed, and of every
    /// value it injected, is removed.
    fn check_injection(
        &self,
        req: &OutgoingRequest,
        secrets: &[(String, Zeroizing<String>)],
        allowed_hosts: &[HostPattern],
        result: Result<Result<OutgoingRequest, InjectRefusal>, PluginError>,
    ) -> Result<OutgoingRequest, PluginError> {
        let mut returned = match result? {
            Ok(r) => r,
            Err(e) => {
                let reason = scrub(&e.to_string(), secrets, None);
                return Err(PluginError::InjectFailed { provider: self.label().to_string(), reason });
            }
        };
        let refused = |reason: String, returned: &OutgoingRequest| PluginError::InjectRefused {
            provider: self.label().to_string(),
            reason: scrub(&reason, secrets, Some((req, returned))),
        };
        if !self.manifest().needs_body {
            if returned.body.is_some() {
                return Err(refused("it returned a body it was never given".into(), &returned));
            }
            returned.body.clone_from(&req.body);
        }
        verify::check_injected(req, &returned, allowed_hosts).map_err(|r| refused(r, &returned))?;
        Ok(returned)
    }
}

/// `text` (a component's message, or a refusal of what it returned) with
/// every disguise removed of every secret it was handed and, given the
/// request before and after `inject`, of every value it injected. Built only
/// when there is something to show: a call that succeeds pays nothing.
pub(super) fn scrub(
    text: &str,
    secrets: &[(String, Zeroizing<String>)],
    injection: Option<(&OutgoingRequest, &OutgoingRequest)>,
) -> String {
    let mut needles = Needles::new();
    for (_, value) in secrets {
        needles.secret(value);
    }
    if let Some((before, after)) = injection {
        for value in after.injected_values(before) {
            needles.injected(value);
        }
    }
    needles.redactor(Forms::Disguised).text(text)
}

/// The host's clock, in seconds since the Unix epoch, as contract 0.2.0
/// hands it to providers.
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
