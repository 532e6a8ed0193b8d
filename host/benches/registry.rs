//! What the provider catalogue costs a command, measured side by side in one
//! run (release build):
//!
//! ```sh
//! cargo bench -p aivault --bench registry
//! ```
//!
//! 1. Loading the registry of every built-in (manifests embedded at build
//!    time), against loading only the three providers aivault started with:
//!    a command that lists or matches names pays this, and compiles nothing.
//! 2. Whole processes of the release binary on one vault, interleaved:
//!    `capability list` (all providers) against `secrets list` (no
//!    provider code at all), and the first command on a fresh vault (an
//!    empty compiled-code cache): storing an OpenAI key, which compiles the
//!    one provider that validates it.

mod support;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use aivault::plugins::{CacheConfig, Runtime, SandboxLimits, builtin_components};
use aivault::registry::Registry;

const RUNS: usize = 31;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    in_process();
    processes();
}

fn in_process() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheConfig::new(dir.path().join("components"), dir.path().join("cache.key"));
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache)).unwrap();
    let original = ["openai", "trello", "github"];
    let (mut all, mut three) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        black_box(Registry::load_builtin(&runtime).unwrap());
        all.push(start.elapsed());
        let start = Instant::now();
        for component in builtin_components().iter().filter(|c| original.contains(&c.name)) {
            black_box(runtime.load_builtin(component).unwrap());
        }
        three.push(start.elapsed());
    }
    let (all, three) = (median(all), median(three));
    let count = builtin_components().len();
    println!("registry in process (median of {RUNS})");
    println!("  {count} built-ins                    {:>9.3} ms", ms(all));
    println!("  the original 3                  {:>9.3} ms", ms(three));
}

fn processes() {
    let bin = support::installed_copy(std::path::Path::new(env!("CARGO_BIN_EXE_aivault")), "aivault");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let start = Instant::now();
        let out = Command::new(bin)
            .args(args)
            .env("AIVAULT_DIR", dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        start.elapsed()
    };
    let first = run(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        "sk-proj-BenchKeyAbcdefGhijklMnopqr0123",
    ]);
    let commands: [&[&str]; 4] = [
        &["secrets", "list"],
        &["capability", "list"],
        &["capability", "list", "--provider", "openai"],
        &["status"],
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); commands.len()];
    for _ in 0..RUNS {
        for (i, args) in commands.iter().enumerate() {
            times[i].push(run(args));
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    println!("whole processes, release binary (median of {RUNS}, interleaved)");
    println!("  first command on a fresh vault   {:>9.1} ms", ms(first));
    for (args, time) in commands.iter().zip(&medians) {
        println!(
            "  aivault {:<30} {:>7.1} ms   ({:.2}x secrets list)",
            args.join(" "),
            ms(*time),
            time.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}
