//! OS users by name and id, from the system's user database. The
//! reentrant lookups are used: the daemon names peers from many threads.

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::PathBuf;

/// The uid of user `name`, if the system knows one.
pub fn uid_of(name: &str) -> Option<u32> {
    by_name(name, |entry| entry.pw_uid)
}

/// The name of user `uid`, if the system knows one.
pub fn name_of(uid: u32) -> Option<String> {
    // SAFETY: the record's pointers are valid while `read` runs, and
    // pw_name is a NUL-terminated string.
    passwd(
        |record, buf, len, found| unsafe { libc::getpwuid_r(uid, record, buf, len, found) },
        |entry| unsafe { CStr::from_ptr(entry.pw_name) }.to_string_lossy().into_owned(),
    )
}

/// The home directory of user `name`.
pub fn home_of(name: &str) -> Option<PathBuf> {
    // SAFETY: as in `name_of`, for pw_dir.
    by_name(name, |entry| {
        PathBuf::from(unsafe { CStr::from_ptr(entry.pw_dir) }.to_string_lossy().into_owned())
    })
}

/// The gid of group `name`, if the system knows one.
pub fn gid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0 as c_char; 1024];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers, zero ids).
        let mut record: libc::group = unsafe { std::mem::zeroed() };
        let mut found = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the sizes passed.
        let rc =
            unsafe { libc::getgrnam_r(name.as_ptr(), &mut record, buf.as_mut_ptr(), buf.len(), &mut found) };
        match rc {
            libc::ERANGE if buf.len() < MAX_BUFFER => buf.resize(buf.len() * 4, 0),
            0 if !found.is_null() => return Some(record.gr_gid),
            _ => return None,
        }
    }
}

/// This process's effective uid.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// A record's strings live in the caller's buffer; past this, give up.
const MAX_BUFFER: usize = 1 << 20;

fn by_name<T>(name: &str, read: impl FnOnce(&libc::passwd) -> T) -> Option<T> {
    let name = CString::new(name).ok()?;
    passwd(
        // SAFETY: `name` is NUL-terminated and outlives the call.
        |record, buf, len, found| unsafe { libc::getpwnam_r(name.as_ptr(), record, buf, len, found) },
        read,
    )
}

/// Runs a `getpw*_r` lookup, growing its buffer while the record does not
/// fit, and reads the record found.
fn passwd<T>(
    lookup: impl Fn(*mut libc::passwd, *mut c_char, usize, *mut *mut libc::passwd) -> c_int,
    read: impl FnOnce(&libc::passwd) -> T,
) -> Option<T> {
    let mut buf = vec![0 as c_char; 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids).
        let mut record: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found = std::ptr::null_mut();
        match lookup(&mut record, buf.as_mut_ptr(), buf.len(), &mut found) {
            libc::ERANGE if buf.len() < MAX_BUFFER => buf.resize(buf.len() * 4, 0),
            0 if !found.is_null() => return Some(read(&record)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // root is uid 0 everywhere; an impossible name has none.
    #[test]
    fn looks_up_users() {
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(name_of(0).as_deref(), Some("root"));
        assert!(home_of("root").is_some());
        #[cfg(target_os = "linux")]
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(uid_of("no such user, surely"), None);
        assert_eq!(gid_of("no such group, surely"), None);
    }
}
