//! Getting an upstream answer to the caller: the head first, then the body,
//! with every echoed secret removed. A body that comes in pieces (server-
//! sent events, chunked) is passed on piece by piece as it arrives, unless a
//! policy needs the whole of it (response-block); a secret split across two
//! pieces is still removed ([`StreamRedactor`]).

use super::upstream::{UpstreamError, UpstreamResponse};
use super::{Answer, BrokerError, response};
use crate::redact::{Redactor, StreamRedactor};

/// Where an answer goes as it arrives.
pub trait Sink {
    /// The head: once, before any of the body.
    fn head(&mut self, head: &Head) -> std::io::Result<()>;
    /// A piece of the body.
    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// A whole answer, known at once: the head and the only piece.
    fn whole(&mut self, head: &Head, body: &[u8]) -> std::io::Result<()> {
        self.head(head)?;
        self.chunk(body)
    }
}

/// An answer's head, made safe for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    /// A redirect's target (redacted), which was not followed.
    pub redirect: Option<String>,
    pub credential: String,
}

/// What was delivered, for the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
    /// Whether a secret echoed by upstream was removed.
    pub redacted: bool,
    /// Whether the body was passed on in pieces as it arrived.
    pub streamed: bool,
}

/// Where an answer goes as it arrives, on an async runtime: as [`Sink`],
/// except that a piece of the body may wait for room.
pub trait AsyncSink: Send {
    /// The head: once, before any of the body.
    fn head(&mut self, head: &Head) -> std::io::Result<()>;
    /// A piece of the body.
    fn chunk(&mut self, data: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
    /// A whole answer, known at once: the head and the only piece.
    fn whole(&mut self, head: &Head, body: &[u8]) -> std::io::Result<()>;
}

/// A sink that keeps the whole answer, for callers that want it at once.
#[derive(Debug, Default)]
pub struct Buffer {
    head: Option<Head>,
    body: Vec<u8>,
}

impl Sink for Buffer {
    fn head(&mut self, head: &Head) -> std::io::Result<()> {
        self.head = Some(head.clone());
        Ok(())
    }

    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.body.extend_from_slice(data);
        Ok(())
    }
}

impl Buffer {
    /// The answer this buffer received.
    pub fn into_answer(self, delivered: Delivered) -> Answer {
        let head = self.head.unwrap_or_else(|| Head {
            status: delivered.status,
            reason: String::new(),
            content_type: None,
            redirect: None,
            credential: String::new(),
        });
        Answer {
            status: head.status,
            reason: head.reason,
            content_type: head.content_type,
            redirect: head.redirect,
            body: self.body,
            redacted: delivered.redacted,
            credential: head.credential,
        }
    }
}

/// Limits on one delivery.
pub(super) struct Limits {
    pub capability: String,
    pub max_response: u64,
    pub response_block: Vec<String>,
}

/// What passing an answer on needs once its request is gone: the head
/// made safe, what the body is searched for, and the limits.
pub(super) struct Delivery {
    pub head: Head,
    pub redactor: Redactor,
    pub limits: Limits,
}

/// An answer not yet passed on: a 401 the broker may answer by refreshing
/// the credential's token and trying once more.
pub(super) struct Held {
    pub reply: UpstreamResponse,
    pub delivery: Delivery,
}

impl Held {
    /// Passes the held answer on after all.
    pub(super) fn deliver(self, sink: &mut dyn Sink) -> Result<Delivered, BrokerError> {
        deliver(self.reply, self.delivery, sink)
    }
}

/// How one try of a call ended.
pub(super) enum Attempt {
    /// The answer was passed on.
    Delivered(Delivered),
    /// Upstream said 401, and the answer was held back.
    Unauthorised(Box<Held>),
}

impl Attempt {
    /// The delivery, passing a held answer on now.
    pub(super) fn deliver(self, sink: &mut dyn Sink) -> Result<Delivered, BrokerError> {
        match self {
            Attempt::Delivered(delivered) => Ok(delivered),
            Attempt::Unauthorised(held) => held.deliver(sink),
        }
    }
}

