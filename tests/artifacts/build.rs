//! Builds every crate under `tests/components/` and exposes each component's
//! path as a constant named after it (`hostile` -> `HOSTILE`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.ancestors().nth(2).expect("tests/artifacts sits two levels down").to_path_buf();
    aivault_wasm_build::rerun_if_changed(&root, &["tests/components", "sdk", "wit"]);

    let mut names: Vec<String> = fs::read_dir(root.join("tests/components"))
        .expect("tests/components exists")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let packages: Vec<String> = names.iter().map(|n| format!("aivault-test-{n}")).collect();
    let package_refs: Vec<&str> = packages.iter().map(String::as_str).collect();
    let built = aivault_wasm_build::build_components(&root, &package_refs);

    // The third-party example, built out of tree as its author would.
    let example = root.join("examples/telegram-provider");
    println!("cargo:rerun-if-changed={}", example.join("src").display());
    println!("cargo:rerun-if-changed={}", example.join("Cargo.toml").display());
    let telegram = aivault_wasm_build::build_external(&example.join("Cargo.toml"), "telegram-provider");

    let mut consts = format!(
        "/// The third-party example provider in `examples/telegram-provider`.\npub const EXAMPLE_TELEGRAM: &str = {:?};\n",
        telegram.path.display().to_string()
    );

    // The same sources built for the frozen contract 0.1.0 (tests/legacy).
    let legacy = root.join("tests/legacy");
    println!("cargo:rerun-if-changed={}", legacy.display());
    for (dir, constant) in [("hostile", "HOSTILE_V0_1_0"), ("telegram", "TELEGRAM_V0_1_0")] {
        let package = format!("aivault-legacy-{dir}");
        let built = aivault_wasm_build::build_external(&legacy.join(dir).join("Cargo.toml"), &package);
        writeln!(
            consts,
            "/// `{dir}` built for contract 0.1.0 (`tests/legacy/{dir}`).\npub const {constant}: &str = {:?};",
            built.path.display().to_string()
        )
        .unwrap();
    }
    let mut all = String::from(
        "/// Every test component, by crate directory name.\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for (name, component) in names.iter().zip(&built) {
        let ident = name.to_uppercase().replace('-', "_");
        let path = component.path.display().to_string();
        writeln!(consts, "/// The `tests/components/{name}` component.\npub const {ident}: &str = {path:?};")
            .unwrap();
        writeln!(all, "    ({name:?}, {ident}),").unwrap();
    }
    all.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("artifacts.rs");
    fs::write(out, consts + &all).expect("write artifacts.rs");
}
