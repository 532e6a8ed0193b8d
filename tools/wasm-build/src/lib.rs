//! Compiles workspace crates into WebAssembly components from a build script.
//!
//! The host embeds the built-in providers and the tests load hostile fixtures;
//! both are ordinary workspace crates built for `wasm32-wasip2` by a nested
//! `cargo build`, the way wasmtime builds its own test programs. The nested
//! build uses a target directory of its own so it never waits on the outer
//! build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every component is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A component built from a workspace package.
#[derive(Debug, Clone)]
pub struct Built {
    /// The package name, e.g. `aivault-provider-openai`.
    pub package: String,
    /// Where the `.wasm` component was written.
    pub path: PathBuf,
}

/// Builds `packages` (in release mode) from the workspace rooted at
/// `workspace_root` and returns where each component landed. Panics with an
/// actionable message on failure: this runs only inside build scripts.
pub fn build_components(workspace_root: &Path, packages: &[&str]) -> Vec<Built> {
    let mut args: Vec<String> = Vec::new();
    for package in packages {
        args.extend(["-p".to_string(), package.to_string()]);
    }
    let target_dir = run_cargo_build(workspace_root, &args, &format!("{packages:?}"));
    packages.iter().map(|package| built(&target_dir, package)).collect()
}

/// Builds the crate at `manifest` that is not part of the workspace (its own
/// `[workspace]` and lock file), like a third party's provider.
pub fn build_external(manifest: &Path, package: &str) -> Built {
    let dir = manifest.parent().expect("a manifest sits in a directory");
    let args = vec!["--locked".to_string(), "--manifest-path".to_string(), manifest.display().to_string()];
    let target_dir = run_cargo_build(dir, &args, package);
    built(&target_dir, package)
}

fn built(target_dir: &Path, package: &str) -> Built {
    let file = format!("{}.wasm", package.replace('-', "_"));
    let path = target_dir.join(TARGET).join("release").join(file);
    assert!(path.exists(), "cargo built {package} but {} is missing", path.display());
    Built { package: package.to_string(), path }
}

/// Runs `cargo build --release --target wasm32-wasip2 <args>` in `dir` with
/// the host build's flags removed; returns the target directory used.
fn run_cargo_build(dir: &Path, args: &[String], what: &str) -> PathBuf {
    ensure_target_installed();
    let target_dir = guest_target_dir();
    let mut cmd = tool("cargo", "CARGO");
    cmd.current_dir(dir)
        .args(["build", "--release", "--quiet", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .args(args);
    // Flags meant for the host build (coverage, clippy, sanitizers, profile
    // overrides) must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        if var.to_string_lossy().starts_with("CARGO_PROFILE_") {
            cmd.env_remove(var);
        }
    }
    // Built for size: wasmtime compiles the code again anyway, and a
    // smaller component is less to copy, authenticate and map at every
    // one-shot command's load.
    cmd.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s");
    let output = cmd.output().unwrap_or_else(|e| panic!("could not run cargo to build {what}: {e}"));
    if !output.status.success() {
        panic!(
            "building the WebAssembly component(s) {what} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    target_dir
}

/// Tells cargo to rerun the build script when anything under `dirs` (and the
/// lock file) changes.
pub fn rerun_if_changed(workspace_root: &Path, dirs: &[&str]) {
    for dir in dirs.iter().chain(&["Cargo.lock", "Cargo.toml"]) {
        println!("cargo:rerun-if-changed={}", workspace_root.join(dir).display());
    }
}

/// `<target>/wasm-guests` next to the outer build's profile directories, so
/// debug and release host builds share one guest build.
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let target_root = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(|build| build.parent())
        .and_then(|profile| profile.parent());
    match target_root {
        Some(root) => root.join("wasm-guests"),
        None => out_dir.join("wasm-guests"),
    }
}

/// The environment variable that names the toolchain guests are built with,
/// when it is not the host build's own: `scripts/fuzz` builds the host with
/// nightly, which need not have the WebAssembly target.
pub const GUEST_TOOLCHAIN_VAR: &str = "AIVAULT_GUEST_TOOLCHAIN";

/// `name` (cargo or rustc) of the guest toolchain: the host build's own
/// (from `var`), or `rustup run <toolchain> <name>` when one is named.
fn tool(name: &str, var: &str) -> Command {
    match env::var(GUEST_TOOLCHAIN_VAR) {
        Ok(toolchain) if !toolchain.is_empty() => {
            println!("cargo:rerun-if-env-changed={GUEST_TOOLCHAIN_VAR}");
            let mut cmd = Command::new("rustup");
            cmd.args(["run", &toolchain, name]);
            for var in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC", "RUSTC_BOOTSTRAP"] {
                cmd.env_remove(var);
            }
            cmd
        }
        _ => Command::new(env::var_os(var).unwrap_or_else(|| name.into())),
    }
}

fn ensure_target_installed() {
    let libdir = tool("rustc", "RUSTC")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if !libdir.is_some_and(|dir| dir.exists()) {
        panic!(
            "the Rust target {TARGET} is not installed; run `rustup toolchain install` in the \
             repository root (rust-toolchain.toml lists it) or `rustup target add {TARGET}`"
        );
    }
}
