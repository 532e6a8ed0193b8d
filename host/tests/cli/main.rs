//! End-to-end tests of the real `aivault` binary, vaults in SQLite. The
//! vault, secrets and broker suites run on PostgreSQL too (`cli_postgres`).

/// Where this binary's vaults keep their rows.
pub const BACKEND: support::Backend = support::Backend::Sqlite;

mod agents;
mod broker;
mod capability;
mod catalogue;
mod crash;
mod daemon;
mod dropin;
mod integrity;
mod mcp;
mod refresh;
mod requests;
mod sealed;
mod serve;
mod serve_edges;
mod serve_faults;
mod signing;
mod soak;

mod secrets;
mod support;
mod upstream;
mod vault;
