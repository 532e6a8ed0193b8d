//! Reads which contract version a component implements before compiling it,
//! so an old or future component gets a message naming both versions rather
//! than a link error.

use wasmparser::{Parser, Payload};

use super::{Origin, PluginError};

/// Contract versions this host can run, newest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

const INTERFACE: &str = "aivault:provider/provider";

/// The `aivault:provider` version the component exports.
pub fn exported_wit_version(origin: &Origin, bytes: &[u8]) -> Result<String, PluginError> {
    let not_a_component = |reason: String| PluginError::NotAComponent { origin: origin.clone(), reason };
    if !wasmparser::Parser::is_component(bytes) {
        let reason = if wasmparser::Parser::is_core_wasm(bytes) {
            "it is a core WebAssembly module; build it for wasm32-wasip2 (a component)".to_string()
        } else {
            "the file does not start with the WebAssembly header".to_string()
        };
        return Err(not_a_component(reason));
    }
    // Only the outermost component's exports count; nested modules and
    // components have their own sections, tracked by depth.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| not_a_component(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    let export = export.map_err(|e| not_a_component(e.to_string()))?;
                    if let Some(version) =
                        export.name.0.strip_prefix(INTERFACE).and_then(|rest| rest.strip_prefix('@'))
                    {
                        return Ok(version.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Err(PluginError::NotAProvider { origin: origin.clone() })
}

/// Refuses versions this host cannot run.
pub fn check_supported(origin: &Origin, version: &str) -> Result<(), PluginError> {
    if SUPPORTED_WIT_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(PluginError::UnsupportedWitVersion {
            origin: origin.clone(),
            found: version.to_string(),
            supported: SUPPORTED_WIT_VERSIONS.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::BuiltIn("test")
    }

    // Random bytes are refused before wasmtime ever sees them.
    #[test]
    fn garbage_is_not_a_component() {
        let err = exported_wit_version(&origin(), b"definitely not wasm").unwrap_err();
        assert!(err.to_string().contains("does not start with the WebAssembly header"), "{err}");
    }

    // A core module gets a hint to build a component instead.
    #[test]
    fn core_module_gets_a_hint() {
        let module = b"\0asm\x01\0\0\0";
        let err = exported_wit_version(&origin(), module).unwrap_err();
        assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
    }

    // The refusal names both the component's version and ours.
    #[test]
    fn unsupported_version_names_both() {
        let err = check_supported(&origin(), "9.0.0").unwrap_err().to_string();
        assert!(err.contains("9.0.0") && err.contains("0.1.0"), "{err}");
    }
}
