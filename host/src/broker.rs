//! The broker: serves one capability invocation end to end.
//!
//! find capability -> resolve credential (group -> workspace -> global, or
//! `--credential`) -> consumer bindings -> method and normalised path prefix
//! -> caller headers (no auth-class, no framing) -> host from the
//! credential/capability, never the caller -> policy (body size, rate) ->
//! decrypt -> the provider component's `inject` -> host checks on its result
//! (and that it left the caller's headers and query alone) -> HTTPS -> the
//! body, with echoed secrets and blocked fields removed.
//!
//! Every call is audited, refusals included; nothing in an error or audit
//! entry carries a value or the injected URL.

mod deliver;
pub mod devmode;
pub mod envelope;
mod error;
mod flight;
mod headers;
pub mod listing;
pub mod multipart;
mod path;
mod rederive;
mod refresh;
mod resolve;
mod response;
mod upstream;

pub use upstream::{Upstream, drive_in_thread};

use std::time::{Duration, Instant};

use serde_json::json;
use zeroize::Zeroizing;

pub use deliver::{AsyncSink, Buffer, Delivered, Head, Sink};
use deliver::{Attempt, Limits};
pub use devmode::DevOverrides;
pub use error::BrokerError;
pub use flight::{Flight, InFlight, Landing, unrecorded};
use flight::{Loaded, landed};
pub use path::{NormalPath, PathError, normalise, under_prefix};
pub use rederive::RederiveError;
pub use resolve::ResolveError;
pub use upstream::UpstreamError;

use crate::plugins::{HostPattern, OutgoingRequest, Plugin};
use crate::redact::{Forms, Needles};
use crate::registry::Registry;
use crate::vault::audit::Event;
use crate::vault::{
    CredentialRow, CustomCapabilityRow, InvocationData, PolicyRow, Scope, SecretRow, Unsealer, Vault,
};

/// Default cap on a response body when no policy sets one.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// One invocation, as the caller describes it.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub capability: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub credential: Option<String>,
    pub workspace_id: Option<String>,
    pub group_id: Option<String>,
    pub consumer: Option<String>,
    pub timeout: Duration,
    /// The front-end and credential the call came through, for the audit
    /// log (e.g. `serve token tok_…`); `None` at the CLI.
    pub via: Option<String>,
}

/// What upstream answered, made safe for the caller.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    /// A redirect's target (redacted), which was not followed.
    pub redirect: Option<String>,
    pub body: Vec<u8>,
    /// Whether a secret echoed by upstream was removed from the body.
    pub redacted: bool,
    pub credential: String,
}

/// The capability being invoked, whether a provider's or a custom one.
struct Target<'a> {
    id: String,
    provider: &'a Plugin,
    methods: Vec<String>,
    prefixes: Vec<String>,
    hosts: Vec<HostPattern>,
    /// The custom capability's row, when it is one.
    custom: Option<CustomCapabilityRow>,
    /// What enabling it takes, for messages.
    needs: String,
}

/// A call that passed every check, ready to be admitted and sent.
struct Plan<'a> {
    target: Target<'a>,
    credential: CredentialRow,
    /// `(placeholder, secret)` as the manifest grants them, in its order.
    secrets: Vec<(String, SecretRow)>,
    method: String,
    path: NormalPath,
    host: String,
    policy: PolicyRow,
    unsealer: Unsealer,
}

/// Serves invocations against one vault and registry.
pub struct Broker<'a> {
    vault: &'a mut Vault,
    registry: &'a Registry,
    dev: &'a DevOverrides,
}

impl<'a> Broker<'a> {
    pub fn new(vault: &'a mut Vault, registry: &'a Registry, dev: &'a DevOverrides) -> Self {
        Broker { vault, registry, dev }
    }

    /// Serves `call` and returns the whole answer.
    pub fn invoke(&mut self, call: &Invocation) -> Result<Answer, BrokerError> {
        let mut buffer = Buffer::default();
        let delivered = self.invoke_into(call, &mut buffer)?;
        Ok(buffer.into_answer(delivered))
    }

