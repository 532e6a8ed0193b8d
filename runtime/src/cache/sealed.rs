//! A cache entry's artifact copied into a private, sealed memory file, so
//! wasmtime can map it instead of copying it (Linux only).
//!
//! Reading an entry into a heap buffer, authenticating it, then having
//! wasmtime copy it again into memory of its own cost two page faults for
//! every page of the artifact: most of a one-shot `invoke`'s load of a
//! cached provider. Here the kernel copies the artifact into an anonymous
//! memory file (`memfd_create`, filled by `sendfile`: no pass through this
//! process's memory), the file is sealed, so that from that moment nobody,
//! this process included, can change, grow or shrink it, and only then is
//! the MAC computed, over the sealed copy itself. wasmtime maps that file
//! privately; its pages come from the kernel's copy, not from faults on
//! fresh heap memory.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd as _};
use std::path::PathBuf;

/// An artifact in a sealed memory file.
pub(super) struct SealedCopy {
    file: File,
}

impl SealedCopy {
    /// Copies the rest of `source` into a new memory file, seals the copy,
    /// then passes its whole content to `absorb`. `None` if memory files or
    /// seals are unavailable here (the caller falls back to reading into
    /// memory).
    pub(super) fn of(
        source: &mut (impl Read + AsRawFd),
        absorb: impl FnOnce(&[u8]),
    ) -> io::Result<Option<Self>> {
        let Some(mut file) = memory_file()? else { return Ok(None) };
        if !copied_in_kernel(source, &file)? {
            io::copy(source, &mut file)?;
        }
        let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor this function owns; no memory is passed.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Ok(None);
        }
        let copy = SealedCopy { file };
        copy.with_mapped(absorb)?;
        Ok(Some(copy))
    }

    /// Runs `read` over the copy's content, mapped read-only.
    fn with_mapped(&self, read: impl FnOnce(&[u8])) -> io::Result<()> {
        let len = usize::try_from(self.file.metadata()?.len()).map_err(io::Error::other)?;
        if len == 0 {
            read(&[]);
            return Ok(());
        }
        // SAFETY: a fresh read-only shared mapping of a file this value owns,
        // unmapped below before the function returns; nothing else refers to
        // it. The file is sealed against writes and resizing, so the mapped
        // bytes cannot change, and no access goes past `len`.
        unsafe {
            let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
            let at = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, flags, self.file.as_raw_fd(), 0);
            if at == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            read(std::slice::from_raw_parts(at.cast::<u8>(), len));
            libc::munmap(at, len);
        }
        Ok(())
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

/// Copies the rest of `source` into `into` inside the kernel (`sendfile`):
/// `false`, with nothing copied, where `source` cannot be sent from (not a
/// regular file) and a plain copy is needed instead.
fn copied_in_kernel(source: &impl AsRawFd, into: &File) -> io::Result<bool> {
    let mut first = true;
    loop {
        // SAFETY: both descriptors are open for the duration of the call; a
        // null offset makes the kernel use and advance `source`'s own.
        let sent =
            unsafe { libc::sendfile(into.as_raw_fd(), source.as_raw_fd(), std::ptr::null_mut(), 1 << 30) };
        match sent {
            0 => return Ok(true),
            n if n > 0 => first = false,
            _ => {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EINVAL | libc::ENOSYS) if first => return Ok(false),
                    _ => return Err(error),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek as _, SeekFrom, Write as _};

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

    // What the kernel cannot send from (a pipe here) is copied through
    // this process instead, to the same effect.
    #[test]
    fn a_source_that_cannot_be_sent_from_is_copied_all_the_same() {
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let (mut reader, mut writer) = io::pipe().unwrap();
        let feeding = {
            let content = content.clone();
            std::thread::spawn(move || writer.write_all(&content).unwrap())
        };
        let mut absorbed = Vec::new();
        let copy = SealedCopy::of(&mut reader, |all| absorbed.extend_from_slice(all)).unwrap().unwrap();
        feeding.join().unwrap();
        assert_eq!(absorbed, content);
        assert_eq!(copy.bytes().unwrap(), content);
    }
}
