//! A real HTTPS server on a loopback port, with a certificate from a test CA
//! (rcgen) for the providers' host names, that records every request it
//! receives. Tests assert on what upstream saw.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One request as upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub sni: Option<String>,
    pub method: String,
    /// Path and query, as sent on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The running server.
pub struct Upstream {
    addr: SocketAddr,
    ca_path: PathBuf,
    hosts: Vec<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Holds back the last event of `/stream` answers until set.
    release: Arc<AtomicBool>,
    /// How many `/stream` answers have ended.
    finished: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Upstream {
    /// Serves `hosts` (plus evil.example.com, the redirect target).
    pub fn start(hosts: &[&str]) -> Self {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        hosts.push("evil.example.com".into());
        let dir = tempfile::tempdir().unwrap();
        let (config, ca_path) = tls_for(&hosts, dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicUsize::new(0));
        let (log, held, ended) = (Arc::clone(&seen), Arc::clone(&release), Arc::clone(&finished));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, log) = (Arc::clone(&config), Arc::clone(&log));
                let (held, ended) = (Arc::clone(&held), Arc::clone(&ended));
                std::thread::spawn(move || {
                    let _ = serve(stream, config, log, (held, ended));
                });
            }
        });
        Upstream { addr, ca_path, hosts, seen, release, finished, _dir: dir }
    }

    /// The environment that points every host at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let resolve: Vec<String> = self.hosts.iter().map(|h| format!("{h}={}", self.addr)).collect();
        vec![
            ("AIVAULT_DEV_RESOLVE", resolve.join(",")),
            ("AIVAULT_DEV_CA_CERT_PATH", self.ca_path.display().to_string()),
        ]
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Lets `/stream` answers send their last event and end.
    pub fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }

    /// How many `/stream` answers have sent their last event.
    pub fn streams_finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// A server configuration for `hosts` with a certificate from a fresh test