    /// Serves `call`, passing the answer to `sink` as it arrives. Its intent
    /// is written to the audit log before anything is sent (if that fails,
    /// nothing is), its outcome after; a refusal is audited too, and a
    /// refusal that cannot be is reported as such.
    pub fn invoke_into(&mut self, call: &Invocation, sink: &mut dyn Sink) -> Result<Delivered, BrokerError> {
        match self.invoke_until_sent(call, sink)? {
            Flight::Served(delivered) => Ok(delivered),
            Flight::Ready(flight, landing) => {
                let result = flight.send_blocking(self.dev, sink);
                self.land(landing, result)
            }
        }
    }

    /// Serves `call` up to the point where its request is ready to send:
    /// every check, the intent written to the audit log, the secrets
    /// injected. An async front-end sends it from its own runtime
    /// ([`InFlight::send`]) and then has its outcome recorded
    /// ([`land`](Self::land)). A call that needs the vault while in flight
    /// (a credential whose derived values are refreshed after a 401) is
    /// served whole here, into `sink`, as is any refusal or failure.
    pub fn invoke_until_sent(
        &mut self,
        call: &Invocation,
        sink: &mut dyn Sink,
    ) -> Result<Flight, BrokerError> {
        let started = Instant::now();
        let mut facts = AuditFacts::default();
        let plan = match self.plan(call, &mut facts) {
            Ok(plan) => plan,
            Err(e) if e.is_locked() => return Err(e),
            Err(e) => return Err(self.refused(call, &facts, started, e)),
        };
        let intent = Event::new("invoke.intent", &call.capability, facts.details(call, started));
        let seq = match self.vault.admit(&plan.target.id, plan.policy.rate_limit_per_minute, intent) {
            Ok(Ok(seq)) => seq,
            Ok(Err(_recent)) => {
                let limit = plan.policy.rate_limit_per_minute.unwrap_or_default();
                let e = BrokerError::RateLimited { capability: plan.target.id.clone(), limit };
                return Err(self.refused(call, &facts, started, e));
            }
            Err(e) => return Err(BrokerError::IntentNotRecorded(Box::new(e))),
        };
        let mut details = facts.details(call, started);
        details["intent"] = json!(seq);
        let landing = Landing { capability: call.capability.clone(), details, started };
        match self.prepare(call, &plan, sink) {
            Ok(Prepared::Ready(flight)) => Ok(Flight::Ready(flight, landing)),
            Ok(Prepared::Served(delivered)) => self.land(landing, Ok(delivered)).map(Flight::Served),
            Err(e) => self.land(landing, Err(e)).map(Flight::Served),
        }
    }

    /// Writes how a call ended to the audit log; an answer whose outcome
    /// cannot be recorded is reported as such.
    pub fn land(
        &mut self,
        landing: Landing,
        result: Result<Delivered, BrokerError>,
    ) -> Result<Delivered, BrokerError> {
        let (kind, capability, details) = landing.record(&result);
        landed(result, self.vault.record(kind, &capability, details))
    }

    /// As [`land`](Self::land), for several calls whose outcomes are
    /// written together (each still learns its own fate, in order).
    pub fn land_all(
        &mut self,
        calls: Vec<(Landing, Result<Delivered, BrokerError>)>,
    ) -> Vec<Result<Delivered, BrokerError>> {
        let (events, results): (Vec<Event>, Vec<_>) = calls
            .into_iter()
            .map(|(landing, result)| {
                let (kind, capability, details) = landing.record(&result);
                (Event::new(kind, capability, details), result)
            })
            .unzip();
        let written = self.vault.record_all(events);
        results.into_iter().zip(written).map(|(result, audit)| landed(result, audit)).collect()
    }

    /// Audits a refusal; a refusal that cannot be audited says so.
    fn refused(
        &mut self,
        call: &Invocation,
        facts: &AuditFacts,
        started: Instant,
        e: BrokerError,
    ) -> BrokerError {
        let mut details = facts.details(call, started);
        details["reason"] = json!(e.to_string());
        match self.vault.record("invoke.denied", &call.capability, details) {
            Ok(()) => e,
            Err(audit) => BrokerError::Unaudited { error: Box::new(e), audit: Box::new(audit) },
        }
    }

