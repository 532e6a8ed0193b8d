//! Host bindings for each supported contract version; `adapter` turns each
//! version's types into the host's own.

/// `aivault:provider@0.1.0` (frozen).
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "aivault:provider/provider-component@0.1.0",
    });

    pub use exports::aivault::provider::provider as api;
}

/// `aivault:provider@0.2.0`: adds the clock and host-mediated token refresh.
pub mod v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "aivault:provider/provider-component@0.2.0",
    });

    pub use exports::aivault::provider::provider as api;
}
