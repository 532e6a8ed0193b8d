//! Where a component runs: per call a fresh store and instance under a
//! fuel budget and one memory cap for all its memories and tables, with
//! every import linked to a trap.

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, ResourceLimiter, Store, Trap};

use super::adapter::{Instance, Pre};
use super::conduct::{Conduct, Leave};
use super::{Origin, PluginError};

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

/// What every call needs: the engine, the pre-linked component, the limits.
pub(super) struct Sandbox {
    engine: Engine,
    pre: Pre,
    limits: SandboxLimits,
    /// Its recent failures, which hold it back (see `conduct`).
    conduct: Conduct,
}

/// Per-store state: the memory cap, what the store's memories and tables
/// take together, and whether the cap was hit (to tell an out-of-memory
/// abort apart from any other trap).
#[derive(Debug, Default)]
pub(super) struct StoreState {
    memory_limit: usize,
    /// Bytes of every linear memory plus every table element
    /// ([`TABLE_ELEMENT_BYTES`]) in the store: a component is many core
    /// instances, and a cap per memory would let it take the cap many times.
    total: usize,
    memory_refused: bool,
    /// The largest `total` reached.
    peak_memory: usize,
}

/// The most core instances, tables and linear memories one component may
/// create (a Rust component has a few of each).
pub(super) const MAX_CORE_INSTANCES: u32 = 32;
pub(super) const MAX_TABLES: u32 = 32;
pub(super) const MAX_MEMORIES: u32 = 8;

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
        MAX_CORE_INSTANCES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }
}

impl Sandbox {
    /// Links `component` with nothing granted: every import (the WASI
    /// interfaces std pulls in, or anything else) is linked to a trap, so a
    /// component gets no files, network, clock, randomness or environment.
    pub(super) fn link(
        engine: &Engine,
        component: &Component,
        wit_version: &str,
        limits: SandboxLimits,
        origin: &Origin,
    ) -> Result<Self, PluginError> {
        let load_err =
            |e: wasmtime::Error| PluginError::Load { origin: origin.clone(), reason: root_cause(&e) };
        let mut linker = Linker::<StoreState>::new(engine);
        linker.define_unknown_imports_as_traps(component).map_err(load_err)?;
        let pre = linker.instantiate_pre(component).map_err(load_err)?;
        let pre =
            Pre::new(pre, wit_version).map_err(|_| PluginError::NotAProvider { origin: origin.clone() })?;
        Ok(Sandbox { engine: engine.clone(), pre, limits, conduct: Conduct::default() })
    }
}

impl Sandbox {
    /// Runs `f` against a fresh instance in a fresh store: no state, and no
    /// secret, survives from one call to the next.
    pub(super) fn call<R>(
        &self,
        label: &str,
        function: &'static str,
        f: impl FnOnce(&Instance, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.measured_call(label, function, f).0
    }

    /// [`Sandbox::call`], also reporting the fuel and memory it used.
    pub(super) fn measured_call<R>(
        &self,
        label: &str,
        function: &'static str,
        f: impl FnOnce(&Instance, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> (Result<R, PluginError>, CallStats) {
        let leave = self.conduct.leave();
        if let Leave::Refused = leave {
            return (Err(PluginError::HeldBack { provider: label.to_string() }), CallStats::default());
        }
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
        let outcome = outcome.map_err(|err| self.classify(&err, store.data(), label, function));
        // A refusal the component returns is a value, not one of these.
        if let Err(
            PluginError::OutOfFuel { .. } | PluginError::OutOfMemory { .. } | PluginError::Trapped { .. },
        ) = &outcome
        {
            self.conduct.failed();
        }
        drop(leave);
        (outcome, stats)
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

/// The innermost message of a wasmtime error chain, on one line.
pub(super) fn root_cause(err: &wasmtime::Error) -> String {
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
