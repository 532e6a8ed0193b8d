//! The audit log: append-only, never a value, and sealed. Each event carries
//! the SHA-256 hash of its contents and of the event before it (a chain),
//! and an HMAC of that hash under a key derived from the master key; the
//! newest event is recorded in a sealed head. Whoever can write the database
//! but lacks the key can edit, delete, reorder or truncate events and
//! recompute the hashes, but not the MACs or the head, so `verify` names the
//! first event that was touched.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::integrity::{Fields, KeySet, MacKey};
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

fn mac_fields(seq: i64, hash: &str) -> Fields {
    Fields::new("aivault/v1/audit").int(seq).text(hash)
}

/// Appends `event` at `ts_ms`, chained to the newest event, and returns its
/// sequence number. The transaction must hold the vault's keys.
pub fn append(tx: &Tx<'_>, event: &Event, ts_ms: i64) -> Result<i64, StoreError> {
    let mut chain = Chain::head(tx)?;
    let seq = chain.append(tx, event, ts_ms)?;
    chain.seal(tx)?;
    Ok(seq)
}

/// The end of the log while a write transaction appends to it: read once,
/// and the head sealed once after the last event, however many events the
/// transaction appends (a group commit writes several calls' records).
pub(super) struct Chain {
    keys: std::sync::Arc<KeySet>,
    /// The next event's sequence number: past every number ever handed
    /// out, even to events since deleted.
    next_seq: i64,
    /// The hash of the last event.
    prev_hash: String,
    /// Whether the head was sealed and authentic when read. A head whose
    /// seal is broken or missing stays so: re-sealing it would hide a
    /// truncation or a wiped log. Only a new vault and an old vault's
    /// migration write the first seal ([`authenticate_legacy`]).
    sealed: bool,
    appended: bool,
}

impl Chain {
    /// The log's end as `tx` sees it. The transaction must hold the
    /// vault's keys.
    pub(super) fn head(tx: &Tx<'_>) -> Result<Self, StoreError> {
        let keys = tx.keys().filter(|k| !k.is_legacy()).cloned().ok_or(StoreError::Unkeyed)?;
        let (last_seq, prev_hash) = tx.audit_head()?.unwrap_or((0, GENESIS.to_string()));
        let sealed = tx
            .audit_head_seal()?
            .is_some_and(|(value, authentic)| authentic && value == format!("{last_seq}:{prev_hash}"));
        let next_seq = last_seq.max(tx.audit_high_water()?) + 1;
        Ok(Chain { keys, next_seq, prev_hash, sealed, appended: false })
    }

    /// Appends `event` at `ts_ms` after the last event and returns its
    /// sequence number.
    pub(super) fn append(&mut self, tx: &Tx<'_>, event: &Event, ts_ms: i64) -> Result<i64, StoreError> {
        let seq = self.next_seq;
        let details = event.details.to_string();
        let hash = event_hash(&self.prev_hash, seq, ts_ms, event.kind, &event.subject, &details);
        let prev_hash = std::mem::replace(&mut self.prev_hash, hash.clone());
        tx.insert_audit(&AuditRow {
            seq,
            ts_ms,
            event: event.kind.to_string(),
            subject: event.subject.clone(),
            details,
            prev_hash,
            mac: Some(self.keys.audit().tag(&mac_fields(seq, &hash))),
            hash,
        })?;
        (self.next_seq, self.appended) = (seq + 1, true);
        Ok(seq)
    }

    /// Seals the new head, if the head read was sealed.
    pub(super) fn seal(self, tx: &Tx<'_>) -> Result<(), StoreError> {
        if self.sealed && self.appended {
            tx.seal_audit_head(self.next_seq - 1, &self.prev_hash)?;
        }
        Ok(())
    }
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
    /// Whether the chain was checked against the vault's key (false for a
    /// vault whose log predates authentication and has not been written since).
    pub authenticated: bool,
    /// The first problem, if any: `(sequence number, what is wrong)`.
    pub first_problem: Option<(i64, String)>,
}

/// Walks the chain from the first event and reports the first break. With
/// the keys held, every event's MAC and the sealed head are checked too.
pub fn verify(tx: &Tx<'_>) -> Result<Verification, StoreError> {
    let rows = tx.audit_all()?;
    let keys = tx.keys().filter(|k| !k.is_legacy()).cloned();
    let found = |seq: i64, what: String| Verification {
        events: rows.len(),
        authenticated: keys.is_some(),
        first_problem: Some((seq, what)),
    };
    if let Some((seq, what)) = chain_break(&rows, keys.as_ref().map(|k| k.audit())) {
        return Ok(found(seq, what));
    }
    let next = rows.last().map(|r| r.seq + 1).unwrap_or(1);
    let high_water = tx.audit_high_water()?;
    if high_water >= next {
        return Ok(found(next, format!("events #{next} to #{high_water} were deleted from the end")));
    }
    if keys.is_some()
        && let Some(problem) = head_problem(tx, rows.last().map(|r| (r.seq, r.hash.as_str())))?
    {
        return Ok(found(next, problem));
    }
    Ok(Verification { events: rows.len(), authenticated: keys.is_some(), first_problem: None })
}

