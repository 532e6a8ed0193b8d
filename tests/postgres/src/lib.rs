//! A real PostgreSQL server for tests, one per test process.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the
//! server's files and processes belong to `nobody`. It listens on a loopback
//! port with password authentication and TLS (a certificate for
//! `localhost` and `127.0.0.1` from a throwaway authority), keeps its data
//! in a temporary directory, and is stopped, and that directory removed, by
//! a watchdog once the test process has exited (Rust's test harness runs no
//! destructors of statics).
//!
//! The binaries are found through `AIVAULT_TEST_PG_BIN`, `pg_config` on the
//! `PATH`, or the newest `/usr/lib/postgresql/*/bin`.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The administrator every database belongs to.
pub const USER: &str = "aivault_test";

/// A running server.
pub struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    password: String,
    ca_pem: PathBuf,
}

/// One database of the server, for one test.
#[derive(Clone)]
pub struct Database {
    server: &'static Server,
    name: String,
}

impl Server {
    /// The server of this test process, started on first use.
    ///
    /// Panics with the reason when no PostgreSQL can be started: the tests
    /// that use it are part of the suite, not optional (`.ci/run` installs
    /// PostgreSQL on a machine without it).
    pub fn shared() -> &'static Server {
        static SERVER: OnceLock<Server> = OnceLock::new();
        SERVER.get_or_init(|| {
            Server::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL for the tests: {e}"))
        })
    }

    fn start() -> Result<Server, String> {
        let bin = binaries()?;
        let root = std::env::temp_dir().join(format!("aivault-pg-{}-{}", std::process::id(), nanos()));
        let data = root.join("data");
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let owner = unprivileged();
        let password = format!("pw{:x}", nanos());
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, &password).map_err(|e| e.to_string())?;
        chown_tree(&root, owner)?;

        let initdb = run_as(owner, Command::new(bin.join("initdb")))
            .args(["--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync", "--username", USER])
            .arg("--pwfile")
            .arg(&pwfile)
            .arg("-D")
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr)));
        }
        let ca_pem = write_certificates(&data, &root)?;
        chown_tree(&root, owner)?;

        // A free port, tried again if another process takes it first.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            let log = std::fs::File::create(root.join("server.log")).map_err(|e| e.to_string())?;
            let mut postgres = run_as(owner, Command::new(bin.join("postgres")));
            postgres
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", root.display()))
                .args(["-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"])
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                .args(["-c", "max_connections=300"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log);
            // Its own process group: a test's Ctrl-C goes to the watchdog's
            // care, not straight to the server.
            postgres.process_group(0);
            let child = postgres.spawn().map_err(|e| format!("postgres: {e}"))?;
            watch(child.id(), &root)?;
            let server = Server {
                bin: bin.clone(),
                data: data.clone(),
                port,
                password: password.clone(),
                ca_pem: ca_pem.clone(),
            };
            if server.wait_ready(Duration::from_secs(30)) {
                return Ok(server);
            }
        }
        let log = std::fs::read_to_string(root.join("server.log")).unwrap_or_default();
        Err(format!("the server did not start: {log}"))
    }

    fn wait_ready(&self, patience: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < patience {
            if self.admin("postgres").is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn admin(&self, database: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user={USER} password={} dbname={database}",
                self.port, self.password
            ),
            postgres::NoTls,
        )
    }

    /// A new, empty database.
    pub fn database(&'static self) -> Database {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = self.admin("postgres").expect("the test server answers");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("a test database is created");
        Database { server: self, name }
    }

    /// A program of the PostgreSQL installation the server runs from
    /// (`psql`, for a benchmark's floor).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The server's data directory (searched for values that must not be there).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl Database {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for aivault: password authentication, TLS verified against
    /// the test authority.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{}?sslmode=verify-full&sslrootcert={}",
            self.server.password,
            self.server.port,
            self.name,
            self.server.ca_pem.display()
        )
    }

    /// A client with the administrator's rights, as a database
    /// administrator without the vault's key has.
    pub fn client(&self) -> postgres::Client {
        self.server.admin(&self.name).expect("the test database answers")
    }

    pub fn server(&self) -> &'static Server {
        self.server
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("AIVAULT_TEST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL found (set AIVAULT_TEST_PG_BIN, or install it: .ci/run does)".to_string()
    })
}

/// `(uid, gid)` to run the server as: `nobody` when we are root (which
/// PostgreSQL refuses), else ourselves.
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0).then_some((65534, 65534))
}

fn run_as(owner: Option<(u32, u32)>, mut command: Command) -> Command {
    if let Some((uid, gid)) = owner {
        // (std drops root's supplementary groups when it changes the uid.)
        command.uid(uid).gid(gid);
    }
    command
}

fn chown_tree(path: &Path, owner: Option<(u32, u32)>) -> Result<(), String> {
    let Some((uid, gid)) = owner else { return Ok(()) };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| e.to_string())?.flatten() {
            chown_tree(&entry.path(), Some((uid, gid)))?;
        }
    }
    Ok(())
}

/// A certificate for the server signed by a throwaway authority; returns
/// the authority's PEM file.
fn write_certificates(data: &Path, root: &Path) -> Result<PathBuf, String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "aivault test authority");
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    let write = |path: PathBuf, text: &str, mode: u32| -> Result<(), String> {
        let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
    };
    write(data.join("server.crt"), &cert.pem(), 0o644)?;
    write(data.join("server.key"), &key.serialize_pem(), 0o600)?;
    let ca_pem = root.join("ca.pem");
    write(ca_pem.clone(), &ca.pem(), 0o644)?;
    Ok(ca_pem)
}

/// Starts a watchdog that, once this process has exited, stops the server
/// (fast shutdown) and removes its directory.
fn watch(server_pid: u32, root: &Path) -> Result<(), String> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -INT {server_pid} 2>/dev/null; \
         while kill -0 {server_pid} 2>/dev/null; do sleep 0.1; done; rm -rf '{root}'",
        me = std::process::id(),
        root = root.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("the watchdog: {e}"))
}
