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

mod admission;
mod api;
mod head;
mod mcp;
mod passthrough;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use passthrough::check_parse as check_passthrough_parse;
mod recorder;
mod routes;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use self::head::FirstHead;
use self::recorder::Recorder;

use crate::broker::{DevOverrides, Upstream, UpstreamError};
use crate::registry::Registry;
use crate::vault::{KeyCache, Vault, VaultError, VaultPool};

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
    /// Also serve MCP on Streamable HTTP at `/mcp`.
    pub mcp: bool,
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
            mcp: false,
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
    #[error("cannot set up the client for upstream: {0}")]
    Upstream(#[from] UpstreamError),
}

/// What every request handler shares: the vault (connections pooled, all
/// sharing the unlocked key), the registry and the limits.
pub struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) dev: DevOverrides,
    pub(crate) options: ServeOptions,
    permits: Arc<Semaphore>,
    /// Held by the one call made on the server's own thread (see
    /// [`Shared::own_thread_turn`]).
    own_thread: Arc<Semaphore>,
    /// Connections kept open between calls.
    pub(crate) vaults: Arc<VaultPool>,
    /// Requests to upstream, sent from the server's runtime over
    /// connections kept open between calls.
    pub(crate) upstream: Upstream,
    /// The MCP services, with `--mcp`.
    pub(crate) mcp: Option<Arc<mcp::McpEndpoint>>,
    /// Writes the outcomes of calls sent from the runtime.
    recorder: Arc<Recorder>,
    /// Connections served at once, by every thread; more are closed at once.
    connection_slots: Arc<Semaphore>,
    /// The connections open through this, all of them served on one
    /// thread of its own (see [`run`]).
    connections_here: AtomicUsize,
    /// The few blocking threads that do the vault work of calls which wait
    /// on nothing else (see [`Shared::spawn_blocking`]), shared by the
    /// serving threads; `None` until [`Serving::start`].
    calls_pool: Option<tokio::runtime::Handle>,
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
        Self::in_daemon(dir, keys, Arc::new(registry), dev, options)
    }

    /// For a server inside aivaultd: the daemon's key, unlocked or not (a
    /// locked daemon answers 503 until `aivault unlock`).
    pub fn in_daemon(
        dir: PathBuf,
        keys: KeyCache,
        registry: Arc<Registry>,
        dev: DevOverrides,
        options: ServeOptions,
    ) -> Result<Self, ServeError> {
        let permits = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        let mcp = options.mcp.then(Arc::default);
        let vaults = VaultPool::keeping(dir, keys, options.max_concurrent)?;
        let upstream = Upstream::new(options.timeout, &dev)?;
        let own_thread = Arc::new(Semaphore::new(1));
        let recorder = Recorder::start(Arc::clone(&vaults), Arc::clone(&registry), dev.clone())
            .map_err(ServeError::Runtime)?;
        Ok(Shared {
            recorder,
            registry,
            dev,
            options,
            permits,
            vaults,
            upstream,
            mcp,
            own_thread,
            connection_slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            connections_here: AtomicUsize::new(0),
            calls_pool: None,
        })
    }

    /// What a thread serving connections of its own shares with the
    /// others: everything but its client for upstream, whose connections
    /// are driven by the runtime that opened them (one shared between
    /// threads would hand each request to another thread and back).
    fn for_a_thread(&self) -> Result<Self, ServeError> {
        Ok(Shared {
            registry: Arc::clone(&self.registry),
            dev: self.dev.clone(),
            options: self.options.clone(),
            permits: Arc::clone(&self.permits),
            vaults: Arc::clone(&self.vaults),
            upstream: Upstream::new(self.options.timeout, &self.dev)?,
            mcp: self.mcp.clone(),
            recorder: Arc::clone(&self.recorder),
            own_thread: Arc::clone(&self.own_thread),
            connection_slots: Arc::clone(&self.connection_slots),
            connections_here: AtomicUsize::new(0),
            calls_pool: self.calls_pool.clone(),
        })
    }

    /// Runs `work` on a blocking thread: one of the calls' few if it
    /// `waits` on the vault alone, else one of the runtime's (a thread per
    /// call slot), so that calls held up by upstream can never take every
    /// thread from the others.
    pub(crate) fn spawn_blocking<T: Send + 'static>(
        &self,
        waits: Waits,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        match (&self.calls_pool, waits) {
            (Some(pool), Waits::OnVaultAlone) => pool.spawn_blocking(work),
            _ => tokio::task::spawn_blocking(work),
        }
    }

    /// What a call to `/v/<name>/…` may wait on before its request is
    /// ready: the vault and the CPU alone when `name` is a provider none of
    /// whose credential kinds derives values. Refreshing one is a request
    /// of its own, after which the call is sent and answered whole from its
    /// blocking thread; and a credential's id names no provider before the
    /// vault is read.
    pub(crate) fn call_waits(&self, name: &str) -> Waits {
        let derives =
            |kinds: &[crate::plugins::CredentialKind]| kinds.iter().any(|kind| !kind.derived.is_empty());
        match self.registry.provider(name) {
            Ok(provider) if !derives(&provider.manifest().credential_kinds) => Waits::OnVaultAlone,
            _ => Waits::OnUpstreamToo,
        }
    }

    /// The turn to make a call that `waits` as [`Shared::call_waits`] says
    /// on the server's own thread (see `routes::on_this_thread`): when no
    /// other call is in flight, none is made there already, the vault's
    /// connections can be used there (SQLite's), and the call waits on
    /// nothing else.
    fn own_thread_turn(&self, waits: Waits) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if !self.vaults.usable_on_async_threads() || waits != Waits::OnVaultAlone {
            return None;
        }
        // A call made on a thread of its own holds up every connection
        // that thread serves: only the caller's may be waiting on it.
        if self.connections_here.load(Ordering::Relaxed) > 1 {
            return None;
        }
        let turn = Arc::clone(&self.own_thread).try_acquire_owned().ok()?;
        (self.permits.available_permits() == self.options.max_concurrent.max(1)).then_some(turn)
    }
}

