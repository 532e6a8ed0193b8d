//! The key that authenticates cache entries: 32 random bytes, hex, in an
//! owner-only file outside the cache directory (whoever can write the cache
//! must not be able to read it). Created on first use; when two processes
//! create it at once, one wins and the other reads the winner's key.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore as _;
use zeroize::Zeroizing;

use super::{CacheError, check_owner_only, create_dir};

/// Bytes in a key.
pub const KEY_LEN: usize = 32;

/// Longest key file accepted: the hex key, a newline, some slack.
const MAX_FILE_LEN: u64 = 2 * KEY_LEN as u64 + 16;

/// The key in `path`, creating the file if it does not exist.
pub fn load_or_create(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, CacheError> {
    match read(path) {
        Err(CacheError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => create(path),
        other => other,
    }
}

/// Reads and checks an existing key file.
fn read(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, CacheError> {
    let io_err = |source| CacheError::Io { path: path.to_path_buf(), source };
    let file = fs::File::open(path).map_err(io_err)?;
    // Checked on the open file, so the file read is the file checked.
    check_owner_only(path, &file.metadata().map_err(io_err)?)?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE_LEN).read_to_string(&mut text).map_err(|_| bad_key(path))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(text.trim_end(), key.as_mut()).map_err(|_| bad_key(path))?;
    Ok(key)
}

/// Writes a new key beside `path` and links it into place. Linking fails if
/// `path` exists, so a concurrent creator's key is never replaced, and a
/// reader never sees a half-written file.
fn create(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, CacheError> {
    let io_err = |source| CacheError::Io { path: path.to_path_buf(), source };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir(parent).map_err(io_err)?;

    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    OsRng.fill_bytes(key.as_mut());
    let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_ref())));
    let tmp = temp_name(path);
    crate::fsutil::write_new_private_file(&tmp, text.as_bytes()).map_err(io_err)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(io_err(e)),
    }
}

/// A name beside `path` no other process will pick.
fn temp_name(path: &Path) -> PathBuf {
    let mut nonce = [0u8; 8];
    OsRng.fill_bytes(&mut nonce);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{}.tmp", std::process::id(), hex::encode(nonce)));
    path.with_file_name(name)
}

fn bad_key(path: &Path) -> CacheError {
    CacheError::BadKey { path: path.to_path_buf() }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The first use creates a 0600 key; later uses read the same key.
    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("cache.key");
        let first = load_or_create(&path).unwrap();
        let second = load_or_create(&path).unwrap();
        assert_eq!(*first, *second);
        assert_ne!(*first, [0u8; KEY_LEN]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    // Processes racing to create the key all end up with the winner's.
    #[test]
    fn concurrent_creators_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.key");
        let keys: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(&path).unwrap())).collect();
            handles.into_iter().map(|h| *h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(*read(&path).unwrap(), keys[0]);
    }

    // A key file holding anything but a hex key is refused, not replaced.
    #[test]
    fn garbage_key_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.key");
        crate::fsutil::write_new_private_file(&path, b"not a key\n").unwrap();
        assert!(matches!(load_or_create(&path), Err(CacheError::BadKey { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"not a key\n");
    }

    // A key others can read is no secret: refused.
    #[cfg(unix)]
    #[test]
    fn readable_key_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.key");
        load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load_or_create(&path), Err(CacheError::TooOpen { .. })));
    }
}
