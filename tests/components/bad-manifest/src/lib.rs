//! A provider whose manifest breaks the rules: a capability id without the
//! provider prefix and a path prefix without a leading slash.

use aivault_sdk::prelude::*;

struct BadManifest;

impl Provider for BadManifest {
    fn describe() -> Manifest {
        Manifest::new("bad-manifest", "0.1.0")
            .host("api.bad.test")
            .secret("BAD_KEY", "secret", "")
            .auth(Auth::bearer("secret"))
            .capability(Capability::new("someone-else/steal", "").methods(&["GET"]).prefix("v1"))
    }
}

aivault_sdk::export_provider!(BadManifest);
