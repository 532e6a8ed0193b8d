//! Paths of the test components, built by this crate's build script.
//!
//! Each crate under `tests/components/` is a provider that misbehaves on
//! purpose; the host's tests load them to prove the sandbox holds.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
