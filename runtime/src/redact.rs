//! Removes secret values from text and bytes before anyone sees them: error
//! messages from providers, and upstream response bodies that echo a secret
//! raw, base64-encoded or percent-encoded.
//!
//! [`Needles`] gathers what to search for: the secrets, the values a JSON
//! secret holds, and what a provider injected (it may have derived a value
//! from a secret). A [`Redactor`] compiles every searched form of them into
//! one Aho-Corasick automaton and removes them in a single linear pass, so a
//! 64 MiB body costs the same whether there is one needle or fifty.
//! [`text`] and [`bytes`] are the one-call forms for plain secrets.

mod forms;
mod stream;

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use zeroize::Zeroizing;

use forms::{disguised_forms, encoded_forms};
pub use stream::StreamRedactor;

/// What a removed value is replaced with.
pub const MARKER: &str = "[REDACTED]";

/// Needles shorter than this many bytes are not searched for: they would
/// match ordinary text (`Bearer`, `true`, a short id). It costs nothing, since
/// `secrets create` refuses values this short and no provider accepts one;
/// what is skipped is short words of injected values, which are not secrets.
pub const MIN_NEEDLE_LEN: usize = 8;

/// Above this many bytes of patterns, a [`Redactor`] builds a contiguous NFA
/// instead of a DFA, whose size grows with every pattern byte.
const DFA_MAX_PATTERN_BYTES: usize = 16 * 1024;

/// Inputs shorter than this are searched with the contiguous NFA: building
/// a DFA costs more than it saves on a typical API answer of a few KiB (it
/// was a twentieth of `serve`'s time per call).
const DFA_MIN_INPUT_BYTES: usize = 64 * 1024;

/// Below this many bytes to compare (forms × input length), each form is
/// searched for on its own instead (see [`searched_spans`]): a few API
/// answers' worth, never a stream's every chunk against many long secrets.
const SEARCH_BUDGET: usize = 256 * 1024;

/// At most this many bytes of injected values are searched for. A request
/// carrying more is refused for its size by the checks on `inject` results,
/// whose messages never quote it; the cap keeps a component from making the
/// host compile a huge automaton.
const MAX_INJECTED_BYTES: usize = 64 * 1024;

/// Which disguises of each value a [`Redactor`] searches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forms {
    /// The value raw, percent-encoded (either hex case) and base64-encoded
    /// (standard or URL-safe, padded or not, alone or at any alignment inside
    /// a longer encoding): how an upstream echoes a value. For response bodies.
    Encoded,
    /// [`Forms::Encoded`] of the value, lower-cased, upper-cased and reversed,
    /// plus percent-encodings that escape more than RFC 3986 asks (every
    /// non-alphanumeric byte, or every byte) and hex, with ASCII case ignored
    /// when matching: how a component that wants to smuggle a secret out
    /// through its own error text might disguise it. For text a component
    /// wrote.
    Disguised,
}

/// The values to remove. Wiped when dropped.
#[derive(Default)]
pub struct Needles {
    values: Vec<Zeroizing<String>>,
    injected_bytes: usize,
}

/// Byte comparisons one chunk's exact hold-back search may cost.
const PREFIX_SEARCH_BUDGET: usize = 1 << 24;

impl Needles {
    /// No values yet.
    pub fn new() -> Self {
        Needles::default()
    }

    /// A secret value handed to a provider and, when it is a JSON object
    /// (an OAuth token set, a service-account file), every string inside it,
    /// since a provider may use one field alone (`access_token`).
    pub fn secret(&mut self, value: &str) -> &mut Self {
        self.push(value);
        if value.trim_start().starts_with('{')
            && let Ok(json) = serde_json::from_str::<serde_json::Value>(value)
            && json.is_object()
        {
            let mut strings = Vec::new();
            json_strings(&json, &mut strings);
            for s in strings {
                self.push(s);
            }
        }
        self
    }

    /// A value a provider put into a request (a header value, a query value,
    /// a path prefix) and each whitespace-separated word of it, so that the
    /// token of `Bearer <token>` is found on its own.
    ///
    /// Values past [`MAX_INJECTED_BYTES`] in all are not searched for.
    pub fn injected(&mut self, value: &str) -> &mut Self {
        self.injected_bytes = self.injected_bytes.saturating_add(value.len());
        if self.injected_bytes > MAX_INJECTED_BYTES {
            return self;
        }
        self.push(value);
        for word in value.split_whitespace() {
            if word.len() != value.len() {
                self.push(word);
            }
        }
        self
    }