/// The first event that does not follow from the one before it, or (with a
/// key) is not authenticated by it.
fn chain_break(rows: &[AuditRow], key: Option<&MacKey>) -> Option<(i64, String)> {
    let mut expected_prev = GENESIS.to_string();
    for (expected_seq, row) in (1..).zip(rows) {
        if row.seq != expected_seq {
            return Some(if row.seq > expected_seq {
                (expected_seq, format!("event #{expected_seq} was deleted (the log jumps to #{})", row.seq))
            } else {
                (expected_seq, format!("event #{} is out of order", row.seq))
            });
        }
        if row.prev_hash != expected_prev {
            let edited = expected_seq - 1;
            return Some((edited, format!("event #{edited} was edited (#{} no longer follows it)", row.seq)));
        }
        if event_hash(&row.prev_hash, row.seq, row.ts_ms, &row.event, &row.subject, &row.details) != row.hash
        {
            return Some((
                row.seq,
                format!("event #{} was edited (its contents do not match its hash)", row.seq),
            ));
        }
        if let Some(key) = key
            && !key.verify(&mac_fields(row.seq, &row.hash), row.mac.as_deref())
        {
            return Some((
                row.seq,
                format!(
                    "event #{} is not authenticated by this vault's key (it was written or rewritten outside aivault)",
                    row.seq
                ),
            ));
        }
        expected_prev = row.hash.clone();
    }
    None
}

/// Seals the head of an empty log, before its first event.
fn seal_empty(tx: &Tx<'_>) -> Result<(), StoreError> {
    tx.seal_audit_head(0, GENESIS)
}

/// What is wrong with the sealed head, given the newest event.
fn head_problem(tx: &Tx<'_>, last: Option<(i64, &str)>) -> Result<Option<String>, StoreError> {
    let Some((value, authentic)) = tx.audit_head_seal()? else {
        return Ok(Some(
            "the seal of the log's newest event is missing: the log was wiped or its seal removed".into(),
        ));
    };
    if !authentic {
        return Ok(Some("the seal of the log's newest event was altered".into()));
    }
    let (sealed_seq, sealed_hash) = value.split_once(':').unwrap_or(("0", ""));
    let sealed_seq: i64 = sealed_seq.parse().unwrap_or(0);
    Ok(match last {
        Some((seq, hash)) if seq == sealed_seq && hash == sealed_hash => None,
        Some((seq, _)) if sealed_seq > seq => Some(format!(
            "the log ends at #{seq} but its newest event was sealed at #{sealed_seq}: events were deleted from the end"
        )),
        None if sealed_seq > 0 => {
            Some(format!("the log is empty but its newest event was sealed at #{sealed_seq}: it was wiped"))
        }
        None => None,
        Some(_) => Some(format!(
            "the log does not end at its sealed newest event #{sealed_seq}: events were deleted and others written in their place"
        )),
    })
}

/// Authenticates the events of a log written before events carried MACs:
/// every event up to the first break in its hash chain (a damaged log stays
/// visibly damaged), then seals the newest. Returns how many were sealed.
pub fn authenticate_legacy(tx: &Tx<'_>) -> Result<usize, StoreError> {
    let keys = tx.keys().filter(|k| !k.is_legacy()).cloned().ok_or(StoreError::Unkeyed)?;
    let rows = tx.audit_all()?;
    let intact = chain_break(&rows, None).map(|(seq, _)| seq).unwrap_or(i64::MAX);
    let mut sealed = 0;
    for row in rows.iter().filter(|r| r.seq < intact) {
        tx.set_audit_mac(row.seq, Some(&keys.audit().tag(&mac_fields(row.seq, &row.hash))))?;
        sealed += 1;
    }
    match rows.last() {
        Some(last) => tx.seal_audit_head(last.seq, &last.hash)?,
        None => seal_empty(tx)?,
    }
    Ok(sealed)
}

/// Re-keys the log from `old` to the keys the transaction now holds (master
/// key rotation): every event `old` authenticates gets a MAC under the new
/// key; any other keeps its (now doubly wrong) MAC. `head_sealed` says
/// whether the head was sealed under `old`.
pub fn rekey(tx: &Tx<'_>, old: &MacKey, head_sealed: bool) -> Result<(), StoreError> {
    let keys = tx.keys().filter(|k| !k.is_legacy()).cloned().ok_or(StoreError::Unkeyed)?;
    let rows = tx.audit_all()?;
    for row in &rows {
        let fields = mac_fields(row.seq, &row.hash);
        if old.verify(&fields, row.mac.as_deref()) {
            tx.set_audit_mac(row.seq, Some(&keys.audit().tag(&fields)))?;
        }
    }
    if head_sealed && let Some(last) = rows.last() {
        tx.seal_audit_head(last.seq, &last.hash)?;
    }
    Ok(())
}

/// Whether the head seal is intact under the keys held, for [`rekey`].
pub fn head_sealed(tx: &Tx<'_>) -> Result<bool, StoreError> {
    let last = tx.audit_head()?;
    Ok(head_problem(tx, last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())))?.is_none())
}
