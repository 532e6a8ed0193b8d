//! The provider runtime, exercised with real components: the three built-in
//! providers and the hostile fixtures under `tests/components/`.

mod builtin;
mod hostile;
mod memory;
mod support;