/// Serves until SIGTERM or SIGINT, then stops accepting and waits for the
/// calls in flight (their audit records included). `ready` is told the
/// address actually bound (the port, when asked for port 0).
///
/// Two threads accept connections from the one listener, each with a
/// runtime and a client for upstream of its own, so a request, its call's
/// flight to upstream and its answer stay on the thread that accepted it.
/// With one runtime's two threads sharing every task, the two switched
/// about six times a call between them (a call alone needs two waits:
/// for the client, for upstream), each switch a wake-up of the other
/// thread; one client's calls back to back went 41–74% faster this way
/// (BENCHMARKS.md, session 29). The vault work of most calls runs on a
/// few blocking threads the two share ([`call_threads`]); a call that
/// waits on upstream from its blocking thread takes one of its own
/// runtime's. Outcomes are written by one recorder thread
/// (`serve/recorder.rs`).
pub fn run(shared: Shared, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    crate::memory::fewer_malloc_arenas();
    // This thread only waits for a signal.
    let signals =
        tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(ServeError::Runtime)?;
    // Listening for signals before anyone can know the server is up.
    let mut shutdown = signals.block_on(async { Shutdown::new() }).map_err(ServeError::Runtime)?;
    let listener = signals.block_on(bind(&shared.options))?.into_std().map_err(ServeError::Runtime)?;
    let serving = Serving::start(shared, &listener)?;
    ready(listener.local_addr().map_err(ServeError::Runtime)?);
    signals.block_on(shutdown.recv());
    drop(serving);
    Ok(())
}

/// `serve`'s serving threads and the threads for calls' vault work (see
/// [`run`]), serving until dropped; dropping stops them accepting and
/// waits for the calls in flight, their outcomes recorded. Not to be
/// dropped on a runtime's thread (it waits, and ends a runtime).
pub struct Serving {
    /// Each serving thread, and what tells it to stop.
    threads: Vec<(std::thread::JoinHandle<()>, Arc<tokio::sync::Notify>)>,
    /// Ended once the serving threads have, when nothing is left to run.
    _calls_pool: tokio::runtime::Runtime,
}

impl Serving {
    /// Starts serving the connections `listener` accepts.
    pub fn start(mut shared: Shared, listener: &std::net::TcpListener) -> Result<Self, ServeError> {
        // A runtime only for its pool of blocking threads; nothing drives it.
        let calls_pool = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(call_threads())
            .thread_name("aivault-call")
            .build()
            .map_err(ServeError::Runtime)?;
        shared.calls_pool = Some(calls_pool.handle().clone());
        let mut each = vec![shared];
        while each.len() < SERVING_THREADS {
            each.push(each[0].for_a_thread()?);
        }
        let mut serving = Serving { threads: Vec::new(), _calls_pool: calls_pool };
        for shared in each {
            let stop = Arc::new(tokio::sync::Notify::new());
            // On an error the threads started so far are stopped as it drops.
            serving.threads.push((serving_thread(listener, shared, Arc::clone(&stop))?, stop));
        }
        Ok(serving)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        for (_, stop) in &self.threads {
            stop.notify_one();
        }
        for (thread, _) in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Threads serving connections, each on a runtime of its own.
const SERVING_THREADS: usize = 2;

/// What a blocking task may wait on, which picks its thread (see
/// [`Shared::spawn_blocking`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waits {
    /// The vault and the CPU alone: checks, the intent's commit, the
    /// provider's inject (bounded by its CPU budget).
    OnVaultAlone,
    /// Upstream too (a call sent whole from its blocking thread).
    OnUpstreamToo,
}

/// How many threads do the vault work of calls: two a core, one at work
/// while another waits for the commit of its intent. That work is CPU and
/// short waits, and more threads only take turns on the cores: with one
/// per call slot (90-odd under 64 clients) `serve` held 11–12 MiB more and
/// made 6–10% fewer requests a second at 64 clients in five of six
/// same-run rounds (BENCHMARKS.md, session 31).
fn call_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (2 * cores).max(4)
}

