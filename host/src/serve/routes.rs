//! Request handling: authenticate the proxy token, turn the request into an
//! [`Invocation`] in the token's context, run it through the broker on a
//! blocking thread (bounded; a call alone on an idle server, on the
//! server's own thread), and answer. Every refusal is one line of JSON
//! (`{"error": "..."}`) and nothing reaches upstream. A passthrough call
//! the broker has made ready (checked, its intent recorded, the secrets
//! injected) is sent and answered from the server's own runtime, and its
//! outcome written by the recorder (`recorder.rs`); a call made on the
//! server's own thread records its own.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::admission::{authenticate, deny, presented_token};
use super::recorder::ToRecord;
use super::stream::{self, ChannelBody, ChannelSink, Start, Then};
use super::{Shared, Waits, api, passthrough};
use crate::broker::{Broker, BrokerError, Delivered, Flight, InFlight, Invocation, Landing};
use crate::plugins::PluginError;
use crate::vault::{PooledVault, TokenRow, Vault, VaultError};

/// An answer to send.
pub(super) struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
    /// Set on a refusal because the provider is held back: the answer says
    /// when to retry and is sent only after [`HELD_BACK_PAUSE`], so a client
    /// calling a failing component in a loop does not spin the server.
    held_back: bool,
}

/// How long an answer that a provider is held back waits before it goes.
const HELD_BACK_PAUSE: Duration = Duration::from_millis(250);

impl Reply {
    pub(super) fn json(status: StatusCode, value: &Value) -> Self {
        Reply {
            status,
            content_type: Some("application/json".into()),
            body: Bytes::from(value.to_string()),
            held_back: false,
        }
    }

    /// The refusal for a broker error.
    pub(super) fn broker_error(e: &BrokerError) -> Self {
        let held_back = matches!(e, BrokerError::Plugin(PluginError::HeldBack { .. }));
        Reply { held_back, ..Reply::error(status_of(e), e) }
    }

    /// Sends this reply, after a pause if the provider is held back.
    async fn into_paced_response(self) -> HttpResponse {
        if self.held_back {
            tokio::time::sleep(HELD_BACK_PAUSE).await;
        }
        self.into_response()
    }

    /// Upstream's answer, as the broker made it safe.
    pub(super) fn answer(status: StatusCode, content_type: Option<String>, body: Bytes) -> Self {
        Reply { status, content_type, body, held_back: false }
    }

    /// A refusal: one line of JSON.
    pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> Self {
        let line = message.to_string().replace(['\n', '\r'], " ");
        Reply::json(status, &json!({ "error": line }))
    }

