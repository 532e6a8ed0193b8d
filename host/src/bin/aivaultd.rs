//! `aivaultd`: the same as `aivault daemon`.

fn main() -> std::process::ExitCode {
    aivault::cli::daemon_main()
}
