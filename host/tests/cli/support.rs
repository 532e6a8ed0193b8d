//! Running the real binary against a throwaway vault directory.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A fresh vault directory and a way to run `aivault` against it.
pub struct Vault {
    dir: tempfile::TempDir,
}

impl Vault {
    pub fn new() -> Self {
        Vault { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `aivault <args>` with this vault, no colour, and a compiled-component
    /// cache shared by all tests (compiling is the slow part).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("aivault").unwrap();
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("AIVAULT_") {
                cmd.env_remove(var);
            }
        }
        cmd.env("AIVAULT_DIR", self.path())
            .env("AIVAULT_DEV_CACHE_DIR", shared_cache_dir())
            .env("NO_COLOR", "1")
            .args(args);
        cmd
    }

    /// Runs and returns (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd(args).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    }

    /// Runs, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "aivault {args:?} failed:\n{stderr}");
        stdout
    }

    /// Runs, asserts failure with exactly one line on stderr, returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, _, stderr) = self.run(args);
        assert!(!ok, "aivault {args:?} should have failed");
        assert_eq!(stderr.lines().count(), 1, "expected one line on stderr, got:\n{stderr}");
        stderr
    }
}

fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}
