//! A cache entry's artifact copied into a private, sealed memory file, so
//! wasmtime can map it instead of copying it (Linux only).
//!
//! Reading an entry into a heap buffer, authenticating it, then having
//! wasmtime copy it again into memory of its own cost two page faults for
//! every page of the artifact: most of a one-shot `invoke`'s load of a
//! cached provider. Here the artifact is streamed through a small buffer
//! into an anonymous memory file (`memfd_create`), the MAC is computed over
//! exactly the bytes written, and the file is then sealed: from that moment
//! nobody, this process included, can change, grow or shrink it. wasmtime
//! maps that file privately; its pages come from the kernel's copy, not from
//! faults on fresh heap memory.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _};
use std::path::PathBuf;

/// Big enough that the syscalls cost little, small enough to stay in cache.
const CHUNK: usize = 64 * 1024;

/// An artifact in a sealed memory file.
pub(super) struct SealedCopy {
    file: File,
}

impl SealedCopy {
    /// Copies the rest of `source` into a new memory file, passing every
    /// piece to `absorb` as it is written, then seals the copy. `None` if
    /// memory files or seals are unavailable here (the caller falls back to
    /// reading into memory).
    pub(super) fn of(source: &mut File, mut absorb: impl FnMut(&[u8])) -> io::Result<Option<Self>> {
        let Some(mut file) = memory_file()? else { return Ok(None) };
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            absorb(&buffer[..read]);
            file.write_all(&buffer[..read])?;
        }
        let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor this function owns; no memory is passed.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Ok(None);
        }
        Ok(Some(SealedCopy { file }))
    }

    /// A path that opens this same memory file (for wasmtime, which maps
    /// what it opens by path).
    pub(super) fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// The whole artifact, read back into memory (when mapping it failed).
    pub(super) fn bytes(&self) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        let len = usize::try_from(self.file.metadata()?.len()).map_err(io::Error::other)?;
        let mut bytes = vec![0u8; len];
        self.file.read_exact_at(&mut bytes, 0)?;
        Ok(bytes)
    }
}

/// A new anonymous memory file that accepts seals, or `None` where the
/// kernel offers none.
fn memory_file() -> io::Result<Option<File>> {
    const NAME: &CStr = c"aivault-component";
    // SAFETY: NAME is a valid NUL-terminated string; the flags are plain bits.
    let fd = unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENOSYS | libc::EINVAL | libc::EPERM) => Ok(None),
            _ => Err(error),
        };
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nothing else.
    Ok(Some(unsafe { File::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek as _, SeekFrom};

    // The copy holds exactly what was absorbed, and nothing can change it.
    #[test]
    fn the_copy_is_what_was_hashed_and_cannot_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let mut source = File::open(&path).unwrap();
        source.seek(SeekFrom::Start(10)).unwrap();
        let mut absorbed = Vec::new();
        let copy = SealedCopy::of(&mut source, |piece| absorbed.extend_from_slice(piece)).unwrap().unwrap();
        assert_eq!(absorbed, content[10..]);
        assert_eq!(copy.bytes().unwrap(), content[10..]);
        assert_eq!(std::fs::read(copy.path()).unwrap(), content[10..]);

        let mut reopened = std::fs::OpenOptions::new().write(true).open(copy.path()).unwrap();
        assert!(reopened.write_all(b"planted").is_err(), "a sealed copy took a write");
        assert!(reopened.set_len(5).is_err(), "a sealed copy was truncated");
        assert_eq!(copy.bytes().unwrap(), content[10..]);
    }
}