    /// Whether `capability` can be served in `context` for `consumer`: a
    /// credential resolves (or several do, and the caller must pick one)
    /// and the consumer is bound where bindings exist. Nothing is sent or
    /// audited; a front-end lists what a session may call with it.
    pub fn ready(&mut self, capability: &str, context: &Scope, consumer: Option<&str>) -> bool {
        let Ok(data) = self.vault.invocation_data(capability) else { return false };
        let Ok(target) = self.target(capability, &data) else { return false };
        let resolved =
            resolve::choose(&target.id, &data.credentials, &data.secrets, context, None, &target.needs);
        matches!(resolved, Ok(_) | Err(ResolveError::Ambiguous { .. }))
            && check_binding(&data, context, consumer, &target.id).is_ok()
    }

    /// Every check that needs no network: the rows (each authenticated),
    /// re-derived against the provider's current manifest, and the call
    /// against the capability and its policy.
    fn plan(&mut self, call: &Invocation, facts: &mut AuditFacts) -> Result<Plan<'a>, BrokerError> {
        let context = Scope::context(call.workspace_id.as_deref(), call.group_id.as_deref())?;
        let data = self.vault.invocation_data(&call.capability)?;
        let target = self.target(&call.capability, &data)?;

        let credential = resolve::choose(
            &target.id,
            &data.credentials,
            &data.secrets,
            &context,
            call.credential.as_deref(),
            &target.needs,
        )?
        .clone();
        facts.credential = Some(credential.id.clone());
        check_binding(&data, &context, call.consumer.as_deref(), &target.id)?;

        let method = choose_method(&target, call.method.as_deref())?;
        facts.method = Some(method.clone());
        let path = choose_path(&target, call.path.as_deref())?;
        facts.path = Some(path.decoded.clone());
        headers::check_caller_headers(&call.headers)?;
        let grant =
            rederive::grant(target.provider, &target.id, target.custom.as_ref(), &credential, &data.secrets)?;
        let host = choose_host(&target, &credential, &grant.kind.hosts)?;
        let secrets = grant.secrets.iter().map(|(p, secret)| (p.clone(), (*secret).clone())).collect();

