//! Components that misbehave on purpose: each is stopped with a clear error
//! naming it, and the built-in providers keep working afterwards.

use aivault::plugins::{HostPattern, Origin, PluginError, Runtime, SandboxLimits};
use aivault_test_artifacts as artifacts;

use crate::support::{FIXTURE, builtin, hosts, load_test_component, request, secrets};

const SECRET: &str = "hostile-secret-value-0123456789";

/// Calls the hostile component's `inject` with the behaviour `path` selects.
/// The same source built for contract 0.1.0 must fail the same way.
fn provoke(path: &str) -> PluginError {
    let [current, legacy] = [artifacts::HOSTILE, artifacts::HOSTILE_V0_1_0].map(|component| {
        let hostile = load_test_component(component).unwrap();
        let req = request("hostile/any", "default", "GET", "api.hostile.test", path);
        let err = hostile.inject(&req, &secrets(&[("secret", SECRET)]), &hosts(&hostile)).expect_err(path);
        let message = err.to_string();
        assert!(message.contains("provider `hostile` 0.1.0"), "{path}: {message}");
        assert!(!message.contains(SECRET), "{path} leaked the secret: {message}");
        err
    });
    assert_eq!(current.to_string(), legacy.to_string(), "{path}: contracts 0.2.0 and 0.1.0 differ");
    current
}

// A well-behaved path goes through, so the failures below are the sandbox's doing.
#[test]
fn hostile_component_loads_and_behaves_when_asked() {
    let hostile = load_test_component(artifacts::HOSTILE).unwrap();
    let req = request("hostile/any", "default", "GET", "api.hostile.test", "/fine");
    let out = hostile.inject(&req, &secrets(&[("secret", SECRET)]), &hosts(&hostile)).unwrap();
    assert_eq!(out.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
}

// Every call gets a fresh instance: a component that keeps what it saw in
// a static (to hand one caller's secret to the next) finds it empty, call
// after call, however instances are allocated. A pool of one slot gives
// every call the memory the previous call wrote, reset in place (see
// `Runtime::pooled`), a call that grew its memory to the limit among them.
#[test]
fn no_state_survives_between_calls() {
    let bytes = std::fs::read(artifacts::HOSTILE).unwrap();
    let pooled = Runtime::pooled(SandboxLimits::default(), None, 1).unwrap();
    let from_pool = pooled.load(Origin::File(artifacts::HOSTILE.into()), &bytes).unwrap();
    for (allocation, hostile) in
        [("on demand", load_test_component(artifacts::HOSTILE).unwrap()), ("pooled", from_pool)]
    {
        let req = request("hostile/any", "default", "GET", "api.hostile.test", "/remember");
        let bomb = request("hostile/any", "default", "GET", "api.hostile.test", "/memory-bomb");
        for i in 0..20 {
            let secret = format!("{SECRET}-{i}");
            let out = hostile.inject(&req, &secrets(&[("secret", &secret)]), &hosts(&hostile)).unwrap();
            assert_eq!(out.header("x-previous"), None, "{allocation}: call {i} saw an earlier call's secret");
            if i % 5 == 4 {
                hostile.inject(&bomb, &secrets(&[("secret", &secret)]), &hosts(&hostile)).unwrap_err();
            }
        }
    }
}

// An infinite loop runs out of fuel.
#[test]
fn infinite_loop_is_stopped() {
    assert!(matches!(provoke("/loop"), PluginError::OutOfFuel { function: "inject", .. }));
}

// Unbounded allocation hits the memory cap.
#[test]
fn memory_bomb_is_stopped() {
    let err = provoke("/memory-bomb");
    assert!(matches!(err, PluginError::OutOfMemory { limit_mib: 64, .. }), "{err}");
}

// A panic is a trap, reported as a crash.
#[test]
fn panic_is_a_clear_crash() {
    let err = provoke("/trap");
    assert!(matches!(err, PluginError::Trapped { .. }), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
}

// No WASI capability is granted: environment, files and clock all trap.
#[test]
fn no_wasi_capabilities() {
    for path in ["/read-env", "/read-file", "/clock"] {
        let err = provoke(path);
        assert!(matches!(err, PluginError::Trapped { .. }), "{path}: {err}");
        assert!(err.to_string().contains("which the sandbox does not grant"), "{path}: {err}");
    }
}

// Every attempt to redirect, rewrite or smuggle is refused before use.
#[test]
fn tampered_requests_are_refused() {
    let cases = [
        ("/escape-host", "changed the host"),
        ("/rewrite-path", "rewrote the request path"),
        ("/host-header", "`host` header"),
        ("/crlf-header", "CR, LF or NUL"),
        ("/bad-header-name", "not a valid HTTP token"),
        ("/change-method", "changed the method"),
        ("/dot-prefix", "`..` segment"),
    ];
    for (path, why) in cases {
        let err = provoke(path);
        assert!(matches!(err, PluginError::InjectRefused { .. }), "{path}: {err}");
        assert!(err.to_string().contains(why), "{path}: {err}");
    }
}

// A provider's own error message is redacted if it echoes the secret.
#[test]
fn provider_error_is_redacted() {
    let err = provoke("/leak-secret-in-error");
    assert!(matches!(err, PluginError::InjectFailed { .. }), "{err}");
    assert!(err.to_string().contains(aivault::redact::MARKER), "{err}");
}

// A manifest breaking the rules is refused at load time with the reason.
#[test]
fn bad_manifest_is_refused() {
    let err = load_test_component(artifacts::BAD_MANIFEST).err().unwrap();
    assert!(matches!(err, PluginError::InvalidManifest { .. }), "{err}");
    assert!(err.to_string().contains("must start with `bad-manifest/`"), "{err}");
}

// A component that loops while describing itself is stopped at load time.
#[test]
fn looping_describe_is_stopped() {
    let err = load_test_component(artifacts::SLOW_DESCRIBE).err().unwrap();
    assert!(matches!(err, PluginError::OutOfFuel { function: "describe", .. }), "{err}");
}

// Bytes that are not a component are refused before wasmtime sees them.
#[test]
fn garbage_file_is_refused() {
    let err = FIXTURE.runtime.load(Origin::File("garbage.wasm".into()), b"\0asmgarbage").err().unwrap();
    assert!(matches!(err, PluginError::NotAComponent { .. }), "{err}");
}

// After every kind of misbehaviour, the built-ins still work on the same runtime.
#[test]
fn builtins_survive_hostile_calls() {
    for path in ["/loop", "/memory-bomb", "/trap", "/escape-host"] {
        provoke(path);
    }
    let openai = builtin("openai");
    let req = request("openai/models", "api-key", "GET", "api.openai.com", "/v1/models");
    let out = openai
        .inject(&req, &secrets(&[("secret", "sk-abcdefghijklmnopqrstuvwxyz012345")]), &hosts(openai))
        .unwrap();
    assert!(out.header("authorization").is_some());
}

// A host pattern outside the provider's list is refused even if the
// provider leaves the host alone (defence against a broker mistake).
#[test]
fn request_outside_allowed_hosts_refused() {
    let openai = builtin("openai");
    let req = request("openai/models", "api-key", "GET", "evil.example.com", "/v1/models");
    let only_openai = vec![HostPattern::parse("api.openai.com").unwrap()];
    let err = openai
        .inject(&req, &secrets(&[("secret", "sk-abcdefghijklmnopqrstuvwxyz012345")]), &only_openai)
        .unwrap_err();
    assert!(err.to_string().contains("outside the provider's hosts"), "{err}");
}
