//! Shared fixtures: one runtime per test process (compiling is the slow
//! part), and helpers to build requests and secrets.

use std::sync::LazyLock;

use std::path::Path;

use aivault::plugins::{CacheConfig, HostPattern, Origin, OutgoingRequest, Plugin, Runtime, SandboxLimits};
use aivault::registry::Registry;
use zeroize::Zeroizing;

pub struct Fixture {
    pub runtime: Runtime,
    pub registry: Registry,
    _cache: tempfile::TempDir,
}

pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache_in(cache.path()))).unwrap();
    let registry = Registry::load_builtin(&runtime).unwrap();
    Fixture { runtime, registry, _cache: cache }
});

/// A cache in `<root>/components` keyed by `<root>/cache.key`.
pub fn cache_in(root: &Path) -> CacheConfig {
    CacheConfig::new(root.join("components"), root.join("cache.key"))
}

pub fn builtin(id: &str) -> &'static Plugin {
    FIXTURE.registry.provider(id).unwrap()
}

/// Loads a test component by its `aivault_test_artifacts` path.
pub fn load_test_component(path: &str) -> Result<Plugin, aivault::plugins::PluginError> {
    let bytes = std::fs::read(path).unwrap();
    FIXTURE.runtime.load(Origin::File(path.into()), &bytes)
}

pub fn request(capability: &str, kind: &str, method: &str, host: &str, path: &str) -> OutgoingRequest {
    OutgoingRequest {
        capability: capability.into(),
        credential_kind: kind.into(),
        method: method.into(),
        host: host.into(),
        path: path.into(),
        query: vec![("limit".into(), "5".into())],
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(b"{\"x\":1}".to_vec()),
    }
}

pub fn secrets(pairs: &[(&str, &str)]) -> Vec<(String, Zeroizing<String>)> {
    pairs.iter().map(|(p, v)| (p.to_string(), Zeroizing::new(v.to_string()))).collect()
}

pub fn hosts(plugin: &Plugin) -> Vec<HostPattern> {
    plugin.manifest().hosts.clone()
}
