//! Compiled components cached on disk by content digest, so a command does
//! not recompile an unchanged component.
//!
//! An entry is `sha256(artifact) || artifact`. Deserialising trusts the bytes
//! as native code, so an entry whose checksum does not match (a torn write, a
//! flipped bit, an edit) is deleted and rebuilt, never loaded. The directory
//! is owner-only, like the rest of the vault directory.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const CHECKSUM_LEN: usize = 32;

/// The cache directory plus the tag of the engine configuration it holds
/// artifacts for (an artifact only loads into an identical engine).
pub struct ArtifactCache {
    dir: PathBuf,
    engine_tag: String,
}

impl ArtifactCache {
    /// A cache under `dir` for artifacts of `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache { dir, engine_tag: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_tag))
    }

    /// The cached compilation of the component with `digest`, if present and
    /// intact.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = fs::read(&path).ok()?;
        let intact = bytes.len() > CHECKSUM_LEN
            && Sha256::digest(&bytes[CHECKSUM_LEN..]).as_slice() == &bytes[..CHECKSUM_LEN];
        if !intact {
            let _ = fs::remove_file(&path);
            return None;
        }
        // SAFETY: the artifact was produced by `Component::serialize` for an
        // engine with this configuration (the file name carries its tag) and
        // its checksum matches, so it is the bytes we wrote.
        match unsafe { Component::deserialize(engine, &bytes[CHECKSUM_LEN..]) } {
            Ok(component) => Some(component),
            Err(_) => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes the compilation atomically (temp file, then rename), so a
    /// concurrent reader sees the old entry or the new one, never half.
    pub fn store(&self, digest: &str, component: &Component) -> std::io::Result<()> {
        let artifact = component.serialize().map_err(std::io::Error::other)?;
        crate::fsutil::create_private_dir(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&Sha256::digest(&artifact))?;
        tmp.write_all(&artifact)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(digest)).map_err(|e| e.error)?;
        Ok(())
    }
}
