//! Output helpers: colour only on a terminal (anstream strips it otherwise
//! and honours `NO_COLOR`), JSON for `-v`, one-line errors.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::vault::integrity::is_unprintable;

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

/// One line on stderr: `error: outer: inner: root`. Messages can quote
/// text from outside (a provider's words, a tampered row), so control and
/// invisible formatting characters are escaped rather than let loose on the
/// terminal.
pub fn print_error(err: &anyhow::Error) {
    let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    let line = printable(&chain.join(": ").replace(['\n', '\r'], " "));
    anstream::eprintln!("{} {line}", styled(AnsiColor::Red.on_default().bold(), "error:"));
}

/// `text` with control and invisible formatting characters escaped.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| if is_unprintable(c) { c.escape_default().collect() } else { vec![c] })
        .collect()
}

/// A UTC timestamp to the second, e.g. `2026-11-28T16:40:01Z`.
pub fn timestamp(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Prints an aligned table: a bold header, then one styled cell per column.
pub fn table(headers: &[&str], rows: Vec<Vec<(Style, String)>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, (_, cell)) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = headers.len() - 1;
    // Styles only when they will be shown: otherwise anstream would scan
    // the whole text again to strip them (a seventh of listing 100,000
    // secrets), and every cell cost two more allocations.
    let colour = anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    let line_width: usize = widths.iter().sum::<usize>() + 2 * last + 1;
    let mut text = String::with_capacity(line_width * (rows.len() + 1));
    let cell = |text: &mut String, i: usize, style: Style, content: &str| {
        if i > 0 {
            text.push_str("  ");
        }
        if colour {
            let _ = write!(text, "{style}");
        }
        text.push_str(content);
        if i != last {
            let fill = widths[i].saturating_sub(content.chars().count());
            text.extend(std::iter::repeat_n(' ', fill));
        }
        if colour {
            let _ = write!(text, "{style:#}");
        }
    };
    for (i, heading) in headers.iter().enumerate() {
        cell(&mut text, i, HEADING, heading);
    }
    text.push('\n');
    // Built whole and written once: stdout flushes at every line otherwise,
    // a system call per row of a 100,000-row listing.
    for row in &rows {
        for (i, (style, content)) in row.iter().enumerate() {
            cell(&mut text, i, *style, content);
        }
        text.push('\n');
    }
    if colour {
        anstream::print!("{text}");
    } else {
        print!("{text}");
    }
}
