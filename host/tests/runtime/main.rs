//! The provider runtime, exercised with real components: the built-in
//! providers and the hostile fixtures under `tests/components/`, plus the
//! compiled-code cache.

mod builtin;
mod cache;
mod hostile;
mod leaky;
mod legacy;
mod memory;
mod support;
