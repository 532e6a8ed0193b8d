//! The compiled-code cache: only entries authenticated under the key outside
//! the cache directory are ever deserialised (loading one runs it as native
//! code), and a directory others could write is not used at all.

use std::fs;
use std::path::{Path, PathBuf};

use aivault::plugins::{CacheConfig, Origin, Runtime, SandboxLimits, builtin_components};
use aivault_test_artifacts as artifacts;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::support::cache_in;

fn openai_bytes() -> &'static [u8] {
    builtin_components().iter().find(|c| c.name == "openai").unwrap().bytes
}

/// Loads openai from its compiled code (cached or not) and calls its
/// `describe`, whatever manifest the cache holds: what code ran shows in
/// the id it reports.
fn load_openai(runtime: &Runtime) -> String {
    runtime.load_fresh(Origin::BuiltIn("openai"), openai_bytes()).unwrap().id().to_string()
}

/// The one compiled-code entry whose name starts with `digest`.
fn entry_of(dir: &Path, digest: &str) -> PathBuf {
    entry_with(dir, digest, ".cwasm")
}

/// The one cache entry named `<digest>…<suffix>`.
fn entry_with(dir: &Path, digest: &str, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(digest) && name.ends_with(suffix)
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// An entry in the current format: the keyed BLAKE3 MAC (over the same
/// fields the runtime binds, under the key it derives from `key`), then the
/// artifact.
fn mac_entry(key: &[u8], digest: &str, engine_tag: &str, artifact: &[u8]) -> Vec<u8> {
    let mac_key = blake3::derive_key("aivault 2026-11-29 compiled-component cache MAC", key);
    let mut mac = blake3::Hasher::new_keyed(&mac_key);
    for field in [digest.as_bytes(), engine_tag.as_bytes()] {
        mac.update(field);
        mac.update(b"\0");
    }
    mac.update(artifact);
    let mut entry = mac.finalize().as_bytes().to_vec();
    entry.extend_from_slice(artifact);
    entry
}

/// An entry in the previous format: HMAC-SHA256 under `key` itself.
fn hmac_entry(key: &[u8], digest: &str, engine_tag: &str, artifact: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for field in [b"aivault/v1/compiled-component".as_slice(), digest.as_bytes(), engine_tag.as_bytes()] {
        mac.update(field);
        mac.update(b"\0");
    }
    mac.update(artifact);
    let mut entry = mac.finalize().into_bytes().to_vec();
    entry.extend_from_slice(artifact);
    entry
}

// The compiled code of another component, planted under the openai
// built-in's cache name in a self-consistent form (old checksum format, the
// previous MAC format even under this cache's key, or MACed with any key
// but this cache's), is discarded and rebuilt: the provider loaded is still
// openai.
#[test]
fn forged_entry_is_ignored_and_replaced() {
    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache.clone())).unwrap();
    assert!(runtime.cache_refused().is_none());

    let openai_digest = hex::encode(Sha256::digest(openai_bytes()));
    assert_eq!(load_openai(&runtime), "openai");
    let target = entry_of(&cache.dir, &openai_digest);
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let engine_tag = name.strip_prefix(&format!("{openai_digest}-")).unwrap().strip_suffix(".cwasm").unwrap();

    // The hostile component's genuine compiled code, taken from its own entry.
    let hostile = fs::read(artifacts::HOSTILE).unwrap();
    let hostile_digest =
        runtime.load_fresh(Origin::File("h.wasm".into()), &hostile).unwrap().digest().to_string();
    let hostile_artifact = fs::read(entry_of(&cache.dir, &hostile_digest)).unwrap()[32..].to_vec();

    let key = hex::decode(fs::read_to_string(&cache.key_file).unwrap().trim()).unwrap();
    let mut old_format = Sha256::digest(&hostile_artifact).to_vec();
    old_format.extend_from_slice(&hostile_artifact);
    let forgeries = [
        ("old checksum format", old_format),
        ("MAC under another key", mac_entry(&[7u8; 32], &openai_digest, engine_tag, &hostile_artifact)),
        ("previous format (HMAC-SHA256)", hmac_entry(&key, &openai_digest, engine_tag, &hostile_artifact)),
        ("truncated MAC", mac_entry(&key, &openai_digest, engine_tag, &hostile_artifact)[..20].to_vec()),
        ("hostile's own authentic entry, renamed", fs::read(entry_of(&cache.dir, &hostile_digest)).unwrap()),
    ];
    for (what, forged) in forgeries {
        fs::write(&target, &forged).unwrap();
        assert_eq!(load_openai(&runtime), "openai", "{what} was loaded");
        let rewritten = fs::read(&target).unwrap();
        assert_ne!(rewritten, forged, "{what} was kept");
        assert_ne!(rewritten[32..], hostile_artifact[..], "{what}: the hostile code is still there");
        let authentic = mac_entry(&key, &openai_digest, engine_tag, &rewritten[32..]);
        assert_eq!(rewritten, authentic, "{what}: the rebuilt entry is not authentic");
    }

    // Control: the same forgery under this cache's own key is taken (the key
    // is what stands between the cache directory and native code), so the
    // refusals above are the MAC's doing, not a format mismatch.
    fs::write(&target, mac_entry(&key, &openai_digest, engine_tag, &hostile_artifact)).unwrap();
    let fresh = Runtime::new(SandboxLimits::default(), Some(cache)).unwrap();
    assert_eq!(load_openai(&fresh), "hostile");
}

