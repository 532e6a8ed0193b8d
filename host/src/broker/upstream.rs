//! The one place a request leaves the machine: HTTPS only, rustls with the
//! bundled web PKI roots, no proxies from the environment, no redirects
//! followed, and timeouts: to connect, for the first byte of the answer,
//! and between pieces of its body (so a long stream lives as long as it
//! keeps flowing, and a stalled one does not).

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sha2::Digest as _;

use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::devmode::DevOverrides;
use crate::plugins::OutgoingRequest;

/// What came back: the head at once, the body to read as it arrives.
pub struct UpstreamResponse {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    /// The `location` of a redirect, which is never followed.
    pub location: Option<String>,
    /// The declared length; `None` for a chunked (streamed) body.
    pub content_length: Option<u64>,
    host: String,
    body: Body,
}

/// Where the body is read from: reqwest's blocking client (whose requests
/// run on a thread of its own), or an async request (driven by this thread,
/// or by the runtime of the front-end that awaits it).
enum Body {
    Blocking(reqwest::blocking::Response),
    Async { response: reqwest::Response, pending: Bytes, timeout: Duration },
}

impl UpstreamResponse {
    /// Whether the body comes in pieces over time (server-sent events, or
    /// chunked with no declared length) and should be passed on as it does.
    pub fn is_stream(&self) -> bool {
        self.content_length.is_none()
            || self.content_type.as_deref().is_some_and(|t| t.starts_with("text/event-stream"))
    }

    /// The next piece of the body (empty at its end).
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize, UpstreamError> {
        self.read(buf).map_err(|e| UpstreamError::Connect {
            host: self.host.clone(),
            reason: format!("reading the response failed: {e}"),
        })
    }

    /// The whole body, up to `max` bytes; `true` if there was more.
    pub fn read_all(&mut self, max: u64) -> Result<(Vec<u8>, bool), UpstreamError> {
        let mut body = Vec::new();
        (&mut *self)
            .take(max.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| reading_failed(&self.host, e))?;
        Ok(cut(body, max))
    }

    /// The next piece of the body as it arrives (`None` at its end), each
    /// within the timeout, for a caller on an async runtime. (A blocking
    /// client's body is read in place: [`Upstream::send`] gives none.)
    pub async fn next_piece(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let (response, pending, timeout) = match &mut self.body {
            Body::Async { response, pending, timeout } => (response, pending, *timeout),
            Body::Blocking(_) => {
                let mut buf = vec![0u8; 16 * 1024];
                let n = self.read_chunk(&mut buf)?;
                buf.truncate(n);
                return Ok((n > 0).then(|| Bytes::from(buf)));
            }
        };
        piece(response, pending, timeout).await.map_err(|e| reading_failed(&self.host, e))
    }

    /// The whole body, up to `max` bytes, for a caller on an async runtime;
    /// `true` if there was more.
    pub async fn read_all_async(&mut self, max: u64) -> Result<(Vec<u8>, bool), UpstreamError> {
        let mut body = Vec::new();
        while body.len() as u64 <= max
            && let Some(piece) = self.next_piece().await?
        {
            body.extend_from_slice(&piece);
        }
        Ok(cut(body, max))
    }
}

/// `body` cut to `max` bytes, and whether it was longer.
fn cut(mut body: Vec<u8>, max: u64) -> (Vec<u8>, bool) {
    let truncated = body.len() as u64 > max;
    body.truncate(max as usize);
    (body, truncated)
}

fn reading_failed(host: &str, e: std::io::Error) -> UpstreamError {
    UpstreamError::Connect { host: host.to_string(), reason: format!("reading the response failed: {e}") }
}

/// The next piece of an async response's body: what is left of the last
/// one, else the next to arrive. As the blocking client does, each piece
/// must come within the timeout, however long the whole body takes.
async fn piece(
    response: &mut reqwest::Response,
    pending: &mut Bytes,
    timeout: Duration,
) -> std::io::Result<Option<Bytes>> {
    if !pending.is_empty() {
        return Ok(Some(std::mem::take(pending)));
    }
    match tokio::time::timeout(timeout, response.chunk()).await {
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the body stalled")),
        Ok(Err(e)) => Err(std::io::Error::other(describe(&e))),
        Ok(Ok(next)) => Ok(next),
    }
}

