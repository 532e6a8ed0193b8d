//! `aivault invoke`, `json` and `markdown`: call a capability through the
//! broker. The raw upstream body goes to stdout, the status to stderr, and
//! the exit code is non-zero for HTTP errors.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;

use super::Context;
use super::output::{DIM, WARN, styled};
use crate::broker::envelope::Envelope;
use crate::broker::{Broker, Head, Invocation, Sink, multipart};
use crate::daemon::protocol::{Call, Request};

#[derive(Debug, Args)]
#[cfg_attr(test, derive(PartialEq))]
pub struct InvokeArgs {
    /// Capability id, e.g. `openai/chat-completions`.
    capability: String,
    /// HTTP method (default: the capability's only method).
    #[arg(long)]
    method: Option<String>,
    /// Path and query, e.g. `/v1/models?limit=5` (default: the capability's
    /// only path prefix).
    #[arg(long)]
    path: Option<String>,
    /// A request header, `name: value` (repeatable). Authentication headers
    /// are refused (aivault adds them), and so are those that re-route or
    /// re-method a request (`x-forwarded-*`, `x-http-method-override`, …).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body.
    #[arg(long, conflicts_with_all = ["body_file_path"])]
    body: Option<String>,
    /// Read the request body from a file.
    #[arg(long, value_name = "PATH")]
    body_file_path: Option<PathBuf>,
    /// A JSON request envelope: {"method", "path", "headers", "body"}; flags
    /// take precedence over its fields.
    #[arg(long, value_name = "JSON", conflicts_with = "request_file")]
    request: Option<String>,
    /// Read the JSON request envelope from a file.
    #[arg(long, value_name = "PATH")]
    request_file: Option<PathBuf>,
    /// A multipart form field, `name=value` (repeatable).
    #[arg(long = "multipart-field", value_name = "NAME=VALUE")]
    multipart_fields: Vec<String>,
    /// A multipart file, `name=/path[;type=mime]` (repeatable).
    #[arg(long = "multipart-file", value_name = "NAME=PATH")]
    multipart_files: Vec<String>,
    /// Use this credential instead of resolving one from the context.
    #[arg(long)]
    credential: Option<String>,
    /// Call in this workspace's context.
    #[arg(long, value_name = "ID")]
    workspace_id: Option<String>,
    /// Call in this group's context (needs --workspace-id).
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
    /// Who is calling, for capabilities with consumer bindings.
    #[arg(long, env = "AIVAULT_CONSUMER")]
    consumer: Option<String>,
    /// Give up after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    timeout_ms: u64,
}

impl InvokeArgs {
    /// `args` (what follows the subcommand) read without clap when they take
    /// the plain form agents send: the capability, then `--flag value` or
    /// `--flag=value` pairs, each flag at most once except the repeatable
    /// ones, `--dir` among them. Building clap's parser, even for this one
    /// subcommand, took 0.2–0.3 ms of a 5.7 ms one-shot call (BENCHMARKS.md). `None`
    /// for anything else (help, `--`, a value that is empty or starts with
    /// `-`, an unknown or repeated flag, conflicting flags, an empty
    /// variable), which clap then parses as before, with its help and
    /// errors. Returns `--dir` (else `AIVAULT_DIR`) beside the arguments.
    pub(super) fn parse_plain(args: &[OsString]) -> Option<(Option<PathBuf>, Self)> {
        fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
            slot.is_none().then(|| *slot = Some(value))
        }
        let (mut capability, mut dir, mut timeout_ms) = (None, None, None);
        let mut parsed = InvokeArgs {
            capability: String::new(),
            method: None,
            path: None,
            headers: Vec::new(),
            body: None,
            body_file_path: None,
            request: None,
            request_file: None,
            multipart_fields: Vec::new(),
            multipart_files: Vec::new(),
            credential: None,
            workspace_id: None,
            group_id: None,
            consumer: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let arg = arg.to_str()?;
            let Some(flag) = arg.strip_prefix("--") else {
                if arg.starts_with('-') {
                    return None;
                }
                once(&mut capability, arg.to_string())?;
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, value),
                None => (flag, args.next()?.to_str()?),
            };
            if value.is_empty() || value.starts_with('-') {
                return None;
            }
            let value = value.to_string();
            match name {
                "method" => once(&mut parsed.method, value)?,
                "path" => once(&mut parsed.path, value)?,
                "header" => parsed.headers.push(value),
                "body" => once(&mut parsed.body, value)?,
                "body-file-path" => once(&mut parsed.body_file_path, PathBuf::from(value))?,
                "request" => once(&mut parsed.request, value)?,
                "request-file" => once(&mut parsed.request_file, PathBuf::from(value))?,
                "multipart-field" => parsed.multipart_fields.push(value),
                "multipart-file" => parsed.multipart_files.push(value),
                "credential" => once(&mut parsed.credential, value)?,
                "workspace-id" => once(&mut parsed.workspace_id, value)?,
                "group-id" => once(&mut parsed.group_id, value)?,
                "consumer" => once(&mut parsed.consumer, value)?,
                "timeout-ms" if value.bytes().all(|b| b.is_ascii_digit()) => {
                    once(&mut timeout_ms, value.parse().ok()?)?
                }
                "dir" => once(&mut dir, PathBuf::from(value))?,
                _ => return None,
            }
        }
        let conflicting = (parsed.body.is_some() && parsed.body_file_path.is_some())
            || (parsed.request.is_some() && parsed.request_file.is_some());
        if conflicting {
            return None;
        }
        parsed.capability = capability?;
        if let Some(ms) = timeout_ms {
            parsed.timeout_ms = ms;
        }
        // What clap takes from the environment when the flag is absent.
        let from_env = |name: &str| match std::env::var_os(name) {
            None => Some(None),
            Some(value) if value.is_empty() => None,
            Some(value) => Some(Some(value)),
        };
        if parsed.consumer.is_none() {
            parsed.consumer = from_env("AIVAULT_CONSUMER")?.map(OsString::into_string).transpose().ok()?;
        }
        if dir.is_none() {
            dir = from_env("AIVAULT_DIR")?.map(PathBuf::from);
        }
        Some((dir, parsed))
    }
}

