//! Running the real binary against a throwaway vault directory.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A fresh vault directory and a way to run `aivault` against it.
pub struct Vault {
    dir: tempfile::TempDir,
    output: RefCell<String>,
}

impl Vault {
    pub fn new() -> Self {
        Vault { dir: tempfile::tempdir().unwrap(), output: RefCell::new(String::new()) }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
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

    /// A connection to the vault's database, as anyone who can write the
    /// file has (tests tamper with it the way `sqlite3` would).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("vault.db")).unwrap()
    }

    /// Everything every command run through this vault printed.
    pub fn all_output(&self) -> String {
        self.output.borrow().clone()
    }

    /// Every file under the vault directory, raw bytes.
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
        files
    }

    /// Asserts that no output and no file under the vault holds `value`.
    pub fn assert_nowhere(&self, value: &str) {
        assert!(!self.all_output().contains(value), "a command printed the value {value:?}");
        for (path, bytes) in self.all_files() {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{} contains the value {value:?}",
                path.display()
            );
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
