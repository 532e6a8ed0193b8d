//! The CLI's side of the socket.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{self, Pong, Request, Response};

/// A daemon that answered at `path`.
pub struct Client {
    path: PathBuf,
}

/// Why a request to the daemon failed (it is not the daemon's refusal,
/// which comes back as [`Response::Error`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot talk to aivaultd at {}: {source}", path.display())]
pub struct ClientError {
    path: PathBuf,
    source: std::io::Error,
}

/// Why an invocation through the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Socket(#[from] ClientError),
    /// The daemon's own one line (a refusal, or the call's failure).
    #[error("{0}")]
    Refused(String),
    #[error("cannot write the answer: {0}")]
    Output(std::io::Error),
}

impl Client {
    /// A client for the socket at `path`, if a file is there.
    pub fn at(path: &Path) -> Option<Self> {
        path.exists().then(|| Client { path: path.to_path_buf() })
    }

    /// The first of `paths` where a daemon answers.
    pub fn find(paths: &[PathBuf]) -> Option<(Self, Pong)> {
        paths.iter().filter_map(|p| Client::at(p)).find_map(|c| c.ping().ok().map(|pong| (c, pong)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One request, one response.
    pub fn request(&self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        let err = |source| ClientError { path: self.path.clone(), source };
        let mut stream = UnixStream::connect(&self.path).map_err(err)?;
        stream.set_read_timeout(Some(timeout)).map_err(err)?;
        protocol::write(&mut stream, request).map_err(err)?;
        protocol::read(&mut stream).map_err(err)
    }

    /// Sends an invocation and passes its answer to `sink` as it arrives;
    /// returns whether a secret echoed by upstream was removed.
    pub fn invoke(
        &self,
        request: &Request,
        timeout: Duration,
        sink: &mut dyn crate::broker::Sink,
    ) -> Result<bool, InvokeError> {
        let err = |source| ClientError { path: self.path.clone(), source };
        let mut stream = UnixStream::connect(&self.path).map_err(err)?;
        stream.set_read_timeout(Some(timeout)).map_err(err)?;
        protocol::write(&mut stream, request).map_err(err)?;
        loop {
            match protocol::read::<Response>(&mut stream).map_err(err)? {
                Response::Head(head) => sink.head(&head.into()).map_err(InvokeError::Output)?,
                Response::Chunk { data } => {
                    let data = protocol::unchunk(&data).map_err(InvokeError::Refused)?;
                    sink.chunk(&data).map_err(InvokeError::Output)?;
                }
                Response::End { redacted } => return Ok(redacted),
                Response::Error { message } => return Err(InvokeError::Refused(message)),
                _ => return Err(InvokeError::Refused("aivaultd gave an unexpected answer".into())),
            }
        }
    }

    /// Whether it runs, and what it takes us for.
    pub fn ping(&self) -> Result<Pong, ClientError> {
        match self.request(&Request::Ping, Duration::from_secs(5))? {
            Response::Pong(pong) => Ok(pong),
            _ => Err(ClientError {
                path: self.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected answer to ping"),
            }),
        }
    }
}
