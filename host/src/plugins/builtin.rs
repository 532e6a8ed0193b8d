//! The provider components embedded at build time by `host/build.rs`, each
//! with the manifest its `describe` returned then.

use aivault_runtime::BuiltinComponent;

static BUILTIN: &[BuiltinComponent] = include!(concat!(env!("OUT_DIR"), "/builtin_providers.rs"));

/// Every built-in provider component.
pub fn builtin_components() -> &'static [BuiltinComponent] {
    BUILTIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{Runtime, SandboxLimits};

    // What is recorded beside each manifest, to answer look-ups without
    // decoding it, says what the manifest says; and a loaded built-in
    // answers the same either way.
    #[test]
    fn recorded_ids_and_secret_names_match_the_manifests() {
        let runtime = Runtime::new(SandboxLimits::default(), None).unwrap();
        for component in builtin_components() {
            let plugin = runtime.load_builtin(component).unwrap();
            let manifest = plugin.manifest();
            assert_eq!(component.id, manifest.id, "{}", component.name);
            let declared: Vec<&str> = manifest.vault_secrets.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(component.secrets, declared, "{}", component.name);
            for name in &declared {
                assert!(plugin.declares_secret(name), "{}: {name}", component.name);
            }
            assert!(!plugin.declares_secret("NOT_A_SECRET_ANYONE_DECLARES"));
        }
    }
}
