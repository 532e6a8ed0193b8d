//! A call on its way: its request injected and checked, then sent and its
//! answer delivered, then how it ended, for the audit log. The blocking
//! front-ends do all three on one thread ([`Broker::invoke_into`]); an
//! async one (`serve`) has the broker make the request ready on a blocking
//! thread ([`Broker::invoke_until_sent`]), sends it and passes the answer
//! on from its own runtime ([`InFlight::send`]), and has the outcome
//! recorded ([`Broker::land`], or [`Broker::land_all`] for several calls
//! at once): the request and its answer then need no
//! hand-over to a client thread and back. What records the outcome
//! ([`Landing`]) never travels with the request.
//!
//! [`Broker::invoke_into`]: super::Broker::invoke_into
//! [`Broker::invoke_until_sent`]: super::Broker::invoke_until_sent
//! [`Broker::land_all`]: super::Broker::land_all
//! [`Broker::land`]: super::Broker::land

use std::time::{Duration, Instant};

use serde_json::json;

use super::deliver::{self, AsyncSink, Attempt, Delivery, Held, Limits};
use super::upstream::{self, Upstream, UpstreamError, UpstreamResponse};
use super::{BrokerError, Delivered, DevOverrides, Head, Sink};
use crate::plugins::OutgoingRequest;
use crate::redact::{Forms, Needles, Redactor};
use crate::vault::VaultError;

/// How [`Broker::invoke_until_sent`](super::Broker::invoke_until_sent)
/// left a call.
pub enum Flight {
    /// Served whole (or refused, or failed) and its outcome recorded.
    Served(Delivered),
    /// Ready to send; its intent is recorded, and the landing records
    /// its outcome.
    Ready(Box<InFlight>, Landing),
}

/// A call whose intent is recorded and whose request is ready to send.
/// It holds the injected request and what its answer is searched for, and
/// drops (and wipes) them as soon as the request is sent.
pub struct InFlight {
    pub(super) loaded: Loaded,
    pub(super) timeout: Duration,
}

/// What records how a call ended: no secret, no request.
pub struct Landing {
    pub(super) capability: String,
    /// The audit details of its intent (with the intent's sequence number).
    pub(super) details: serde_json::Value,
    pub(super) started: Instant,
}

impl InFlight {
    /// Sends the request on the caller's runtime and passes the answer to
    /// `sink` as it arrives; the outcome is for
    /// [`Broker::land`](super::Broker::land).
    pub async fn send(
        self,
        upstream: &Upstream,
        sink: &mut impl AsyncSink,
    ) -> Result<Delivered, BrokerError> {
        let InFlight { loaded, timeout } = self;
        let reply = match upstream.send(&loaded.request, timeout).await {
            Ok(reply) => reply,
            Err(e) => return Err(loaded.failed(e)),
        };
        let delivery = loaded.sent(&reply);
        deliver::deliver_async(reply, delivery, sink).await
    }

    /// As [`send`](Self::send), on this thread.
    pub(super) fn send_blocking(
        self,
        dev: &DevOverrides,
        sink: &mut dyn Sink,
    ) -> Result<Delivered, BrokerError> {
        let InFlight { loaded, timeout } = self;
        loaded.send_blocking(timeout, dev, false, sink)?.deliver(sink)
    }
}

/// A request with the secrets injected and checked, and what its answer
/// and any error about it are searched for.
pub(super) struct Loaded {
    /// The request as it was before the provider injected anything.
    pub(super) before: OutgoingRequest,
    pub(super) request: OutgoingRequest,
    /// The secrets (and the strings inside a JSON one).
    pub(super) needles: Needles,
    /// The secrets' forms, for the answer.
    pub(super) redactor: Redactor,
    pub(super) credential: String,
    pub(super) limits: Limits,
}

impl Loaded {
    /// Sends on this thread; a 401 is held back instead when `hold_401`.
    pub(super) fn send_blocking(
        self,
        timeout: Duration,
        dev: &DevOverrides,
        hold_401: bool,
        sink: &mut dyn Sink,
    ) -> Result<Attempt, BrokerError> {
        let reply = match upstream::send(&self.request, timeout, dev) {
            Ok(reply) => reply,
            Err(e) => return Err(self.failed(e)),
        };
        let delivery = self.sent(&reply);
        if hold_401 && reply.status == 401 {
            return Ok(Attempt::Unauthorised(Box::new(Held { reply, delivery })));
        }
        deliver::deliver(reply, delivery, sink).map(Attempt::Delivered)
    }

    /// Why the request failed, with every secret removed and every value
    /// the provider injected (an error message may also quote a non-secret
    /// header value, which costs nothing here; found only on failure).
    fn failed(self, e: UpstreamError) -> BrokerError {
        let Loaded { before, request, mut needles, .. } = self;
        for value in request.injected_values(&before) {
            needles.injected(value);
        }
        BrokerError::Upstream(needles.redactor(Forms::Encoded).text(&e.to_string()))
    }

    /// The head of `reply` made safe, keeping only what delivering its body
    /// needs: the injected request and the values are wiped here.
    fn sent(self, reply: &UpstreamResponse) -> Delivery {
        let Loaded { redactor, credential, limits, .. } = self;
        let head = Head {
            status: reply.status,
            reason: reply.reason.clone(),
            content_type: reply.content_type.clone(),
            redirect: reply.location.as_deref().map(|l| redactor.text(l)),
            credential,
        };
        Delivery { head, redactor, limits }
    }
}

impl Landing {
    /// The audit record of how the call ended: its kind and details.
    pub(super) fn record(
        self,
        result: &Result<Delivered, BrokerError>,
    ) -> (&'static str, String, serde_json::Value) {
        let Landing { capability, mut details, started } = self;
        details["durationMs"] = json!(started.elapsed().as_millis() as u64);
        let kind = match result {
            Ok(delivered) => {
                details["status"] = json!(delivered.status);
                details["redacted"] = json!(delivered.redacted);
                if delivered.streamed {
                    details["streamed"] = json!(true);
                }
                "invoke"
            }
            Err(e) => {
                details["reason"] = json!(e.to_string());
                if e.is_refusal() { "invoke.denied" } else { "invoke.failed" }
            }
        };
        (kind, capability, details)
    }
}

/// A call's result once its outcome was written to the audit log, or not:
/// an answer whose outcome could not be recorded is reported as such.
pub(super) fn landed(
    result: Result<Delivered, BrokerError>,
    audit: Result<(), VaultError>,
) -> Result<Delivered, BrokerError> {
    match audit {
        Ok(()) => result,
        Err(audit) => Err(unrecorded(result, audit)),
    }
}

/// What a call that ended with `result` reports when its outcome could
/// not be written (`audit` says why): also when no connection to the
/// vault could be had to write it.
pub fn unrecorded(result: Result<Delivered, BrokerError>, audit: VaultError) -> BrokerError {
    match result {
        Ok(delivered) => BrokerError::OutcomeNotRecorded { status: delivered.status, audit: Box::new(audit) },
        Err(error) => BrokerError::Unaudited { error: Box::new(error), audit: Box::new(audit) },
    }
}
