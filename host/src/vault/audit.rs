//! The audit log: append-only, hash-chained, never a value. Each event
//! carries the hash of the one before it, so `verify` can name the first
//! event that was edited or deleted.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::store::{AuditRow, StoreError, Tx};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to record. `details` holds ids, names and scopes only.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub subject: String,
    pub details: Value,
}

impl Event {
    pub fn new(kind: &'static str, subject: impl Into<String>, details: Value) -> Self {
        Event { kind, subject: subject.into(), details }
    }
}

/// Appends `event` at `ts_ms`, chained to the newest event.
pub fn append(tx: &Tx<'_>, event: &Event, ts_ms: i64) -> Result<(), StoreError> {
    let (last_seq, prev_hash) = tx.audit_head()?.unwrap_or((0, GENESIS.to_string()));
    let seq = last_seq.max(tx.audit_high_water()?) + 1;
    let details = event.details.to_string();
    let hash = event_hash(&prev_hash, seq, ts_ms, event.kind, &event.subject, &details);
    tx.insert_audit(&AuditRow {
        seq,
        ts_ms,
        event: event.kind.to_string(),
        subject: event.subject.clone(),
        details,
        prev_hash,
        hash,
    })
}

fn event_hash(prev: &str, seq: i64, ts_ms: i64, kind: &str, subject: &str, details: &str) -> String {
    let mut h = Sha256::new();
    for field in [
        prev.as_bytes(),
        &seq.to_be_bytes(),
        &ts_ms.to_be_bytes(),
        kind.as_bytes(),
        subject.as_bytes(),
        details.as_bytes(),
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    hex::encode(h.finalize())
}

/// What `audit verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub events: usize,
    /// The first problem, if any: `(sequence number, what is wrong)`.
    pub first_problem: Option<(i64, String)>,
}

/// Walks the chain from the first event and reports the first break.
pub fn verify(tx: &Tx<'_>) -> Result<Verification, StoreError> {
    let rows = tx.audit_all()?;
    let mut expected_seq = 1;
    let mut expected_prev = GENESIS.to_string();
    let found =
        |seq: i64, what: String| Verification { events: rows.len(), first_problem: Some((seq, what)) };
    for row in &rows {
        if row.seq != expected_seq {
            let what = if row.seq > expected_seq {
                format!("event #{expected_seq} was deleted (the log jumps to #{})", row.seq)
            } else {
                format!("event #{} is out of order", row.seq)
            };
            return Ok(found(expected_seq, what));
        }
        if row.prev_hash != expected_prev {
            let edited = expected_seq - 1;
            return Ok(found(
                edited,
                format!("event #{edited} was edited (#{} no longer follows it)", row.seq),
            ));
        }
        if event_hash(&row.prev_hash, row.seq, row.ts_ms, &row.event, &row.subject, &row.details) != row.hash
        {
            return Ok(found(
                row.seq,
                format!("event #{} was edited (its contents do not match its hash)", row.seq),
            ));
        }
        expected_prev = row.hash.clone();
        expected_seq += 1;
    }
    let high_water = tx.audit_high_water()?;
    if high_water >= expected_seq {
        return Ok(found(
            expected_seq,
            format!("events #{expected_seq} to #{high_water} were deleted from the end"),
        ));
    }
    Ok(Verification { events: rows.len(), first_problem: None })
}
