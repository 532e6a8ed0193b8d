//! Passing an answer on as it arrives: the broker runs on a blocking thread
//! and hands the head over once (or a refusal instead), then the body's
//! pieces over a bounded channel that the HTTP response body reads. A
//! client that goes away closes the channel, which stops the call.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{mpsc, oneshot};

use super::routes::Reply;
use crate::broker::{Head, Sink};

/// What the handler learns first: a whole reply (a refusal, or an answer
/// that was not streamed), or the head of one that follows in pieces.
pub(super) enum Start {
    Whole(Reply),
    Streamed { status: u16, content_type: Option<String> },
}

/// The blocking side: the broker's sink.
pub(super) struct ChannelSink {
    start: Option<oneshot::Sender<Start>>,
    pieces: mpsc::Sender<Bytes>,
}

/// The async side: the response body.
pub(super) struct ChannelBody {
    pieces: mpsc::Receiver<Bytes>,
}

/// A connected pair, and the receiver of the start.
pub(super) fn channel() -> (ChannelSink, oneshot::Receiver<Start>, ChannelBody) {
    let (start_tx, start_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(16);
    (ChannelSink { start: Some(start_tx), pieces: tx }, start_rx, ChannelBody { pieces: rx })
}

impl ChannelSink {
    /// Ends the exchange with `reply` if the head was not sent yet.
    pub(super) fn finish(&mut self, reply: Reply) {
        if let Some(start) = self.start.take() {
            let _ = start.send(Start::Whole(reply));
        }
    }
}

impl Sink for ChannelSink {
    fn head(&mut self, head: &Head) -> std::io::Result<()> {
        let start = self.start.take().ok_or_else(|| std::io::Error::other("head sent twice"))?;
        start
            .send(Start::Streamed { status: head.status, content_type: head.content_type.clone() })
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.pieces
            .blocking_send(Bytes::copy_from_slice(data))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.pieces.poll_recv(cx).map(|piece| piece.map(|data| Ok(Frame::data(data))))
    }
}
