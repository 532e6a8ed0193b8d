//! The vault, secrets, broker, serve, integrity, daemon, agents and mcp
//! suites of `cli`, the
//! same files, with every vault's rows in a database of a real PostgreSQL
//! server (started for this binary by `aivault-test-postgres`); and what
//! only a shared database has.

/// Where this binary's vaults keep their rows.
pub const BACKEND: support::Backend = support::Backend::Postgres;

#[path = "../cli/agents.rs"]
mod agents;
#[path = "../cli/broker.rs"]
mod broker;
#[path = "../cli/daemon.rs"]
mod daemon;
#[path = "../cli/integrity.rs"]
mod integrity;
#[path = "../cli/mcp.rs"]
mod mcp;
#[path = "../cli/secrets.rs"]
mod secrets;
#[path = "../cli/serve.rs"]
mod serve;
mod shared;
// Shared with `cli`, whose other suites use what these do not.
#[allow(dead_code)]
#[path = "../cli/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "../cli/upstream.rs"]
mod upstream;
#[path = "../cli/vault.rs"]
mod vault;
