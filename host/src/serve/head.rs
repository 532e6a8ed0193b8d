//! A connection's first request head, read and checked before hyper sees
//! it, so malformed HTTP is refused like everything else `serve` refuses:
//! a status and one line of JSON (hyper's own answer would be an empty
//! 400). A valid head is handed on, unread, with the rest of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest request head accepted (hyper's buffer is the same size).
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields a request may have.
const MAX_HEADERS: usize = 100;

/// What the first head turned out to be.
pub(super) enum FirstHead {
    /// A well-formed head: these bytes (it and anything after it) come first.
    Valid(Bytes),
    /// Refused: the answer is sent and the connection closed.
    Refused,
    /// The client left before sending a whole head.
    Gone,
}

/// Reads until a whole head has arrived (within `timeout`), answers a
/// malformed or oversized one, and returns what was read.
pub(super) async fn first_head(stream: &mut TcpStream, timeout: Duration) -> FirstHead {
    let (status, reason) = match tokio::time::timeout(timeout, read_head(stream)).await {
        Ok(Ok(Some(bytes))) => return FirstHead::Valid(bytes),
        Ok(Ok(None)) => return FirstHead::Gone,
        Ok(Err(Refusal(status, reason))) => (status, reason),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("the request head did not arrive within {} s", timeout.as_secs()),
        ),
    };
    let body = serde_json::json!({ "error": reason }).to_string();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
    FirstHead::Refused
}

/// Why a head is refused: the status and the reason given.
struct Refusal(StatusCode, String);

/// The head and whatever followed it in the same reads; `Ok(None)` if the
/// stream ended (or failed) first, leaving nobody to answer.
async fn read_head(stream: &mut TcpStream) -> Result<Option<Bytes>, Refusal> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Request::new(&mut headers).parse(&buf) {
            Ok(httparse::Status::Complete(_)) => return Ok(Some(buf.freeze())),
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                let reason = format!("the request head is larger than {} KiB", MAX_HEAD / 1024);
                return Err(Refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, reason));
            }
            Err(httparse::Error::TooManyHeaders) => {
                let reason = format!("the request has more than {MAX_HEADERS} header fields");
                return Err(Refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, reason));
            }
            Err(e) => {
                let reason = format!("malformed HTTP request: {e}");
                return Err(Refusal(StatusCode::BAD_REQUEST, reason));
            }
        }
    }
}

/// The stream with bytes already read put back in front.
pub(super) struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl Rewind {
    pub(super) fn new(prefix: Bytes, inner: TcpStream) -> Self {
        Rewind { prefix, inner }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
