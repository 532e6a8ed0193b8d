//! The shared backend: a PostgreSQL database several brokers use at once
//! (`AIVAULT_DATABASE_URL=postgres://…` or `[storage] url`).
//!
//! The server is not trusted with anything SQLite's file is not: rows carry
//! the same MACs and values the same sealing. What changes is who else
//! writes. Every write transaction first takes one transaction-scoped
//! advisory lock, so writers of every instance queue exactly as SQLite's
//! `BEGIN IMMEDIATE` makes the processes of one machine queue: a
//! read-check-write sequence (a name free, a rate limit not reached, the
//! audit chain's head) can never interleave with another instance's, and
//! the audit log stays one chain. Reads are `REPEATABLE READ` snapshots, so
//! a table's seal and its rows are always read as of one moment.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::IsolationLevel;
use postgres::config::{Host, SslMode};

use super::sql::{Prepared, postgres_message};
use super::{Result, StoreError};
use crate::vault::schema::POSTGRES_MIGRATIONS;

/// The advisory lock every writer of a vault's database holds until its
/// transaction ends ("aivault" in ASCII). Advisory locks are per database,
/// so vaults in other databases of the same server do not share it.
const WRITERS_LOCK: i64 = 0x0061_6976_6175_6c74;

/// How long to wait for a server that does not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a vault's PostgreSQL database is, parsed from its URL.
pub struct Target {
    config: postgres::Config,
    /// Extra certificate authorities (`sslrootcert=PATH`), beside the web's.
    root_cert: Option<PathBuf>,
    /// `host:port/database`: how messages name it (never with the password).
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Parses a libpq-style URL, `postgres://user:password@host:port/db?sslmode=…`.
    /// `sslrootcert` and the `verify-ca`/`verify-full` modes are read here
    /// (the server's certificate is always verified); TLS is required unless
    /// the server is on this machine or the URL says otherwise.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid =
            |reason: String| StoreError::Open { location: "the database URL".into(), source: reason.into() };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut root_cert = None;
        let mut mode_given = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decoded(value))),
                "sslmode" if matches!(value, "verify-ca" | "verify-full") => {
                    mode_given = true;
                    kept.push("sslmode=require".to_string());
                }
                _ => {
                    mode_given |= key == "sslmode";
                    kept.push(pair.to_string());
                }
            }
        }
        let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(invalid("it must start with postgres:// or postgresql://".into()));
        }
        // The parser's messages name a key or a kind of mistake, never the
        // URL's text (which may hold a password).
        let mut config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| invalid(postgres_message(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("it names no host".into()));
        }
        if config.get_dbname().is_none() {
            return Err(invalid("it names no database (postgres://host/DATABASE)".into()));
        }
        if !mode_given {
            let local = config.get_hosts().iter().all(|h| match h {
                Host::Tcp(name) => {
                    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
                }
                Host::Unix(_) => true,
            });
            config.ssl_mode(if local { SslMode::Prefer } else { SslMode::Require });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("aivault");
        let shown = shown(&config);
        Ok(Target { config, root_cert, shown })
    }

    /// `host:port/database`, for messages and `status`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn open_error(&self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError::Open { location: self.shown.clone(), source: source.into() }
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &self.root_cert {
            let pem = std::fs::read(path)
                .map_err(|e| self.open_error(format!("cannot read sslrootcert {}: {e}", path.display())))?;
            let certs = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<rustls::pki_types::CertificateDer<'static>>, _>>()
                .map_err(|e| self.open_error(format!("sslrootcert {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(self.open_error(format!("sslrootcert {} holds no certificate", path.display())));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| self.open_error(format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.open_error(e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// One connection to the server, with the statements it has prepared.
pub struct Connection {
    /// `None` once closed.
    client: Option<postgres::Client>,
    prepared: Prepared,
}

impl Drop for Connection {
    /// Closing a connection blocks on the client's own runtime, which tokio
    /// forbids inside another (a server's pool can be dropped on one of
    /// its tasks), so there it is closed on a thread of its own.
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("aivault-pg-close".into()).spawn(move || drop(client));
        }
    }
}

/// Connects to `target` and migrates its schema.
pub(super) fn open(target: &Target) -> Result<Connection> {
    let client = target.config.connect(target.tls()?).map_err(|e| target.open_error(postgres_message(&e)))?;
    let mut conn = Connection { client: Some(client), prepared: Prepared::new() };
    migrate(&mut conn, target)?;
    Ok(conn)
}

fn shown(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

/// Applies the migrations this database lacks, under the writers' lock
/// (instances starting together migrate once). A database already at this
/// version costs one round trip: every CLI command opens a connection.
fn migrate(conn: &mut Connection, target: &Target) -> Result<()> {
    let supported = POSTGRES_MIGRATIONS.len() as i64;
    // Absent (a new database) reads as an error here and is created below.
    if let Ok(Some(row)) = conn.client().query_opt("SELECT version FROM aivault_schema", &[]) {
        let current: i64 = row.get(0);
        if current > supported {
            return Err(StoreError::TooNew { found: current, supported });
        }
        if current == supported {
            return Ok(());
        }
    }
    let mut tx = conn.client().transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITERS_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS aivault_schema (
             singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
             version    BIGINT NOT NULL
         )",
    )
    .map_err(|e| target.open_error(postgres_message(&e)))?;
    let current: i64 =
        tx.query_opt("SELECT version FROM aivault_schema", &[])?.map(|r| r.get(0)).unwrap_or(0);
    if current > supported {
        return Err(StoreError::TooNew { found: current, supported });
    }
    if current == supported {
        return Ok(tx.commit()?);
    }
    for migration in &POSTGRES_MIGRATIONS[current as usize..] {
        tx.batch_execute(migration)?;
    }
    tx.execute(
        "INSERT INTO aivault_schema (singleton, version) VALUES (1, $1)
         ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
        &[&supported],
    )?;
    Ok(tx.commit()?)
}

pub(super) fn schema_version(conn: &mut Connection) -> Result<i64> {
    let row = conn.client().query_opt("SELECT version FROM aivault_schema", &[])?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
}

impl Connection {
    pub(super) fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(postgres::Client::is_closed)
    }

    fn client(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("open until dropped")
    }
}

/// A transaction, and the connection's prepared statements: a write holds
/// the writers' lock from its first statement.
pub(super) fn begin(
    conn: &mut Connection,
    write: bool,
) -> Result<(postgres::Transaction<'_>, &mut Prepared)> {
    let Connection { client, prepared } = conn;
    let builder = client.as_mut().expect("open until dropped").build_transaction();
    let tx = if write {
        let mut tx = builder.isolation_level(IsolationLevel::ReadCommitted).start()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITERS_LOCK])?;
        tx
    } else {
        builder.isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?
    };
    Ok((tx, prepared))
}

