//! Memory settings for the long-running front-ends (aivaultd, `serve`),
//! and the allocator both binaries install.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// Caps glibc's malloc (what SQLite allocates with) at two arenas. By
/// default it gives up to eight per core to threads that allocate at once,
/// and a server whose blocking pool runs dozens of calls at once kept
/// growing each of them: `serve` under 64 clients held 8 MiB more after a
/// minute (measured with all its allocations on glibc). Two arenas on this
/// two-core machine cost no measurable speed (see BENCHMARKS.md).
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

/// Set in the restarted process, so it never restarts again, and read by
/// [`Allocator`] at its first allocation: a process started with it runs
/// on mimalloc.
const RESTARTED: &std::ffi::CStr = c"AIVAULT_MALLOC_RESTARTED";

/// The global allocator of `aivault` and `aivaultd`: mimalloc in a server
/// restarted by [`restart_for_serving`], the system's malloc (glibc's on
/// Linux) everywhere else.
///
/// Why two: under 64 clients `serve` spent about a tenth of its time in
/// glibc's malloc and free, and its threads queued on the locks of its
/// two arenas; on mimalloc (its per-thread heaps need no lock) it served
/// 8–13% more calls at 64 clients and 6–12% more at 8, for 4–6 MiB more
/// memory. A one-shot command is a few milliseconds on one thread, where
/// mimalloc only added its start, about 0.1 ms (BENCHMARKS.md, session 32).
///
/// The choice is made at the process's first allocation, on its one
/// thread, and never changes, so every block is freed by the allocator
/// that gave it. SQLite and the C library allocate through glibc's malloc
/// in either case.
pub struct Allocator;

const UNDECIDED: u8 = 0;
const GLIBC: u8 = 1;
const MIMALLOC: u8 = 2;

static CHOSEN: AtomicU8 = AtomicU8::new(UNDECIDED);

impl Allocator {
    #[inline]
    fn on_mimalloc() -> bool {
        match CHOSEN.load(Ordering::Relaxed) {
            UNDECIDED => Self::choose(),
            chosen => chosen == MIMALLOC,
        }
    }

    #[cold]
    fn choose() -> bool {
        // SAFETY: getenv only reads the environment (no allocation), and
        // this runs at the first allocation, before any other thread.
        let restarted = unsafe { !libc::getenv(RESTARTED.as_ptr()).is_null() };
        let wanted = if restarted { MIMALLOC } else { GLIBC };
        match CHOSEN.compare_exchange(UNDECIDED, wanted, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => wanted == MIMALLOC,
            Err(chosen) => chosen == MIMALLOC,
        }
    }
}

// SAFETY: each method hands the caller's contract on, unchanged, to one of
// two allocators that uphold GlobalAlloc's, and the same one for the
// whole life of the process (see `choose`).
//
// Not inlined: the methods are called from every allocation in the binary,
// and inlining both allocators' paths there made it 2.4 MB larger.
unsafe impl GlobalAlloc for Allocator {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::on_mimalloc() {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::on_mimalloc() {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::on_mimalloc() {
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::on_mimalloc() {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        } else {
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

/// Starts this server process again, once, on mimalloc (see [`Allocator`])
/// and with glibc's per-thread cache of freed blocks made smaller (for
/// what still allocates through glibc: SQLite); returns at once in the
/// restarted process.
///
/// Why the caches: a server may run a thread per call in flight
/// (aivaultd's blocking pool, and `serve`'s for calls sent whole from
/// their thread; 70-odd under 64 clients when `serve` ran all its calls
/// so, before session 31), and every thread keeps up to seven freed
/// blocks of each of 64 sizes for itself. With all its allocations on
/// glibc, those caches filled over minutes of load and were most of
/// `serve`'s growth in a soak (10 MiB of 36 MiB in use; BENCHMARKS.md).
/// Two blocks a size cost no measurable speed; none cost 7%.
///
/// glibc reads the setting only from the environment as a process starts,
/// and the allocator is chosen at the first allocation, so the process
/// execs itself with `GLIBC_TUNABLES` extended and [`RESTARTED`] set: same
/// pid, arguments and descriptors, before it has opened anything. An
/// operator's own setting of the tunable is kept. If the exec fails, the
/// server runs on with glibc's malloc and its defaults.
pub fn restart_for_serving() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;

        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // SAFETY: getauxval only reads the process's auxiliary vector.
        // Under secure execution (setuid and the like) glibc drops
        // GLIBC_TUNABLES: such a process runs as it was started.
        let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
        let restarted = RESTARTED.to_str().expect("an ASCII name");
        if secure || std::env::var_os(restarted).is_some() {
            return;
        }
        let setting = format!("{THREAD_CACHE_TUNABLE}={THREAD_CACHE_BLOCKS}");
        let tunables = match current.as_str() {
            "" => setting,
            own if own.contains(THREAD_CACHE_TUNABLE) => current,
            _ => format!("{current}:{setting}"),
        };
        let mut args = std::env::args_os();
        let mut again = std::process::Command::new("/proc/self/exe");
        if let Some(name) = args.next() {
            again.arg0(name);
        }
        // Only returns if the exec failed.
        let _ = again.args(args).env("GLIBC_TUNABLES", tunables).env(restarted, "1").exec();
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
