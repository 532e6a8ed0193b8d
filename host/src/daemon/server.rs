//! The daemon's socket server: one request per connection, the peer's uid
//! from the kernel (SO_PEERCRED), the request read whole (within a deadline)
//! before it may take one of the bounded call slots, and the work on a
//! blocking thread with its own vault connection and the one shared key.
//! Optionally it also runs `serve` on the same key (on threads of its own,
//! as `aivault serve` does), so `aivault lock` stops that too.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::UnixListener;
use tokio::sync::{Notify, Semaphore};
use zeroize::Zeroize;

use super::protocol::{self, Call, CapabilityQuery, Pong, Request, Response};
use super::{client, owner_of, socket_dir};
use crate::broker::listing::{self, Caller};
use crate::broker::{Broker, DevOverrides, Sink};
use crate::registry::Registry;
use crate::serve::{self, ServeError, ServeOptions, Shutdown};
use crate::vault::{KeyCache, Scope, Vault, VaultError, VaultPool};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub socket: PathBuf,
    /// Group-accessible socket (0660) for agents, instead of owner-only.
    pub shared: bool,
    /// Calls served at once.
    pub max_concurrent: usize,
    /// Also run `serve` here, on the daemon's key.
    pub serve: Option<ServeOptions>,
}

/// Everything a connection handler shares.
struct Shared {
    dir: PathBuf,
    keys: KeyCache,
    registry: Arc<Registry>,
    dev: DevOverrides,
    operator: u32,
    permits: Arc<Semaphore>,
    shutdown: Notify,
    /// Connections kept open between calls.
    vaults: Arc<VaultPool>,
}

/// How long a peer has to send its whole request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// How long a peer may leave an answer unread before the call stops.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error("aivaultd is already running (pid {pid}) on {}", socket.display())]
    Running { pid: u32, socket: PathBuf },
    #[error("cannot serve {}: {source}", socket.display())]
    Socket { socket: PathBuf, source: std::io::Error },
    #[error("cannot start the daemon: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the daemon until SIGTERM, SIGINT or an operator's shutdown, then
/// lets the calls in flight finish (and be audited), forgets the key and
/// removes the socket. `ready` is told whether the vault is unlocked and,
/// with `serve`, where it listens.
pub fn run(
    dir: PathBuf,
    keys: KeyCache,
    registry: Registry,
    dev: DevOverrides,
    options: DaemonOptions,
    ready: impl FnOnce(bool, Option<std::net::SocketAddr>),
) -> Result<(), DaemonError> {
    let socket = options.socket.clone();
    let socket_err = |source: std::io::Error| DaemonError::Socket { socket: socket.clone(), source };
    if let Some(pid) = client::Client::at(&socket).and_then(|c| c.ping().ok()).map(|pong| pong.pid) {
        return Err(DaemonError::Running { pid, socket });
    }
    // Nobody answers: a socket file left by a daemon that died is stale.
    if socket.exists() {
        std::fs::remove_file(&socket).map_err(socket_err)?;
    }
    socket_dir(socket.parent().unwrap_or(&dir), options.shared).map_err(socket_err)?;
    let operator = owner_of(&dir).map_err(socket_err)?;

    // Unlock now if the key provider allows it without a prompt; otherwise
    // start locked and wait for `aivault unlock`.
    let unlocked = Vault::open_with(&dir, keys.clone())?.unlock().is_ok();
    if !unlocked {
        keys.lock();
    }
    let registry = Arc::new(registry);
    let serve_shared = match &options.serve {
        Some(serve_options) => Some(serve::Shared::in_daemon(
            dir.clone(),
            keys.clone(),
            Arc::clone(&registry),
            dev.clone(),
            serve_options.clone(),
        )?),
        None => None,
    };
    let vaults = VaultPool::new(dir.clone(), keys.clone())?;
    let shared = Arc::new(Shared {
        dir,
        keys,
        vaults,
        registry,
        dev,
        operator,
        permits: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
        shutdown: Notify::new(),
    });
    crate::memory::fewer_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(options.max_concurrent.max(1) * 2 + 8)
        .enable_io()
        .enable_time()
        .build()
        .map_err(DaemonError::Runtime)?;
    let result = runtime.block_on(async {
        // Listening for signals before anyone can know the daemon is up.
        let mut signals = Shutdown::new().map_err(DaemonError::Runtime)?;
        let listener = UnixListener::bind(&socket).map_err(socket_err)?;
        let mode = if options.shared { 0o660 } else { 0o600 };
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode)).map_err(socket_err)?;
        // `serve` on threads of its own, as `aivault serve` runs it;
        // started and stopped off this runtime's threads (both may wait).
        let http = match serve_shared {
            Some(serve_shared) => {
                let listener =
                    serve::bind(&serve_shared.options).await?.into_std().map_err(DaemonError::Runtime)?;
                let addr = listener.local_addr().map_err(DaemonError::Runtime)?;
                let start = move || serve::Serving::start(serve_shared, &listener);
                let serving =
                    tokio::task::spawn_blocking(start).await.map_err(|e| DaemonError::Runtime(e.into()))?;
                Some((serving?, addr))
            }
            None => None,
        };
        ready(unlocked, http.as_ref().map(|(_, addr)| *addr));
        loop {
            tokio::select! {
                _ = signals.recv() => break,
                _ = shared.shutdown.notified() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move { serve_connection(shared, stream).await });
                }
            }
        }
        if let Some((serving, _)) = http {
            // Stopping it waits for its calls in flight.
            let _ = tokio::task::spawn_blocking(move || drop(serving)).await;
        }
        // Every call in flight finishes (each bounded by its timeouts) and
        // records its outcome before the key goes.
        let all = u32::try_from(options.max_concurrent.max(1)).unwrap_or(u32::MAX);
        let _ = shared.permits.acquire_many(all).await;
        Ok(())
    });
    let _ = std::fs::remove_file(&socket);
    shared.keys.lock();
    result
}

