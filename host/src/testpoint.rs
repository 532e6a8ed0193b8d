//! Pause points for crash tests, in builds with debug assertions only.
//!
//! `AIVAULT_DEV_PAUSE_AT=<step>:<marker file>` makes the process create the
//! marker file when it reaches `<step>` and then wait forever, so a test can
//! kill it with SIGKILL at exactly that point. Release builds refuse to run
//! with the variable set ([`crate::broker::devmode`]), and ignore it here.

use std::time::Duration;

/// The variable that names the step to pause at.
pub const VAR: &str = "AIVAULT_DEV_PAUSE_AT";

/// Pauses here (forever) if the test asked for `step`.
pub fn reached(step: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(spec) = std::env::var(VAR) else { return };
    let Some((wanted, marker)) = spec.split_once(':') else { return };
    if wanted != step {
        return;
    }
    let _ = std::fs::write(marker, step);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
