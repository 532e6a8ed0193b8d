//! `aivault serve` against the same request sent directly, with the same
//! kind of client, to the same keep-alive loopback HTTPS server, in one run:
//!
//! ```sh
//! cargo bench -p aivault --features dev-overrides --bench serve
//! AIVAULT_BENCH_SOAK_SECS=600 cargo bench -p aivault --features dev-overrides --bench serve
//! ```
//!
//! 1. Added latency: sequential requests on kept-alive connections,
//!    interleaved, p50 and p99 of each path.
//! 2. Throughput at 1, 8 and 64 concurrent clients, each path for the same
//!    time, and the server's peak memory under 64.
//!
//! Both also measure a bare forwarding proxy (`support/forwarder.rs`: no
//! vault, no audit, no sandbox), the floor of any HTTP proxy put in the
//! path on this machine, and under it a byte relay (`support/relay.rs`: no
//! HTTP, the client's own TLS passed through), the floor of any process
//! in the path at all.
//! 3. A soak (20 s by default; `AIVAULT_BENCH_SOAK_SECS` for the 10-minute
//!    run): 64 clients for the whole time, the server's RSS sampled every
//!    second and its open file descriptors counted before and after.
//! 4. Honest calls beside clients calling a hostile component (after the
//!    soak, whose peak memory they would otherwise set).

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use support::forwarder::Forwarder;
use support::relay::Relay;
use support::upstream::{Upstream, body};
use support::{Vault, percentile, us};

const KEY: &str = "sk-proj-BenchKeyAbcdefGhijklMnopqrStuvwx0123456789";
const LATENCY_RUNS: usize = 3000;
const PHASE: Duration = Duration::from_secs(3);

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(vault: &Vault) -> Self {
        let mut child = vault
            .cmd(&["serve", "--listen", "127.0.0.1:0", "--max-concurrent", "64"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("aivault serve listening on ").expect(&line).to_string();
        Server { child, base }
    }

    /// A line of the server's /proc status, in KiB (VmRSS, VmHWM).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(field)?.trim_start_matches(':').trim().strip_suffix(" kB")?.parse().ok()
            })
            .unwrap_or(0)
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| d.count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling the server this bench started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// How one request is made: directly to upstream with the key, or through
/// `serve` with a proxy token.
#[derive(Clone)]
struct Path {
    url: String,
    bearer: String,
    client: fn(&Upstream) -> Client,
}

fn direct_client(upstream: &Upstream) -> Client {
    https_client(upstream, upstream.addr)
}

/// The direct client's requests, sent through the byte relay.
fn relayed_client(upstream: &Upstream) -> Client {
    https_client(upstream, *RELAY.get().expect("the relay is started before it is measured"))
}

/// A client trusting the upstream's CA that connects to `addr` for it.
fn https_client(upstream: &Upstream, addr: std::net::SocketAddr) -> Client {
    Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&upstream.ca_pem()).unwrap())
        .resolve("api.openai.com", addr)
        .build()
        .unwrap()
}

/// Where the byte relay listens (a path's client is a plain function).
static RELAY: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();

fn local_client(_: &Upstream) -> Client {
    Client::builder().no_proxy().build().unwrap()
}

fn request(client: &Client, path: &Path, expected: &[u8]) {
    let response = client.get(&path.url).bearer_auth(&path.bearer).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().unwrap(), expected, "a wrong answer");
}

fn main() {
    let upstream = Upstream::start(&["api.openai.com", "api.hostile.test"]);
    let vault = Vault::new(&upstream);
    if !vault.overrides_honoured("serve") {
        std::process::exit(2);
    }
    vault.run(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", KEY]);
    vault.run(&["provider", "install", aivault_test_artifacts::HOSTILE]);
    vault.run(&["secrets", "create", "--name", "HOSTILE_KEY", "--value", "hostile-secret-value-1"]);
    let args = ["token", "create", "--capability", "openai/models", "--capability", "hostile/any"];
    let out = vault.cmd(&args).output().unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let server = Server::start(&vault);
    let direct =
        Path { url: "https://api.openai.com/v1/models".into(), bearer: KEY.into(), client: direct_client };
    let served =
        Path { url: format!("{}/v/openai/v1/models", server.base), bearer: token, client: local_client };
    let forwarder = Forwarder::start(&upstream, KEY);
    let bare = Path {
        url: format!("http://{}/v1/models", forwarder.addr),
        bearer: "-".into(),
        client: local_client,
    };
    RELAY.set(Relay::start(upstream.addr).addr).unwrap();
    let relayed = Path { client: relayed_client, ..direct.clone() };
    let expected = body();

    let proxies = [("byte relay", &relayed), ("bare proxy", &bare), ("serve", &served)];
    latency(&upstream, &direct, &proxies, &expected);
    throughput(&upstream, &direct, &proxies, &expected, &server);
    // The soak before the hostile clients: their memory bombs would set
    // the server's high-water mark, not the honest load.
    soak(&upstream, &served, &expected, &server, &vault);
    hostile_beside(&upstream, &served, &expected);
}

/// Sequential requests on each path in turn, `LATENCY_RUNS` each.
fn latency(upstream: &Upstream, direct: &Path, proxies: &[(&str, &Path)], expected: &[u8]) {
    let paths: Vec<&Path> = std::iter::once(direct).chain(proxies.iter().map(|(_, p)| *p)).collect();
    let clients: Vec<Client> = paths.iter().map(|p| (p.client)(upstream)).collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(LATENCY_RUNS); paths.len()];
    for round in 0..200 + LATENCY_RUNS {
        for (i, path) in paths.iter().enumerate() {
            let start = Instant::now();
            request(&clients[i], path, expected);
            if round >= 200 {
                times[i].push(start.elapsed());
            }
        }
    }
    println!("GET /v1/models on kept-alive connections, sequential ({LATENCY_RUNS} each, interleaved)");
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        let direct = percentile(&times[0], p);
        print!("  {name}: direct {:>7.1} µs", us(direct));
        for ((proxy, _), t) in proxies.iter().zip(&times[1..]) {
            let through = percentile(t, p);
            print!("   {proxy} {:>7.1} µs (+{:.1})", us(through), us(through.saturating_sub(direct)));
        }
        println!();
    }
}

