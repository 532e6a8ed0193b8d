//! One wasmtime [`Engine`] for the whole process; per component a pre-linked
//! [`InstancePre`](wasmtime::component::InstancePre); per call a fresh store
//! and instance under a fuel budget and a memory cap.

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use zeroize::{Zeroize, Zeroizing};

use super::bindings::v0_1_0::{ProviderComponent, ProviderComponentPre, api};
use super::cache::{ArtifactCache, CacheConfig, CacheError};
use super::manifest::{HostPattern, ProviderManifest};
use super::{Origin, OutgoingRequest, PluginError, verify, version};
use crate::redact::{Forms, Needles};

/// How much a single call into a component may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Fuel per call; roughly one unit per WebAssembly instruction.
    pub fuel: u64,
    /// Memory per call, in bytes: every linear memory and table of the
    /// component's instances together.
    pub memory_bytes: usize,
}

impl Default for SandboxLimits {
    /// Generous for any real injection (which takes well under a million
    /// instructions), yet stops a runaway component in a fraction of a second.
    fn default() -> Self {
        SandboxLimits { fuel: 100_000_000, memory_bytes: 64 << 20 }
    }
}

/// Compiles and loads components. Cheap to share by reference.
pub struct Runtime {
    engine: Engine,
    limits: SandboxLimits,
    cache: Option<ArtifactCache>,
    cache_refused: Option<CacheError>,
}

/// A loaded, validated provider component, ready to be called.
pub struct Plugin {
    origin: Origin,
    digest: String,
    wit_version: String,
    manifest: ProviderManifest,
    sandbox: Sandbox,
    label: String,
}

/// What every call needs: the engine, the pre-linked component, the limits.
struct Sandbox {
    engine: Engine,
    pre: ProviderComponentPre<StoreState>,
    limits: SandboxLimits,
}

/// Per-store state: the memory cap, what the store's memories and tables
/// take together, and whether the cap was hit (to tell an out-of-memory
/// abort apart from any other trap).
#[derive(Debug, Default)]
struct StoreState {
    memory_limit: usize,
    /// Bytes of every linear memory plus every table element
    /// ([`TABLE_ELEMENT_BYTES`]) in the store: a component is many core
    /// instances, and a cap per memory would let it take the cap many times.
    total: usize,
    memory_refused: bool,
    /// The largest `total` reached.
    peak_memory: usize,
}

/// What one table element costs, for the memory cap. Wasmtime's
/// `ResourceLimiter` documents that each table element takes a pointer's
/// worth of space, and its `TableElementType::element_size` is
/// `size_of::<Option<SendSyncPtr<VMFuncRef>>>()` for funcref tables — the
/// only kind this engine creates, as the GC and stack-switching features
/// (4-byte GC refs, 16-byte continuations) are not enabled. 8 bytes on a
/// 64-bit host.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// What one call used, for the conformance kit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub fuel_used: u64,
    pub peak_memory_bytes: usize,
}

impl StoreState {
    fn new(memory_limit: usize) -> Self {
        StoreState { memory_limit, ..StoreState::default() }
    }

    /// Admits growth of one memory or table from `current` to `desired`
    /// bytes if the store's total stays within the cap. Wasmtime also calls
    /// this when it creates a memory or table (with `current` 0), so the
    /// initial sizes count too. A growth that wasmtime then fails for its
    /// own reasons stays counted: that can only make the cap stricter.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let total = (self.total - current.min(self.total)).checked_add(desired);
        match total.filter(|t| *t <= self.memory_limit) {
            Some(total) => {
                self.total = total;
                self.peak_memory = self.peak_memory.max(total);
                true
            }
            None => {
                self.memory_refused = true;
                false
            }
        }
    }
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired)))
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }
}

