//! Host-mediated token refresh, end to end: Google Calendar's OAuth JSON
//! secret is exchanged at a loopback stand-in for Google's token endpoint
//! (`oauth2.googleapis.com/token`, see `upstream.rs`), the access token is
//! kept sealed, refreshed when it expires or is refused with a 401, once
//! for concurrent callers, and a refused grant leaves the secret as it was.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::support::{OPENAI_KEY, Vault};
use crate::upstream::{Seen, Upstream};

const HOSTS: &[&str] = &["oauth2.googleapis.com", "www.googleapis.com"];
const CLIENT_SECRET: &str = "GOCSPX-TopSecretClientSecret1";

/// The OAuth JSON with `grant` as its refresh token (the stand-in endpoint
/// reads `short-lived`, `slow` and `revoked` in it).
fn oauth_json(grant: &str) -> String {
    format!(
        r#"{{"client_id":"123-abc.apps.googleusercontent.com","client_secret":"{CLIENT_SECRET}","refresh_token":"{grant}"}}"#
    )
}

fn vault_with(grant: &str) -> Vault {
    let vault = Vault::new();
    let out =
        vault.ok(&["secrets", "create", "--name", "GOOGLE_CALENDAR_OAUTH", "--value", &oauth_json(grant)]);
    assert!(out.contains("Credential auto-provisioned: google-calendar"), "{out}");
    vault
}

fn events(path: &str) -> Vec<String> {
    ["invoke", "google-calendar/events", "--method", "GET", "--path", path].map(String::from).to_vec()
}

fn token_requests(upstream: &Upstream) -> Vec<Seen> {
    upstream.seen().into_iter().filter(|s| s.target == "/token").collect()
}

fn api_requests(upstream: &Upstream) -> Vec<Seen> {
    upstream.seen().into_iter().filter(|s| s.target != "/token").collect()
}

fn audit_events(vault: &Vault, kind: &str) -> usize {
    let events: Vec<Value> = serde_json::from_str(&vault.ok(&["audit", "-v", "--limit", "200"])).unwrap();
    events.iter().filter(|e| e["event"] == kind).count()
}

fn run(vault: &Vault, upstream: &Upstream, args: &[String]) -> (bool, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    vault.call(upstream, &args)
}

/// Nothing secret or derived shows anywhere.
fn nothing_leaked(vault: &Vault, grant: &str) {
    for value in [CLIENT_SECRET, grant, "ya29.token-1", "ya29.token-2"] {
        vault.assert_nowhere(value);
    }
}

// No token yet: one is fetched, kept, and used until it expires; then a
// new one is fetched. The token request carries the grant; the API request
// only the access token.
#[test]
fn refreshes_when_missing_and_when_expired() {
    let grant = "1//short-lived-grant-0123456789";
    let vault = vault_with(grant);
    let upstream = Upstream::start(HOSTS);
    let call = events("/calendar/v3/calendars/primary/events");
    for _ in 0..2 {
        let (ok, out, err) = run(&vault, &upstream, &call);
        assert!(ok && out.contains("\"ok\""), "{err}");
    }
    let tokens = token_requests(&upstream);
    assert_eq!(tokens.len(), 1, "the second call did not reuse the token");
    let form = String::from_utf8(tokens[0].body.clone()).unwrap();
    assert!(
        form.contains("grant_type=refresh_token") && form.contains("refresh_token=1%2F%2Fshort-lived"),
        "{form}"
    );
    assert_eq!(tokens[0].sni.as_deref(), Some("oauth2.googleapis.com"));
    for api in api_requests(&upstream) {
        assert_eq!(api.header("authorization"), Some("Bearer ya29.token-1"));
        assert_eq!(api.sni.as_deref(), Some("www.googleapis.com"));
    }
    // The token lasts four seconds (its lifetime less aivault's margin).
    std::thread::sleep(std::time::Duration::from_millis(4200));
    assert!(run(&vault, &upstream, &call).0);
    assert_eq!(token_requests(&upstream).len(), 2);
    assert_eq!(api_requests(&upstream).last().unwrap().header("authorization"), Some("Bearer ya29.token-2"));
    assert_eq!(audit_events(&vault, "token.refresh"), 2);
    nothing_leaked(&vault, grant);
}

// A 401 with a token that has not expired (revoked early): one refresh,
// one retry, and the caller gets the retry's answer.
#[test]
fn a_401_refreshes_once_and_retries() {
    let grant = "1//long-lived-grant-0123456789";
    let vault = vault_with(grant);
    let upstream = Upstream::start(HOSTS);
    let (ok, out, err) = run(&vault, &upstream, &events("/calendar/v3/calendars/revoke-first/events"));
    assert!(ok && out.contains("\"ok\""), "{err}{out}");
    assert_eq!(token_requests(&upstream).len(), 2);
    let auth: Vec<Option<String>> =
        api_requests(&upstream).iter().map(|s| s.header("authorization").map(String::from)).collect();
    assert_eq!(auth, [Some("Bearer ya29.token-1".to_string()), Some("Bearer ya29.token-2".to_string())]);
    nothing_leaked(&vault, grant);
}