async fn serve_connection(shared: Arc<Shared>, mut stream: tokio::net::UnixStream) {
    let Ok(peer) = stream.peer_cred() else { return };
    let uid = peer.uid();
    // The whole request first, within a deadline: a peer that trickles
    // bytes holds a connection, never a call slot.
    let Ok(Ok(request)) = tokio::time::timeout(REQUEST_DEADLINE, read_request(&mut stream)).await else {
        return;
    };
    let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else { return };
    let Ok(stream) = stream.into_std() else { return };
    let _ = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut stream = stream;
        if stream.set_nonblocking(false).is_err() || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
            return;
        }
        let response = handle(&shared, uid, request, &mut stream);
        let _ = protocol::write(&mut stream, &response);
    })
    .await;
}

/// One framed request, read as it arrives (memory grows with what the peer
/// actually sends, up to the frame limit).
async fn read_request(stream: &mut tokio::net::UnixStream) -> std::io::Result<Request> {
    let len = stream.read_u32().await? as usize;
    if len > protocol::MAX_MESSAGE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request too large"));
    }
    let mut bytes = protocol::frame_buffer(len);
    (&mut *stream).take(len as u64).read_to_end(&mut bytes).await?;
    if bytes.len() != len {
        bytes.zeroize();
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let parsed =
        serde_json::from_slice(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
    bytes.zeroize();
    parsed
}

fn error(message: impl std::fmt::Display) -> Response {
    Response::Error { message: message.to_string().replace(['\n', '\r'], " ") }
}

/// The reply to `request`; an invocation writes its answer's head and body
/// to `stream` as they arrive and returns its end.
fn pong(shared: &Shared, operator: bool) -> Response {
    Response::Pong(Pong {
        pid: std::process::id(),
        locked: shared.keys.is_locked(),
        operator,
        dir: shared.dir.clone(),
    })
}

fn handle(shared: &Shared, uid: u32, request: Request, stream: &mut UnixStream) -> Response {
    let operator = uid == shared.operator;
    // A ping (every CLI call starts with one) needs no vault.
    if let Request::Ping = request {
        return pong(shared, operator);
    }
    let mut vault = match shared.vaults.get() {
        Ok(vault) => vault,
        Err(e) => return error(e),
    };
    match request {
        Request::Ping => pong(shared, operator),
        Request::Invoke(call) if operator => {
            invoke(shared, &mut vault, call, format!("aivaultd (operator uid {uid})"), stream)
        }
        Request::Invoke(call) => invoke_as_agent(shared, &mut vault, uid, call, stream),
        Request::Capabilities(query) => capabilities(shared, &mut vault, uid, operator, query),
        _ if !operator => {
            let what = match &request {
                Request::Admin { command } => format!("`aivault {command}`"),
                Request::Unlock { .. } => "unlocking the vault".into(),
                Request::Lock => "locking the vault".into(),
                _ => "stopping the daemon".into(),
            };
            let reason =
                format!("{what} is the operator's; an agent may only invoke the capabilities it was granted");
            deny(&mut vault, uid, &reason)
        }
        Request::Unlock { mut material } => {
            let result = vault.unlock_with(material.as_deref());
            if let Some(material) = material.as_mut() {
                material.zeroize();
            }
            match result {
                Ok(()) => match vault.record("daemon.unlock", "master-key", json!({"uid": uid})) {
                    Ok(()) => Response::Done,
                    Err(e) => error(e),
                },
                Err(e) => {
                    // A failed attempt is recorded when the key is there to
                    // seal the entry (a wrong passphrase for a locked vault
                    // is not: nothing can be written without the key).
                    let _ = vault.record("daemon.unlock.failed", "master-key", json!({"uid": uid}));
                    error(e)
                }
            }
        }
        Request::Lock => {
            // Recorded while the key is still there to seal the entry.
            let _ = vault.record("daemon.lock", "master-key", json!({"uid": uid}));
            shared.keys.lock();
            Response::Done
        }
        Request::Admin { command } => error(format!(
            "the daemon only invokes; run `aivault {command}` on the vault directory as its owner"
        )),
        Request::Shutdown => {
            shared.shutdown.notify_one();
            Response::Done
        }
    }
}

fn invoke(
    shared: &Shared,
    vault: &mut Vault,
    mut call: Call,
    mut via: String,
    stream: &mut UnixStream,
) -> Response {
    if let Some(client) = call.client.take() {
        let client: String = client.chars().filter(|c| !c.is_control()).take(64).collect();
        via.push_str(&format!(", {client}"));
    }
    let mut call = match call.into_invocation() {
        Ok(call) => call,
        Err(e) => return error(e),
    };
    call.via = Some(via);
    let mut frames = Frames { stream };
    match Broker::new(vault, &shared.registry, &shared.dev).invoke_into(&call, &mut frames) {
        Ok(delivered) => Response::End { redacted: delivered.redacted },
        Err(e) => error(e),
    }
}

/// An answer passed on over the socket as it arrives.
struct Frames<'a> {
    stream: &'a mut UnixStream,
}

