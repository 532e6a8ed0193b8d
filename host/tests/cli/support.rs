//! Running the real binary against a throwaway vault directory, its rows
//! in `vault.db` there or in a database of a throwaway PostgreSQL server
//! (the test binary decides: `crate::BACKEND`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use aivault_test_postgres::{Database, Server};
use assert_cmd::Command;

/// Where a suite's vaults keep their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh vault directory and a way to run `aivault` against it.
pub struct Vault {
    dir: tempfile::TempDir,
    output: RefCell<String>,
    database: Option<Database>,
    /// Variables every command of this vault runs with.
    env: RefCell<Vec<(String, String)>>,
}

impl Vault {
    pub fn new() -> Self {
        let database = (crate::BACKEND == Backend::Postgres).then(|| Server::shared().database());
        Vault {
            dir: tempfile::tempdir().unwrap(),
            output: RefCell::new(String::new()),
            database,
            env: RefCell::default(),
        }
    }

    /// A vault in `vault.db`, whatever the suite's backend.
    #[allow(dead_code)] // used by the shared-database suite (cli_postgres)
    pub fn on_sqlite() -> Self {
        Vault {
            dir: tempfile::tempdir().unwrap(),
            output: RefCell::default(),
            database: None,
            env: RefCell::default(),
        }
    }

    /// Another machine's view of this vault: its own directory (key files,
    /// compiled code), the same database and variables.
    #[allow(dead_code)] // used by the shared-database suite (cli_postgres)
    pub fn beside(&self) -> Self {
        let database = Some(self.database.clone().expect("only a database server is shared"));
        let env = RefCell::new(self.env.borrow().clone());
        Vault { dir: tempfile::tempdir().unwrap(), output: RefCell::new(String::new()), database, env }
    }

    /// Runs every later command of this vault with `var` set to `value`.
    #[allow(dead_code)] // used by the shared-database suite (cli_postgres)
    pub fn set_env(&self, var: &str, value: &str) {
        self.env.borrow_mut().push((var.to_string(), value.to_string()));
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The PostgreSQL database of this vault, when the suite runs on one.
    pub fn database(&self) -> Option<&Database> {
        self.database.as_ref()
    }

    /// Where the vault's rows are, for opening it with the library.
    pub fn location(&self) -> aivault::vault::Location {
        match &self.database {
            Some(db) => aivault::vault::Location::postgres(&db.url()).unwrap(),
            None => aivault::vault::Location::Sqlite(self.path().to_path_buf()),
        }
    }

    /// The vault, opened with the library (as a second process would).
    pub fn library(&self) -> aivault::vault::Vault {
        aivault::vault::Vault::open_at(self.path(), self.location(), Default::default()).unwrap()
    }

    /// `aivault <args>` with this vault, no colour, and a compiled-component
    /// cache shared by all tests (compiling is the slow part).
    pub fn std_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("aivault"));
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("AIVAULT") {
                cmd.env_remove(var);
            }
        }
        cmd.env("AIVAULT_DIR", self.path())
            .env("AIVAULT_DEV_CACHE_DIR", shared_cache_dir())
            .env("NO_COLOR", "1")
            .args(args);
        if let Some(db) = &self.database {
            cmd.env("AIVAULT_DATABASE_URL", db.url());
        }
        for (var, value) in self.env.borrow().iter() {
            cmd.env(var, value);
        }
        cmd
    }

    /// [`Vault::std_cmd`] with assert_cmd's conveniences (stdin).
    pub fn cmd(&self, args: &[&str]) -> Command {
        Command::from_std(self.std_cmd(args))
    }

    /// Runs and returns (success, stdout, stderr); remembers the output so
    /// [`Vault::all_output`] can be searched for leaked values.
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_cmd(self.cmd(args))
    }

    /// Runs a prepared command (extra env, stdin) like [`Vault::run`].
    pub fn run_cmd(&self, mut cmd: Command) -> (bool, String, String) {
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let mut log = self.output.borrow_mut();
        log.push_str(&stdout);
        log.push_str(&stderr);
        (out.status.success(), stdout, stderr)
    }

    /// Runs `aivault <args>` with `upstream`'s overrides set, so provider
    /// hosts resolve to the loopback test server.
    pub fn call(&self, upstream: &crate::upstream::Upstream, args: &[&str]) -> (bool, String, String) {
        let mut cmd = self.cmd(args);
        for (var, value) in upstream.env() {
            cmd.env(var, value);
        }
        self.run_cmd(cmd)
    }

    /// A connection to the vault's SQLite file, as anyone who can write the
    /// file has (tests tamper with it the way `sqlite3` would).
    pub fn db(&self) -> rusqlite::Connection {
        assert!(self.database.is_none(), "this test reads vault.db; use Vault::sql on both backends");
        rusqlite::Connection::open(self.path().join("vault.db")).unwrap()
    }

    /// A connection to the vault's rows on either backend, with the rights
    /// of whoever administers the database (but not the vault's key).
    pub fn sql(&self) -> Sql {
        match &self.database {
            Some(db) => Sql::Postgres(RefCell::new(db.client())),
            None => Sql::Sqlite(self.db()),
        }
    }

    /// Everything every command run through this vault printed.
    pub fn all_output(&self) -> String {
        self.output.borrow().clone()
    }

    /// Every file under the vault directory and, on PostgreSQL, of the
    /// vault's database and the server's log: raw bytes.
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.is_file() {
                    out.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut files = Vec::new();
        walk(self.path(), &mut files);
        if let Some(db) = &self.database {
            let data = db.server().data_dir();
            let oid: u32 = db
                .client()
                .query_one("SELECT oid FROM pg_database WHERE datname = current_database()", &[])
                .unwrap()
                .get(0);
            walk(&data.join("base").join(oid.to_string()), &mut files);
            walk(&data.join("pg_wal"), &mut files);
            if let Ok(log) = std::fs::read(data.parent().unwrap().join("server.log")) {
                files.push((data.parent().unwrap().join("server.log"), log));
            }
        }
        files
    }

    /// Asserts that no output and no file under the vault holds `value`.
    pub fn assert_nowhere(&self, value: &str) {
        assert!(!self.all_output().contains(value), "a command printed the value {value:?}");
        for (path, bytes) in self.all_files() {
            assert!(
                memchr::memmem::find(&bytes, value.as_bytes()).is_none(),
                "{} contains the value {value:?}",
                path.display()
            );
        }
    }

    /// The newest `limit` audit events, once `count` events of kind `event`
    /// are among them (or after 10 s): a call's outcome is recorded just
    /// after its answer has gone out, so a client can read the log first.
    pub fn events_once(&self, event: &str, count: usize, limit: u32) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let listing = self.ok(&["audit", "-v", "--limit", &limit.to_string()]);
            let events: Vec<serde_json::Value> = serde_json::from_str(&listing).unwrap();
            if events.iter().filter(|e| e["event"] == event).count() >= count
                || std::time::Instant::now() > deadline
            {
                return events;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The vault's observable state: secrets, credentials and audit, as JSON.
    pub fn snapshot(&self) -> String {
        let mut state = String::new();
        for args in [
            &["secrets", "list", "-v"][..],
            &["credential", "list", "-v"],
            &["audit", "-v", "--limit", "1000"],
        ] {
            let out = self.cmd(args).output().unwrap();
            state.push_str(&String::from_utf8(out.stdout).unwrap());
        }
        state
    }

    /// Runs a command that must fail with one clear line and change nothing.
    pub fn fails_unchanged(&self, args: &[&str]) -> String {
        let before = self.snapshot();
        let err = self.fails(args);
        assert_eq!(self.snapshot(), before, "aivault {args:?} failed but changed the vault");
        err
    }

    /// Runs, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "aivault {args:?} failed:\n{stderr}");
        stdout
    }

    /// Sets `capability`'s policy (`capability policy set`) with `flags`.
    pub fn policy(&self, capability: &str, flags: &[&str]) -> String {
        let args = ["capability", "policy", "set", "--capability", capability];
        self.ok(&[&args[..], flags].concat())
    }

    /// Runs, asserts failure with exactly one line on stderr, returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(!ok, "aivault {args:?} should have failed, printed:\n{stdout}");
        assert_eq!(stderr.lines().count(), 1, "expected one line on stderr, got:\n{stderr}");
        stderr
    }
}