impl std::io::Read for UpstreamResponse {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let (response, pending, timeout) = match &mut self.body {
            Body::Blocking(response) => return response.read(buf),
            Body::Async { response, pending, timeout } => (response, pending, *timeout),
        };
        if pending.is_empty() {
            match in_thread_runtime()?.block_on(piece(response, pending, timeout))? {
                None => return Ok(0),
                Some(next) => *pending = next,
            }
        }
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending.split_to(n));
        Ok(n)
    }
}

/// Why the request could not be completed. Carries no URL (it may hold
/// query-string secrets) and is redacted again by the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("{host} did not answer within {}s", timeout.as_secs_f64())]
    Timeout { host: String, timeout: Duration },
    #[error("could not reach {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("invalid request header `{0}`")]
    Header(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error(
        "{host} answered with a `{encoding}`-encoded body although aivault asked for none; it cannot be checked for echoed secrets, so it was withheld"
    )]
    Encoded { host: String, encoding: String },
}

/// The longest a connection may take to open, whatever the call's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Clients kept for reuse. Each has a thread; however many different
/// timeouts callers ask for, a long-running front-end keeps this many and
/// builds a throwaway client for any other.
const MAX_CLIENTS: usize = 8;

/// The HTTP client for `timeout` and `dev`: one per process and setting,
/// so a long-running front-end (the daemon, `serve`) keeps connections to
/// upstream open between calls instead of a TLS handshake for each.
fn client(timeout: Duration, dev: &DevOverrides) -> Result<Client, UpstreamError> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Client>>> = OnceLock::new();
    let ca = dev.ca_cert_pem.as_deref().map(|pem| hex::encode(sha2::Sha256::digest(pem)));
    let key = format!("{}|{:?}|{ca:?}", timeout.as_millis(), dev.resolve);
    let clients = CLIENTS.get_or_init(Mutex::default);
    if let Some(client) = clients.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(client);
    }
    let client = build_client(timeout, dev)?;
    if let Ok(mut clients) = clients.lock()
        && clients.len() < MAX_CLIENTS
    {
        clients.insert(key, client.clone());
    }
    Ok(client)
}

/// What every client is: rustls with the bundled roots (and a test build's
/// CA), HTTPS only, no proxy, no redirects, a bounded connect.
fn client_builder(timeout: Duration, dev: &DevOverrides) -> Result<reqwest::ClientBuilder, UpstreamError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(CONNECT_TIMEOUT));
    if let Some(pem) = &dev.ca_cert_pem {
        let cert = reqwest::Certificate::from_pem(pem).map_err(|e| UpstreamError::Tls(describe(&e)))?;
        builder = builder.add_root_certificate(cert);
    }
    for (host, addr) in &dev.resolve {
        builder = builder.resolve(host, *addr);
    }
    Ok(builder)
}

/// A blocking client: `timeout` bounds the head and each read of the body.
fn build_client(timeout: Duration, dev: &DevOverrides) -> Result<Client, UpstreamError> {
    reqwest::blocking::ClientBuilder::from(client_builder(timeout, dev)?)
        .timeout(timeout)
        .build()
        .map_err(|e| UpstreamError::Tls(describe(&e)))
}

/// Whether requests are driven on the calling thread (see [`drive_in_thread`]).
static IN_THREAD: AtomicBool = AtomicBool::new(false);

/// Has this process drive its requests on the calling thread, for a
/// command that makes one call and exits: reqwest's blocking client starts
/// a thread with a runtime of its own for every client, and hands every
/// request and piece of body across; for one call that was a twentieth of
/// the whole command. Long-running front-ends keep the blocking clients,
/// whose connections stay warm across calls.
pub fn drive_in_thread() {
    IN_THREAD.store(true, Ordering::Relaxed);
}

/// The single-threaded runtime requests driven in thread run on.
fn in_thread_runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Requests driven by the runtime that awaits them, over connections kept
/// open between calls: for an async front-end (`serve`), whose calls then
/// need no hand-over to a client thread and back. Its connections belong
/// to the runtime that opened them, so each runtime builds its own. The
/// call's timeout bounds the head and each piece of the body.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
}

