//! Components built into a host binary. The host's build script compiles
//! each provider crate to a component and describes it with
//! [`describe_for_embedding`]; the binary then carries the bytes, their
//! digest and the manifest, so no command compiles a built-in only to learn
//! what it declares (the code is compiled when it is first called).

use std::path::{Path, PathBuf};

use crate::{Origin, PluginError, Runtime, SandboxLimits};

/// A component compiled from `providers/<name>` when the host was built.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinComponent {
    /// The crate directory name, e.g. `openai`.
    pub name: &'static str,
    /// The provider id its manifest declares (so a look-up by id need not
    /// decode every manifest).
    pub id: &'static str,
    /// The vault secret names its manifest declares (so matching a name to
    /// its provider need not decode every manifest).
    pub secrets: &'static [&'static str],
    /// The component's bytes.
    pub bytes: &'static [u8],
    /// SHA-256 of `bytes`, hex, taken at build time.
    pub digest: &'static str,
    /// The contract version the component exports.
    pub wit_version: &'static str,
    /// The manifest its `describe` returned at build time, encoded with
    /// postcard (a tenth of JSON's parsing time, for every command).
    pub manifest: &'static [u8],
}

/// What `describe` returned for one component, in the form a build script
/// embeds.
#[derive(Debug)]
pub struct Described {
    /// The provider id its manifest declares.
    pub id: String,
    /// The vault secret names its manifest declares.
    pub secrets: Vec<String>,
    /// The contract version the component exports.
    pub wit_version: String,
    /// The validated manifest, encoded as [`BuiltinComponent::manifest`].
    pub manifest: Vec<u8>,
}

/// Compiles and describes each component file of `paths` (in memory, no
/// cache), split over every core; the results in the order of `paths`.
/// The same checks as loading a component at run time apply: a component
/// this runtime would refuse fails the build.
pub fn describe_for_embedding(paths: &[PathBuf]) -> Result<Vec<Described>, PluginError> {
    let runtime = Runtime::new(SandboxLimits::default(), None)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = paths.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                let runtime = &runtime;
                scope.spawn(move || part.iter().map(|p| describe(runtime, p)).collect::<Vec<_>>())
            })
            .collect();
        let mut described = Vec::with_capacity(paths.len());
        for worker in workers {
            described.extend(worker.join().expect("a thread describing components panicked"));
        }
        described.into_iter().collect()
    })
}

fn describe(runtime: &Runtime, path: &Path) -> Result<Described, PluginError> {
    let origin = Origin::File(path.to_path_buf());
    let bytes = std::fs::read(path)
        .map_err(|e| PluginError::Load { origin: origin.clone(), reason: e.to_string() })?;
    let plugin = runtime.load_fresh(origin.clone(), &bytes)?;
    let manifest = postcard::to_allocvec(plugin.manifest())
        .map_err(|e| PluginError::InvalidManifest { origin, reason: e.to_string() })?;
    let secrets = plugin.manifest().vault_secrets.iter().map(|s| s.name.clone()).collect();
    Ok(Described {
        id: plugin.id().to_string(),
        secrets,
        wit_version: plugin.wit_version().to_string(),
        manifest,
    })
}
