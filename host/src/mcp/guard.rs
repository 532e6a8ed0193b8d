//! A guard in front of the MCP transport on stdio. rmcp skips a line it
//! cannot parse without a word; a client deserves an answer, so each line
//! is checked first: one that is not JSON gets a JSON-RPC parse error
//! (-32700), one that is not a JSON-RPC message an invalid-request error
//! (-32600), one longer than the limit is dropped unread with -32600; the
//! rest go to rmcp unchanged. Answers from both are written whole, one
//! line each, so they never interleave.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// The longest message accepted (a tool call's body is capped lower).
pub const MAX_LINE: usize = 16 << 20;

/// The two ends rmcp serves on, and the tasks that feed them from `input`
/// and drain them to `output`.
pub fn guarded(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> (DuplexStream, DuplexStream) {
    let (to_rmcp, rmcp_reads) = tokio::io::duplex(1 << 20);
    let (rmcp_writes, from_rmcp) = tokio::io::duplex(1 << 20);
    let (errors, pending) = mpsc::channel::<String>(64);
    tokio::spawn(read_lines(input, to_rmcp, errors));
    tokio::spawn(write_lines(from_rmcp, pending, output));
    (rmcp_reads, rmcp_writes)
}

fn error(code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}).to_string()
}

/// What is wrong with `line` as a JSON-RPC message, if anything.
fn check(line: &[u8]) -> Option<String> {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Some(error(-32700, "Parse error: the message is not JSON"));
    };
    let messages = match &value {
        Value::Array(batch) if !batch.is_empty() => batch.iter().collect(),
        other => vec![other],
    };
    let valid = messages.iter().all(|m| {
        m.get("jsonrpc") == Some(&json!("2.0"))
            && (m.get("method").is_some_and(Value::is_string)
                || m.get("result").is_some()
                || m.get("error").is_some())
    });
    (!valid).then(|| error(-32600, "Invalid Request: not a JSON-RPC 2.0 message"))
}

async fn read_lines(input: impl AsyncRead + Unpin, mut to_rmcp: DuplexStream, errors: mpsc::Sender<String>) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let mut discarding = false;
    loop {
        let (done, used) = {
            let Ok(buf) = input.fill_buf().await else { break };
            if buf.is_empty() {
                break;
            }
            match buf.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    if !discarding {
                        line.extend_from_slice(&buf[..end]);
                    }
                    (true, end + 1)
                }
                None => {
                    if !discarding {
                        line.extend_from_slice(buf);
                    }
                    (false, buf.len())
                }
            }
        };
        input.consume(used);
        if !discarding && line.len() > MAX_LINE {
            // Too long to read whole: dropped, answered once it ends.
            discarding = true;
            line = Vec::new();
        }
        if !done {
            continue;
        }
        if discarding {
            discarding = false;
            let _ = errors.send(error(-32600, "Invalid Request: the message is larger than 16 MiB")).await;
            continue;
        }
        let text = std::mem::take(&mut line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match check(&text) {
            Some(answer) => {
                let _ = errors.send(answer).await;
            }
            None => {
                if to_rmcp.write_all(&text).await.is_err() || to_rmcp.write_all(b"\n").await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_rmcp.shutdown().await;
}

async fn write_lines(
    from_rmcp: DuplexStream,
    mut pending: mpsc::Receiver<String>,
    mut output: impl AsyncWrite + Unpin,
) {
    let mut lines = BufReader::new(from_rmcp).lines();
    let mut rmcp_open = true;
    let mut errors_open = true;
    while rmcp_open || errors_open {
        let line = tokio::select! {
            next = lines.next_line(), if rmcp_open => match next {
                Ok(Some(line)) => line,
                _ => { rmcp_open = false; continue; }
            },
            next = pending.recv(), if errors_open => match next {
                Some(line) => line,
                None => { errors_open = false; continue; }
            },
        };
        if output.write_all(line.as_bytes()).await.is_err()
            || output.write_all(b"\n").await.is_err()
            || output.flush().await.is_err()
        {
            break;
        }
    }
}
