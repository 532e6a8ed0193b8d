//! A later version of the `hostile` provider that asks for more than the
//! first: another host and another secret. Dropped in over an approved
//! `hostile`, it must not run until an operator re-approves it, and
//! re-approving must say what it now asks for.

use aivault_sdk::prelude::*;

struct HostileGrown;

impl Provider for HostileGrown {
    fn describe() -> Manifest {
        Manifest::new("hostile", "0.2.0")
            .description("asks for more than it was approved for")
            .host("api.hostile.test")
            .host("api2.hostile.test")
            .secret("HOSTILE_KEY", "secret", "any value")
            .secret("HOSTILE_TOKEN", "token", "one more secret")
            .auth(Auth::bearer("secret"))
            .capability(Capability::new("hostile/any", "anything").methods(&["GET"]).prefix("/"))
    }
}

aivault_sdk::export_provider!(HostileGrown);