impl Runtime {
    /// An engine configured for fuel metering; compiled components are cached
    /// as `cache` says when given. A cache that cannot be used safely (see
    /// [`Runtime::cache_refused`]) is not used at all: components are then
    /// compiled in memory, which costs time, never correctness.
    pub fn new(limits: SandboxLimits, cache: Option<CacheConfig>) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        let engine = Engine::new(&config)
            .map_err(|e| PluginError::Load { origin: Origin::BuiltIn("engine"), reason: e.to_string() })?;
        let (cache, cache_refused) = match cache.map(|c| ArtifactCache::open(&c, &engine)) {
            None => (None, None),
            Some(Ok(cache)) => (Some(cache), None),
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

    /// Reads the contract version, compiles (or loads from cache), links with
    /// nothing granted, calls `describe` and validates the manifest.
    pub fn load(&self, origin: Origin, bytes: &[u8]) -> Result<Plugin, PluginError> {
        let wit_version = version::exported_wit_version(&origin, bytes)?;
        version::check_supported(&origin, &wit_version)?;
        let digest = hex::encode(Sha256::digest(bytes));
        let load_err =
            |e: wasmtime::Error| PluginError::Load { origin: origin.clone(), reason: root_cause(&e) };
        let component = self.compile(bytes, &digest).map_err(load_err)?;

        // Deny by default: every import (the WASI interfaces std pulls in,
        // or anything else) is linked to a trap, so a component gets no
        // files, network, clock, randomness or environment.
        let mut linker = Linker::<StoreState>::new(&self.engine);
        linker.define_unknown_imports_as_traps(&component).map_err(load_err)?;
        let pre = linker.instantiate_pre(&component).map_err(load_err)?;
        let pre = ProviderComponentPre::new(pre)
            .map_err(|_| PluginError::NotAProvider { origin: origin.clone() })?;
        let sandbox = Sandbox { engine: self.engine.clone(), pre, limits: self.limits };

        let label = origin.to_string();
        let raw = sandbox
            .call(&label, "describe", |c, store| c.aivault_provider_provider().call_describe(store))?;
        let invalid = |reason: String| PluginError::InvalidManifest { origin: origin.clone(), reason };
        let manifest = ProviderManifest::from_v0_1_0(raw).map_err(invalid)?;
        manifest.validate().map_err(invalid)?;
        Ok(Plugin {
            label: format!("provider `{}` {}", manifest.id, manifest.version),
            origin,
            digest,
            wit_version,
            manifest,
            sandbox,
        })
    }

    fn compile(&self, bytes: &[u8], digest: &str) -> wasmtime::Result<Component> {
        if let Some(component) = self.cache.as_ref().and_then(|c| c.load(&self.engine, digest)) {
            return Ok(component);
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Some(cache) = &self.cache {
            // A cache that cannot be written only costs speed next time.
            let _ = cache.store(digest, &component);
        }
        Ok(component)
    }
}

impl Sandbox {
    /// Runs `f` against a fresh instance in a fresh store: no state, and no
    /// secret, survives from one call to the next.
    fn call<R>(
        &self,
        label: &str,
        function: &'static str,
        f: impl FnOnce(&ProviderComponent, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.measured_call(label, function, f).0
    }

    /// [`Sandbox::call`], also reporting the fuel and memory it used.
    fn measured_call<R>(
        &self,
        label: &str,
        function: &'static str,
        f: impl FnOnce(&ProviderComponent, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> (Result<R, PluginError>, CallStats) {
        let mut store = Store::new(&self.engine, StoreState::new(self.limits.memory_bytes));
        store.limiter(|state| state);
        let outcome = store
            .set_fuel(self.limits.fuel)
            .and_then(|()| self.pre.instantiate(&mut store))
            .and_then(|instance| f(&instance, &mut store));
        let stats = CallStats {
            fuel_used: self.limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
            peak_memory_bytes: store.data().peak_memory,
        };
        (outcome.map_err(|err| self.classify(&err, store.data(), label, function)), stats)
    }

    fn classify(
        &self,
        err: &wasmtime::Error,
        state: &StoreState,
        label: &str,
        function: &'static str,
    ) -> PluginError {
        let provider = label.to_string();
        if err.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
            return PluginError::OutOfFuel { provider, function };
        }
        if state.memory_refused {
            return PluginError::OutOfMemory {
                provider,
                function,
                limit_mib: self.limits.memory_bytes >> 20,
            };
        }
        let cause = root_cause(err);
        let reason = if err.downcast_ref::<Trap>() == Some(&Trap::UnreachableCodeReached) {
            "it panicked or aborted".to_string()
        } else if let Some(import) =
            cause.strip_prefix("unknown import: ").and_then(|rest| rest.split('`').nth(1))
        {
            format!(
                "it called `{import}`, which the sandbox does not grant (providers get no files, \
                 network, clock, randomness or environment)"
            )
        } else {
            cause
        };
        PluginError::Trapped { provider, function, reason }
    }
}

impl Plugin {
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
        self.sandbox.limits
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &ProviderManifest {
        &self.manifest
    }

    /// The provider id.
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// Asks the provider whether `value` can be the secret `name`. Its
    /// answer is shown only after every disguise of the value (and of each
    /// string in it, for a JSON value) is removed.
    pub fn validate_secret(&self, name: &str, value: &str) -> Result<(), PluginError> {
        let arg = Zeroizing::new(value.to_string());
        let verdict = self.sandbox.call(&self.label, "validate-secret", |c, store| {
            c.aivault_provider_provider().call_validate_secret(store, name, &arg)
        })?;
        verdict.map_err(|e| {
            let redactor = Needles::new().secret(value).redactor(Forms::Disguised);
            let reason = match e {
                api::SecretError::Empty => "the value is empty".to_string(),
                api::SecretError::Malformed(why) => redactor.text(&why),
                api::SecretError::UnknownName(n) => {
                    format!("it declares no secret named {}", redactor.text(&n))
                }
            };
            PluginError::SecretRejected { provider: self.label.clone(), name: name.to_string(), reason }
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
        self.measured_inject(req, secrets, allowed_hosts).0
    }

    /// [`Plugin::inject`], also reporting what the call used.
    pub fn measured_inject(
        &self,
        req: &OutgoingRequest,
        secrets: &[(String, Zeroizing<String>)],
        allowed_hosts: &[HostPattern],
    ) -> (Result<OutgoingRequest, PluginError>, CallStats) {
        let arg = req.to_v0_1_0(self.manifest.needs_body);
        let mut values: Vec<api::SecretValue> = secrets
            .iter()
            .map(|(placeholder, value)| api::SecretValue {
                placeholder: placeholder.clone(),
                value: value.to_string(),
            })
            .collect();
        let (result, stats) = self.sandbox.measured_call(&self.label, "inject", |c, store| {
            c.aivault_provider_provider().call_inject(store, &arg, &values)
        });
        for v in &mut values {
            v.value.zeroize();
        }
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
        result: Result<Result<api::Request, api::InjectError>, PluginError>,
    ) -> Result<OutgoingRequest, PluginError> {
        let mut returned = match result? {
            Ok(r) => OutgoingRequest::from_v0_1_0(r),
            Err(e) => {
                let reason = match e {
                    api::InjectError::MissingSecret(p) => format!("secret `{p}` was not supplied"),
                    api::InjectError::MalformedSecret(why) | api::InjectError::Unsupported(why) => why,
                };
                let reason = scrub(&reason, secrets, None);
                return Err(PluginError::InjectFailed { provider: self.label.clone(), reason });
            }
        };
        let refused = |reason: String, returned: &OutgoingRequest| PluginError::InjectRefused {
            provider: self.label.clone(),
            reason: scrub(&reason, secrets, Some((req, returned))),
        };
        if !self.manifest.needs_body {
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
fn scrub(
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

/// The innermost message of a wasmtime error chain, on one line.
fn root_cause(err: &wasmtime::Error) -> String {
    let text = err.root_cause().to_string();
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    // Memories count together: two that each fit the cap alone do not fit it together.
    #[test]
    fn memories_share_one_cap() {
        let mut state = StoreState::new(4 * MIB);
        assert!(state.memory_growing(0, 3 * MIB, None).unwrap());
        assert!(!state.memory_growing(0, 2 * MIB, None).unwrap());
        assert!(state.memory_refused);
        assert_eq!(state.total, 3 * MIB);
        assert!(state.memory_growing(0, MIB, None).unwrap());
        assert_eq!((state.total, state.peak_memory), (4 * MIB, 4 * MIB));
    }

    // Growing a memory charges only the difference from its current size.
    #[test]
    fn growth_charges_the_difference() {
        let mut state = StoreState::new(4 * MIB);
        assert!(state.memory_growing(0, MIB, None).unwrap());
        assert!(state.memory_growing(0, MIB, None).unwrap());
        assert!(state.memory_growing(MIB, 2 * MIB, None).unwrap());
        assert_eq!(state.total, 3 * MIB);
        assert!(!state.memory_growing(2 * MIB, 4 * MIB, None).unwrap());
        assert!(!state.memory_growing(MIB, usize::MAX, None).unwrap());
        assert_eq!(state.total, 3 * MIB);
    }

    // Table elements count against the same cap, a pointer each.
    #[test]
    fn tables_count_against_the_cap() {
        let mut state = StoreState::new(MIB);
        assert!(state.memory_growing(0, MIB - 64 * 1024, None).unwrap());
        let elements = 64 * 1024 / TABLE_ELEMENT_BYTES;
        assert!(state.table_growing(0, elements, None).unwrap());
        assert_eq!(state.total, MIB);
        assert!(!state.table_growing(elements, elements + 1, None).unwrap());
        assert!(state.memory_refused);
        assert!(!state.table_growing(0, usize::MAX, None).unwrap());
    }
}