/// The most body one frame carries, so a large answer is many small frames.
const FRAME_BODY: usize = 1 << 20;

impl Sink for Frames<'_> {
    fn head(&mut self, head: &crate::broker::Head) -> std::io::Result<()> {
        protocol::write(self.stream, &Response::Head(head.into()))
    }

    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        for piece in data.chunks(FRAME_BODY) {
            protocol::write(self.stream, &protocol::chunk(piece))?;
        }
        Ok(())
    }
}

/// An agent's call: only a granted capability, only in the grant's context
/// and as its consumer; a context, consumer or credential of its own is
/// refused, and so is a timeout past the daemon's longest.
fn invoke_as_agent(
    shared: &Shared,
    vault: &mut Vault,
    uid: u32,
    call: Call,
    stream: &mut UnixStream,
) -> Response {
    let user = crate::unixuser::name_of(uid).unwrap_or_else(|| format!("uid {uid}"));
    if call.workspace_id.is_some()
        || call.group_id.is_some()
        || call.consumer.is_some()
        || call.credential.is_some()
    {
        let reason = format!(
            "{user} is an agent: the context, consumer and credential of its calls come from its grant, not its flags"
        );
        return deny(vault, uid, &reason);
    }
    let grant = match vault.grant_for(uid, &call.capability) {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            let reason = format!(
                "{user} may not invoke {}; the operator grants it with `aivault agent allow`",
                call.capability
            );
            return deny(vault, uid, &reason);
        }
        Err(e) => return error(e),
    };
    let call = Call {
        workspace_id: Some(grant.scope.workspace_id().to_string()).filter(|w| !w.is_empty()),
        group_id: Some(grant.scope.group_id().to_string()).filter(|g| !g.is_empty()),
        consumer: Some(grant.consumer.clone()),
        timeout_ms: call.timeout_ms.min(MAX_AGENT_TIMEOUT_MS),
        ..call
    };
    invoke(shared, vault, call, format!("aivaultd (agent {user}, uid {uid})"), stream)
}

/// What the caller may invoke: for the operator, what a credential serves
/// in the context it names; for an agent, what each of its grants allows,
/// in the grant's context (a context or consumer of its own is refused).
fn capabilities(
    shared: &Shared,
    vault: &mut Vault,
    uid: u32,
    operator: bool,
    query: CapabilityQuery,
) -> Response {
    let provider = query.provider.as_deref();
    if operator {
        let context = match Scope::context(query.workspace_id.as_deref(), query.group_id.as_deref()) {
            Ok(context) => context,
            Err(e) => return error(e),
        };
        let caller = Caller { context: &context, consumer: query.consumer.as_deref(), allowed: None };
        return match listing::callable(vault, &shared.registry, &shared.dev, &caller, provider) {
            Ok(capabilities) => Response::Capabilities { capabilities },
            Err(e) => error(e),
        };
    }
    if query.workspace_id.is_some() || query.group_id.is_some() || query.consumer.is_some() {
        let reason = "an agent's context and consumer come from its grants, not its request";
        return deny(vault, uid, reason);
    }
    let grants = match vault.grants() {
        Ok(grants) => grants.into_iter().filter(|g| g.uid == uid).collect::<Vec<_>>(),
        Err(e) => return error(e),
    };
    let mut capabilities = Vec::new();
    for grant in grants {
        let allowed = [grant.capability.clone()];
        let caller =
            Caller { context: &grant.scope, consumer: Some(&grant.consumer), allowed: Some(&allowed) };
        match listing::callable(vault, &shared.registry, &shared.dev, &caller, provider) {
            Ok(found) => capabilities.extend(found),
            Err(e) => return error(e),
        }
    }
    Response::Capabilities { capabilities }
}

/// The longest an agent's call may wait for upstream.
const MAX_AGENT_TIMEOUT_MS: u64 = 600_000;

/// Audits a refusal of an agent; the message says so if it could not be.
fn deny(vault: &mut Vault, uid: u32, reason: &str) -> Response {
    let user = crate::unixuser::name_of(uid).unwrap_or_default();
    match vault.record("daemon.denied", &format!("uid {uid}"), json!({"user": user, "reason": reason})) {
        Ok(()) => error(reason),
        Err(audit) => {
            error(format!("{reason} (and this refusal could not be written to the audit log: {audit})"))
        }
    }
}
