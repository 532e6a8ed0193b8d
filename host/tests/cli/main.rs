//! End-to-end tests of the real `aivault` binary.

mod capability;
mod secrets;
mod support;
mod vault;
