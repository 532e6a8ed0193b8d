//! Compiles every crate under `providers/` into a component, describes it
//! (with the same runtime and checks the binary uses), and embeds the bytes,
//! their digest and the manifest, so an installed `aivault` binary is
//! self-contained and never compiles a built-in only to list it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ sits in the workspace root").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    aivault_wasm_build::rerun_if_changed(&root, &["providers", "sdk", "wit", "runtime"]);

    let mut names: Vec<String> = fs::read_dir(root.join("providers"))
        .expect("providers/ exists")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let packages: Vec<String> = names.iter().map(|n| format!("aivault-provider-{n}")).collect();
    let package_refs: Vec<&str> = packages.iter().map(String::as_str).collect();
    let built = aivault_wasm_build::build_components(&root, &package_refs);

    let mut copies = Vec::with_capacity(built.len());
    for (name, component) in names.iter().zip(&built) {
        let dest = out_dir.join(format!("{name}.wasm"));
        fs::copy(&component.path, &dest).expect("copy component into OUT_DIR");
        copies.push(dest);
    }
    let described = aivault_runtime::describe_for_embedding(&copies)
        .unwrap_or_else(|e| panic!("a built-in provider does not load: {e}"));

    // The components and their manifests are statics of their own, kept in
    // a section apart from the table (on Linux): loading the registry reads
    // every entry's id and digest, and with each entry's strings beside its
    // component's bytes that was a page fault per built-in, each mapping 64
    // KiB around it: 3 of a one-shot `invoke`'s 19 MiB peak (BENCHMARKS.md).
    let mut blobs = String::new();
    let mut table = String::from("&[\n");
    for (i, ((name, dest), described)) in names.iter().zip(&copies).zip(&described).enumerate() {
        let bytes = fs::read(dest).expect("read the copied component");
        let digest = hex_sha256(&bytes);
        let manifest = out_dir.join(format!("{name}.manifest.postcard"));
        fs::write(&manifest, &described.manifest).expect("write the manifest into OUT_DIR");
        for (kind, path, len) in
            [("CODE", dest, bytes.len()), ("MANIFEST", &manifest, described.manifest.len())]
        {
            writeln!(
                blobs,
                "    #[cfg_attr(target_os = \"linux\", unsafe(link_section = \".aivault.components\"))]\n    \
                 static {kind}_{i}: [u8; {len}] = *include_bytes!({:?});",
                path.display().to_string(),
            )
            .expect("write to String");
        }
        writeln!(
            table,
            "    BuiltinComponent {{ name: {name:?}, id: {:?}, secrets: &{:?}, bytes: &CODE_{i}, digest: {digest:?}, \
             wit_version: {:?}, manifest: &MANIFEST_{i} }},",
            described.id, described.secrets, described.wit_version,
        )
        .expect("write to String");
    }
    table.push(']');
    fs::write(out_dir.join("builtin_providers.rs"), format!("{{\n{blobs}\n{table}\n}}"))
        .expect("write builtin table");
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
