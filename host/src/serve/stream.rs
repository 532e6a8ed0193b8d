//! Passing an answer on as it arrives: the broker runs on a blocking thread
//! and hands the head over once (or a refusal instead), then the body's
//! pieces over a bounded channel that the HTTP response body reads. A
//! client that goes away closes the channel, and one that stops reading
//! fills it: either stops the call. A call that fails after its head was
//! sent aborts the response, so a cut-off body never looks complete.
//! An answer read whole (not streamed) goes out at once with its length,
//! before the call's outcome is written to the audit log: its intent was
//! written before it was sent, and the client need not wait for the rest.
//!
//! A call the broker has made ready to send comes back to the async side
//! instead ([`Start::Fly`]): its request is sent and its answer passed on
//! from the server's runtime, through the same channel, and the result and
//! the sink go to whoever records the outcome ([`Then`]), which aborts the
//! answer if that fails.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{mpsc, oneshot};

use super::recorder::ToRecord;
use super::routes::Reply;
use crate::broker::{AsyncSink, BrokerError, Delivered, Head, InFlight, Sink};

/// What the handler learns first: a whole reply (a refusal, or an answer
/// that was not streamed), the head of one that follows in pieces, or a
/// call ready to send from the server's runtime.
pub(super) enum Start {
    Whole(Reply),
    Streamed { status: u16, content_type: Option<String> },
    Fly(Box<Takeoff>),
}

/// A call ready to send, the body's channel, and where its result goes.
pub(super) struct Takeoff {
    pub(super) flight: Box<InFlight>,
    pub(super) pieces: mpsc::Sender<Piece>,
    pub(super) then: Then,
}

/// Where a flight's result goes.
pub(super) enum Then {
    /// Back to the thread that made the call ready, which records it.
    Back(oneshot::Sender<Flown>),
    /// To the recorder.
    Record(ToRecord),
}

/// How a flight went, and its sink (whose answer may still be going).
pub(super) type Flown = (Result<Delivered, BrokerError>, ChannelSink);

fn failed_after_it_began() -> std::io::Error {
    std::io::Error::other("the call failed after its answer began")
}

/// How long a client may leave the answer unread before the call stops.
const STALL: Duration = Duration::from_secs(60);

pub(super) type Piece = Result<Bytes, std::io::Error>;

/// The side the answer comes from: the broker's sink on a blocking thread,
/// or a flight's on the server's runtime.
pub(super) struct ChannelSink {
    start: Option<oneshot::Sender<Start>>,
    pieces: mpsc::Sender<Piece>,
}

/// The async side: the response body.
pub(super) struct ChannelBody {
    pieces: mpsc::Receiver<Piece>,
}

