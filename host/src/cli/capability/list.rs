//! `aivault capability list`: Ready capabilities in full, then Available
//! ones one line per provider (in full once narrowed by `--provider` or a
//! search), so forty-odd providers still fit on a screen.

use clap::Args;
use serde::Serialize;

use super::{CapabilityView, all_views};
use crate::cli::Context;
use crate::cli::output::{DIM, HEADING, ID, print_json, styled};

#[derive(Debug, Args)]
pub struct CapabilityListArgs {
    /// Only capabilities whose id, description, provider or path prefix
    /// contains this text (any case).
    search: Option<String>,
    /// Only this provider's capabilities (repeatable).
    #[arg(long = "provider", value_name = "ID")]
    providers: Vec<String>,
    /// Full JSON instead of the summary.
    #[arg(short, long)]
    verbose: bool,
}

/// Appends a line to a `String` (which cannot fail to take it).
macro_rules! say {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// How many capability names a one-line provider summary shows.
const SUMMARY_NAMES: usize = 6;

pub fn list(ctx: &Context, args: CapabilityListArgs) -> anyhow::Result<()> {
    for id in &args.providers {
        // An unknown id is a mistake worth a suggestion, not an empty list.
        ctx.registry()?.provider(id)?;
    }
    let filtered = args.search.is_some() || !args.providers.is_empty();
    let needle = args.search.as_deref().map(str::to_lowercase);
    let (ready, available): (Vec<_>, Vec<_>) = all_views(ctx)?
        .into_iter()
        .filter(|v| args.providers.is_empty() || args.providers.contains(&v.provider))
        .filter(|v| needle.as_deref().is_none_or(|n| matches(v, n)))
        .partition(|v| v.ready);
    if args.verbose {
        #[derive(Serialize)]
        struct Listing {
            ready: Vec<CapabilityView>,
            available: Vec<CapabilityView>,
        }
        return print_json(&Listing { ready, available });
    }
    let shown = || ready.iter().chain(available.iter().filter(|_| filtered));
    let widths = (
        shown().map(|v| v.id.len()).max().unwrap_or(0),
        shown().map(|v| v.methods.join(",").len()).max().unwrap_or(0),
    );
    // Built whole and written once (stdout would flush at every line).
    let mut out = String::new();
    say!(out, "{}", styled(HEADING, format!("Ready ({})", ready.len())));
    if ready.is_empty() && !filtered {
        let hint =
            "none yet: store a provider's secrets with `aivault secrets create` to enable its capabilities";
        say!(out, "  {}", styled(DIM, hint));
    }
    print_group(&mut out, &ready, widths, false);
    say!(out);
    say!(out, "{}", styled(HEADING, format!("Available ({})", available.len())));
    if filtered {
        print_group(&mut out, &available, widths, true);
    } else {
        summarise(&mut out, &available);
        let hint = "`aivault capability list --provider <id>` lists a provider's capabilities; \
                    `aivault capability list <text>` searches them all";
        say!(out, "{}", styled(DIM, hint));
    }
    anstream::print!("{out}");
    Ok(())
}

/// Whether `view` mentions `needle` (lower case) anywhere a person would look.
fn matches(view: &CapabilityView, needle: &str) -> bool {
    [&view.id, &view.description, &view.provider]
        .into_iter()
        .chain(&view.path_prefixes)
        .any(|text| text.to_lowercase().contains(needle))
}

/// One line per capability, under a line per provider and set of secrets.
fn print_group(
    out: &mut String,
    views: &[CapabilityView],
    (id_width, method_width): (usize, usize),
    show_secrets: bool,
) {
    let mut last_header = String::new();
    for view in views {
        let header = heading(view, show_secrets);
        if header != last_header {
            say!(out, "  {}", styled(HEADING, &header));
            last_header = header;
        }
        let id = format!("{:id_width$}", view.id);
        say!(
            out,
            "    {}  {:method_width$}  {}",
            styled(ID, id),
            view.methods.join(","),
            styled(DIM, view.path_prefixes.join(", "))
        );
    }
}

fn heading(view: &CapabilityView, show_secrets: bool) -> String {
    if show_secrets {
        format!("{} (needs {})", view.provider, view.secrets_needed())
    } else {
        format!("{} (via {})", view.provider, view.credentials.join(", "))
    }
}

/// One line per provider and set of secrets: how many capabilities, and
/// the first few names.
fn summarise(out: &mut String, views: &[CapabilityView]) {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for view in views {
        let header = heading(view, true);
        let name = view.id.split_once('/').map_or(view.id.as_str(), |(_, name)| name);
        match groups.last_mut() {
            Some((last, names)) if *last == header => names.push(name),
            _ => groups.push((header, vec![name])),
        }
    }
    let width = groups.iter().map(|(header, _)| header.len()).max().unwrap_or(0);
    for (header, names) in groups {
        let more = names.len().saturating_sub(SUMMARY_NAMES);
        let mut listed = names.iter().take(SUMMARY_NAMES).copied().collect::<Vec<_>>().join(", ");
        if more > 0 {
            listed.push_str(&format!(", … ({more} more)"));
        }
        say!(
            out,
            "  {}  {}",
            styled(HEADING, format!("{header:width$}")),
            styled(DIM, format!("{:>3}: {listed}", names.len()))
        );
    }
}
