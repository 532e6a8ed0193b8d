//! The `aivault` command.

#[global_allocator]
static ALLOCATOR: aivault::memory::Allocator = aivault::memory::Allocator;

fn main() -> std::process::ExitCode {
    aivault::cli::main()
}