    fn push(&mut self, value: &str) {
        if value.len() >= MIN_NEEDLE_LEN && !self.values.iter().any(|v| v.as_str() == value) {
            self.values.push(Zeroizing::new(value.to_string()));
        }
    }

    /// Compiles the values into a redactor searching for `forms` of each.
    pub fn redactor(&self, forms: Forms) -> Redactor {
        Redactor::new(self.values.iter().map(|v| v.as_str()), forms)
    }
}

/// Every string in `value`, depth first (object keys are not secrets).
fn json_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

/// Every searched form of a set of values, ready to scrub any amount of data.
/// Each call compiles (once, then reuses) an automaton of the forms short
/// enough to occur in its input, so a long injected value costs nothing when
/// scrubbing a one-line message.
pub struct Redactor {
    /// Distinct forms, shortest first.
    needles: Vec<Zeroizing<Vec<u8>>>,
    case_insensitive: bool,
    /// The automaton over every form, for inputs at least as long as each:
    /// a DFA for large inputs, and one cheaper to build for small ones.
    full: OnceLock<Matcher>,
    full_small: OnceLock<Matcher>,
    /// What replaces each match: [`MARKER`], unless a form could be read
    /// across or inside it (see [`marker_for`]); empty when no marker is
    /// safe, and then nothing of the input is shown.
    marker: Vec<u8>,
}

enum Matcher {
    Search {
        automaton: AhoCorasick,
        /// The longest form searched, which bounds how far back a later
        /// match can reach.
        longest: usize,
    },
    /// The automaton could not be built (beyond its size limits): nothing
    /// can be shown as clean, so everything is withheld.
    Broken,
}

impl Matcher {
    fn build(needles: &[Zeroizing<Vec<u8>>], case_insensitive: bool, input: usize) -> Self {
        let total: usize = needles.iter().map(|n| n.len()).sum();
        // A DFA scans fastest but grows with every pattern byte; past a small
        // set (a few long secrets) the contiguous NFA, still one linear pass,
        // keeps building cheap, and on a small input it finishes first.
        let kind = if total <= DFA_MAX_PATTERN_BYTES && input >= DFA_MIN_INPUT_BYTES {
            AhoCorasickKind::DFA
        } else {
            AhoCorasickKind::ContiguousNFA
        };
        // Standard semantics report every match, overlapping ones included,
        // so that text where two needles overlap (a value followed by its
        // reverse sharing a character) loses both, not just the first. No
        // prefilter: on text full of candidate bytes (JSON, base64) it made
        // a 64 MiB scan four times slower than the plain automaton, which
        // runs at a steady speed whatever the body holds.
        let built = AhoCorasick::builder()
            .kind(Some(kind))
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(case_insensitive)
            .prefilter(false)
            .build(needles.iter().map(|n| n.as_slice()));
        let longest = needles.last().map_or(0, |n| n.len());
        built.map_or(Matcher::Broken, |automaton| Matcher::Search { automaton, longest })
    }
}

