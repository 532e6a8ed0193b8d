//! Memory settings for the long-running front-ends (aivaultd, `serve`).

/// Caps glibc's malloc at two arenas. By default it gives up to eight per
/// core to threads that allocate at once, and a server whose blocking pool
/// runs dozens of calls at once kept growing each of them: `serve` under 64
/// clients held 8 MiB more after a minute. Two arenas on this two-core
/// machine cost no measurable speed (see BENCHMARKS.md).
pub fn fewer_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before the
    // server's threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