        let policy = data.policy.clone().unwrap_or_default();
        if let (Some(limit), Some(body)) = (policy.max_request_body_bytes, &call.body)
            && body.len() as i64 > limit
        {
            return Err(BrokerError::RequestTooLarge { capability: target.id, size: body.len(), limit });
        }
        let unsealer = data.unsealer.clone();
        Ok(Plan { target, credential, secrets, method, path, host, policy, unsealer })
    }

    /// Decrypts and has the provider inject: the request ready to send. A
    /// kind that derives values (an OAuth2 access token) has them refreshed
    /// when missing or expired, and once more after a 401: such a call needs
    /// the vault between tries, so it is sent and delivered here.
    fn prepare(
        &mut self,
        call: &Invocation,
        plan: &Plan<'a>,
        sink: &mut dyn Sink,
    ) -> Result<Prepared, BrokerError> {
        let Plan { target, credential, secrets, unsealer, .. } = plan;
        let rows: Vec<&SecretRow> = secrets.iter().map(|(_, secret)| secret).collect();
        let values = unsealer.reveal(&rows)?;
        let secrets: Vec<(String, Zeroizing<String>)> =
            secrets.iter().map(|(placeholder, _)| placeholder.clone()).zip(values).collect();
        let Some(derivation) = refresh::Derivation::of(target.provider, credential, &rows) else {
            let loaded = self.load(call, plan, &secrets)?;
            return Ok(Prepared::Ready(Box::new(InFlight { loaded, timeout: call.timeout })));
        };
        let derived = derivation.values(self.vault, &secrets, self.dev, call.timeout, None)?;
        let mut given: Vec<(String, Zeroizing<String>)> =
            secrets.iter().cloned().chain(derived.iter().cloned()).collect();
        let first = self.load(call, plan, &given)?.send_blocking(call.timeout, self.dev, true, sink)?;
        if let Attempt::Delivered(delivered) = first {
            return Ok(Prepared::Served(delivered));
        }
        // A 401: the token may have been revoked early. Refresh once (unless
        // another caller already has) and try once more.
        let fresh = derivation.values(self.vault, &secrets, self.dev, call.timeout, Some(&derived))?;
        given.truncate(secrets.len());
        given.extend(fresh);
        let last = self.load(call, plan, &given)?.send_blocking(call.timeout, self.dev, false, sink)?;
        last.deliver(sink).map(Prepared::Served)
    }

    /// The request with `secrets` (and any derived values) injected and
    /// checked, and what its answer is searched for.
    fn load(
        &self,
        call: &Invocation,
        plan: &Plan<'a>,
        secrets: &[(String, Zeroizing<String>)],
    ) -> Result<Loaded, BrokerError> {
        let Plan { target, credential, method, path, host, policy, .. } = plan;
        // What upstream sends back is searched for the secrets, and for
        // every string inside a JSON secret (a provider may send one field
        // alone, like an OAuth access token).
        let mut needles = Needles::new();
        for (_, value) in secrets {
            needles.secret(value);
        }
        let redactor = needles.redactor(Forms::Encoded);

        let request = OutgoingRequest {
            capability: target.id.clone(),
            credential_kind: credential.kind.clone(),
            method: method.clone(),
            host: host.clone(),
            path: path.encoded.clone(),
            query: path.query.clone(),
            headers: headers::forwarded(&call.headers),
            body: call.body.clone(),
        };
        let allowed = [HostPattern::parse(host).map_err(BrokerError::Upstream)?];
        let injected = target.provider.inject(&request, secrets, &allowed)?;
        check_untouched(&request, &injected, target.provider.id())?;
        let max_response =
            policy.max_response_body_bytes.map(|v| v as u64).unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        Ok(Loaded {
            before: request,
            request: injected,
            needles,
            redactor,
            credential: credential.id.clone(),
            limits: Limits {
                capability: target.id.clone(),
                max_response,
                response_block: policy.response_block.clone(),
            },
        })
    }

    /// A provider's capability, else a custom one defined for a credential.
    /// A custom row can never take a provider capability's id: the
    /// provider's definition always wins.
    fn target(&self, id: &str, data: &InvocationData) -> Result<Target<'a>, BrokerError> {
        let custom = match self.registry.capability(id) {
            Ok(c) => {
                let needs = c.kinds().map(|k| k.secrets.join(" + ")).collect::<Vec<_>>().join(" or ");
                return Ok(Target {
                    id: c.capability.id.clone(),
                    provider: c.provider,
                    methods: c.capability.methods.clone(),
                    prefixes: c.capability.path_prefixes.clone(),
                    hosts: c.capability.hosts.clone(),
                    custom: None,
                    needs,
                });
            }
            Err(not_found) => match data.custom_capabilities.iter().find(|c| c.id == id) {
                Some(custom) => custom.clone(),
                None => return Err(not_found.into()),
            },
        };
        let credential = data.credentials.iter().find(|c| c.id == custom.credential_id).ok_or_else(|| {
            BrokerError::OrphanedCapability {
                capability: custom.id.clone(),
                credential: custom.credential_id.clone(),
            }
        })?;
        let provider = self.registry.provider(&credential.provider)?;
        if custom.id.strip_prefix(provider.id()).is_none_or(|rest| !rest.starts_with('/')) {
            return Err(BrokerError::ForeignCustomCapability {
                capability: custom.id.clone(),
                provider: provider.id().to_string(),
            });
        }
        let hosts = match &custom.host {
            Some(host) => vec![HostPattern::parse(host).map_err(BrokerError::Upstream)?],
            None => provider
                .manifest()
                .credential_kind(&credential.kind)
                .map(|k| k.hosts.clone())
                .unwrap_or_default(),
        };
        Ok(Target {
            id: custom.id.clone(),
            provider,
            methods: custom.methods.clone(),
            prefixes: custom.path_prefixes.clone(),
            hosts,
            needs: format!("credential {}", custom.credential_id),
            custom: Some(custom),
        })
    }
}

/// How [`Broker::prepare`] left a call.
enum Prepared {
    /// Ready to send.
    Ready(Box<InFlight>),
    /// Sent and delivered already (its kind refreshes derived values).
    Served(Delivered),
}

/// What the audit entry of a call records beyond the request itself.
#[derive(Default)]
struct AuditFacts {
    credential: Option<String>,
    method: Option<String>,
    /// The normalised path, never the query (which may carry secrets).
    path: Option<String>,
}