/// The highest audit sequence number ever written, kept by a trigger in
/// the event's own transaction (survives deletion of the newest rows
/// unless that row is edited too).
pub(super) const AUDIT_HIGH_WATER: &str = "SELECT seq FROM audit_high_water";

/// `%XX` escapes of a URL parameter, decoded.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let t = Target::parse("postgres://team:hunter2secret@db.example.com:6543/vault?sslmode=verify-full")
            .unwrap();
        assert_eq!(t.shown(), "db.example.com:6543/vault");
        assert!(!format!("{t:?}").contains("hunter2secret"));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn tls_is_required_off_this_machine_unless_the_url_says_otherwise() {
        let mode = |url: &str| Target::parse(url).unwrap().config.get_ssl_mode();
        assert_eq!(mode("postgres://u@db.example.com/v"), SslMode::Require);
        assert_eq!(mode("postgres://u@127.0.0.1/v"), SslMode::Prefer);
        assert_eq!(mode("postgres://u@localhost/v"), SslMode::Prefer);
        assert_eq!(mode("postgres://u@db.example.com/v?sslmode=disable"), SslMode::Disable);
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for url in [
            "postgres://u:hunter2secret@db.example.com/v?sslmode=sometimes",
            "postgres://u:hunter2secret@db.example.com/v?colour=blue",
            "mysql://u:hunter2secret@db.example.com/v",
            "postgres://u:hunter2secret@db.example.com",
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(!e.contains("hunter2secret"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn root_certificate_paths_are_percent_decoded() {
        let t = Target::parse("postgres://u@h/v?sslrootcert=%2Ftmp%2Fmy%20ca.pem").unwrap();
        assert_eq!(t.root_cert.as_deref(), Some(std::path::Path::new("/tmp/my ca.pem")));
    }
}
