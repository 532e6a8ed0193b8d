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

/// A process listening where aivaultd should be, run by someone who may
/// not be handed key material or calls.
#[derive(Debug, thiserror::Error)]
#[error(
    "it runs as uid {uid}, which is neither you, root, nor the owner of the socket's directory; nothing was sent to it"
)]
struct Untrusted {
    uid: u32,
}

impl ClientError {
    /// Whether the daemon was refused as untrusted (not merely absent).
    pub fn untrusted(&self) -> bool {
        self.source.get_ref().is_some_and(|inner| inner.is::<Untrusted>())
    }
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

    /// A connection to the daemon, once it is known to run as someone we
    /// may hand key material and call arguments to.
    fn connect(&self, timeout: Duration) -> Result<UnixStream, ClientError> {
        let err = |source| ClientError { path: self.path.clone(), source };
        let stream = UnixStream::connect(&self.path).map_err(err)?;
        let uid = peer_uid(&stream).map_err(err)?;
        if !trusted_daemon(uid, &self.path) {
            return Err(err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, Untrusted { uid })));
        }
        stream.set_read_timeout(Some(timeout)).map_err(err)?;
        Ok(stream)
    }

    /// One request, one response.
    pub fn request(&self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        let err = |source| ClientError { path: self.path.clone(), source };
        let mut stream = self.connect(timeout)?;
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
        let mut stream = self.connect(timeout)?;
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

/// Whether a daemon running as `uid` behind `socket` may be trusted: it is
/// us, root, or the owner of the socket's directory when nobody else can
/// create files there (`aivault setup agent-access` makes it so). Anyone
/// else listening there could be an impostor collecting key material.
fn trusted_daemon(uid: u32, socket: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if uid == crate::unixuser::current_uid() || uid == 0 {
        return true;
    }
    let Some(dir) = socket.parent().and_then(|dir| std::fs::metadata(dir).ok()) else { return false };
    dir.uid() == uid && dir.mode() & 0o022 == 0
}

/// The uid of the process at the other end of `stream`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the size passed, and
    // the descriptor is open for as long as `stream` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The uid of the process at the other end of `stream`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: both out-pointers are valid; the descriptor is open.
    if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(uid)
}
