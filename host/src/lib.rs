//! aivault: a local vault that keeps API secrets away from the AI agents and
//! scripts that use them. Callers invoke capabilities; the broker has a
//! sandboxed provider component inject the secret into the outgoing request.
//!
//! Modules follow the data flow: [`plugins`] runs provider components,
//! [`registry`] catalogues their manifests, and [`cli`] is the command line.

pub mod broker;
pub mod cli;
pub mod config;
#[cfg(unix)]
pub mod daemon;

pub mod dotenv;
pub mod markdown;
pub mod mcp;
pub mod memory;
pub mod plugins;
use aivault_runtime::fsutil;
pub use aivault_runtime::redact;

pub mod registry;
pub mod serve;
pub mod testpoint;
#[cfg(unix)]
pub mod unixuser;
pub mod vault;
