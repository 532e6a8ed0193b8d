//! Whole `aivault` processes of the release binary, each against a floor
//! measured in the same run, interleaved so machine noise hits both alike:
//!
//! ```sh
//! cargo bench -p aivault --features dev-overrides --bench commands
//! ```
//!
//! (`dev-overrides` lets the release binary send to the loopback upstream
//! and trust its test CA, as test builds do; nothing else changes.)
//!
//! 1. `aivault invoke openai/models` (no daemon, then through `aivaultd`)
//!    against `curl` sending the same request to the same keep-alive HTTPS
//!    server; peak RSS of each.
//! 2. `secrets create`, `status` and `capability list` against
//!    `secrets list` of the same vault (44 built-in providers).
//! 3. `secrets import` and `secrets list` at 1k, 10k and 100k secrets.
//! 4. The same commands with the vault's rows on a PostgreSQL server (a
//!    local one the bench starts, over TLS with a password, as a team's
//!    brokers reach theirs) against the SQLite vault.
//!
//! `AIVAULT_BENCH_ONLY=invoke|listing|scaling|postgres` runs one part.
//! `AIVAULT_BENCH_COMPARE=<path to another aivault build>` (built with the
//! same feature) adds that build's one-shot `invoke` on the same vault,
//! installed the same way and interleaved with the rest: a before and after
//! in one run.
//!
//! Every aivault command runs from a copy of the binary made as `cargo
//! install` makes one (see `support::installed_copy`), in a new order each
//! round.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::upstream::Upstream;
use support::{Run, Vault, median, ms, ratio, row, run};

const KEY: &str = "sk-proj-BenchKeyAbcdefGhijklMnopqrStuvwx0123456789";
const RUNS: usize = 41;

/// A running `aivault daemon`, stopped when dropped.
struct Daemon(Child);

