//! End-to-end tests of the real `aivault` binary.

mod capability;
mod support;
