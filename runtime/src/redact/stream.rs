//! Redaction of a body that arrives in pieces (a streamed answer).

use zeroize::Zeroizing;

use super::{Redactor, replace_spans};

/// Redaction of a body that arrives in pieces: what is passed on can never
/// be part of a form that the next piece completes, so a secret split
/// across two chunks is removed as surely as one inside a chunk.
pub struct StreamRedactor<'a> {
    redactor: &'a Redactor,
    /// The tail of what came, held back until it cannot start a match.
    carry: Zeroizing<Vec<u8>>,
    redacted: bool,
}

impl<'a> StreamRedactor<'a> {
    pub fn new(redactor: &'a Redactor) -> Self {
        StreamRedactor { redactor, carry: Zeroizing::new(Vec::new()), redacted: false }
    }

    /// Takes the next piece; returns what can be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.carry.extend_from_slice(chunk);
        let data = std::mem::take(&mut *self.carry);
        // Only a tail that could begin a form waits for the next piece;
        // the rest (an event's closing newlines, say) goes on at once.
        let keep = self.redactor.pending_prefix(&data);
        if data.len() <= keep {
            *self.carry = data;
            return Vec::new();
        }
        let marker_missing =
            |spans: &Vec<(usize, usize)>| !spans.is_empty() && self.redactor.marker.is_empty();
        let Some(spans) = self.redactor.spans(&data).filter(|spans| !marker_missing(spans)) else {
            self.redacted = true;
            return self.redactor.marker.clone();
        };
        let mut cut = data.len() - keep;
        if let Some(&(start, _)) = spans.iter().find(|&&(s, e)| s < cut && e > cut) {
            cut = start;
        }
        let settled: Vec<(usize, usize)> = spans.into_iter().filter(|&(_, e)| e <= cut).collect();
        self.redacted |= !settled.is_empty();
        let out = replace_spans(&data[..cut], &settled, &self.redactor.marker);
        *self.carry = data[cut..].to_vec();
        out
    }

    /// The rest, at the end of the body.
    pub fn finish(&mut self) -> Vec<u8> {
        let data = std::mem::take(&mut *self.carry);
        let out = self.redactor.bytes(&data);
        self.redacted |= out != *data;
        out
    }

    /// Whether anything was removed so far.
    pub fn redacted(&self) -> bool {
        self.redacted
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::super::{Forms, tests::SECRET};
    use super::*;

    // A secret split across chunks, at every split point, never passes:
    // the stream's output equals the whole body's redaction.
    #[test]
    fn stream_redaction_across_chunks() {
        let redactor = Redactor::new([SECRET], Forms::Encoded);
        let body = format!("data: {{\"echo\":\"{SECRET}\"}}\n\ndata: {}\n\n", STANDARD.encode(SECRET));
        let whole = redactor.bytes(body.as_bytes());
        for split in 1..body.len() {
            let mut stream = StreamRedactor::new(&redactor);
            let mut out = stream.push(&body.as_bytes()[..split]);
            out.extend(stream.push(&body.as_bytes()[split..]));
            out.extend(stream.finish());
            assert_eq!(out, whole, "split at {split}");
            assert!(stream.redacted());
        }
        // Byte by byte, too.
        let mut stream = StreamRedactor::new(&redactor);
        let mut out: Vec<u8> = body.bytes().flat_map(|b| stream.push(&[b])).collect();
        out.extend(stream.finish());
        assert_eq!(out, whole);
    }

    // Clean text streams through unchanged, held back only by a needle's length.
    #[test]
    fn stream_passes_clean_text() {
        let redactor = Redactor::new([SECRET], Forms::Encoded);
        let mut stream = StreamRedactor::new(&redactor);
        let chunk = "x".repeat(1000);
        let first = stream.push(chunk.as_bytes());
        assert_eq!(first.len(), 1000, "nothing that cannot start a secret is held back");
        let held = stream.push(&SECRET.as_bytes()[..10]);
        assert!(held.is_empty(), "the start of a secret waits for the rest");
        let mut all = first;
        all.extend(held);
        all.extend(stream.finish());
        assert_eq!(all, format!("{chunk}{}", &SECRET[..10]).as_bytes());
        assert!(!stream.redacted());
    }

    // Many long secrets: the hold-back search gives way to holding back the
    // longest form whole, and a secret split anywhere is still removed.
    #[test]
    fn stream_with_many_long_secrets() {
        let secrets: Vec<String> = (0..40).map(|i| format!("{i:02}-{}", "k".repeat(1500))).collect();
        let redactor = Redactor::new(secrets.iter().map(String::as_str), Forms::Encoded);
        let body = format!("start {} middle {} end", secrets[7], STANDARD.encode(&secrets[31]));
        let whole = redactor.bytes(body.as_bytes());
        for size in [1, 700, 4096] {
            let mut stream = StreamRedactor::new(&redactor);
            let mut out: Vec<u8> = body.as_bytes().chunks(size).flat_map(|c| stream.push(c)).collect();
            out.extend(stream.finish());
            assert_eq!(out, whole, "chunks of {size}");
        }
        // Clean text: past the budget, the longest form's length waits.
        let mut stream = StreamRedactor::new(&redactor);
        let passed = stream.push("x".repeat(8000).as_bytes()).len();
        assert!(passed > 0 && passed < 8000, "{passed}");
        assert_eq!(passed + stream.finish().len(), 8000);
    }
}
