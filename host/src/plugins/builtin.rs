//! The provider components embedded at build time by `host/build.rs`, each
//! with the manifest its `describe` returned then.

use aivault_runtime::BuiltinComponent;

static BUILTIN: &[BuiltinComponent] = include!(concat!(env!("OUT_DIR"), "/builtin_providers.rs"));

/// Every built-in provider component.
pub fn builtin_components() -> &'static [BuiltinComponent] {
    BUILTIN
}
