//! The provider components embedded at build time by `host/build.rs`.

/// A component compiled from `providers/<name>` when aivault was built.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinComponent {
    /// The crate directory name, e.g. `openai`.
    pub name: &'static str,
    /// The component's bytes.
    pub bytes: &'static [u8],
    /// SHA-256 of `bytes`, hex, taken at build time.
    pub digest: &'static str,
}

static BUILTIN: &[BuiltinComponent] = include!(concat!(env!("OUT_DIR"), "/builtin_providers.rs"));

/// Every built-in provider component.
pub fn builtin_components() -> &'static [BuiltinComponent] {
    BUILTIN
}