    fn into_response(self) -> HttpResponse {
        let mut response = respond(self.status, self.content_type, Either::Left(Full::new(self.body)));
        if self.held_back {
            let seconds = crate::plugins::HELD_BACK_FOR.as_secs().to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(hyper::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A response whose body is whole, follows as it arrives, or is the MCP
/// service's own.
pub(super) type HttpResponse = Response<Either<Either<Full<Bytes>, ChannelBody>, McpBody>>;

type McpBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn respond(
    status: StatusCode,
    content_type: Option<String>,
    body: Either<Full<Bytes>, ChannelBody>,
) -> HttpResponse {
    let mut response = Response::new(Either::Left(body));
    *response.status_mut() = status;
    if let Some(value) = content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// One request, start to end.
pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    Ok(route(shared, req).await)
}

/// What a request is, known from its head alone.
enum Route {
    Capabilities,
    Invoke,
    Passthrough(Box<passthrough::Parsed>),
    /// `/mcp`, with `serve --mcp`.
    Mcp,
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let (route, presented) = match (&parts.method, path) {
        (&Method::GET, "/aivault/capabilities") => (Route::Capabilities, presented_token(&parts)),
        (&Method::POST, "/aivault/invoke") => (Route::Invoke, presented_token(&parts)),
        (_, "/mcp") if shared.mcp.is_some() => (Route::Mcp, presented_token(&parts)),
        _ if path.starts_with("/v/") => match passthrough::Parsed::from_request(&parts) {
            Ok(parsed) => {
                let token = parsed.token.clone();
                (Route::Passthrough(Box::new(parsed)), token)
            }
            Err(reason) => {
                // Audited like any refusal: two tokens in one request is
                // someone probing, not a client's honest mistake.
                let why = reason.clone();
                let audit = move |vault: &mut Vault| {
                    deny(vault, &parts, None, &why);
                    Ok::<_, Reply>(())
                };
                let _ = checking(shared, audit).await;
                return Reply::error(StatusCode::BAD_REQUEST, reason).into_response();
            }
        },
        _ => {
            return Reply::error(StatusCode::NOT_FOUND, format!("no route {} {path}", parts.method))
                .into_response();
        }
    };
    // The token is checked before a byte of the body is read: without one,
    // a request costs no memory and no call slot.
    let head = Arc::new(parts);
    let route = match route {
        Route::Passthrough(parsed) if body.is_end_stream() => {
            return checked_and_streamed(shared, head, Arc::new(*parsed), presented).await;
        }
        other => other,
    };
    let checked = {
        let head = Arc::clone(&head);
        let presented = presented.clone();
        checking(Arc::clone(&shared), move |vault| authenticate(vault, presented.as_deref(), &head)).await
    };
    let token = match checked {
        Ok(token) => token,
        Err(reply) => return reply.into_response(),
    };
    if let (Route::Mcp, Some(endpoint), Some(presented)) = (&route, &shared.mcp, &presented) {
        // The MCP service reads the body itself, under its own limit.
        let Ok(parts) = Arc::try_unwrap(head) else {
            return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        };
        let response = endpoint.handle(&shared, &token, presented, Request::from_parts(parts, body)).await;
        return response.map(Either::Right);
    }
    let limit = shared.options.max_body_bytes;
    let body = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            let reason = format!("the request body is larger than {limit} bytes");
            return Reply::error(StatusCode::PAYLOAD_TOO_LARGE, reason).into_response();
        }
        Err(_) => {
            return Reply::error(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time")
                .into_response();
        }
    };
    let request = Received { head, body };
    match route {
        Route::Capabilities => {
            let work = move |shared: &Shared, mut vault: PooledVault, _slot| {
                api::capabilities(shared, &mut vault, &token)
            };
            blocking(shared, Waits::OnVaultAlone, work).await.into_response()
        }
        Route::Invoke => {
            // Sent and answered whole from the blocking thread.
            blocking(shared, Waits::OnUpstreamToo, move |shared, mut vault, _slot| {
                api::invoke(shared, &mut vault, &request, &token)
            })
            .await
            .into_paced_response()
            .await
        }
        Route::Passthrough(parsed) => streamed(shared, request, token, Arc::new(*parsed)).await,
        Route::Mcp => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}

/// How long a request's body may take to arrive once its head has.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// A passthrough call: its answer is passed on as it arrives.
async fn streamed(
    shared: Arc<Shared>,
    request: Received,
    token: TokenRow,
    parsed: Arc<passthrough::Parsed>,
) -> HttpResponse {
    let (sink, start, body) = stream::channel();
    in_a_slot(shared, request, token, parsed, (sink, start, body)).await
}

/// Makes the call once a slot is free, its answer going through `channel`.
async fn in_a_slot(
    shared: Arc<Shared>,
    request: Received,
    token: TokenRow,
    parsed: Arc<passthrough::Parsed>,
    (sink, start, body): (ChannelSink, oneshot::Receiver<Start>, ChannelBody),
) -> HttpResponse {
    let work = {
        let shared = Arc::clone(&shared);
        let waits = shared.call_waits(&parsed.name);
        blocking(shared, waits, move |shared, vault, slot| {
            call(shared, vault, &request, &token, &parsed, sink, slot)
        })
    };
    // The call runs on; the response goes out as soon as its start is known.
    let task = tokio::spawn(work);
    answer(&shared, start.await, async { task.await.unwrap_or_else(|_| internal_error()) }, body).await
}

/// What the blocking side of [`checked_and_streamed`] did.
enum Checked {
    /// Refused the token, or made the call: the reply if nothing else was
    /// said.
    Done(Reply),
    /// The token is good but no call slot was free.
    NeedsSlot(TokenRow, ChannelSink),
}

/// A passthrough request without a body: its token is checked and, when a
/// call slot is free at once, the call made on the same blocking thread
/// (one hand-over between threads fewer, on the path of most calls). A
/// request without a good token still takes no slot; with no slot free,
/// the call waits for one as any other.
async fn checked_and_streamed(
    shared: Arc<Shared>,
    head: Arc<Parts>,
    parsed: Arc<passthrough::Parsed>,
    presented: Option<String>,
) -> HttpResponse {
    let waits = shared.call_waits(&parsed.name);
    if let Some(turn) = shared.own_thread_turn(waits) {
        return on_this_thread(shared, head, parsed, presented, turn).await;
    }
    let (sink, mut start, body) = stream::channel();
    let request = Received { head, body: Bytes::new() };
    let mut task = {
        let (shared, request, parsed) = (Arc::clone(&shared), request.clone(), Arc::clone(&parsed));
        Arc::clone(&shared).spawn_blocking(waits, move || {
            let mut vault = match shared.vaults.get() {
                Ok(vault) => vault,
                Err(e) => return Checked::Done(Reply::error(StatusCode::SERVICE_UNAVAILABLE, e)),
            };
            // The token check and the call's plan read one snapshot.
            vault.hold_reads();
            let token = match authenticate(&mut vault, presented.as_deref(), &request.head) {
                Ok(token) => token,
                Err(refusal) => return Checked::Done(refusal),
            };
            let Ok(slot) = Arc::clone(&shared.permits).try_acquire_owned() else {
                return Checked::NeedsSlot(token, sink);
            };
            Checked::Done(call(&shared, vault, &request, &token, &parsed, sink, slot))
        })
    };
    let checked = tokio::select! {
        biased;
        started = &mut start => {
            let rest = async { match task.await { Ok(Checked::Done(reply)) => reply, _ => internal_error() } };
            return answer(&shared, started, rest, body).await;
        }
        checked = &mut task => checked,
    };
    match checked {
        Ok(Checked::Done(reply)) => answer(&shared, start.await, async { reply }, body).await,
        Ok(Checked::NeedsSlot(token, sink)) => {
            in_a_slot(shared, request, token, parsed, (sink, start, body)).await
        }
        Err(_) => internal_error().into_response(),
    }
}

/// A passthrough request without a body, made on the server's own thread
/// while no other call is in flight: a call alone need not be handed to a
/// blocking thread and back (two wake-ups of another thread, about a fifth
/// of what `serve` adds to a call on this machine). `turn` keeps every
/// other call on the blocking threads until this one's outcome is
/// recorded, so one slow call (a provider spinning to its CPU budget, a
/// write lock another process holds) can hold up at most this thread.
async fn on_this_thread(
    shared: Arc<Shared>,
    head: Arc<Parts>,
    parsed: Arc<passthrough::Parsed>,
    presented: Option<String>,
    turn: OwnedSemaphorePermit,
) -> HttpResponse {
    let (mut sink, start, body) = stream::channel();
    let request = Received { head, body: Bytes::new() };
    let mut vault = match shared.vaults.get() {
        Ok(vault) => vault,
        Err(e) => return Reply::error(StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    };
    // The token check and the call's plan read one snapshot.
    vault.hold_reads();
    let token = match authenticate(&mut vault, presented.as_deref(), &request.head) {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(slot) = Arc::clone(&shared.permits).try_acquire_owned() else {
        // Another call took the last slot meanwhile: wait for one as usual.
        drop((vault, turn));
        return in_a_slot(shared, request, token, parsed, (sink, start, body)).await;
    };
    let ready = match passthrough(&shared, &mut vault, &request, &token, &parsed, &mut sink) {
        Ok(Flight::Ready(flight, landing)) => Some((sink.fly(flight), landing)),
        Ok(Flight::Served(_)) => {
            sink.ended();
            None
        }
        Err(reply) => {
            sink.fail(reply);
            None
        }
    };
    // No connection is held while the request is out (see `land`).
    drop(vault);
    match ready {
        // The outcome is recorded once the answer has gone.
        Some((flown, landing)) => {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let (result, mut sink) = flown.await.unwrap_or((Err(BrokerError::CallerGone), sink));
                land(&shared, landing, result, &mut sink);
                drop((slot, turn));
            });
        }
        // Nothing holds this thread or a slot while a refusal is paced.
        None => drop((slot, turn)),
    }
    answer(&shared, start.await, async { internal_error() }, body).await
}

/// Records how a flown call went; an answer still going is aborted if
/// that fails. The call takes a connection from the pool again for this:
/// none is held while its request is out, so calls waiting on upstream
/// (a slow one takes seconds) do not keep one each, and the pool's idle
/// connections cover a full server. (Under 64 clients, connections held
/// through the flight outnumbered the pool's, and the rest were opened
/// and closed call after call: about 7% of the server's time went to
/// opening them and as much again to preparing their statements.)
fn land(shared: &Shared, landing: Landing, result: Result<Delivered, BrokerError>, sink: &mut ChannelSink) {
    let landed = match shared.vaults.get() {
        Ok(mut vault) => Broker::new(&mut vault, &shared.registry, &shared.dev).land(landing, result),
        Err(e) => Err(crate::broker::unrecorded(result, e)),
    };
    match landed {
        Ok(_) => sink.ended(),
        Err(e) => sink.fail(Reply::broker_error(&e)),
    }
}

/// Runs a passthrough call in `slot`, its answer going to `sink`; the
/// reply is for a call that ended without saying anything. A call the
/// broker makes ready to send is sent, and its answer passed on, from the
/// server's runtime, and its outcome recorded by the recorder (which
/// frees the slot then, and aborts an answer still going if it cannot be
/// recorded): this thread is free once the request has left.
fn call(
    shared: &Shared,
    mut vault: PooledVault,
    request: &Received,
    token: &TokenRow,
    parsed: &passthrough::Parsed,
    mut sink: ChannelSink,
    slot: OwnedSemaphorePermit,
) -> Reply {
    match passthrough(shared, &mut vault, request, token, parsed, &mut sink) {
        Ok(Flight::Ready(flight, landing)) => {
            drop(vault);
            sink.fly_then_record(flight, |rest| ToRecord::new(&shared.recorder, landing, slot, rest));
        }
        Ok(Flight::Served(_)) => sink.ended(),
        Err(reply) => sink.fail(reply),
    }
    Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "the call ended without an answer")
}

/// Sends a call's request from this runtime and passes its answer on as
/// it arrives; how it went goes to whoever records it.
async fn fly(shared: Arc<Shared>, flight: Box<InFlight>, mut sink: ChannelSink, then: Then) {
    let result = flight.send(&shared.upstream, &mut sink).await;
    // The answer goes out first: the handler sending it runs before the
    // thread recording the outcome is woken.
    tokio::task::yield_now().await;
    match then {
        Then::Back(done) => {
            let _ = done.send((result, sink));
        }
        Then::Record(to) => to.landed(result, sink),
    }
}

fn internal_error() -> Reply {
    Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// The response to a call whose start is `started` (a call ready to send
/// is sent from here, and its own start awaited); if the call ended
/// without a word (a busy server, or a panic), `rest` says why.
async fn answer(
    shared: &Arc<Shared>,
    started: Result<Start, oneshot::error::RecvError>,
    rest: impl Future<Output = Reply>,
    body: ChannelBody,
) -> HttpResponse {
    let started = match started {
        Ok(Start::Fly(takeoff)) => {
            let stream::Takeoff { flight, pieces, then } = *takeoff;
            let (sink, mut start) = ChannelSink::flying(pieces);
            // Driven here until the answer's start is known, then on its
            // own: no hand-over between tasks before the answer goes out.
            let mut flying = Box::pin(fly(Arc::clone(shared), flight, sink, then));
            tokio::select! {
                biased;
                started = &mut start => {
                    tokio::spawn(flying);
                    started
                }
                () = &mut flying => start.await,
            }
        }
        other => other,
    };
    match started {
        Ok(Start::Whole(reply)) => reply.into_paced_response().await,
        Ok(Start::Streamed { status, content_type }) => respond(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            content_type,
            Either::Right(body),
        ),
        Ok(Start::Fly(_)) | Err(_) => rest.await.into_response(),
    }
}

/// A request with its body read.
#[derive(Clone)]
pub(super) struct Received {
    pub(super) head: Arc<Parts>,
    pub(super) body: Bytes,
}

/// Runs `work` on a blocking thread with its own vault connection, once a
/// slot is free (a 503 if none frees up in time); the slot is `work`'s.
async fn blocking(
    shared: Arc<Shared>,
    waits: Waits,
    work: impl FnOnce(&Shared, PooledVault, OwnedSemaphorePermit) -> Reply + Send + 'static,
) -> Reply {
    let slot =
        tokio::time::timeout(shared.options.queue_timeout, Arc::clone(&shared.permits).acquire_owned()).await;
    let Ok(Ok(permit)) = slot else {
        return Reply::error(StatusCode::SERVICE_UNAVAILABLE, "aivault serve is busy; try again shortly");
    };
    let task = Arc::clone(&shared).spawn_blocking(waits, move || match shared.vaults.get() {
        Ok(vault) => work(&shared, vault, permit),
        Err(e) => Reply::error(StatusCode::SERVICE_UNAVAILABLE, e),
    });
    task.await.unwrap_or_else(|_| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// A short look at the vault (checking a token) on a blocking thread, not
/// counted against the call slots.
async fn checking<T: Send + 'static>(
    shared: Arc<Shared>,
    work: impl FnOnce(&mut Vault) -> Result<T, Reply> + Send + 'static,
) -> Result<T, Reply> {
    let task = Arc::clone(&shared).spawn_blocking(Waits::OnVaultAlone, move || match shared.vaults.get() {
        Ok(mut vault) => work(&mut vault),
        Err(e) => Err(Reply::error(StatusCode::SERVICE_UNAVAILABLE, e)),
    });
    task.await.unwrap_or_else(|_| Err(Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")))
}

/// An invocation in the token's context, never the request's.
pub(super) fn invocation(shared: &Shared, token: &TokenRow, capability: String) -> Invocation {
    Invocation {
        capability,
        workspace_id: Some(token.scope.workspace_id().to_string()).filter(|w| !w.is_empty()),
        group_id: Some(token.scope.group_id().to_string()).filter(|g| !g.is_empty()),
        consumer: token.consumer.clone(),
        timeout: shared.options.timeout,
        via: Some(format!("serve token {}", token.id)),
        ..Invocation::default()
    }
}

/// The HTTP status of a broker error.
fn status_of(e: &BrokerError) -> StatusCode {
    match e {
        BrokerError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        BrokerError::Plugin(PluginError::HeldBack { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        BrokerError::Upstream(_) | BrokerError::ResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
        BrokerError::Vault(VaultError::Key(_)) => StatusCode::SERVICE_UNAVAILABLE,
        BrokerError::Vault(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        BrokerError::IntentNotRecorded(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        BrokerError::Registry(_) => StatusCode::NOT_FOUND,
        e if e.is_refusal() => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `/v/<provider-or-credential>/…`: the request as an SDK sent it, made
/// ready to send; a refusal comes back as the error.
fn passthrough(
    shared: &Shared,
    vault: &mut Vault,
    request: &Received,
    token: &TokenRow,
    parsed: &passthrough::Parsed,
    sink: &mut ChannelSink,
) -> Result<Flight, Reply> {
    let (capability, credential) = match passthrough::target(shared, vault, token, parsed) {
        Ok(found) => found,
        Err(reason) => {
            deny(vault, &request.head, Some(token), &reason.1);
            return Err(Reply::error(reason.0, reason.1));
        }
    };
    let call = Invocation {
        method: Some(parsed.method.clone()),
        path: Some(parsed.path_and_query.clone()),
        headers: parsed.headers.clone(),
        body: Some(request.body.to_vec()).filter(|b| !b.is_empty()),
        credential,
        ..invocation(shared, token, capability)
    };
    Broker::new(vault, &shared.registry, &shared.dev)
        .invoke_until_sent(&call, sink)
        .map_err(|e| Reply::broker_error(&e))
}
