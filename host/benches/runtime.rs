//! Costs of the provider runtime, measured side by side in one run so the
//! ratios hold on a noisy machine:
//!
//! ```sh
//! cargo bench -p aivault --bench runtime
//! ```
//!
//! Compiling a component vs loading its cached compilation vs loading a
//! built-in from the manifest embedded at build time (what a command that
//! calls nothing pays) vs one `inject` call (fresh instance + call + result
//! checks), with on-demand and pooled instance allocation, and how long the
//! sandbox takes to stop a looping or memory-hungry component.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aivault::plugins::{CacheConfig, Origin, OutgoingRequest, Runtime, SandboxLimits, builtin_components};
use aivault::registry::Registry;
use zeroize::Zeroizing;

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let openai = builtin_components().iter().find(|c| c.name == "openai").expect("openai is built in");
    let uncached = Runtime::new(SandboxLimits::default(), None).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cached = Runtime::new(
        SandboxLimits::default(),
        CacheConfig::with_sibling_key(cache_dir.path().join("components")),
    )
    .unwrap();
    cached.load_builtin(openai).unwrap();

    let compile = median(5, || {
        black_box(uncached.load(Origin::BuiltIn("openai"), openai.bytes).unwrap());
    });
    let from_cache = median(21, || {
        black_box(cached.load_fresh(Origin::BuiltIn("openai"), openai.bytes).unwrap());
    });
    let manifest_only = median(201, || {
        black_box(cached.load_builtin(openai).unwrap());
    });
    let builtins = builtin_components().len();
    let registry = median(201, || {
        black_box(Registry::load_builtin(&cached).unwrap());
    });

    let plugin = cached.load_builtin(openai).unwrap();
    let hosts = plugin.manifest().hosts.clone();
    let request = OutgoingRequest {
        capability: "openai/chat-completions".into(),
        credential_kind: "api-key".into(),
        method: "POST".into(),
        host: "api.openai.com".into(),
        path: "/v1/chat/completions".into(),
        query: vec![],
        headers: vec![("content-type".into(), "application/json".into())],
        body: None,
    };
    let secrets = vec![("secret".to_string(), Zeroizing::new("sk-bench0123456789abcdefghijkl".to_string()))];
    let inject = median(1001, || {
        black_box(plugin.inject(&request, &secrets, &hosts).unwrap());
    });
    // The same call with instances from wasmtime's pooling allocator, as
    // the daemon and `serve` run it (its compiled code from the same cache).
    let pooled = Runtime::pooled(
        SandboxLimits::default(),
        CacheConfig::with_sibling_key(cache_dir.path().join("components")),
        64,
    )
    .unwrap();
    let pooled_plugin = pooled.load_builtin(openai).unwrap();
    pooled_plugin.inject(&request, &secrets, &hosts).unwrap();
    let inject_pooled = median(1001, || {
        black_box(pooled_plugin.inject(&request, &secrets, &hosts).unwrap());
    });
    let validate = median(1001, || {
        plugin.validate_secret("OPENAI_API_KEY", "sk-bench0123456789abcdefghijkl").unwrap();
    });

    println!("provider runtime (openai component, median)");
    println!("  compile component        {:>10.3} ms", ms(compile));
    println!(
        "  load cached compilation  {:>10.3} ms   ({:.0}x faster than compiling)",
        ms(from_cache),
        ratio(compile, from_cache)
    );
    println!(
        "  load a built-in (manifest embedded at build time) {:>7.1} µs   ({:.0}x faster than a cached compilation; code loaded at first call)",
        us(manifest_only),
        ratio(from_cache, manifest_only)
    );
    println!("  registry, {builtins} built-ins     {:>10.1} µs", us(registry));
    println!(
        "  inject (fresh instance)  {:>10.1} µs   ({:.0}x faster than a cached load)",
        us(inject),
        ratio(from_cache, inject)
    );
    println!(
        "  inject, pooling allocator {:>9.1} µs   ({:.2}x on-demand instances)",
        us(inject_pooled),
        ratio(inject_pooled, inject)
    );
    println!("  validate-secret          {:>10.1} µs", us(validate));

    hostile_stops();
}

/// How long the sandbox lets a looping or memory-hungry component run.
fn hostile_stops() {
    let path = aivault_test_artifacts::HOSTILE;
    let bytes = std::fs::read(path).unwrap();
    let runtime = Runtime::new(SandboxLimits::default(), None).unwrap();
    let plugin = runtime.load(Origin::File(path.into()), &bytes).unwrap();
    let hosts = plugin.manifest().hosts.clone();
    let secrets = vec![("secret".to_string(), Zeroizing::new("x".repeat(16)))];
    for path in ["/loop", "/memory-bomb"] {
        let request = OutgoingRequest {
            capability: "hostile/any".into(),
            credential_kind: "default".into(),
            method: "GET".into(),
            host: "api.hostile.test".into(),
            path: path.into(),
            query: vec![],
            headers: vec![],
            body: None,
        };
        let stop = median(5, || {
            black_box(plugin.inject(&request, &secrets, &hosts).unwrap_err());
        });
        println!("  stop {path:<19} {:>10.1} ms", ms(stop));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
