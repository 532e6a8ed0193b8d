//! What every benchmark shares: medians and percentiles, a loopback HTTPS
//! upstream with keep-alive, and whole-process timing with peak memory.
//! Each bench includes this module and uses part of it.
#![allow(dead_code)]

pub mod forwarder;
pub mod relay;
pub mod upstream;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The median of `times`.
/// `binary` as `cargo install` leaves it, copied into place (cargo uses
/// `std::fs::copy`), as `name` in this build's scratch directory, copied
/// afresh once per bench run. What users run is such a copy, and it is
/// what is measured: the file the linker wrote in `target/` ran 0.4–0.5 ms
/// slower per process on the development machine (BENCHMARKS.md, session
/// 25: how a file was written decides how the kernel caches and maps it).
pub fn installed_copy(binary: &Path, name: &str) -> &'static Path {
    static COPIES: std::sync::Mutex<Vec<(String, &'static Path)>> = std::sync::Mutex::new(Vec::new());
    let mut copies = COPIES.lock().unwrap();
    if let Some((_, path)) = copies.iter().find(|(n, _)| n == name) {
        return path;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("installed");
    std::fs::create_dir_all(&dir).unwrap();
    let to: &'static Path = Box::leak(dir.join(name).into_boxed_path());
    let staged = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::copy(binary, &staged).unwrap();
    std::fs::rename(&staged, to).unwrap();
    copies.push((name.to_string(), to));
    to
}

pub fn median(times: &[Duration]) -> Duration {
    percentile(times, 50.0)
}

/// The `p`th percentile of `times` (nearest rank).
pub fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// One finished process: how long it took and its peak resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub time: Duration,
    pub peak_rss_kib: u64,
}

/// Runs `cmd` to completion with its output discarded (stdin closed),
/// timing it and reading its peak RSS from the kernel; panics if it fails.
// The child is reaped by wait4 (which also reports its peak RSS), not Child::wait.
#[allow(clippy::zombie_processes)]
pub fn run(cmd: &mut Command) -> Run {
    // Errors go to a file, not a pipe nobody reads while the child runs.
    let mut errors = tempfile::tempfile().unwrap();
    let start = Instant::now();
    let child =
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(errors.try_clone().unwrap()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child spawned above, which nothing else waits for.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let time = start.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        use std::io::{Read as _, Seek as _};
        let mut stderr = String::new();
        errors.rewind().unwrap();
        errors.read_to_string(&mut stderr).unwrap();
        panic!("{cmd:?} failed: {stderr}");
    }
    Run { time, peak_rss_kib: usage.ru_maxrss as u64 }
}

/// A throwaway vault and the release binary run against it, pointed at
/// the loopback upstream.
pub struct Vault {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Vault {
    pub fn new(upstream: &upstream::Upstream) -> Self {
        Vault { dir: tempfile::tempdir().unwrap(), env: upstream.env() }
    }

    /// A vault whose rows are in the PostgreSQL database at `url`.
    pub fn on_postgres(upstream: &upstream::Upstream, url: String) -> Self {
        let mut vault = Self::new(upstream);
        vault.env.push(("AIVAULT_DATABASE_URL", url));
        vault
    }

    /// The size of a file in the vault directory, in MiB (0 if absent).
    pub fn file_mib(&self, name: &str) -> f64 {
        std::fs::metadata(self.dir.path().join(name)).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `aivault <args>` on this vault, with no other AIVAULT_* setting, run
    /// from the binary as installed (see [`installed_copy`]).
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_of(installed_copy(Path::new(env!("CARGO_BIN_EXE_aivault")), "aivault"), args)
    }

    /// [`Vault::cmd`] with another build of aivault, e.g. an older one to
    /// compare with in the same run.
    pub fn cmd_of(&self, binary: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary);
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("AIVAULT") {
                cmd.env_remove(var);
            }
        }
        cmd.args(args).env("AIVAULT_DIR", self.dir.path()).env("NO_COLOR", "1");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(&mut self.cmd(args))
    }

    /// Whether this binary honours the loopback overrides (a release build
    /// needs the `dev-overrides` feature); says how to get them if not.
    pub fn overrides_honoured(&self, bench: &str) -> bool {
        let out = self.cmd(&["status"]).output().unwrap();
        let refused = String::from_utf8_lossy(&out.stderr).contains("release build");
        if refused {
            eprintln!(
                "this bench needs the loopback overrides: cargo bench -p aivault --features dev-overrides --bench {bench}"
            );
        }
        !refused
    }
}

/// Prints a row `label  value  (ratio)`, aligned.
pub fn row(label: &str, time: Duration, against: Option<(Duration, &str)>) {
    match against {
        Some((base, name)) => {
            println!("  {label:<46} {:>9.2} ms   {:>5.2}x {name}", ms(time), ratio(time, base))
        }
        None => println!("  {label:<46} {:>9.2} ms", ms(time)),
    }
}

/// Listens on a loopback port and runs `connection` as a task for each
/// connection accepted (Nagle's algorithm off), on a multi-threaded
/// runtime of its own thread, for the rest of the bench. Returns where.
pub fn loopback_server<F, Fut>(connection: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(tcp));
            }
        });
    });
    addr
}