/// CA, whose certificate is written to `<dir>/ca.pem` (returned).
pub fn tls_for(hosts: &[String], dir: &Path) -> (Arc<rustls::ServerConfig>, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "aivault test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(hosts.to_vec()).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    (Arc::new(config), ca_path)
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    log: Arc<Mutex<Vec<Seen>>>,
    (release, finished): (Arc<AtomicBool>, Arc<AtomicUsize>),
) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    drop(reader);
    let sni = tls.conn.server_name().map(str::to_string);
    let seen = Seen { sni, method, target, headers, body };
    if seen.target.split('?').next().unwrap_or("").ends_with("/broken-stream") {
        log.lock().unwrap().push(seen);
        return broken_stream(tls);
    }
    if let Some(fault) = soak_fault(&seen) {
        if fault == "reset" {
            // Cut with no answer, no TLS close: a crashed upstream.
            log.lock().unwrap().push(seen);
            return tls.sock.shutdown(std::net::Shutdown::Both);
        }
        if fault == "timeout" {
            std::thread::sleep(Duration::from_secs(3));
        }
        if fault == "slow" {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if seen.target.split('?').next().unwrap_or("").ends_with("/stream") {
        let auth = seen.header("authorization").unwrap_or("").to_string();
        log.lock().unwrap().push(seen);
        return stream(&mut tls, &auth, &release, &finished);
    }
    let response = if seen.target.split('?').next() == Some("/token") {
        // Each token request is numbered: tokens are `ya29.token-<n>`.
        let issued = log.lock().unwrap().iter().filter(|s| s.target.starts_with("/token")).count();
        token_endpoint(&seen, issued + 1)
    } else {
        respond(&seen)
    };
    let (status, extra, response) = response;
    log.lock().unwrap().push(seen);
    write!(
        tls,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nset-cookie: upstream=1\r\n{extra}connection: close\r\n\r\n",
        response.len()
    )?;
    tls.write_all(&response)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// A server-sent event stream, chunked: a first event at once, then an
/// event echoing the credential split across two chunks, then (once the
/// test releases it, or after 20 s) a last event.
fn stream(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    auth: &str,
    release: &AtomicBool,
    finished: &AtomicUsize,
) -> std::io::Result<()> {
    write!(
        tls,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )?;
    let mut chunk = |data: &str| -> std::io::Result<()> {
        write!(tls, "{:x}\r\n{data}\r\n", data.len())?;
        tls.flush()
    };
    chunk("data: first\n\n")?;
    let middle = auth.len() / 2;
    chunk(&format!("data: {}", &auth[..middle]))?;
    std::thread::sleep(Duration::from_millis(50));
    chunk(&format!("{}\n\n", &auth[middle..]))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Counted before the last event leaves: whoever saw an earlier event
    // while this was still 0 got it before upstream finished.
    finished.fetch_add(1, Ordering::SeqCst);
    chunk("data: last\n\n")?;
    write!(tls, "0\r\n\r\n")?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// A stream that breaks: a first event, then the connection is cut with
/// no end chunk and no TLS close, as a crashing upstream would.
fn broken_stream(mut tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> std::io::Result<()> {
    write!(tls, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")?;
    let event = "data: first\n\n";
    write!(tls, "{:x}\r\n{event}\r\n", event.len())?;
    tls.flush()?;
    std::thread::sleep(Duration::from_millis(200));
    tls.sock.shutdown(std::net::Shutdown::Both)
}

/// An OAuth2 token endpoint (Google's `/token`). What the refresh token
/// holds picks the answer: `revoked` is refused (invalid_grant), `slow`
/// waits half a second, `short-lived` expires four seconds after the margin.
fn token_endpoint(seen: &Seen, n: usize) -> (&'static str, String, Vec<u8>) {
    let form = String::from_utf8_lossy(&seen.body).into_owned();
    let grant = form.split('&').find_map(|pair| pair.strip_prefix("refresh_token=")).unwrap_or("");
    if !form.contains("grant_type=refresh_token") || !form.contains("client_secret=") {
        return ("400 Bad Request", String::new(), br#"{"error":"invalid_request"}"#.to_vec());
    }
    if grant.contains("revoked") {
        let body = r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
        return ("400 Bad Request", String::new(), body.as_bytes().to_vec());
    }
    if grant.contains("slow") {
        std::thread::sleep(Duration::from_millis(500));
    }
    // aivault counts a token as expired 60 s early: this one lasts 4 s.
    let expires_in = if grant.contains("short-lived") { 64 } else { 3599 };
    let body = serde_json::json!({
        "access_token": format!("ya29.token-{n}"),
        "expires_in": expires_in,
        "token_type": "Bearer",
    });
    ("200 OK", String::new(), body.to_string().into_bytes())
}

/// The fault a soak request asks for: `…/soak/<n>/<fault>`.
fn soak_fault(seen: &Seen) -> Option<&str> {
    let rest = seen.target.split('?').next()?.split_once("/soak/")?.1;
    rest.split('/').nth(1)
}

/// What the server answers, by path.
fn respond(seen: &Seen) -> (&'static str, String, Vec<u8>) {
    let path = seen.target.split('?').next().unwrap_or("");
    if let Some(fault) = soak_fault(seen) {
        // Each answer names its request, so a mixed-up answer shows.
        let n = path.split_once("/soak/").and_then(|(_, r)| r.split('/').next()).unwrap_or("");
        let body = serde_json::json!({ "n": n }).to_string().into_bytes();
        return match fault {
            "5xx" => ("503 Service Unavailable", String::new(), body),
            "huge" => ("200 OK", String::new(), vec![b'x'; 2 << 20]),
            _ => ("200 OK", String::new(), body),
        };
    }
    if path.ends_with("/hang") {
        // Slower than any timeout the tests give it.
        std::thread::sleep(Duration::from_secs(4));
    }
    if path.contains("/revoke-first/") && seen.header("authorization") == Some("Bearer ya29.token-1") {
        // The first token issued was revoked early.
        return ("401 Unauthorized", String::new(), br#"{"error":"token revoked"}"#.to_vec());
    }
    if path.ends_with("/redirect") {
        return ("302 Found", "location: https://evil.example.com/steal\r\n".into(), b"{}".to_vec());
    }
    if path.ends_with("/not-found") {
        return ("404 Not Found", String::new(), br#"{"error":"not found"}"#.to_vec());
    }
    if path.ends_with("/large") {
        return ("200 OK", String::new(), format!("{{\"blob\":\"{}\"}}", "x".repeat(4096)).into_bytes());
    }
    if path.ends_with("/echo") || path.ends_with("/echo-large") {
        // Echo everything back, secrets included, the way a careless or
        // hostile API might: the broker must redact it. `/echo-large` puts
        // 256 KiB before the echo.
        let auth = seen.header("authorization").unwrap_or("");
        let padding = if path.ends_with("/echo-large") { "x".repeat(256 << 10) } else { String::new() };
        let echo = serde_json::json!({
            "padding": padding,
            "authorization": auth,
            "authorization_b64": base64_encode(auth.as_bytes()),
            "target": seen.target,
        });
        return ("200 OK", String::new(), echo.to_string().into_bytes());
    }
    if path == "/v1/models" {
        let models = serde_json::json!({
            "object": "list",
            "data": [{"id": "gpt-4o", "owned_by": "openai"}, {"id": "whisper-1", "owned_by": "openai"}],
            "token": "should-be-blocked",
        });
        return ("200 OK", String::new(), models.to_string().into_bytes());
    }
    (
        "200 OK",
        String::new(),
        serde_json::json!({"ok": true, "method": seen.method, "path": path}).to_string().into_bytes(),
    )
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