/// Where every test's commands cache compiled components, by digest.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

/// Realistic values of every format the built-in providers accept; tests
/// search for them everywhere afterwards.
pub const OPENAI_KEY: &str = "sk-proj-T3stOnlyKeyAbcdefGhijklMnopqrStuvwx0123456789";
pub const OPENAI_KEY_2: &str = "sk-proj-Sec0ndT3stKeyZyxwvuTsrqpOnmlkJihgf9876543210";
pub const TRELLO_KEY: &str = "5e1f0c2b9a8d7e6f5a4b3c2d1e0f9a8b";
pub const TRELLO_TOKEN: &str =
    "ATTA7f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1C0FFEE42";
pub const GITHUB_TOKEN: &str = "ghp_T3stOnlyT0kenAbCdEfGhIjKlMnOpQrStUv12";

/// The vault's rows, reached around aivault (tests tamper with them).
pub enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres(RefCell<postgres::Client>),
}

impl Sql {
    /// Runs one statement; the rows it changed, or the database's refusal.
    pub fn execute(&self, sql: &str) -> Result<u64, String> {
        match self {
            Sql::Sqlite(conn) => conn.execute(sql, []).map(|n| n as u64).map_err(|e| e.to_string()),
            Sql::Postgres(client) => client.borrow_mut().execute(sql, &[]).map_err(|e| e.to_string()),
        }
    }

    /// Runs statements separated by semicolons.
    pub fn batch(&self, sql: &str) {
        match self {
            Sql::Sqlite(conn) => conn.execute_batch(sql).unwrap(),
            Sql::Postgres(client) => client.borrow_mut().batch_execute(sql).unwrap(),
        }
    }

    /// The text in the first column of the first row `sql` selects.
    pub fn text(&self, sql: &str) -> String {
        match self {
            Sql::Sqlite(conn) => conn.query_row(sql, [], |r| r.get(0)).unwrap(),
            Sql::Postgres(client) => client.borrow_mut().query_one(sql, &[]).unwrap().get(0),
        }
    }

    /// The first two columns, blobs, of every row `sql` selects.
    pub fn blob_pairs(&self, sql: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        match self {
            Sql::Sqlite(conn) => {
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
            }
            Sql::Postgres(client) => {
                client.borrow_mut().query(sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
            }
        }
    }

    /// Removes the triggers that keep the audit log append-only, as an
    /// attacker with the database's rights can.
    pub fn drop_audit_guards(&self) {
        match self {
            Sql::Sqlite(conn) => {
                conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;").unwrap()
            }
            Sql::Postgres(client) => client
                .borrow_mut()
                .batch_execute(
                    "DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit;",
                )
                .unwrap(),
        }
    }
}
