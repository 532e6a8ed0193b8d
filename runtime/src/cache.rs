//! Compiled components cached on disk by content digest, so a command does
//! not recompile an unchanged component.
//!
//! Deserialising a cache entry runs it as native code, so an entry is used
//! only if it is authenticated: it is `MAC(tag || artifact) || artifact`
//! (keyed BLAKE3, under a key derived from the cache key), where the tag
//! binds the component digest and the engine configuration (an entry moved
//! to another file name fails), and the key lives outside the cache
//! directory (see [`key`]). Cached manifests carry an HMAC-SHA256 under the
//! same cache key. Whoever can write the cache directory but not the key
//! can delete entries, never plant one: an entry that does not verify
//! (forged, copied from another component, torn, corrupt) is deleted and
//! the component recompiled.
//!
//! The directory itself must be owned by the current user and closed to
//! everyone else; otherwise it is neither read nor written and components are
//! compiled in memory.

mod key;
#[cfg(target_os = "linux")]
mod sealed;

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hmac::digest::InvalidLength;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

use super::manifest::ProviderManifest;

const MAC_LEN: usize = 32;

/// Derives the key of compiled entries' MACs from the cache key (BLAKE3's
/// `derive_key`), apart from any other use of it.
const ARTIFACT_KEY_CONTEXT: &str = "aivault 2026-11-29 compiled-component cache MAC";

/// Separates what a cached manifest's MAC covers.
const MANIFEST_CONTEXT: &[u8] = b"aivault/v1/provider-manifest";

/// The layout of a cached manifest. Bump it whenever [`ProviderManifest`]
/// changes shape, so an entry another build wrote is a miss, never a
/// misreading.
const MANIFEST_FORMAT: &str = "1";

/// A component's manifest as `describe` gave it, with the contract version.
#[derive(Serialize, Deserialize)]
struct CachedManifest {
    wit_version: String,
    manifest: ProviderManifest,
}

/// Where compiled components are cached, and the file holding the key that
/// authenticates them (which must not be inside the cache directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The cache directory; created owner-only if missing.
    pub dir: PathBuf,
    /// The key file; created (random, mode 0600) on first use.
    pub key_file: PathBuf,
}

impl CacheConfig {
    /// A cache in `dir` authenticated by the key in `key_file`.
    pub fn new(dir: PathBuf, key_file: PathBuf) -> Self {
        CacheConfig { dir, key_file }
    }

    /// A cache in `dir` whose key is the sibling file `<dir>.key`, for a
    /// cache shared outside any vault. `None` if `dir` has no final name.
    pub fn with_sibling_key(dir: PathBuf) -> Option<Self> {
        let mut name = dir.file_name()?.to_os_string();
        name.push(".key");
        let key_file = dir.with_file_name(name);
        Some(CacheConfig { dir, key_file })
    }
}

/// Why the cache cannot be used; components are then compiled in memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The directory or key file could not be created or read.
    #[error("cannot use {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// The cache path exists but is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },

    /// Someone else owns the directory or key file.
    #[error("{} is owned by uid {owner}, not by this user (uid {uid}); remove it to have a new one made", path.display())]
    NotOwned { path: PathBuf, owner: u32, uid: u32 },

    /// Group or others may use the directory or key file.
    #[error("{} has mode {mode:04o}, open to group or others; `chmod go-rwx` it", path.display())]
    TooOpen { path: PathBuf, mode: u32 },

    /// The key file holds something other than a key.
    #[error("{} does not hold a cache key; delete it to have a new one made", path.display())]
    BadKey { path: PathBuf },
}

/// An open cache: a checked directory, its key, and the tag of the engine
/// configuration it holds artifacts for (an artifact only loads into an
/// identical engine).
pub struct ArtifactCache {
    dir: PathBuf,
    key: Zeroizing<[u8; key::KEY_LEN]>,
    /// The key of compiled entries' MACs, derived from `key`.
    artifact_key: Zeroizing<[u8; 32]>,
    engine_tag: String,
}