impl Redactor {
    /// A redactor for `forms` of each of `values`; values shorter than
    /// [`MIN_NEEDLE_LEN`] are skipped.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>, forms: Forms) -> Self {
        let mut needles: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in values.into_iter().filter(|v| v.len() >= MIN_NEEDLE_LEN) {
            match forms {
                Forms::Encoded => encoded_forms(value.as_bytes(), &mut needles),
                Forms::Disguised => {
                    let reversed: String = value.chars().rev().collect();
                    for variant in [value, &value.to_lowercase(), &value.to_uppercase(), &reversed] {
                        encoded_forms(variant.as_bytes(), &mut needles);
                        disguised_forms(variant.as_bytes(), &mut needles);
                    }
                }
            }
        }
        needles.retain(|n| n.len() >= MIN_NEEDLE_LEN);
        needles.sort_by(|a, b| (a.len(), a.as_slice()).cmp(&(b.len(), b.as_slice())));
        needles.dedup();
        Redactor {
            case_insensitive: forms == Forms::Disguised,
            full: OnceLock::new(),
            full_small: OnceLock::new(),
            marker: marker_for(&needles, forms == Forms::Disguised),
            needles,
        }
    }

    /// `data` with every match replaced by [`MARKER`]; overlapping matches
    /// become one marker.
    pub fn bytes(&self, data: &[u8]) -> Vec<u8> {
        match self.spans(data) {
            // No safe marker: what holds a form is withheld whole.
            Some(spans) if !spans.is_empty() && self.marker.is_empty() => Vec::new(),
            Some(spans) => replace_spans(data, &spans, &self.marker),
            None => self.marker.clone(),
        }
    }

    /// The longest form searched: a match can reach at most this far back.
    pub fn longest(&self) -> usize {
        self.needles.last().map_or(0, |n| n.len())
    }

    /// How many bytes at the end of `data` could be the start of a form
    /// that later bytes complete (the longest such tail).
    fn pending_prefix(&self, data: &[u8]) -> usize {
        let max = self.longest().saturating_sub(1).min(data.len());
        // The exact answer costs up to forms × max² comparisons per chunk;
        // past a budget (many long secrets), hold back all `max` bytes:
        // always safe, it only shows them a chunk later.
        if self.needles.len().saturating_mul(max).saturating_mul(max) > PREFIX_SEARCH_BUDGET {
            return max;
        }
        let same =
            |a: &[u8], b: &[u8]| if self.case_insensitive { a.eq_ignore_ascii_case(b) } else { a == b };
        (1..=max)
            .rev()
            .find(|&len| {
                let tail = &data[data.len() - len..];
                self.needles.iter().any(|n| n.len() > len && same(&n[..len], tail))
            })
            .unwrap_or(0)
    }

    /// Where `data` holds a form, as merged `(start, end)` spans in order;
    /// `None` when nothing can be shown as clean (the automaton could not
    /// be built).
    fn spans(&self, data: &[u8]) -> Option<Vec<(usize, usize)>> {
        // A form longer than the input cannot occur in it.
        let fitting = self.needles.partition_point(|n| n.len() <= data.len());
        if fitting == 0 {
            return Some(Vec::new());
        }
        if !self.case_insensitive && fitting.saturating_mul(data.len()) <= SEARCH_BUDGET {
            return Some(searched_spans(&self.needles[..fitting], data));
        }
        let partial;
        let matcher = if fitting == self.needles.len() {
            let full = if data.len() >= DFA_MIN_INPUT_BYTES { &self.full } else { &self.full_small };
            full.get_or_init(|| Matcher::build(&self.needles, self.case_insensitive, data.len()))
        } else {
            partial = Matcher::build(&self.needles[..fitting], self.case_insensitive, data.len());
            &partial
        };
        let Matcher::Search { automaton, longest } = matcher else {
            return None;
        };
        // Only fails for a non-standard match kind, which is never built.
        let matches = automaton.try_find_overlapping_iter(data).ok()?;
        let mut spans = Vec::new();
        // Merged spans that a later match could still extend: matches come
        // in order of their end, and none is longer than `longest`.
        let mut pending: Vec<(usize, usize)> = Vec::new();
        for m in matches {
            let (start, end) = (m.start(), m.end());
            let first = pending.iter().position(|&(_, e)| e > start).unwrap_or(pending.len());
            let merged_start = pending.get(first).map_or(start, |&(s, _)| s.min(start));
            pending.truncate(first);
            pending.push((merged_start, end));
            let settled = pending.iter().take_while(|&&(_, e)| e + longest <= end).count();
            spans.extend(pending.drain(..settled));
        }
        spans.extend(pending);
        Some(spans)
    }

    /// [`Redactor::bytes`] for text.
    pub fn text(&self, text: &str) -> String {
        let out = self.bytes(text.as_bytes());
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Where each form occurs in a small input, overlapping occurrences
/// included, merged as [`Redactor::spans`] merges them: one substring
/// search per form costs a few microseconds on an answer of a few KiB,
/// where building an automaton cost tens.
fn searched_spans(needles: &[Zeroizing<Vec<u8>>], data: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for needle in needles {
        let finder = memchr::memmem::Finder::new(needle.as_slice());
        let mut from = 0;
        while let Some(at) = finder.find(&data[from..]) {
            found.push((from + at, from + at + needle.len()));
            from += at + 1;
        }
    }
    found.sort_unstable();
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(found.len());
    for (start, end) in found {
        match spans.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    spans
}

/// `data` with each span replaced by one `marker`.
fn replace_spans(data: &[u8], spans: &[(usize, usize)], marker: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut written = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&data[written..start]);
        out.extend_from_slice(marker);
        written = end;
    }
    out.extend_from_slice(&data[written..]);
    out
}