impl Upstream {
    /// A client for calls with `timeout`, as `dev` says to reach upstream.
    pub fn new(timeout: Duration, dev: &DevOverrides) -> Result<Self, UpstreamError> {
        let client = client_builder(timeout, dev)?.build().map_err(|e| UpstreamError::Tls(describe(&e)))?;
        Ok(Upstream { client })
    }

    /// Sends `req` and returns once the head of the answer has arrived.
    pub async fn send(
        &self,
        req: &OutgoingRequest,
        timeout: Duration,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let (method, url, headers) = request_parts(req)?;
        let mut request = self.client.request(method, url).headers(headers);
        if let Some(body) = &req.body {
            request = request.body(body.clone());
        }
        let response = tokio::time::timeout(timeout, request.send())
            .await
            .map_err(|_| UpstreamError::Timeout { host: req.host.clone(), timeout })?
            .map_err(|e| failed(&req.host, timeout, e))?;
        let head = (response.status(), response.headers().clone(), response.content_length());
        answered(&req.host, head, Body::Async { response, pending: Bytes::new(), timeout })
    }
}

/// The method, URL and headers of `req`, as reqwest takes them.
fn request_parts(req: &OutgoingRequest) -> Result<(reqwest::Method, String, HeaderMap), UpstreamError> {
    let mut headers = HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    for (name, value) in &req.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| UpstreamError::Header(name.clone()))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| UpstreamError::Header(name.to_string()))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| UpstreamError::Header(req.method.clone()))?;
    let mut url = format!("https://{}{}", req.host, req.path);
    if !req.query.is_empty() {
        url.push('?');
        url.push_str(&encode_query(&req.query));
    }
    Ok((method, url, headers))
}

/// Why a request failed, without its URL.
fn failed(host: &str, timeout: Duration, e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout { host: host.to_string(), timeout }
    } else {
        UpstreamError::Connect { host: host.to_string(), reason: describe(&e) }
    }
}

/// Sends `req` and returns once the head of the answer has arrived: with
/// the process's blocking client for `timeout`, or (see [`drive_in_thread`])
/// driven on this thread by a client built for it (such a process makes one
/// call, perhaps after a token refresh).
pub fn send(
    req: &OutgoingRequest,
    timeout: Duration,
    dev: &DevOverrides,
) -> Result<UpstreamResponse, UpstreamError> {
    if IN_THREAD.load(Ordering::Relaxed) {
        let upstream = Upstream::new(timeout, dev)?;
        let runtime = in_thread_runtime()
            .map_err(|e| UpstreamError::Connect { host: req.host.clone(), reason: e.to_string() })?;
        return runtime.block_on(upstream.send(req, timeout));
    }
    let (method, url, headers) = request_parts(req)?;
    let mut request = client(timeout, dev)?.request(method, url).headers(headers);
    if let Some(body) = &req.body {
        request = request.body(body.clone());
    }
    let response = request.send().map_err(|e| failed(&req.host, timeout, e))?;
    let head = (response.status(), response.headers().clone(), response.content_length());
    answered(&req.host, head, Body::Blocking(response))
}

/// The response whose head is `(status, headers, content_length)`, unless
/// its body is encoded.
fn answered(
    host: &str,
    (status, headers, content_length): (reqwest::StatusCode, HeaderMap, Option<u64>),
    body: Body,
) -> Result<UpstreamResponse, UpstreamError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = header("content-type");
    // Only an uncompressed body can be searched for an echoed secret: aivault
    // asked for one, and refuses to pass on anything else.
    if let Some(encoding) = header("content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity")) {
        return Err(UpstreamError::Encoded { host: host.to_string(), encoding });
    }
    let location = if status.is_redirection() { header("location") } else { None };
    Ok(UpstreamResponse {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        content_type,
        location,
        content_length,
        host: host.to_string(),
        body,
    })
}

/// The query as RFC 3986 says (a space is `%20`, never `+`), which is also
/// how signing providers canonicalise it: AWS Signature Version 4 reads `+`
/// as a plus sign, so a form-encoded space would break the signature.
fn encode_query(pairs: &[(String, String)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The error chain of a reqwest error without its URL.
fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut source = err.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    if parts.is_empty() {
        parts.push(if err.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        });
    }
    parts.join(": ")
}