impl ArtifactCache {
    /// Opens the cache `config` describes for artifacts of `engine`: checks
    /// (or creates) the directory and reads (or creates) the key.
    pub fn open(config: &CacheConfig, engine: &Engine) -> Result<Self, CacheError> {
        prepare_dir(&config.dir)?;
        let key = key::load_or_create(&config.key_file)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let artifact_key = Zeroizing::new(blake3::derive_key(ARTIFACT_KEY_CONTEXT, key.as_ref()));
        Ok(ArtifactCache {
            dir: config.dir.clone(),
            key,
            artifact_key,
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_tag))
    }

    fn manifest_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.manifest"))
    }

    /// The MAC of the entry for the component `digest`, its fields
    /// absorbed: the artifact goes in next. Keyed BLAKE3 rather than the
    /// manifests' HMAC-SHA256: a command that calls a provider checks its
    /// whole compiled code (most of a megabyte) first, and BLAKE3 does that
    /// in about a third of the time here.
    fn artifact_mac(&self, digest: &str) -> blake3::Hasher {
        let mut mac = blake3::Hasher::new_keyed(&self.artifact_key);
        for field in [digest.as_bytes(), self.engine_tag.as_bytes()] {
            mac.update(field);
            mac.update(b"\0");
        }
        mac
    }

    /// Whether `tag` is the MAC `mac` finished with (compared in constant time).
    fn verifies(mac: &blake3::Hasher, tag: &[u8]) -> bool {
        <[u8; MAC_LEN]>::try_from(tag).is_ok_and(|tag| mac.finalize() == blake3::Hash::from_bytes(tag))
    }

    /// The MAC of the manifest entry for the component `digest`.
    fn manifest_mac(&self, digest: &str, body: &[u8]) -> Result<Hmac<Sha256>, InvalidLength> {
        self.keyed(&[MANIFEST_CONTEXT, digest.as_bytes(), MANIFEST_FORMAT.as_bytes()], body)
    }

    /// HMAC over `fields` (each terminated, none containing a NUL, so no
    /// two lists hash the same input) then `payload`. HMAC accepts a key of
    /// any length, so this never fails in practice.
    fn keyed(&self, fields: &[&[u8]], payload: &[u8]) -> Result<Hmac<Sha256>, InvalidLength> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref())?;
        for field in fields {
            mac.update(field);
            mac.update(b"\0");
        }
        mac.update(payload);
        Ok(mac)
    }

    /// The manifest cached for the component `digest` and its contract
    /// version, if present and authentic; anything else found under its
    /// name is deleted.
    pub fn load_manifest(&self, digest: &str) -> Option<(String, ProviderManifest)> {
        let path = self.manifest_path(digest);
        let bytes = fs::read(&path).ok()?;
        let entry = (bytes.len() > MAC_LEN)
            .then(|| bytes.split_at(MAC_LEN))
            .filter(|(tag, body)| {
                self.manifest_mac(digest, body).is_ok_and(|mac| mac.verify_slice(tag).is_ok())
            })
            .and_then(|(_, body)| serde_json::from_slice::<CachedManifest>(body).ok());
        match entry {
            Some(entry) => Some((entry.wit_version, entry.manifest)),
            None => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Caches what `describe` returned for the component `digest`.
    pub fn store_manifest(
        &self,
        digest: &str,
        wit_version: &str,
        manifest: &ProviderManifest,
    ) -> io::Result<()> {
        let entry = CachedManifest { wit_version: wit_version.to_string(), manifest: manifest.clone() };
        let body = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        let tag = self.manifest_mac(digest, &body).map_err(io::Error::other)?.finalize().into_bytes();
        self.write_entry(&self.manifest_path(digest), &tag, &body)
    }

    /// Writes `tag || body` atomically (temp file, then rename), so a
    /// concurrent reader sees the old entry or the new one, never half.
    fn write_entry(&self, path: &Path, tag: &[u8], body: &[u8]) -> io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(tag)?;
        tmp.write_all(body)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The cached compilation of the component with `digest`, if present and
    /// authentic. Anything else found under its name is deleted.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let mut file = fs::File::open(&path).ok()?;
        let loaded = match self.load_sealed(engine, digest, &mut file) {
            Some(loaded) => loaded,
            None => self.load_in_memory(engine, digest, &mut file),
        };
        if loaded.is_none() {
            let _ = fs::remove_file(&path);
        }
        loaded
    }

    /// Loads the entry through a sealed memory copy that wasmtime maps
    /// (see [`sealed`]): `None` where that is unavailable, `Some(None)` if
    /// the entry is not authentic or does not load.
    #[cfg(target_os = "linux")]
    fn load_sealed(&self, engine: &Engine, digest: &str, file: &mut fs::File) -> Option<Option<Component>> {
        use io::Read as _;
        let mut tag = [0u8; MAC_LEN];
        if file.read_exact(&mut tag).is_err() {
            return Some(None);
        }
        let mut mac = self.artifact_mac(digest);
        let copy = match sealed::SealedCopy::of(file, |artifact| {
            mac.update(artifact);
        }) {
            Ok(Some(copy)) => copy,
            Ok(None) => return None,
            Err(_) => return Some(None),
        };
        if !Self::verifies(&mac, &tag) {
            return Some(None);
        }
        // SAFETY: the MAC verified, under a key only this user can read, over
        // this digest and engine tag and exactly the bytes of the copy, so
        // they are what `Component::serialize` produced for this component
        // in an engine with this configuration. The copy is a memory file of
        // this process, sealed against writing, growing and shrinking before
        // the MAC was computed over it: what wasmtime maps is what was
        // verified, whatever happens to the cache file now.
        match unsafe { Component::deserialize_file(engine, copy.path()) } {
            Ok(component) => Some(Some(component)),
            // /proc may be missing (a minimal container): load the copy's
            // bytes instead.
            Err(_) => Some(copy.bytes().ok().and_then(|bytes| deserialize_verified(engine, &bytes))),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn load_sealed(&self, _: &Engine, _: &str, _: &mut fs::File) -> Option<Option<Component>> {
        None
    }

    /// Loads the entry by reading it whole into memory.
    fn load_in_memory(&self, engine: &Engine, digest: &str, file: &mut fs::File) -> Option<Component> {
        use io::{Read as _, Seek as _};
        let mut bytes = Vec::new();
        file.rewind().ok()?;
        file.read_to_end(&mut bytes).ok()?;
        let authentic = bytes.len() > MAC_LEN && {
            let (tag, artifact) = bytes.split_at(MAC_LEN);
            Self::verifies(self.artifact_mac(digest).update(artifact), tag)
        };
        if !authentic {
            return None;
        }
        deserialize_verified(engine, &bytes[MAC_LEN..])
    }

    /// Writes the compilation.
    pub fn store(&self, digest: &str, component: &Component) -> io::Result<()> {
        let artifact = component.serialize().map_err(io::Error::other)?;
        let tag = self.artifact_mac(digest).update(&artifact).finalize();
        self.write_entry(&self.path(digest), tag.as_bytes(), &artifact)
    }
}

/// Loads an artifact whose MAC has verified, held in this process's memory.
fn deserialize_verified(engine: &Engine, artifact: &[u8]) -> Option<Component> {
    // SAFETY: the caller verified the MAC under a key only this user can
    // read, over this digest and engine tag, so these are the bytes
    // `Component::serialize` produced for this component in an engine with
    // this configuration; they are in memory, so the file changing now
    // cannot change what is loaded.
    unsafe { Component::deserialize(engine, artifact) }.ok()
}

/// Creates `dir` owner-only if it is missing, then insists it is a
/// directory owned by this user with no group or other permissions. An
/// existing directory is never loosened or tightened: one that is open to
/// others may already hold someone else's files.
fn prepare_dir(dir: &Path) -> Result<(), CacheError> {
    let io_err = |source| CacheError::Io { path: dir.to_path_buf(), source };
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(dir).map_err(io_err)?,
        Err(e) => return Err(io_err(e)),
        Ok(_) => {}
    }
    let meta = fs::metadata(dir).map_err(io_err)?;
    if !meta.is_dir() {
        return Err(CacheError::NotADirectory { path: dir.to_path_buf() });
    }
    check_owner_only(dir, &meta)
}

/// Whether `meta` (of `path`) is owned by this user with no group or other
/// permissions: anyone else who can write it could plant entries, and anyone
/// else who can read a key could forge them.
fn check_owner_only(path: &Path, meta: &fs::Metadata) -> Result<(), CacheError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = effective_uid();
        if meta.uid() != uid {
            return Err(CacheError::NotOwned { path: path.to_path_buf(), owner: meta.uid(), uid });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CacheError::TooOpen { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700. Unlike
/// [`crate::fsutil::create_private_dir`] it leaves an existing directory's
/// mode alone, so a directory someone else prepared is checked, not adopted.
fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The uid files this process creates are owned by.
#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt as _;

    // A shared cache keeps its key beside the directory, never inside it.
    #[test]
    fn sibling_key_is_outside_the_directory() {
        let config = CacheConfig::with_sibling_key(PathBuf::from("/tmp/x/component-cache/")).unwrap();
        assert_eq!(config.key_file, PathBuf::from("/tmp/x/component-cache.key"));
        assert!(!config.key_file.starts_with(&config.dir));
        assert!(CacheConfig::with_sibling_key(PathBuf::from("/")).is_none());
    }

    // A missing directory is created owner-only (0700), parents included.
    #[cfg(unix)]
    #[test]
    fn missing_directory_is_created_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache").join("components");
        prepare_dir(&dir).unwrap();
        for d in [&dir, &root.path().join("cache")] {
            assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    // A directory others can read or write is refused and left as it is.
    #[cfg(unix)]
    #[test]
    fn open_directory_is_refused_untouched() {
        let root = tempfile::tempdir().unwrap();
        for mode in [0o755, 0o770, 0o701] {
            fs::set_permissions(root.path(), fs::Permissions::from_mode(mode)).unwrap();
            let err = prepare_dir(root.path()).unwrap_err();
            assert!(matches!(err, CacheError::TooOpen { .. }), "{mode:o}: {err}");
            assert_eq!(fs::metadata(root.path()).unwrap().permissions().mode() & 0o777, mode);
        }
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o700)).unwrap();
        prepare_dir(root.path()).unwrap();
    }

    // A file where the directory should be is refused.
    #[test]
    fn file_in_place_of_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("cache");
        fs::write(&file, b"").unwrap();
        assert!(matches!(prepare_dir(&file), Err(CacheError::NotADirectory { .. })));
    }

    // The MAC binds the digest and the engine tag: the same artifact under
    // another component's name, or for another engine, does not verify.
    #[test]
    fn mac_binds_digest_and_engine() {
        let engine = Engine::default();
        let root = tempfile::tempdir().unwrap();
        let config = CacheConfig::new(root.path().join("c"), root.path().join("k"));
        let cache = ArtifactCache::open(&config, &engine).unwrap();
        let mac = |cache: &ArtifactCache, digest: &str, code: &[u8]| {
            let mut mac = cache.artifact_mac(digest);
            mac.update(code);
            mac
        };
        let tag = *mac(&cache, "aa", b"code").finalize().as_bytes();
        assert!(ArtifactCache::verifies(&mac(&cache, "aa", b"code"), &tag));
        assert!(!ArtifactCache::verifies(&mac(&cache, "bb", b"code"), &tag));
        assert!(!ArtifactCache::verifies(&mac(&cache, "aa", b"codf"), &tag));
        assert!(!ArtifactCache::verifies(&mac(&cache, "aa", b"code"), &tag[..31]));
        let other_engine = ArtifactCache { engine_tag: "0".repeat(16), ..cache };
        assert!(!ArtifactCache::verifies(&mac(&other_engine, "aa", b"code"), &tag));
    }
}
