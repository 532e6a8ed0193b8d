//! `aivaultd`: the same as `aivault daemon`.

#[global_allocator]
static ALLOCATOR: aivault::memory::Allocator = aivault::memory::Allocator;

fn main() -> std::process::ExitCode {
    aivault::cli::daemon_main()
}
