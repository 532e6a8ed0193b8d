//! Manifest validation, for `describe` answers in both contract versions
//! (0.1.0 and 0.2.0): never a panic, and a manifest that passes keeps
//! every promise the host relies on.
#![no_main]

use aivault_runtime::fuzzing::{manifest_v0_1_0, manifest_v0_2_0};
use aivault_runtime::{ProviderManifest, check_path_prefix};
use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fn check(manifest: &ProviderManifest) {
    if manifest.validate().is_err() {
        return;
    }
    let prefix = format!("{}/", manifest.id);
    for cap in &manifest.capabilities {
        assert!(cap.id.starts_with(&prefix), "{}", cap.id);
        assert!(!cap.methods.is_empty() && !cap.path_prefixes.is_empty() && !cap.hosts.is_empty());
        assert!(cap.path_prefixes.iter().all(|p| check_path_prefix(p).is_ok()));
        assert!(cap.hosts.iter().all(|h| manifest.hosts.iter().any(|d| h.within(d))), "{}", cap.id);
        // Served by a kind that may reach each of its hosts.
        let kinds: Vec<_> = manifest.kinds_for_capability(&cap.id).collect();
        assert!(!kinds.is_empty(), "{} is served by no kind", cap.id);
        for kind in kinds {
            assert!(cap.hosts.iter().all(|h| kind.hosts.iter().any(|k| h.within(k))));
        }
    }
    for kind in &manifest.credential_kinds {
        assert!(kind.secrets.iter().all(|s| manifest.vault_secret(s).is_some()));
    }
    // What is cached beside compiled code reads back the same.
    let again = serde_roundtrip(manifest);
    assert_eq!(&again, manifest);
}

fn serde_roundtrip(manifest: &ProviderManifest) -> ProviderManifest {
    let json = serde_json::to_vec(manifest).expect("serialises");
    serde_json::from_slice(&json).expect("deserialises")
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(version) = u.arbitrary::<bool>() else { return };
    let read = if version { manifest_v0_2_0(&mut u) } else { manifest_v0_1_0(&mut u) };
    if let Ok(Ok(manifest)) = read {
        check(&manifest);
    }
});
