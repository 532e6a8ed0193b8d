//! OS users by name and id, from the system's user database.

use std::ffi::{CStr, CString};

/// The uid of user `name`, if the system knows one.
pub fn uid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: getpwnam returns NULL or a pointer to a static record, read
    // at once and not kept.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    // SAFETY: non-NULL, so it points to a valid passwd record.
    (!entry.is_null()).then(|| unsafe { (*entry).pw_uid })
}

/// The name of user `uid`, if the system knows one.
pub fn name_of(uid: u32) -> Option<String> {
    // SAFETY: as in `uid_of`.
    let entry = unsafe { libc::getpwuid(uid) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: a non-NULL record's pw_name is a NUL-terminated string.
    let name = unsafe { CStr::from_ptr((*entry).pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The gid of group `name`, if the system knows one.
pub fn gid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: as in `uid_of`, for the group database.
    let entry = unsafe { libc::getgrnam(name.as_ptr()) };
    // SAFETY: non-NULL, so it points to a valid group record.
    (!entry.is_null()).then(|| unsafe { (*entry).gr_gid })
}

/// The home directory of user `name`.
pub fn home_of(name: &str) -> Option<std::path::PathBuf> {
    let name = CString::new(name).ok()?;
    // SAFETY: as in `uid_of`.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: a non-NULL record's pw_dir is a NUL-terminated string.
    let dir = unsafe { CStr::from_ptr((*entry).pw_dir) };
    Some(std::path::PathBuf::from(dir.to_string_lossy().into_owned()))
}

/// This process's effective uid.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    // root is uid 0 everywhere; an impossible name has none.
    #[test]
    fn looks_up_users() {
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(name_of(0).as_deref(), Some("root"));
        assert_eq!(uid_of("no such user, surely"), None);
    }
}