/// The marker for `needles`: [`MARKER`] unless some form could be read
/// in the output across or inside it (a form that is part of it, holds it,
/// ends with its start or starts with its end); then a marker of one byte
/// that no form contains; empty if every byte occurs in some form. (A value
/// such as `[REDACTE` would otherwise be spelled out by every marker; found
/// by the `redactor` fuzz target.)
fn marker_for(needles: &[Zeroizing<Vec<u8>>], case_insensitive: bool) -> Vec<u8> {
    let same = |a: &[u8], b: &[u8]| {
        a.len() == b.len() && if case_insensitive { a.eq_ignore_ascii_case(b) } else { a == b }
    };
    let holds = |outer: &[u8], inner: &[u8]| outer.windows(inner.len()).any(|w| same(w, inner));
    let marker = MARKER.as_bytes();
    let overlaps = |n: &[u8]| {
        holds(n, marker)
            || holds(marker, n)
            || (1..marker.len()).any(|k| {
                (n.len() >= k && same(&n[n.len() - k..], &marker[..k]))
                    || (n.len() >= k && same(&n[..k], &marker[marker.len() - k..]))
            })
    };
    if !needles.iter().any(|n| overlaps(n)) {
        return marker.to_vec();
    }
    let used = |byte: u8| needles.iter().any(|n| holds(n, &[byte]));
    (b'#'..=b'~').chain(0x80..=0xff).chain(0..=b'"').find(|&b| !used(b)).map_or_else(Vec::new, |b| vec![b; 3])
}

/// `text` with the [`Forms::Encoded`] forms of every secret replaced by
/// [`MARKER`].
pub fn text(text: &str, secrets: &[&str]) -> String {
    Redactor::new(secrets.iter().copied(), Forms::Encoded).text(text)
}