/// A connected pair, and the receiver of the start.
pub(super) fn channel() -> (ChannelSink, oneshot::Receiver<Start>, ChannelBody) {
    let (start_tx, start_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(16);
    (ChannelSink { start: Some(start_tx), pieces: tx }, start_rx, ChannelBody { pieces: rx })
}

impl ChannelSink {
    /// The sink of a flight whose answer goes through `pieces`, and the
    /// receiver of its start.
    pub(super) fn flying(pieces: mpsc::Sender<Piece>) -> (Self, oneshot::Receiver<Start>) {
        let (start_tx, start_rx) = oneshot::channel();
        (ChannelSink { start: Some(start_tx), pieces }, start_rx)
    }

    /// Hands `flight` to the async side to send (the exchange goes on
    /// there); how it went comes back on the receiver, which closes if the
    /// client went away before its answer began.
    pub(super) fn fly(&mut self, flight: Box<InFlight>) -> oneshot::Receiver<Flown> {
        let (done, flown) = oneshot::channel();
        self.take_off(flight, Then::Back(done));
        flown
    }

    /// Hands `flight` to the async side to send; how it went goes to the
    /// recorder, given this sink for a flight that never ends.
    pub(super) fn fly_then_record(mut self, flight: Box<InFlight>, to: impl FnOnce(Self) -> ToRecord) {
        let rest = ChannelSink { start: None, pieces: self.pieces.clone() };
        self.take_off(flight, Then::Record(to(rest)));
    }

    fn take_off(&mut self, flight: Box<InFlight>, then: Then) {
        if let Some(start) = self.start.take() {
            let _ = start.send(Start::Fly(Box::new(Takeoff { flight, pieces: self.pieces.clone(), then })));
        }
    }

    /// Ends the exchange with `reply` if the head was not sent yet; after
    /// it was, aborts the response instead.
    pub(super) fn fail(&mut self, reply: Reply) {
        match self.start.take() {
            Some(start) => {
                let _ = start.send(Start::Whole(reply));
            }
            None => {
                let _ = self.send(Err(failed_after_it_began()));
            }
        }
    }

    /// As [`fail`](Self::fail), never waiting on this thread: an answer
    /// already going whose channel is full (a client not reading keeps it
    /// so for up to a minute) is aborted from a thread of its own.
    pub(super) fn fail_without_waiting(mut self, reply: Reply) {
        if self.start.is_some() {
            return self.fail(reply);
        }
        if let Err(TrySendError::Full(_)) = self.pieces.try_send(Err(failed_after_it_began())) {
            let _ = std::thread::Builder::new().name("aivault-abort".into()).spawn(move || self.fail(reply));
        }
    }

    /// The call ended well: the answer is complete (dropping the sink ends
    /// the body), or there never was one to pass on.
    pub(super) fn ended(&mut self) {
        if self.start.is_some() {
            self.fail(Reply::error(hyper::StatusCode::BAD_GATEWAY, "upstream sent no answer"));
        }
    }

    /// Queues `piece`, waiting at most [`STALL`] for room.
    fn send(&mut self, mut piece: Piece) -> std::io::Result<()> {
        let deadline = Instant::now() + STALL;
        loop {
            match self.pieces.try_send(piece) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => return Err(std::io::ErrorKind::BrokenPipe.into()),
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    piece = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return Err(std::io::ErrorKind::TimedOut.into()),
            }
        }
    }

    /// Queues `piece` on the server's runtime, waiting at most [`STALL`].
    async fn send_async(&mut self, piece: Piece) -> std::io::Result<()> {
        match self.pieces.send_timeout(piece, STALL).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(std::io::ErrorKind::BrokenPipe.into()),
            Err(SendTimeoutError::Timeout(_)) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    fn start(&mut self, start: Start) -> std::io::Result<()> {
        let sender = self.start.take().ok_or_else(|| std::io::Error::other("head sent twice"))?;
        sender.send(start).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    fn streamed(&mut self, head: &Head) -> std::io::Result<()> {
        self.start(Start::Streamed { status: head.status, content_type: head.content_type.clone() })
    }

    fn whole_reply(&mut self, head: &Head, body: &[u8]) -> std::io::Result<()> {
        let status = hyper::StatusCode::from_u16(head.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
        self.start(Start::Whole(Reply::answer(
            status,
            head.content_type.clone(),
            Bytes::copy_from_slice(body),
        )))
    }
}

impl Sink for ChannelSink {
    fn head(&mut self, head: &Head) -> std::io::Result<()> {
        self.streamed(head)
    }

    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.send(Ok(Bytes::copy_from_slice(data)))
    }

    fn whole(&mut self, head: &Head, body: &[u8]) -> std::io::Result<()> {
        self.whole_reply(head, body)
    }
}

impl AsyncSink for ChannelSink {
    fn head(&mut self, head: &Head) -> std::io::Result<()> {
        self.streamed(head)
    }

    async fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.send_async(Ok(Bytes::copy_from_slice(data))).await
    }

    fn whole(&mut self, head: &Head, body: &[u8]) -> std::io::Result<()> {
        self.whole_reply(head, body)
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.pieces.poll_recv(cx).map(|piece| piece.map(|piece| piece.map(Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An answer already going whose channel is full (its client not
    // reading) is still aborted, not ended as if complete, and the thread
    // aborting it (the recorder, which every other call's outcome waits
    // behind) does not wait for the client to read.
    #[test]
    fn an_answer_going_is_aborted_without_waiting_for_its_client() {
        let (mut sink, _start, mut body) = channel();
        let _head_sent = sink.start.take();
        let mut queued = 0;
        while sink.pieces.try_send(Ok(Bytes::from_static(b"piece"))).is_ok() {
            queued += 1;
        }
        sink.fail_without_waiting(Reply::error(hyper::StatusCode::BAD_GATEWAY, "not recorded"));
        for _ in 0..queued {
            assert!(body.pieces.blocking_recv().unwrap().is_ok());
        }
        assert!(body.pieces.blocking_recv().unwrap().is_err(), "the answer ended as if complete");
    }
}