impl AuditFacts {
    fn details(&self, call: &Invocation, started: Instant) -> serde_json::Value {
        let context = Scope::context(call.workspace_id.as_deref(), call.group_id.as_deref())
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "invalid".into());
        json!({
            "capability": call.capability,
            "credential": self.credential,
            "context": context,
            "consumer": call.consumer,
            "method": self.method,
            "path": self.path,
            "via": call.via,
            "durationMs": started.elapsed().as_millis() as u64,
        })
    }
}

fn choose_method(target: &Target<'_>, requested: Option<&str>) -> Result<String, BrokerError> {
    let methods = || target.methods.join(", ");
    match requested {
        Some(m) => {
            let m = m.to_ascii_uppercase();
            if target.methods.contains(&m) {
                Ok(m)
            } else {
                Err(BrokerError::MethodNotAllowed {
                    capability: target.id.clone(),
                    method: m,
                    methods: methods(),
                })
            }
        }
        None if target.methods.len() == 1 => Ok(target.methods[0].clone()),
        None => Err(BrokerError::MethodRequired { capability: target.id.clone(), methods: methods() }),
    }
}

fn choose_path(target: &Target<'_>, requested: Option<&str>) -> Result<NormalPath, BrokerError> {
    let prefixes = || target.prefixes.join(", ");
    let raw = match requested {
        Some(p) => p.to_string(),
        None if target.prefixes.len() == 1 => target.prefixes[0].clone(),
        None => {
            return Err(BrokerError::PathRequired { capability: target.id.clone(), prefixes: prefixes() });
        }
    };
    let path = path::normalise(&raw)?;
    if !target.prefixes.iter().any(|p| path::under_prefix(&path.decoded, p)) {
        return Err(BrokerError::PathNotAllowed {
            capability: target.id.clone(),
            path: path.decoded,
            prefixes: prefixes(),
        });
    }
    Ok(path)
}

/// The provider may add headers and query parameters, but a caller's own
/// must reach upstream as sent: if injection replaced one, the caller was
/// trying to set something the provider owns (e.g. a `key` parameter).
fn check_untouched(
    before: &OutgoingRequest,
    after: &OutgoingRequest,
    provider: &str,
) -> Result<(), BrokerError> {
    for (name, value) in &before.headers {
        let kept = after.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value);
        if !kept {
            return Err(BrokerError::ProviderOwned {
                provider: provider.to_string(),
                name: format!("header {name}"),
            });
        }
    }
    for pair in &before.query {
        if !after.query.contains(pair) {
            return Err(BrokerError::ProviderOwned {
                provider: provider.to_string(),
                name: format!("query parameter {}", pair.0),
            });
        }
    }
    Ok(())
}

/// The credential's host if it has one, else the capability's only concrete
/// host; never the caller's. Either way it must be in the current manifest's
/// hosts of both the capability and the credential's kind (and so of the
/// provider).
fn choose_host(
    target: &Target<'_>,
    credential: &CredentialRow,
    kind_hosts: &[HostPattern],
) -> Result<String, BrokerError> {
    let hosts = || target.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let no_host = || BrokerError::NoHost { capability: target.id.clone(), hosts: hosts() };
    let host = match &credential.host {
        Some(host) => host.clone(),
        None => {
            let concrete: Vec<&HostPattern> = target.hosts.iter().filter(|h| !h.is_wildcard()).collect();
            match concrete.as_slice() {
                [only] => only.to_string(),
                _ => return Err(no_host()),
            }
        }
    };
    let provider_hosts = &target.provider.manifest().hosts;
    if rederive::host_allowed(&host, &[&target.hosts, kind_hosts, provider_hosts]) {
        Ok(host)
    } else {
        Err(no_host())
    }
}

/// Once a capability has bindings, only a bound consumer may call it, in
/// the binding's scope or one below it.
fn check_binding(
    data: &InvocationData,
    context: &Scope,
    consumer: Option<&str>,
    capability: &str,
) -> Result<(), BrokerError> {
    if data.bindings.is_empty() {
        return Ok(());
    }
    let scopes = context.resolution_order();
    let bound =
        consumer.is_some_and(|c| data.bindings.iter().any(|b| b.consumer == c && scopes.contains(&b.scope)));
    if bound {
        Ok(())
    } else {
        Err(BrokerError::NotBound {
            consumer: consumer.unwrap_or("(none: pass --consumer)").to_string(),
            capability: capability.to_string(),
        })
    }
}