/// A thread with a runtime of its own, accepting from `listener` until
/// `stop` is notified and then waiting for the calls in flight.
fn serving_thread(
    listener: &std::net::TcpListener,
    shared: Shared,
    stop: Arc<tokio::sync::Notify>,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(shared.options.max_concurrent.max(1) + 4)
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = {
        let _inside = runtime.enter();
        TcpListener::from_std(listener.try_clone().map_err(ServeError::Runtime)?)
            .map_err(ServeError::Runtime)?
    };
    std::thread::Builder::new()
        .name("aivault-serve".into())
        .spawn(move || runtime.block_on(accept(listener, Arc::new(shared), stop)))
        .map_err(ServeError::Runtime)
}

/// Binds the listener, loopback only unless the options give a reason.
pub async fn bind(options: &ServeOptions) -> Result<TcpListener, ServeError> {
    let addr = options.listen;
    if !addr.ip().is_loopback() && options.allow_remote.is_none() {
        return Err(ServeError::NotLoopback(addr));
    }
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })
}

/// Accepts and serves connections until `stop` is notified, then waits for
/// the calls in flight: each is bounded by its own timeouts (upstream, and
/// a client that stops reading), so this ends.
async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: Arc<tokio::sync::Notify>) {
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors, say: wait, do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let Ok(connection) = Arc::clone(&shared.connection_slots).try_acquire_owned() else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _connection = connection;
                    serve_connection(shared, stream).await;
                });
            }
        }
    }
    let all = u32::try_from(shared.options.max_concurrent.max(1)).unwrap_or(u32::MAX);
    let _ = shared.permits.acquire_many(all).await;
}

/// One client connection, its requests kept alive until it closes it.
async fn serve_connection(shared: Arc<Shared>, mut stream: tokio::net::TcpStream) {
    let _open = Open::counted(&shared);
    // An answer goes out as a head and then body pieces: with Nagle's
    // algorithm on, each piece after the first waits for the client's
    // (delayed) acknowledgement, 40 ms a request on Linux.
    let _ = stream.set_nodelay(true);
    // The first head is checked here, so malformed HTTP gets a JSON reason;
    // hyper parses the ones after it on a kept-alive connection.
    let FirstHead::Valid(read) = head::first_head(&mut stream, HEAD_TIMEOUT).await else { return };
    let service = hyper::service::service_fn(move |req| routes::handle(Arc::clone(&shared), req));
    // A client gets 30 s to send each head, so a slow or silent one holds a
    // connection, never a call slot.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(head::MAX_HEAD)
        .serve_connection(TokioIo::new(head::Rewind::new(read, stream)), service)
        .await;
}

/// A connection counted in [`Shared::connections_here`] while it is open.
struct Open(Arc<Shared>);

impl Open {
    fn counted(shared: &Arc<Shared>) -> Self {
        shared.connections_here.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(shared))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_here.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a client has to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;

/// SIGTERM or SIGINT, listened for from creation on.
pub(crate) struct Shutdown {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub(crate) fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Shutdown { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// The registry and broker are shared by every request thread.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Shared>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{Runtime, SandboxLimits};

    // A call is made on the server's own thread only while no other call
    // is in flight and none is made there already (on a thread serving
    // connections of its own, none but the caller's open), and never for a
    // provider whose kinds refresh values (a request of their own, sent
    // from a blocking thread) or a name that is not a provider's.
    #[test]
    fn the_own_thread_takes_one_call_and_only_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let registry =
            Registry::load_builtin(&Runtime::new(SandboxLimits::default(), None).unwrap()).unwrap();
        let options = ServeOptions::default();
        let dev = DevOverrides::default();
        let shared =
            Shared::in_daemon(dir.path().into(), KeyCache::default(), Arc::new(registry), dev, options)
                .unwrap();
        let turn_for = |shared: &Shared, name: &str| shared.own_thread_turn(shared.call_waits(name));
        let turn = turn_for(&shared, "openai").expect("an idle server takes a call on its thread");
        assert!(turn_for(&shared, "openai").is_none(), "a second call on the server's thread");
        drop(turn);
        assert!(turn_for(&shared, "google-calendar").is_none(), "a provider that refreshes tokens");
        assert!(turn_for(&shared, "cred_4f2a").is_none(), "a credential's id");
        // The same rule picks the threads a call's vault work runs on.
        assert_eq!(shared.call_waits("openai"), Waits::OnVaultAlone);
        assert_eq!(shared.call_waits("google-calendar"), Waits::OnUpstreamToo);
        assert_eq!(shared.call_waits("cred_4f2a"), Waits::OnUpstreamToo);
        let slot = Arc::clone(&shared.permits).try_acquire_owned().unwrap();
        assert!(turn_for(&shared, "openai").is_none(), "another call in flight");
        drop(slot);
        assert!(turn_for(&shared, "openai").is_some());

        // On a thread serving connections of its own, only while it
        // serves the caller's alone.
        let mine = Arc::new(shared.for_a_thread().unwrap());
        let first = Open::counted(&mine);
        assert!(turn_for(&mine, "openai").is_some());
        let second = Open::counted(&mine);
        assert!(turn_for(&mine, "openai").is_none(), "a call holding up another connection");
        drop(first);
        assert!(turn_for(&mine, "openai").is_some());
        drop(second);
    }
}
