//! The `aivault` command.

fn main() -> std::process::ExitCode {
    aivault::cli::main()
}