// A corrupted cache entry is detected, discarded and rebuilt, never loaded.
#[test]
fn corrupted_cache_entry_is_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    let bytes = fs::read(artifacts::HOSTILE).unwrap();
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache.clone())).unwrap();
    let digest = runtime.load_fresh(Origin::File("h.wasm".into()), &bytes).unwrap().digest().to_string();
    let entry = entry_of(&cache.dir, &digest);

    let mut cached = fs::read(&entry).unwrap();
    let middle = cached.len() / 2;
    cached[middle] ^= 0xff;
    fs::write(&entry, &cached).unwrap();

    let reloaded = runtime.load_fresh(Origin::File("h.wasm".into()), &bytes).unwrap();
    assert_eq!(reloaded.manifest().id, "hostile");
    assert_ne!(fs::read(&entry).unwrap(), cached, "the corrupt entry was rewritten");
}

/// Loads openai with the cache in `dir` (which must refuse it) and checks the
/// directory was neither read nor written: a planted entry stays, and
/// nothing is added. Returns why the cache was refused.
fn assert_cache_unused(root: &Path, dir: &Path) -> String {
    // Learn the entry's name from a good cache (same engine, same name).
    let good = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache_in(good.path()))).unwrap();
    load_openai(&runtime);
    let digest = hex::encode(Sha256::digest(openai_bytes()));
    let name = entry_of(&good.path().join("components"), &digest).file_name().unwrap().to_owned();
    let planted = dir.join(name);
    fs::write(&planted, b"planted by someone else").unwrap();

    let config = CacheConfig::new(dir.to_path_buf(), root.join("cache.key"));
    let runtime = Runtime::new(SandboxLimits::default(), Some(config)).unwrap();
    let why = runtime.cache_refused().expect("the cache was refused").to_string();
    assert_eq!(load_openai(&runtime), "openai");
    assert_eq!(fs::read(&planted).unwrap(), b"planted by someone else", "the entry was touched");
    assert_eq!(fs::read_dir(dir).unwrap().count(), 1, "something was written");
    assert!(!root.join("cache.key").exists(), "a key was made for a refused cache");
    why
}

// A cache directory group or others may use (0755) is not used at all, and
// its mode is left as the owner set it.
#[cfg(unix)]
#[test]
fn open_cache_directory_is_not_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("components");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let why = assert_cache_unused(root.path(), &dir);
    assert!(why.contains("mode 0755") && why.contains("components"), "{why}");
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o755);
}

// A cache directory owned by another user is not used at all. (Giving a
// directory away needs root; run as anyone else, this test skips.)
#[cfg(unix)]
#[test]
fn foreign_cache_directory_is_not_used() {
    use std::os::unix::fs::MetadataExt as _;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("components");
    fs::create_dir(&dir).unwrap();
    let me = fs::metadata(root.path()).unwrap().uid();
    if me != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    std::os::unix::fs::chown(&dir, Some(1), None).unwrap();
    let why = assert_cache_unused(root.path(), &dir);
    assert!(why.contains("owned by uid 1"), "{why}");
}

// Once described, a component loads from its cached manifest without being
// compiled; its code is compiled at its first call.
#[test]
fn a_described_component_loads_without_compiling() {
    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache.clone())).unwrap();
    let bytes = fs::read(artifacts::HOSTILE).unwrap();
    let digest = runtime.load(Origin::File("h.wasm".into()), &bytes).unwrap().digest().to_string();
    fs::remove_file(entry_of(&cache.dir, &digest)).unwrap();

    let plugin = runtime.load(Origin::File("h.wasm".into()), &bytes).unwrap();
    assert_eq!(plugin.manifest().id, "hostile");
    let compiled = |dir: &Path| {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".cwasm"))
            .count()
    };
    assert_eq!(compiled(&cache.dir), 0, "loading compiled the component");
    plugin.validate_secret("HOSTILE_KEY", "any-value-at-all").unwrap();
    assert_eq!(compiled(&cache.dir), 1, "the first call did not compile it");
}

// A cached manifest is used only if it is authentic: edited, MACed under
// another key, or another component's entry renamed, it is discarded and
// the component described again.
#[test]
fn forged_manifest_is_ignored_and_replaced() {
    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    let runtime = Runtime::new(SandboxLimits::default(), Some(cache.clone())).unwrap();
    let hostile = fs::read(artifacts::HOSTILE).unwrap();
    let hostile_digest = runtime.load(Origin::File("h.wasm".into()), &hostile).unwrap().digest().to_string();
    let openai = runtime.load(Origin::BuiltIn("openai"), openai_bytes()).unwrap();
    let target = entry_with(&cache.dir, openai.digest(), ".manifest");
    let genuine = fs::read(&target).unwrap();
    let hostile_entry = fs::read(entry_with(&cache.dir, &hostile_digest, ".manifest")).unwrap();

    // The manifest with a host added, re-MACed under a key that is not this cache's.
    let body =
        String::from_utf8(genuine[32..].to_vec()).unwrap().replace("api.openai.com", "evil.example.com");
    let mut other_key = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
    for field in [b"aivault/v1/provider-manifest".as_slice(), openai.digest().as_bytes(), b"1"] {
        other_key.update(field);
        other_key.update(b"\0");
    }
    other_key.update(body.as_bytes());
    let mut wrong_key = other_key.finalize().into_bytes().to_vec();
    wrong_key.extend_from_slice(body.as_bytes());
    let mut edited = genuine.clone();
    let at = genuine.len() - 10;
    edited[at] ^= 1;
    for (what, forged) in
        [("edited", edited), ("MAC under another key", wrong_key), ("hostile's, renamed", hostile_entry)]
    {
        fs::write(&target, &forged).unwrap();
        let loaded = runtime.load(Origin::BuiltIn("openai"), openai_bytes()).unwrap();
        assert_eq!(loaded.manifest(), openai.manifest(), "{what} was used");
        assert_eq!(fs::read(&target).unwrap(), genuine, "{what} was not replaced by the genuine entry");
    }
}