/// Reads `reply`'s body and passes it to `sink`, redacted.
pub(super) fn deliver(
    mut reply: UpstreamResponse,
    Delivery { head, redactor, limits }: Delivery,
    sink: &mut dyn Sink,
) -> Result<Delivered, BrokerError> {
    let (redactor, limits) = (&redactor, &limits);
    let failed = |e: UpstreamError| BrokerError::Upstream(redactor.text(&e.to_string()));
    if !streams(&reply, limits) {
        let (body, truncated) = reply.read_all(limits.max_response).map_err(failed)?;
        let (clean, delivered) = whole(&head, body, truncated, redactor, limits)?;
        sink.whole(&head, &clean).map_err(gone)?;
        return Ok(delivered);
    }
    sink.head(&head).map_err(gone)?;
    let mut pieces = Pieces::new(redactor, limits);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = reply.read_chunk(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        let out = pieces.push(&buf[..n])?;
        if !out.is_empty() {
            sink.chunk(&out).map_err(gone)?;
        }
    }
    let rest = pieces.stream.finish();
    if !rest.is_empty() {
        sink.chunk(&rest).map_err(gone)?;
    }
    Ok(pieces.delivered(&head))
}

/// Bodies up to this size are made safe on the runtime's own thread; a
/// larger one (searching 64 KiB takes tens of microseconds) on a blocking
/// thread, so the runtime's few workers go on serving other calls.
const MADE_SAFE_IN_PLACE: usize = 64 << 10;

/// As [`deliver`], on an async (multi-threaded) runtime.
pub(super) async fn deliver_async(
    mut reply: UpstreamResponse,
    Delivery { head, redactor, limits }: Delivery,
    sink: &mut impl AsyncSink,
) -> Result<Delivered, BrokerError> {
    let failed = |redactor: &Redactor, e: UpstreamError| BrokerError::Upstream(redactor.text(&e.to_string()));
    if !streams(&reply, &limits) {
        let read = reply.read_all_async(limits.max_response).await;
        let (body, truncated) = read.map_err(|e| failed(&redactor, e))?;
        let (clean, delivered) = if truncated || body.len() <= MADE_SAFE_IN_PLACE {
            whole(&head, body, truncated, &redactor, &limits)?
        } else {
            let head = head.clone();
            let made_safe = move || whole(&head, body, truncated, &redactor, &limits);
            match tokio::task::spawn_blocking(made_safe).await {
                Ok(made_safe) => made_safe?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime shutting down cancels it.
                Err(_) => return Err(BrokerError::CallerGone),
            }
        };
        sink.whole(&head, &clean).map_err(gone)?;
        return Ok(delivered);
    }
    sink.head(&head).map_err(gone)?;
    let mut pieces = Pieces::new(&redactor, &limits);
    while let Some(piece) = reply.next_piece().await.map_err(|e| failed(&redactor, e))? {
        let out = pieces.push(&piece)?;
        if !out.is_empty() {
            sink.chunk(&out).await.map_err(gone)?;
        }
    }
    let rest = pieces.stream.finish();
    if !rest.is_empty() {
        sink.chunk(&rest).await.map_err(gone)?;
    }
    Ok(pieces.delivered(&head))
}

fn gone(_: std::io::Error) -> BrokerError {
    BrokerError::CallerGone
}

/// Whether the answer is passed on piece by piece as it arrives: a body
/// that comes in pieces, unless a policy needs the whole of it.
fn streams(reply: &UpstreamResponse, limits: &Limits) -> bool {
    reply.is_stream() && limits.response_block.is_empty()
}

/// A whole body made safe for the caller: echoed secrets removed, then the
/// blocked fields.
fn whole(
    head: &Head,
    body: Vec<u8>,
    truncated: bool,
    redactor: &Redactor,
    limits: &Limits,
) -> Result<(Vec<u8>, Delivered), BrokerError> {
    if truncated {
        return Err(too_large(limits));
    }
    let clean = redactor.bytes(&body);
    let redacted = clean != body;
    let (clean, _) = response::block_fields(clean, &limits.response_block);
    Ok((clean, Delivered { status: head.status, redacted, streamed: false }))
}

fn too_large(limits: &Limits) -> BrokerError {
    BrokerError::ResponseTooLarge { capability: limits.capability.clone(), limit: limits.max_response }
}

/// A body passed on as it arrives: each piece redacted (a secret split
/// across two is still found), the total bounded.
struct Pieces<'r> {
    stream: StreamRedactor<'r>,
    total: u64,
    limits: &'r Limits,
}

impl<'r> Pieces<'r> {
    fn new(redactor: &'r Redactor, limits: &'r Limits) -> Self {
        Pieces { stream: StreamRedactor::new(redactor), total: 0, limits }
    }

    /// What of `data` can be passed on now.
    fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, BrokerError> {
        self.total += data.len() as u64;
        if self.total > self.limits.max_response {
            return Err(too_large(self.limits));
        }
        Ok(self.stream.push(data))
    }

    fn delivered(&self, head: &Head) -> Delivered {
        Delivered { status: head.status, redacted: self.stream.redacted(), streamed: true }
    }
}
