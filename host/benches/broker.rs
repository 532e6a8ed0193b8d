//! What the broker adds to a request, measured side by side in one run:
//!
//! ```sh
//! cargo bench -p aivault --bench broker
//! ```
//!
//! A direct HTTPS GET to a loopback server (a fresh rustls client each time,
//! as a one-shot CLI call makes) against the same request through
//! `Broker::invoke`: vault snapshot, credential resolution, policy and rate
//! bookkeeping, decryption, the provider component's `inject`, result
//! checks, the request, redaction and the audit record.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aivault::broker::{Broker, DevOverrides, Invocation};
use aivault::plugins::{CacheConfig, Runtime, SandboxLimits};
use aivault::registry::Registry;
use aivault::vault::{NewSecret, Scope, Vault};
use zeroize::Zeroizing;

#[allow(dead_code)]
#[path = "../tests/cli/upstream.rs"]
mod upstream;

const KEY: &str = "sk-proj-BenchKeyAbcdefGhijklMnopqrStuvwx0123456789";
const RUNS: usize = 101;

fn main() {
    let server = upstream::Upstream::start(&["api.openai.com"]);
    let env: std::collections::HashMap<_, _> = server.env().into_iter().collect();
    let addr =
        env["AIVAULT_DEV_RESOLVE"].split(',').next().unwrap().split_once('=').unwrap().1.parse().unwrap();
    let ca_pem = std::fs::read(&env["AIVAULT_DEV_CA_CERT_PATH"]).unwrap();
    let dev =
        DevOverrides { resolve: vec![("api.openai.com".into(), addr)], ca_cert_pem: Some(ca_pem.clone()) };

    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(
        SandboxLimits::default(),
        Some(CacheConfig::new(dir.path().join("cache"), dir.path().join("cache.key"))),
    )
    .unwrap();
    let registry = Registry::load_builtin(&runtime).unwrap();
    let mut vault = Vault::open(dir.path()).unwrap();
    let secret = NewSecret {
        name: "OPENAI_API_KEY".into(),
        value: Zeroizing::new(KEY.into()),
        scope: Scope::Global,
        aliases: vec![],
    };
    vault.create(&registry, vec![secret], |_, _| {}).unwrap();

    let call = Invocation {
        capability: "openai/models".into(),
        method: Some("GET".into()),
        path: Some("/v1/models".into()),
        timeout: Duration::from_secs(10),
        ..Invocation::default()
    };
    let direct = || {
        let client = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .no_proxy()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
            .resolve("api.openai.com", addr)
            .build()
            .unwrap();
        let response = client.get("https://api.openai.com/v1/models").bearer_auth(KEY).send().unwrap();
        black_box(response.bytes().unwrap());
    };

    // Interleave the two so machine noise hits both alike.
    let (mut direct_times, mut broker_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        direct();
        direct_times.push(start.elapsed());
        let start = Instant::now();
        black_box(Broker::new(&mut vault, &registry, &dev).invoke(&call).unwrap());
        broker_times.push(start.elapsed());
    }
    let (direct, brokered) = (median(direct_times), median(broker_times));
    println!("GET /v1/models over HTTPS to a loopback server (median of {RUNS})");
    println!("  direct request (fresh client)   {:>8.2} ms", ms(direct));
    println!(
        "  through the broker              {:>8.2} ms   ({:.2}x the direct request)",
        ms(brokered),
        ratio(brokered, direct)
    );
    println!("  broker overhead                 {:>8.2} ms", ms(brokered.saturating_sub(direct)));
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