/// How long a call may take unless `--timeout-ms` says otherwise.
const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// How the response body is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Raw,
    Json,
    Markdown,
}

pub fn run(ctx: &Context, args: InvokeArgs, render: Render) -> anyhow::Result<ExitCode> {
    let call = build_invocation(args)?;
    let mut out = Terminal { render, status: None, body: Vec::new() };
    // Its commits are the call's audit records: as durable as a broker's.
    ctx.calls_only();
    // With a daemon running, it decrypts and sends: never this process.
    let redacted = match super::daemon::find_or_start(ctx)? {
        Some((client, _)) => {
            let request = Request::Invoke(Call::from_invocation(&call));
            client.invoke(&request, call.timeout + Duration::from_secs(30), &mut out)?
        }
        None => {
            // One call, then exit: no client thread to start and hand it to.
            crate::broker::drive_in_thread();
            let registry = ctx.registry()?;
            let mut vault = ctx.vault()?;
            Broker::new(&mut vault, registry, ctx.dev()).invoke_into(&call, &mut out)?.redacted
        }
    };
    out.finish(redacted)?;
    Ok(if out.status.is_some_and(|s| s >= 400) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The answer on the terminal: the status on stderr at once, a raw body on
/// stdout piece by piece as it arrives, JSON or Markdown once it is whole.
struct Terminal {
    render: Render,
    status: Option<u16>,
    body: Vec<u8>,
}

impl Sink for Terminal {
    fn head(&mut self, head: &Head) -> std::io::Result<()> {
        self.status = Some(head.status);
        let status = format!("HTTP {} {}", head.status, head.reason);
        let status = if head.status >= 400 { styled(WARN, status) } else { styled(DIM, status) };
        match &head.redirect {
            Some(location) => anstream::eprintln!("{status} (redirect to {location} not followed)"),
            None => anstream::eprintln!("{status}"),
        }
        Ok(())
    }

    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.render == Render::Raw {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(data)?;
            return stdout.flush();
        }
        self.body.extend_from_slice(data);
        Ok(())
    }
}

impl Terminal {
    fn finish(&mut self, redacted: bool) -> anyhow::Result<()> {
        if redacted {
            anstream::eprintln!(
                "{}",
                styled(WARN, "note: upstream echoed a secret; it was removed from the response")
            );
        }
        if self.render == Render::Raw {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        match (self.render, serde_json::from_slice::<Value>(&self.body).ok()) {
            (Render::Json, Some(value)) => writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?,
            (Render::Markdown, Some(value)) => write!(stdout, "{}", crate::markdown::render(&value))?,
            _ => {
                if !self.body.is_empty() {
                    anstream::eprintln!("{}", styled(DIM, "note: the response is not JSON; shown as is"));
                }
                stdout.write_all(&self.body)?;
            }
        }
        stdout.flush()?;
        Ok(())
    }
}

/// Flags first, then the JSON envelope for whatever the flags left open.
fn build_invocation(args: InvokeArgs) -> anyhow::Result<Invocation> {
    let envelope: Option<Value> = match (&args.request, &args.request_file) {
        (Some(text), _) => Some(serde_json::from_str(text).context("--request is not valid JSON")?),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not valid JSON", path.display()))?,
            )
        }
        (None, None) => None,
    };
    let envelope = envelope.as_ref().map(Envelope::parse).transpose()?.unwrap_or_default();
    let mut headers = envelope.headers;
    for raw in &args.headers {
        let (name, value) =
            raw.split_once(':').with_context(|| format!("header `{raw}` must be `name: value`"))?;
        let name = name.trim().to_string();
        headers.retain(|(n, _): &(String, String)| !n.eq_ignore_ascii_case(&name));
        headers.push((name, value.trim().to_string()));
    }

    let mut body = match (&args.body, &args.body_file_path) {
        (Some(text), _) => Some(text.clone().into_bytes()),
        (None, Some(path)) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        (None, None) => envelope.body,
    };

    if !args.multipart_fields.is_empty() || !args.multipart_files.is_empty() {
        if body.is_some() {
            bail!("--multipart-field/--multipart-file build the body; do not also pass a body");
        }
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            bail!("a multipart request sets its own content-type header; remove --header content-type");
        }
        let mut parts = Vec::new();
        for raw in &args.multipart_fields {
            parts.push(multipart::field(raw)?);
        }
        for raw in &args.multipart_files {
            parts.push(multipart::file(raw)?);
        }
        let boundary = format!("aivault-{}", uuid::Uuid::new_v4().simple());
        let (encoded, content_type) = multipart::encode(&parts, &boundary)?;
        headers.push(("content-type".into(), content_type));
        body = Some(encoded);
    }

    Ok(Invocation {
        capability: args.capability,
        method: args.method.or(envelope.method),
        path: args.path.or(envelope.path),
        headers,
        body,
        credential: args.credential,
        workspace_id: args.workspace_id,
        group_id: args.group_id,
        consumer: args.consumer,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        via: None,
    })
}
