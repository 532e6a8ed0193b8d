//! `aivault serve`: a local HTTP front-end, so agents and unmodified HTTP
//! SDKs can call capabilities without shelling out. Every request carries a
//! proxy token (`aivault token create`), which fixes what it may call, in
//! which context and as which consumer; the request's own flags never widen
//! that. Each call goes through the one [`Broker`](crate::broker::Broker),
//! so policy, resolution, redaction and audit are the CLI's.
//!
//! - `POST /aivault/invoke`: the JSON envelope of `invoke --request`, plus
//!   `capability` (and optional `credential`);
//! - `/v/<provider-or-credential>/<upstream path>`: a passthrough an SDK can
//!   use as its base URL, with a proxy token where it would put its API key;
//! - `GET /aivault/capabilities`: what the token may call.
//!
//! Loopback only unless the operator says otherwise, with a reason.

mod passthrough;
mod routes;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::broker::DevOverrides;
use crate::registry::Registry;
use crate::vault::{KeyCache, Vault, VaultError};

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Why a non-loopback address is acceptable; required for one.
    pub allow_remote: Option<String>,
    /// Calls being served at once; more wait (up to `queue_timeout`).
    pub max_concurrent: usize,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// How long one upstream call may take.
    pub timeout: Duration,
    /// How long a request waits for a free slot before a 503.
    pub queue_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            allow_remote: None,
            max_concurrent: 64,
            max_body_bytes: 16 << 20,
            timeout: Duration::from_secs(120),
            queue_timeout: Duration::from_secs(30),
        }
    }
}

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(
        "{0} is not a loopback address; pass --allow-remote \"<reason>\" to expose aivault serve beyond this machine"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the server: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// What every request handler shares: the vault (each call opens its own
/// connection, sharing the unlocked key), the registry and the limits.
pub struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) keys: KeyCache,
    pub(crate) registry: Registry,
    pub(crate) dev: DevOverrides,
    pub(crate) options: ServeOptions,
    permits: Arc<Semaphore>,
}

impl Shared {
    /// Everything a server needs; the vault is unlocked here (a passphrase
    /// is asked once, at start), so no request waits for a prompt.
    pub fn new(
        dir: PathBuf,
        keys: KeyCache,
        registry: Registry,
        dev: DevOverrides,
        options: ServeOptions,
    ) -> Result<Self, ServeError> {
        Vault::open_with(&dir, keys.clone())?.unlock()?;
        let permits = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        Ok(Shared { dir, keys, registry, dev, options, permits })
    }
}

/// Serves until SIGTERM or SIGINT, then stops accepting and waits for the
/// calls in flight (their audit records included). `ready` is told the
/// address actually bound (the port, when asked for port 0).
pub fn run(shared: Shared, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let addr = shared.options.listen;
    if !addr.ip().is_loopback() && shared.options.allow_remote.is_none() {
        return Err(ServeError::NotLoopback(addr));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(shared.options.max_concurrent.max(1) + 4)
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(ServeError::Runtime)?;
        ready(local);
        let shared = Arc::new(shared);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((stream, _peer)) = accepted else { continue };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            routes::handle(Arc::clone(&shared), req)
                        });
                        // A client gets 30 s to send its headers, so a slow or
                        // silent one holds a connection, never a call slot.
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(30))
                            .keep_alive(true)
                            .max_buf_size(64 * 1024)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
        // Wait for every call in flight: taking all the slots means none runs.
        let all = u32::try_from(shared.options.max_concurrent.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(60), shared.permits.acquire_many(all)).await;
        Ok(())
    })
}

/// SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The registry and broker are shared by every request thread.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Shared>();
};
