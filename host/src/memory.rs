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

/// The setting that keeps a server's per-thread caches small: how many
/// freed blocks of each size glibc keeps for each thread (its default is
/// seven).
const THREAD_CACHE_TUNABLE: &str = "glibc.malloc.tcache_count";
const THREAD_CACHE_BLOCKS: u32 = 2;

/// Set in the restarted process, so it never restarts again (a glibc that
/// does not know the tunable may leave it out of its environment).
const RESTARTED: &str = "AIVAULT_MALLOC_RESTARTED";

/// Starts this server process again with glibc's per-thread cache of freed
/// blocks made smaller, unless it already is (then returns at once).
///
/// Why: a server may run a thread per call in flight (aivaultd's blocking
/// pool, and `serve`'s for calls sent whole from their thread; 70-odd
/// under 64 clients when `serve` ran all its calls so, before session 31),
/// and every thread keeps up to seven freed blocks of each of 64 sizes for
/// itself. Those
/// caches filled over minutes of load and were most of `serve`'s growth in
/// a soak (10 MiB of 36 MiB in use; BENCHMARKS.md). Two blocks a size cost
/// no measurable speed; none cost 7%.
///
/// glibc reads the setting only from the environment as a process starts,
/// so the process execs itself with `GLIBC_TUNABLES` extended: same pid,
/// arguments and descriptors, before it has opened anything. An operator's
/// own setting of it is kept. If the exec fails, the server runs on with
/// glibc's defaults.
pub fn restart_with_small_thread_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;

        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // SAFETY: getauxval only reads the process's auxiliary vector.
        // Under secure execution glibc drops GLIBC_TUNABLES, and the
        // restarted process would restart again.
        let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
        if current.contains(THREAD_CACHE_TUNABLE) || secure || std::env::var_os(RESTARTED).is_some() {
            return;
        }
        let setting = format!("{THREAD_CACHE_TUNABLE}={THREAD_CACHE_BLOCKS}");
        let tunables = if current.is_empty() { setting } else { format!("{current}:{setting}") };
        let mut args = std::env::args_os();
        let mut again = std::process::Command::new("/proc/self/exe");
        if let Some(name) = args.next() {
            again.arg0(name);
        }
        // Only returns if the exec failed.
        let _ = again.args(args).env("GLIBC_TUNABLES", tunables).env(RESTARTED, "1").exec();
    }
}

/// Turns off SQLite's count of the memory it holds (on by default). While
/// it counts, every allocation and free SQLite makes takes one mutex for
/// the whole process, and a server's calls, running on dozens of threads
/// at once, queue on it. aivault never reads the count. SQLite takes the
/// setting only before its first use, so a server calls this before it
/// opens anything; later, SQLite refuses it and nothing changes.
pub fn no_sqlite_memory_statistics() {
    // SAFETY: sqlite3_config may be called only while no other thread
    // uses SQLite: this runs before the server opens anything or starts a
    // thread. Its one argument is an int, as SQLITE_CONFIG_MEMSTATUS takes.
    unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
    }
}
