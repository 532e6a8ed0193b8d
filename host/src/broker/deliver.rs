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
pub(super) struct Limits<'a> {
    pub capability: &'a str,
    pub max_response: u64,
    pub response_block: &'a [String],
}

/// An answer not yet passed on: a 401 the broker may answer by refreshing
/// the credential's token and trying once more.
pub(super) struct Held<'a> {
    pub reply: UpstreamResponse,
    pub head: Head,
    pub redactor: Redactor,
    pub limits: Limits<'a>,
}

impl Held<'_> {
    /// Passes the held answer on after all.
    pub(super) fn deliver(self, sink: &mut dyn Sink) -> Result<Delivered, BrokerError> {
        deliver(self.reply, self.head, &self.redactor, &self.limits, sink)
    }
}

/// How one try of a call ended.
pub(super) enum Attempt<'a> {
    /// The answer was passed on.
    Delivered(Delivered),
    /// Upstream said 401, and the answer was held back.
    Unauthorised(Box<Held<'a>>),
}

impl Attempt<'_> {
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
    head: Head,
    redactor: &Redactor,
    limits: &Limits<'_>,
    sink: &mut dyn Sink,
) -> Result<Delivered, BrokerError> {
    let gone = |_| BrokerError::CallerGone;
    let failed = |e: UpstreamError| BrokerError::Upstream(redactor.text(&e.to_string()));
    let too_large = || BrokerError::ResponseTooLarge {
        capability: limits.capability.to_string(),
        limit: limits.max_response,
    };
    if reply.is_stream() && limits.response_block.is_empty() {
        sink.head(&head).map_err(gone)?;
        let mut stream = StreamRedactor::new(redactor);
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0u64;
        loop {
            let n = reply.read_chunk(&mut buf).map_err(failed)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limits.max_response {
                return Err(too_large());
            }
            let out = stream.push(&buf[..n]);
            if !out.is_empty() {
                sink.chunk(&out).map_err(gone)?;
            }
        }
        let rest = stream.finish();
        if !rest.is_empty() {
            sink.chunk(&rest).map_err(gone)?;
        }
        return Ok(Delivered { status: head.status, redacted: stream.redacted(), streamed: true });
    }
    let (body, truncated) = reply.read_all(limits.max_response).map_err(failed)?;
    if truncated {
        return Err(too_large());
    }
    let clean = redactor.bytes(&body);
    let redacted = clean != body;
    let (clean, _) = response::block_fields(clean, limits.response_block);
    sink.whole(&head, &clean).map_err(gone)?;
    Ok(Delivered { status: head.status, redacted, streamed: false })
}
