//! Output helpers: colour only on a terminal (anstream strips it otherwise
//! and honours `NO_COLOR`), JSON for `-v`, one-line errors.

use anstyle::{AnsiColor, Style};
use serde::Serialize;

/// Section headings.
pub const HEADING: Style = Style::new().bold();
/// Identifiers people type back (capability ids, secret names).
pub const ID: Style = AnsiColor::Cyan.on_default();
/// Secondary detail.
pub const DIM: Style = Style::new().dimmed();
/// Good news.
pub const OK: Style = AnsiColor::Green.on_default();
/// Things that need attention.
pub const WARN: Style = AnsiColor::Yellow.on_default();

/// Wraps `text` in `style`.
pub fn styled(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// Pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    anstream::println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One line on stderr: `error: outer: inner: root`.
pub fn print_error(err: &anyhow::Error) {
    let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    let line = chain.join(": ").replace(['\n', '\r'], " ");
    anstream::eprintln!("{} {line}", styled(AnsiColor::Red.on_default().bold(), "error:"));
}
