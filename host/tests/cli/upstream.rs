//! A real HTTPS server on a loopback port, with a certificate from a test CA
//! (rcgen) for the providers' host names, that records every request it
//! receives. Tests assert on what upstream saw.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    _dir: tempfile::TempDir,
}

impl Upstream {
    /// Serves `hosts` (plus evil.example.com, the redirect target).
    pub fn start(hosts: &[&str]) -> Self {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        hosts.push("evil.example.com".into());
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "aivault test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(hosts.clone()).unwrap().signed_by(&leaf_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
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
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, log) = (Arc::clone(&config), Arc::clone(&log));
                std::thread::spawn(move || {
                    let _ = serve(stream, config, log);
                });
            }
        });
        Upstream { addr, ca_path, hosts, seen, _dir: dir }
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
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    log: Arc<Mutex<Vec<Seen>>>,
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
    let (status, extra, response) = respond(&seen);
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

/// What the server answers, by path.
fn respond(seen: &Seen) -> (&'static str, String, Vec<u8>) {
    let path = seen.target.split('?').next().unwrap_or("");
    if path.ends_with("/redirect") {
        return ("302 Found", "location: https://evil.example.com/steal\r\n".into(), b"{}".to_vec());
    }
    if path.ends_with("/not-found") {
        return ("404 Not Found", String::new(), br#"{"error":"not found"}"#.to_vec());
    }
    if path.ends_with("/large") {
        return ("200 OK", String::new(), format!("{{\"blob\":\"{}\"}}", "x".repeat(4096)).into_bytes());
    }
    if path.ends_with("/echo") {
        // Echo everything back, secrets included, the way a careless or
        // hostile API might: the broker must redact it.
        let auth = seen.header("authorization").unwrap_or("");
        let echo = serde_json::json!({
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