/// `data` with the [`Forms::Encoded`] forms of every secret replaced by
/// [`MARKER`].
pub fn bytes(data: &[u8], secrets: &[&str]) -> Vec<u8> {
    Redactor::new(secrets.iter().copied(), Forms::Encoded).bytes(data)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    use super::forms::{is_unreserved, percent_encode};
    use super::*;

    pub(super) const SECRET: &str = "sk-test-1234567890abcdef+/=";

    fn disguised(text: &str, secrets: &[&str]) -> String {
        Redactor::new(secrets.iter().copied(), Forms::Disguised).text(text)
    }

    fn all_forms(value: &str) -> Vec<Zeroizing<Vec<u8>>> {
        let mut forms = Vec::new();
        encoded_forms(value.as_bytes(), &mut forms);
        forms
    }

    // The raw value is replaced.
    #[test]
    fn raw_value_removed() {
        let out = text(&format!("echo: {SECRET}!"), &[SECRET]);
        assert_eq!(out, format!("echo: {MARKER}!"));
    }

    // Percent-encoded forms (either hex case) are replaced.
    #[test]
    fn percent_encoded_removed() {
        let encoded = String::from_utf8(percent_encode(SECRET.as_bytes(), is_unreserved).to_vec()).unwrap();
        assert!(!text(&encoded, &[SECRET]).contains("1234567890"));
        assert!(!text(&encoded.to_lowercase(), &[SECRET]).contains("1234567890"));
        // Lower-case hex beside the value's own capitals (found by the
        // `redactor` fuzz target).
        let mixed = "AbCdE:fGhIjK/LmN";
        assert_eq!(text("x=AbCdE%3afGhIjK%2fLmN;", &[mixed]), format!("x={MARKER};"));
        assert_eq!(text("x=AbCdE%3AfGhIjK%2FLmN;", &[mixed]), format!("x={MARKER};"));
    }

    // Base64 of the value, alone or inside a longer encoded string at any
    // alignment (e.g. basic auth `user:secret`), is replaced.
    #[test]
    fn base64_any_alignment_removed() {
        for lead in ["", "u", "us", "use", "user:"] {
            let encoded = STANDARD.encode(format!("{lead}{SECRET}"));
            let out = text(&encoded, &[SECRET]);
            assert!(out.contains(MARKER), "lead {lead:?}: {out}");
            for form in all_forms(SECRET).iter().skip(1) {
                assert!(!out.as_bytes().windows(form.len()).any(|w| w == form.as_slice()));
            }
        }
    }

    // Text without secrets is untouched.
    #[test]
    fn clean_text_untouched() {
        assert_eq!(text("nothing to see", &[SECRET]), "nothing to see");
    }

    // Response bodies are not searched for disguises an upstream would not
    // produce (case changes, reversal): the body keeps its text.
    #[test]
    fn encoded_forms_leave_case_variants() {
        let upper = SECRET.to_uppercase();
        assert_eq!(text(&upper, &[SECRET]), upper);
    }

    // A component's text loses the value in every case, reversed, and each of
    // those percent- or base64-encoded at any alignment.
    #[test]
    fn disguised_forms_removed() {
        let reversed: String = SECRET.chars().rev().collect();
        let variants = [SECRET.to_string(), SECRET.to_lowercase(), SECRET.to_uppercase(), reversed];
        let mut needles = Vec::new();
        for variant in &variants {
            encoded_forms(variant.as_bytes(), &mut needles);
            disguised_forms(variant.as_bytes(), &mut needles);
        }
        let leaks = |out: &str| {
            let out = out.to_ascii_lowercase();
            needles
                .iter()
                .filter(|n| n.len() >= MIN_NEEDLE_LEN)
                .any(|n| out.as_bytes().windows(n.len()).any(|w| w == n.to_ascii_lowercase().as_slice()))
        };
        for variant in &variants {
            let percent =
                |keep| String::from_utf8(percent_encode(variant.as_bytes(), keep).to_vec()).unwrap();
            let mut shown =
                vec![variant.clone(), percent(is_unreserved), percent(is_unreserved).to_lowercase()];
            shown.extend([
                percent(|b: u8| b.is_ascii_alphanumeric()),
                percent(|_| false),
                hex::encode(variant),
            ]);
            for lead in ["", "u", "us", "user:"] {
                shown.push(STANDARD.encode(format!("{lead}{variant}")));
                shown.push(URL_SAFE_NO_PAD.encode(format!("{lead}{variant}")));
            }
            for text in shown {
                let out = disguised(&format!("bad: {text}."), &[SECRET]);
                assert!(out.contains(MARKER) && !leaks(&out), "{text}: {out}");
            }
        }
        // Any mix of cases of the raw value too.
        let mixed: String = SECRET
            .chars()
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        assert_eq!(disguised(&mixed, &[SECRET]), MARKER);
    }

    // Overlapping needles are removed whole: a value followed by its reverse
    // sharing the middle character does not leave the reverse behind.
    #[test]
    fn overlapping_matches_merged() {
        let value = "abcdefghij";
        let reversed: String = value.chars().rev().collect();
        let text = format!("<{value}{}>", &reversed[1..]);
        assert_eq!(disguised(&text, &[value]), format!("<{MARKER}>"));
        // Far-apart matches stay separate, with the text between them.
        let text = format!("{value} and {reversed}");
        assert_eq!(disguised(&text, &[value]), format!("{MARKER} and {MARKER}"));
    }

    // Values shorter than the threshold are not searched for.
    #[test]
    fn short_values_ignored() {
        assert_eq!(text("Bearer abc", &["Bearer", "abc"]), "Bearer abc");
        assert_eq!(disguised("abcdefg", &["abcdefg"]), "abcdefg");
    }

    // A JSON secret's string fields are needles on their own.
    #[test]
    fn json_secret_fields_are_needles() {
        let secret =
            r#"{"access_token":"ya29.AccessTokenValue","nested":{"refresh":["rt-RefreshValue1"]},"n":1}"#;
        let mut needles = Needles::new();
        needles.secret(secret);
        let out = needles.redactor(Forms::Disguised).text("token ya29.AccessTokenValue and rt-RefreshValue1");
        assert_eq!(out, format!("token {MARKER} and {MARKER}"));
        assert_eq!(needles.redactor(Forms::Disguised).text("access_token"), "access_token");
    }

    // An injected `Bearer <token>` yields the token as a needle of its own.
    #[test]
    fn injected_words_are_needles() {
        let mut needles = Needles::new();
        needles.injected("Bearer derived-token-0123");
        let out = needles.redactor(Forms::Disguised).text("got derived-token-0123 back");
        assert_eq!(out, format!("got {MARKER} back"));
    }

    // A component cannot make the host compile a huge automaton: injected
    // values past the budget are not needles, and forms longer than the
    // text being scrubbed are never compiled.
    #[test]
    fn injected_values_are_bounded() {
        let mut needles = Needles::new();
        let long = "x".repeat(MAX_INJECTED_BYTES / 2);
        needles.injected(&long).injected(&"y".repeat(MAX_INJECTED_BYTES)).injected("late-value-0123");
        assert_eq!(needles.values.len(), 1);
        let started = std::time::Instant::now();
        let redactor = needles.redactor(Forms::Disguised);
        assert_eq!(redactor.text("a short message"), "a short message");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(redactor.full.get().is_none() && redactor.full_small.get().is_none());
    }

    // Small inputs are searched form by form, large ones with a DFA: both
    // find the same spans, overlapping and adjacent matches included.
    #[test]
    fn search_and_automaton_agree() {
        let values = ["abcabcabc-x", "cabcabc-xyz", "zzzzzzzz", SECRET];
        let redactor = Redactor::new(values, Forms::Encoded);
        let pieces =
            ["abcabcabc-xyz", "zzzzzzzzzzz", "abcabcabcabc-x", SECRET, "--", &STANDARD.encode(SECRET), "é"];
        let Matcher::Search { automaton, .. } = Matcher::build(&redactor.needles, false, DFA_MIN_INPUT_BYTES)
        else {
            panic!("built")
        };
        let mut seed = 7u64;
        for round in 0..200 {
            let mut text = String::new();
            for _ in 0..12 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let searched = searched_spans(&redactor.needles, text.as_bytes());
            let mut found: Vec<(usize, usize)> = automaton
                .try_find_overlapping_iter(text.as_bytes())
                .unwrap()
                .map(|m| (m.start(), m.end()))
                .collect();
            found.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for (s, e) in found {
                match merged.last_mut() {
                    Some(last) if s < last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            assert_eq!(searched, merged, "{text}");
            // Through the public path: nothing of any form is left, in a
            // small input or (every tenth round) a large one.
            let small = redactor.bytes(text.as_bytes());
            assert_eq!(searched_spans(&redactor.needles, &small), vec![], "{text}");
            if round % 10 == 0 {
                let large = redactor.bytes(text.repeat(DFA_MIN_INPUT_BYTES / text.len() + 1).as_bytes());
                assert_eq!(searched_spans(&redactor.needles, &large), vec![], "{text}");
            }
        }
        assert!(redactor.full.get().is_some());
    }

    // A long secret is found in a long body (the full automaton), and a short
    // text skips it without error.
    #[test]
    fn long_secret_in_long_body() {
        let secret = "k".repeat(3000) + "-end";
        let body = format!("{{\"echo\":\"{}\"}}", STANDARD.encode(&secret)).repeat(3);
        let out = bytes(body.as_bytes(), &[&secret]);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{{\"echo\":\"{MARKER}\"}}").repeat(3));
        assert_eq!(text("short", &[&secret]), "short");
    }

    // A value that the marker would spell out (or one that could be read
    // across it) gets another marker (fuzz find).
    #[test]
    fn the_marker_never_spells_a_value() {
        for value in ["[REDACTE", "REDACTED", "x-[REDACTED]-y"] {
            let out = bytes(format!("a {value} b").as_bytes(), &[value]);
            assert!(!out.windows(value.len()).any(|w| w == value.as_bytes()), "{value}: {out:?}");
            assert_ne!(out, format!("a {value} b").into_bytes());
        }
        assert_eq!(bytes(b"a sk-plain-123456 b", &["sk-plain-123456"]), format!("a {MARKER} b").into_bytes());
    }

    // Non-ASCII values and text stay valid UTF-8 around the marker.
    #[test]
    fn unicode_survives() {
        let value = "pässwörd-ünïcode";
        let out = disguised(&format!("é {} é", value.to_uppercase()), &[value]);
        assert_eq!(out, format!("é {MARKER} é"));
    }
}
