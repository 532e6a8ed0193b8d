//! What the CLI and aivaultd say to each other over the Unix socket: one
//! JSON message each way, each framed by its length (4 bytes, big-endian).

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::broker::Invocation;

/// The largest message either side accepts (a request body is capped by
/// policy well below this).
pub const MAX_MESSAGE: usize = 64 << 20;

/// A request to the daemon (its `Debug` leaves key material out).
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Is anyone there, and who am I to it?
    Ping,
    /// Hand the daemon the key material (operator only); the receiver
    /// wipes it after use.
    Unlock { material: Option<String> },
    /// Forget the key until the next unlock (operator only).
    Lock,
    /// Invoke a capability.
    Invoke(Call),
    /// What the caller may invoke (an agent: what its grants allow).
    Capabilities(CapabilityQuery),
    /// An admin command tried by someone who can only reach the daemon:
    /// refused for agents, and audited.
    Admin { command: String },
    /// Stop (operator only).
    Shutdown,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Ping => f.write_str("Ping"),
            Request::Unlock { material } => {
                f.debug_struct("Unlock").field("material", &material.as_ref().map(|_| "<hidden>")).finish()
            }
            Request::Lock => f.write_str("Lock"),
            Request::Invoke(call) => f.debug_tuple("Invoke").field(call).finish(),
            Request::Capabilities(query) => f.debug_tuple("Capabilities").field(query).finish(),
            Request::Admin { command } => f.debug_struct("Admin").field("command", command).finish(),
            Request::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// What a caller asks to list: its context and consumer (an operator's
/// choice; an agent's come from its grants), optionally one provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityQuery {
    pub workspace_id: Option<String>,
    pub group_id: Option<String>,
    pub consumer: Option<String>,
    pub provider: Option<String>,
}

/// An invocation as sent over the socket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub capability: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Base64.
    pub body: Option<String>,
    pub credential: Option<String>,
    pub workspace_id: Option<String>,
    pub group_id: Option<String>,
    pub consumer: Option<String>,
    pub timeout_ms: u64,
    /// The program calling on the user's behalf (an MCP client's name), for
    /// the audit log.
    #[serde(default)]
    pub client: Option<String>,
}

impl Call {
    pub fn from_invocation(call: &Invocation) -> Self {
        Call {
            capability: call.capability.clone(),
            method: call.method.clone(),
            path: call.path.clone(),
            headers: call.headers.clone(),
            body: call.body.as_ref().map(|b| B64.encode(b)),
            credential: call.credential.clone(),
            workspace_id: call.workspace_id.clone(),
            group_id: call.group_id.clone(),
            consumer: call.consumer.clone(),
            timeout_ms: call.timeout.as_millis() as u64,
            client: None,
        }
    }

    pub fn into_invocation(self) -> Result<Invocation, String> {
        let body =
            self.body.map(|b| B64.decode(b)).transpose().map_err(|_| "the request body is not base64")?;
        Ok(Invocation {
            capability: self.capability,
            method: self.method,
            path: self.path,
            headers: self.headers,
            body,
            credential: self.credential,
            workspace_id: self.workspace_id,
            group_id: self.group_id,
            consumer: self.consumer,
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
            via: None,
        })
    }
}

/// The daemon's reply.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    Pong(Pong),
    Done,
    /// An invocation's answer, in pieces: its head, its body as it
    /// arrives, then its end.
    Head(Head),
    Chunk {
        /// Base64.
        data: String,
    },
    End {
        /// Whether a secret echoed by upstream was removed.
        redacted: bool,
    },
    /// What the caller may invoke.
    Capabilities {
        capabilities: Vec<crate::broker::listing::CapabilityInfo>,
    },
    /// One line, for the caller's stderr.
    Error {
        message: String,
    },
}

/// Who answers, and what it takes the caller for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    pub pid: u32,
    pub locked: bool,
    /// Whether the caller is the vault's operator (else an agent).
    pub operator: bool,
    /// The vault directory it serves.
    pub dir: std::path::PathBuf,
}

/// An answer's head as sent over the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    pub redirect: Option<String>,
    pub credential: String,
}

impl From<&crate::broker::Head> for Head {
    fn from(h: &crate::broker::Head) -> Self {
        Head {
            status: h.status,
            reason: h.reason.clone(),
            content_type: h.content_type.clone(),
            redirect: h.redirect.clone(),
            credential: h.credential.clone(),
        }
    }
}

impl From<Head> for crate::broker::Head {
    fn from(h: Head) -> Self {
        crate::broker::Head {
            status: h.status,
            reason: h.reason,
            content_type: h.content_type,
            redirect: h.redirect,
            credential: h.credential,
        }
    }
}

/// Encodes a body piece for a frame.
pub fn chunk(data: &[u8]) -> Response {
    Response::Chunk { data: B64.encode(data) }
}

/// Decodes a body piece from a frame.
pub fn unchunk(data: &str) -> Result<Vec<u8>, String> {
    B64.decode(data).map_err(|_| "the daemon sent a body piece that is not base64".to_string())
}

/// Writes one framed message.
pub fn write(stream: &mut impl Write, message: &impl Serialize) -> std::io::Result<()> {
    // Sized up front, so an unlock's key material is never copied by growth
    // into memory that is freed unwiped.
    let mut bytes = Vec::with_capacity(4 << 10);
    let mut send = || {
        serde_json::to_writer(&mut bytes, message).map_err(std::io::Error::other)?;
        stream.write_all(&(bytes.len() as u32).to_be_bytes())?;
        stream.write_all(&bytes)?;
        stream.flush()
    };
    let sent = send();
    bytes.zeroize();
    sent
}

/// A buffer for a frame of `len` bytes that grows with what actually
/// arrives; small frames (an unlock's key material) fit the first
/// allocation, so no reallocation leaves a copy behind unzeroized.
pub fn frame_buffer(len: usize) -> Vec<u8> {
    Vec::with_capacity(len.min(64 << 10))
}

/// Reads one framed message.
pub fn read<T: for<'de> Deserialize<'de>>(stream: &mut impl Read) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "message too large"));
    }
    let mut bytes = frame_buffer(len);
    stream.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        bytes.zeroize();
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let parsed =
        serde_json::from_slice(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
    bytes.zeroize();
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key material never shows in a request's debug output.
    #[test]
    fn debug_hides_unlock_material() {
        let request = Request::Unlock { material: Some("correct horse battery".into()) };
        let shown = format!("{request:?}");
        assert!(!shown.contains("horse") && shown.contains("<hidden>"), "{shown}");
    }

    // A frame round-trips; one cut short is an error, not a hang or a guess.
    #[test]
    fn frames_round_trip_and_truncation_fails() {
        let mut bytes = Vec::new();
        write(&mut bytes, &Request::Admin { command: "secrets list".into() }).unwrap();
        let back: Request = read(&mut bytes.as_slice()).unwrap();
        assert!(matches!(back, Request::Admin { command } if command == "secrets list"));
        let cut = &bytes[..bytes.len() - 3];
        assert!(read::<Request>(&mut &cut[..]).is_err());
    }
}
