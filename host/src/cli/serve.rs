//! `aivault serve`: the local HTTP front-end ([`crate::serve`]).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::Context;
use super::output::{WARN, styled};
use crate::serve::{self, ServeOptions, Shared};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; a loopback address unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Listen on a non-loopback address too; say why (it is printed). Every
    /// request still needs a proxy token.
    #[arg(long, value_name = "REASON")]
    allow_remote: Option<String>,
    /// Calls served at once; more wait for a free slot.
    #[arg(long, default_value_t = 64)]
    max_concurrent: usize,
    /// The largest request body accepted.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// Give up on an upstream call after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    timeout_ms: u64,
    /// Also serve `aivault mcp`'s tools on Streamable HTTP at /mcp (each
    /// request with a proxy token, each session acting as its token).
    #[arg(long)]
    mcp: bool,
}

pub fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(reason) = &args.allow_remote {
        anstream::eprintln!(
            "{} listening beyond loopback on {} because: {reason}",
            styled(WARN, "warning:"),
            args.listen
        );
    }
    let options = ServeOptions {
        listen: args.listen,
        allow_remote: args.allow_remote,
        max_concurrent: args.max_concurrent.max(1),
        max_body_bytes: args.max_body_bytes,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        mcp: args.mcp,
        ..ServeOptions::default()
    };
    ctx.serving(options.max_concurrent);
    let shared = Shared::new(
        ctx.dir().to_path_buf(),
        ctx.keys().clone(),
        ctx.load_registry()?,
        ctx.dev().clone(),
        options,
    )?;
    serve::run(shared, |addr| {
        // The first line on stdout, so a script (or a test) can read the port.
        anstream::println!("aivault serve listening on http://{addr}");
    })?;
    Ok(())
}
