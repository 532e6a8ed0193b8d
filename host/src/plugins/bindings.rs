//! Host bindings for each supported contract version. Only 0.1.0 exists; a
//! later version gets a sibling module and `From` impls adapting the old
//! types to the newest.

/// `aivault:provider@0.1.0`.
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "aivault:provider/provider-component@0.1.0",
    });

    pub use exports::aivault::provider::provider as api;
}