impl Daemon {
    fn start(vault: &Vault) -> Self {
        let mut child = vault.cmd(&["daemon"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut banner).unwrap();
        assert!(banner.starts_with("aivaultd listening on"), "{banner:?}");
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling the daemon this bench started.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

const MODELS: &[&str] = &["invoke", "openai/models", "--method", "GET", "--path", "/v1/models"];

fn main() {
    let upstream = Upstream::start(&["api.openai.com"]);
    let plain = Vault::new(&upstream);
    let create_key = ["secrets", "create", "--name", "OPENAI_API_KEY", "--value", KEY];
    if !plain.overrides_honoured("commands") {
        std::process::exit(2);
    }
    plain.run(&create_key);
    let daemoned = Vault::new(&upstream);
    daemoned.run(&create_key);
    let _daemon = Daemon::start(&daemoned);
    // The first call compiles the provider (then cached) and, through the
    // daemon, opens the upstream connection it keeps.
    plain.run(MODELS);
    daemoned.run(MODELS);

    let only = std::env::var("AIVAULT_BENCH_ONLY").ok();
    let wanted = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if wanted("invoke") {
        invoke(&upstream, &plain, &daemoned);
    }
    if wanted("listing") {
        listing(&plain);
    }
    if wanted("scaling") {
        scaling(&upstream);
    }
    if wanted("postgres") {
        postgres(&upstream, &plain, &daemoned);
    }
}

fn invoke(upstream: &Upstream, plain: &Vault, daemoned: &Vault) {
    let ca = upstream.ca_path.display().to_string();
    let connect_to = format!("api.openai.com:443:127.0.0.1:{}", upstream.addr.port());
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-o", "/dev/null", "--cacert", &ca, "--connect-to", &connect_to]).args([
        "-H",
        &format!("Authorization: Bearer {KEY}"),
        "https://api.openai.com/v1/models",
    ]);
    if Command::new("curl").arg("--version").output().is_err() {
        println!("curl is not installed: the invoke comparison needs it");
        return;
    }
    // Installed as this build is (see `installed_copy`).
    let mut other = std::env::var_os("AIVAULT_BENCH_COMPARE")
        .map(|other| plain.cmd_of(support::installed_copy(Path::new(&other), "compared"), MODELS));
    if let Some(other) = &mut other {
        // Its first call compiles the provider for its own engine.
        run(other);
    }
    let mut commands: Vec<Command> = vec![curl, plain.cmd(MODELS), daemoned.cmd(MODELS)];
    commands.extend(other);
    let mut runs: [Vec<Run>; 4] = Default::default();
    // Each round runs the commands in a new order: in a fixed one, each
    // always follows the same other, and a process started right after
    // curl's ran about 0.6 ms slower whatever it was (the same binary,
    // measured in two places of one order).
    let mut order: Vec<usize> = (0..commands.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..RUNS {
        shuffle(&mut order, &mut seed);
        for &i in &order {
            runs[i].push(run(&mut commands[i]));
        }
    }
    let times = |r: &[Run]| r.iter().map(|r| r.time).collect::<Vec<_>>();
    let rss = |r: &[Run]| r.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let curl_time = median(&times(&runs[0]));
    println!(
        "GET /v1/models over HTTPS to a loopback server, one process per call (median of {RUNS}, interleaved)"
    );
    let labels = [
        "curl",
        "aivault invoke openai/models",
        "aivault invoke, through aivaultd",
        "aivault invoke, AIVAULT_BENCH_COMPARE's build",
    ];
    for (label, r) in labels.iter().zip(&runs).filter(|(_, r)| !r.is_empty()) {
        let time = median(&times(r));
        println!(
            "  {label:<46} {:>9.2} ms   {:>5.2}x curl   peak RSS {:>6.1} MiB",
            ms(time),
            ratio(time, curl_time),
            rss(r) as f64 / 1024.0
        );
    }
}

/// Fisher–Yates with a fixed-seed xorshift: the same orders on every run.
fn shuffle(items: &mut [usize], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        items.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

fn listing(vault: &Vault) {
    let commands: [&[&str]; 4] = [
        &["secrets", "list"],
        &["status"],
        &["capability", "list"],
        &["capability", "list", "--provider", "openai"],
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); commands.len() + 2];
    for i in 0..RUNS {
        for (j, args) in commands.iter().enumerate() {
            times[j].push(vault.run(args).time);
        }
        let name = format!("BENCH_UNCLAIMED_{i}");
        let create = ["secrets", "create", "--name", &name, "--value", "t3st-bench-0123456789abcdef"];
        times[commands.len()].push(vault.run(&create).time);
        let workspace = format!("w{i}");
        let validated = [
            "secrets",
            "create",
            "--name",
            "OPENAI_API_KEY",
            "--value",
            KEY,
            "--scope",
            "workspace",
            "--workspace-id",
            &workspace,
        ];
        times[commands.len() + 1].push(vault.run(&validated).time);
    }
    let list = median(&times[0]);
    println!("commands on one vault, 44 built-in providers (median of {RUNS}, interleaved)");
    for (args, t) in commands.iter().zip(&times) {
        row(&format!("aivault {}", args.join(" ")), median(t), Some((list, "secrets list")));
    }
    row(
        "aivault secrets create (no provider claims it)",
        median(&times[commands.len()]),
        Some((list, "secrets list")),
    );
    row(
        "aivault secrets create OPENAI_API_KEY (validated)",
        median(&times[commands.len() + 1]),
        Some((list, "secrets list")),
    );
}

fn scaling(upstream: &Upstream) {
    println!("secrets import and secrets list as the vault grows");
    for count in [1_000usize, 10_000, 100_000] {
        let vault = Vault::new(upstream);
        let file = vault.dir().join("bench.env");
        write_env_file(&file, count);
        let started = Instant::now();
        vault.run(&["secrets", "import", "--env-file", &file.display().to_string()]);
        let import = started.elapsed();
        std::fs::remove_file(&file).unwrap();
        let runs = if count >= 100_000 { 3 } else { 9 };
        let list: Vec<Duration> = (0..runs).map(|_| vault.run(&["secrets", "list"]).time).collect();
        let list = median(&list);
        println!(
            "  {count:>7} secrets: import {:>9.1} ms ({:>6.1} µs each)   list {:>8.1} ms",
            ms(import),
            import.as_secs_f64() * 1e6 / count as f64,
            ms(list)
        );
    }
}

fn postgres(upstream: &Upstream, plain: &Vault, daemoned: &Vault) {
    let server = aivault_test_postgres::Server::shared();
    let create_key = ["secrets", "create", "--name", "OPENAI_API_KEY", "--value", KEY];
    let shared = Vault::on_postgres(upstream, server.database().url());
    shared.run(&create_key);
    shared.run(MODELS);
    let shared_daemoned = Vault::on_postgres(upstream, server.database().url());
    shared_daemoned.run(&create_key);
    let _daemon = Daemon::start(&shared_daemoned);
    shared_daemoned.run(MODELS);

    // The floor: PostgreSQL's own client, one process per call, connecting
    // the same way (TLS, password) and asking for one row.
    let db = server.database();
    let mut psql = Command::new(server.program("psql"));
    psql.args([&db.url(), "-Atqc", "SELECT 1"]);
    let mut floor = Vec::new();

    let pairs: [(&str, &Vault, &Vault, &[&str]); 3] = [
        ("aivault secrets list", plain, &shared, &["secrets", "list"]),
        ("aivault invoke openai/models", plain, &shared, MODELS),
        ("aivault invoke, through aivaultd", daemoned, &shared_daemoned, MODELS),
    ];
    let mut times: Vec<[Vec<Duration>; 2]> = vec![Default::default(); pairs.len() + 1];
    for i in 0..RUNS {
        for (j, (_, sqlite, postgres, args)) in pairs.iter().enumerate() {
            times[j][0].push(sqlite.run(args).time);
            times[j][1].push(postgres.run(args).time);
        }
        let name = format!("BENCH_PG_{i}");
        let create = ["secrets", "create", "--name", &name, "--value", "t3st-bench-0123456789abcdef"];
        times[pairs.len()][0].push(plain.run(&create).time);
        times[pairs.len()][1].push(shared.run(&create).time);
        floor.push(run(&mut psql).time);
    }
    println!(
        "the vault's rows in SQLite and on a local PostgreSQL server over TLS (median of {RUNS}, interleaved)"
    );
    println!("  {:<46} {:>9.2} ms", "psql: connect, SELECT 1 (a connection's floor)", ms(median(&floor)));
    let labels = pairs.iter().map(|p| p.0).chain(["aivault secrets create (no provider claims it)"]);
    for (label, [sqlite, postgres]) in labels.zip(&times) {
        let (sqlite, postgres) = (median(sqlite), median(postgres));
        println!(
            "  {label:<46} SQLite {:>7.2} ms   PostgreSQL {:>7.2} ms   {:>5.2}x SQLite",
            ms(sqlite),
            ms(postgres),
            ratio(postgres, sqlite)
        );
    }
}

fn write_env_file(path: &Path, count: usize) {
    let mut text = String::with_capacity(count * 48);
    for i in 0..count {
        text.push_str(&format!("BENCH_SECRET_{i:06}=t3st-value-{i:06}-0123456789abcdef\n"));
    }
    std::fs::write(path, text).unwrap();
}