/// Requests per second from `clients` threads for `time`, each thread with
/// its own client (its own kept-alive connection).
fn rate(upstream: &Upstream, path: &Path, expected: &[u8], clients: usize, time: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (done, stop, path, expected) = (done.clone(), stop.clone(), path.clone(), expected.to_vec());
            let client = (path.client)(upstream);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    request(&client, &path, &expected);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn throughput(
    upstream: &Upstream,
    direct: &Path,
    proxies: &[(&str, &Path)],
    expected: &[u8],
    server: &Server,
) {
    println!("throughput, {} s per path and level (% of direct)", PHASE.as_secs());
    for clients in [1, 8, 64] {
        let d = rate(upstream, direct, expected, clients, PHASE);
        print!("  {clients:>2} clients: direct {d:>6.0} req/s");
        for (proxy, path) in proxies {
            let r = rate(upstream, path, expected, clients, PHASE);
            print!("   {proxy} {r:>6.0} req/s ({:>3.0}%)", 100.0 * r / d);
        }
        println!();
    }
    println!("  serve's peak RSS so far: {:.1} MiB", server.memory_kib("VmHWM") as f64 / 1024.0);
}

/// Honest calls' latency through `serve`, alone and while four clients
/// call a hostile component that traps, spins until its CPU budget is
/// gone, or grows its memory to the limit (issue 13: within 2x of quiet).
fn hostile_beside(upstream: &Upstream, served: &Path, expected: &[u8]) {
    let client = (served.client)(upstream);
    let sample = |runs: usize| {
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                request(&client, served, expected);
                start.elapsed()
            })
            .collect();
        times.sort();
        (percentile(&times, 50.0), percentile(&times, 99.0))
    };
    let quiet = sample(1000);
    let stop = Arc::new(AtomicBool::new(false));
    let hostile_calls = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = ["/trap", "/loop", "/memory-bomb", "/loop"]
        .into_iter()
        .map(|path| {
            let (stop, calls) = (stop.clone(), hostile_calls.clone());
            let url = served.url.replace("/v/openai/v1/models", &format!("/v/hostile{path}"));
            let (bearer, client) = (served.bearer.clone(), (served.client)(upstream));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let response = client.get(&url).bearer_auth(&bearer).send().unwrap();
                    assert!(!response.status().is_success(), "a hostile call succeeded");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let loud = sample(1000);
    stop.store(true, Ordering::Relaxed);
    attackers.into_iter().for_each(|a| a.join().unwrap());
    println!("honest calls through serve beside 4 clients calling a hostile component (1000 each)");
    println!(
        "  quiet: p50 {:>7.1} µs  p99 {:>7.1} µs;  beside hostile: p50 {:>7.1} µs  p99 {:>7.1} µs  ({:.2}x p50; {} hostile calls, each refused)",
        us(quiet.0),
        us(quiet.1),
        us(loud.0),
        us(loud.1),
        loud.0.as_secs_f64() / quiet.0.as_secs_f64(),
        hostile_calls.load(Ordering::Relaxed)
    );
}

fn soak(upstream: &Upstream, served: &Path, expected: &[u8], server: &Server, vault: &Vault) {
    let secs: u64 = std::env::var("AIVAULT_BENCH_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let fds_before = server.open_fds();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let pid = server.child.id();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.parse::<u64>().ok());
                samples.extend(rss);
            }
            samples
        })
    };
    let requests = rate(upstream, served, expected, 64, Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let tenth = samples.get(samples.len() / 10).copied().unwrap_or(0);
    let last = samples.last().copied().unwrap_or(0);
    println!("soak: 64 clients through serve for {secs} s ({requests:.0} req/s)");
    println!(
        "  RSS at 10% of the run {:.1} MiB, at the end {:.1} MiB, peak {:.1} MiB (since the server started)",
        mib(tenth),
        mib(last),
        mib(server.memory_kib("VmHWM"))
    );
    // The clients have gone: their connections close, and the count should
    // come back to what it was before (upstream connections may stay pooled).
    std::thread::sleep(Duration::from_millis(500));
    println!("  open file descriptors before {fds_before}, after {}", server.open_fds());
    println!(
        "  the vault's database {:.1} MiB, its write-ahead log {:.1} MiB",
        vault.file_mib("vault.db"),
        vault.file_mib("vault.db-wal")
    );
}
