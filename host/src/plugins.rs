//! The provider runtime (the `aivault-runtime` crate) and the components
//! built into this binary.

mod builtin;

pub use aivault_runtime::*;
pub use builtin::builtin_components;
