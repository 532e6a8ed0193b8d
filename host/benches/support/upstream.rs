//! A loopback HTTPS server for benchmarks: rustls, HTTP/1.1 keep-alive, one
//! thread per connection, answering every request with the same JSON body
//! (a model list of a realistic size). It records nothing, so it costs the
//! same on the last request of a long run as on the first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

// Only its test CA is used here.
#[allow(dead_code)]
#[path = "../../tests/cli/upstream.rs"]
mod tests_upstream;

pub struct Upstream {
    pub addr: SocketAddr,
    pub ca_path: PathBuf,
    hosts: Vec<String>,
    _dir: tempfile::TempDir,
}

/// What every request gets back.
pub fn body() -> Vec<u8> {
    let models: Vec<String> = (0..24)
        .map(|i| format!(r#"{{"id":"model-{i}","object":"model","created":1700000000,"owned_by":"system"}}"#))
        .collect();
    format!(r#"{{"object":"list","data":[{}]}}"#, models.join(",")).into_bytes()
}

impl Upstream {
    /// Serves `hosts` with a certificate from a fresh test CA.
    pub fn start(hosts: &[&str]) -> Self {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let dir = tempfile::tempdir().unwrap();
        // The same test CA and certificate as the end-to-end tests' server.
        let (config, ca_path) = tests_upstream::tls_for(&hosts, dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body: Arc<[u8]> = body().into();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, body) = (config.clone(), body.clone());
                std::thread::spawn(move || {
                    let _ = serve(tcp, config, &body);
                });
            }
        });
        Upstream { addr, ca_path, hosts, _dir: dir }
    }

    /// The environment that points every host at this server (honoured by
    /// debug builds, and release builds with the `dev-overrides` feature).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let resolve: Vec<String> = self.hosts.iter().map(|h| format!("{h}={}", self.addr)).collect();
        vec![
            ("AIVAULT_DEV_RESOLVE", resolve.join(",")),
            ("AIVAULT_DEV_CA_CERT_PATH", self.ca_path.display().to_string()),
        ]
    }

    /// PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_path).unwrap()
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, body: &[u8]) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    loop {
        let mut reader = BufReader::new(&mut tls);
        let (mut length, mut close) = (0usize, false);
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let (name, value) = (name.trim(), value.trim());
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let mut request_body = vec![0; length];
        reader.read_exact(&mut request_body)?;
        // The reader's buffer holds nothing more: HTTP/1.1 clients do not
        // pipeline, so the next request starts after this answer.
        drop(reader);
        let connection = if close { "close" } else { "keep-alive" };
        write!(
            tls,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n",
            body.len()
        )?;
        tls.write_all(body)?;
        tls.flush()?;
        if close {
            tls.conn.send_close_notify();
            let _ = tls.flush();
            return Ok(());
        }
    }
}