// The token endpoint refuses the grant: the call fails with one line
// saying to re-authorise, nothing reaches the API, the secret is as it was,
// and the failure is audited.
#[test]
fn a_refused_grant_says_reauthorise() {
    let grant = "1//revoked-grant-0123456789";
    let vault = vault_with(grant);
    let upstream = Upstream::start(HOSTS);
    let before = vault.ok(&["secrets", "list", "-v"]);
    let (ok, _, err) = run(&vault, &upstream, &events("/calendar/v3/calendars/primary/events"));
    assert!(!ok && err.lines().count() == 1, "{err}");
    assert!(
        err.contains(
            "re-authorise: the refresh token was refused (invalid_grant: Token has been expired or revoked.)"
        ),
        "{err}"
    );
    assert!(api_requests(&upstream).is_empty());
    assert_eq!(vault.ok(&["secrets", "list", "-v"]), before, "the stored secret changed");
    assert_eq!(audit_events(&vault, "token.refresh.failed"), 1);
    nothing_leaked(&vault, grant);
}

// Callers that need a token at the same moment fetch it once: the others
// wait for the first and use its token.
#[test]
fn concurrent_callers_refresh_once() {
    let grant = "1//slow-grant-0123456789";
    let vault = vault_with(grant);
    let upstream = Upstream::start(HOSTS);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = vault.std_cmd(
                &events("/calendar/v3/calendars/primary/events")
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            );
            for (var, value) in upstream.env() {
                cmd.env(var, value);
            }
            cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for caller in callers {
        let out = caller.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(token_requests(&upstream).len(), 1, "concurrent callers refreshed more than once");
    assert_eq!(api_requests(&upstream).len(), 4);
    nothing_leaked(&vault, grant);
}

// An OAuth JSON without a field is refused at create, naming the field and
// never the value; nothing is stored.
#[test]
fn incomplete_oauth_json_is_refused_at_create() {
    let vault = Vault::new();
    let value =
        format!(r#"{{"client_id":"123-abc.apps.googleusercontent.com","client_secret":"{CLIENT_SECRET}"}}"#);
    let err =
        vault.fails_unchanged(&["secrets", "create", "--name", "GOOGLE_CALENDAR_OAUTH", "--value", &value]);
    assert!(err.contains("the OAuth JSON lacks `refresh_token`"), "{err}");
    vault.assert_nowhere(CLIENT_SECRET);
}

// Through `serve` (a server with nothing else to do, where a call may be
// made on its own thread): a provider whose kind refreshes its token gets
// one, and the call its answer; nothing secret reaches the client.
#[test]
fn refreshes_for_a_call_through_serve() {
    let grant = "1//serve-grant-0123456789";
    let vault = vault_with(grant);
    let upstream = Upstream::start(HOSTS);
    let token = crate::serve::token(&vault, &["--capability", "google-calendar/events"]);
    let server = crate::serve::Server::start(&vault, &upstream, &[]);
    for _ in 0..2 {
        let response = crate::serve::client()
            .get(server.url("/v/google-calendar/calendar/v3/calendars/primary/events"))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().unwrap();
        assert!(body.contains("\"ok\"") && !body.contains("ya29."), "{body}");
    }
    assert_eq!(token_requests(&upstream).len(), 1, "the second call did not reuse the token");
    assert_eq!(api_requests(&upstream).len(), 2);
    drop(server);
    nothing_leaked(&vault, grant);
}

// This provider's calls wait on upstream from their blocking thread (each
// is sent and answered whole there, its token refreshed in between if need
// be), so they take threads of their own: with more of them hanging than
// `serve` keeps threads for the vault work of calls, a call to another
// provider is still answered while every one of them waits.
#[test]
fn calls_sent_whole_leave_other_calls_their_threads() {
    let grant = "1//serve-grant-0123456789";
    let vault = vault_with(grant);
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let upstream = Upstream::start(&[HOSTS, &["api.openai.com"]].concat());
    let capabilities = ["--capability", "google-calendar/events", "--capability", "openai/models"];
    let token = crate::serve::token(&vault, &capabilities);
    // More than the calls' threads: two a core, at least four (serve.rs).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hanging = (2 * cores).max(4) + 2;
    let slots = (hanging + 8).to_string();
    let server = crate::serve::Server::start(&vault, &upstream, &["--max-concurrent", &slots]);
    let ended = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..hanging {
            scope.spawn(|| {
                let hang = server.url("/v/google-calendar/calendar/v3/calendars/primary/events/hang");
                let response = crate::serve::client().get(hang).bearer_auth(&token).send().unwrap();
                ended.fetch_add(1, Ordering::SeqCst);
                assert_eq!(response.status(), 200);
            });
        }
        // Each call's intent is written just before it is sent.
        let intents = vault.events_once("invoke.intent", hanging, 200);
        assert_eq!(intents.iter().filter(|e| e["event"] == "invoke.intent").count(), hanging);
        let models = crate::serve::client().get(server.url("/v/openai/v1/models")).bearer_auth(&token).send();
        assert_eq!(models.unwrap().status(), 200);
        assert_eq!(ended.load(Ordering::SeqCst), 0, "the call waited for a hanging one to end");
    });
    drop(server);
    nothing_leaked(&vault, grant);
}
