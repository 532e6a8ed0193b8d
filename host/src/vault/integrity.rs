//! Authentication of every row the broker, the registry and the resolver act
//! on. Values are sealed with associated data ([`super::crypto`]); everything
//! else a decision rests on (secrets' metadata, credentials and their links,
//! custom capabilities, policies, bindings, approvals) carries an
//! HMAC-SHA256 under a key derived from the master key. Whoever can write the
//! database without holding that key can neither forge a row nor move one to
//! another id; the tables a decision rests on are also sealed as a whole, so
//! a deleted, replayed or older version of a row is noticed too, and the
//! audit log is an HMAC chain with a sealed head.
//!
//! The [`super::store`] checks rows as it reads them and authenticates them
//! as it writes them; this module holds the keys and the encodings.

use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::crypto::{Kek, KeyCheck};

/// The master key of one key id, and the keys derived from it.
pub struct KeySet {
    kek_id: String,
    kek: Kek,
    rows: MacKey,
    audit: MacKey,
    legacy: bool,
}

impl KeySet {
    /// Derives the MAC keys from `kek`. `check` says whether the vault's rows
    /// are authenticated yet (a vault made before they were is migrated on
    /// its first write).
    pub fn new(kek_id: String, kek: Kek, check: KeyCheck) -> Self {
        KeySet {
            rows: MacKey::derive(&kek, b"aivault/v1/row-mac"),
            audit: MacKey::derive(&kek, b"aivault/v1/audit-chain"),
            legacy: check == KeyCheck::Legacy,
            kek_id,
            kek,
        }
    }

    /// The same keys, for a vault whose rows have just been authenticated.
    pub fn upgraded(&self) -> Self {
        let kek = Kek::from_bytes(self.kek.as_bytes()).expect("a master key is 32 bytes");
        KeySet::new(self.kek_id.clone(), kek, KeyCheck::Authenticated)
    }

    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    pub fn kek_id(&self) -> &str {
        &self.kek_id
    }

    /// Whether the vault's rows predate authentication.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// The key rows and table seals are authenticated with.
    pub fn rows(&self) -> &MacKey {
        &self.rows
    }

    /// The key the audit chain is authenticated with.
    pub fn audit(&self) -> &MacKey {
        &self.audit
    }
}

/// An HMAC-SHA256 key. Wiped on drop.
pub struct MacKey(Zeroizing<[u8; 32]>);

type HmacSha256 = Hmac<Sha256>;

impl MacKey {
    /// HKDF-SHA256 of the master key with a label of its own, so each
    /// purpose has an independent key and none of them is the master key.
    fn derive(kek: &Kek, label: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, kek.as_bytes())
            .expand(label, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        MacKey(key)
    }

    fn hmac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(self.0.as_slice()).expect("HMAC takes keys of any length")
    }

    /// The tag of `fields`.
    pub fn tag(&self, fields: &Fields) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(&fields.0);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the tag of `fields` (in constant time); a missing tag
    /// never is.
    pub fn verify(&self, fields: &Fields, tag: Option<&[u8]>) -> bool {
        let Some(tag) = tag else { return false };
        let mut mac = self.hmac();
        mac.update(&fields.0);
        mac.verify_slice(tag).is_ok()
    }
}

/// A row's fields as one unambiguous byte string: a domain label naming the
/// table, then every field length-prefixed, so no two different rows (of one
/// table or of two) encode alike.
#[derive(Debug, Clone)]
pub struct Fields(Vec<u8>);

impl Fields {
    pub fn new(domain: &str) -> Self {
        Fields(Vec::with_capacity(256)).bytes(domain.as_bytes())
    }

    pub fn bytes(mut self, value: &[u8]) -> Self {
        self.0.extend_from_slice(&(value.len() as u64).to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }

    pub fn text(self, value: &str) -> Self {
        self.bytes(value.as_bytes())
    }

    pub fn opt(self, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.bytes(b"some").text(v),
            None => self.bytes(b"none"),
        }
    }

    pub fn int(self, value: i64) -> Self {
        self.bytes(&value.to_be_bytes())
    }

    pub fn opt_int(self, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.bytes(b"some").int(v),
            None => self.bytes(b"none"),
        }
    }

    pub fn flag(self, value: bool) -> Self {
        self.bytes(&[u8::from(value)])
    }

    /// A list, in the order given: the order is part of what is
    /// authenticated, so callers sort where order carries no meaning.
    pub fn list<'a>(self, items: impl IntoIterator<Item = &'a str>) -> Self {
        let items: Vec<&str> = items.into_iter().collect();
        let count = items.len() as i64;
        items.into_iter().fold(self.int(count), |f, item| f.text(item))
    }

    /// A list of pairs, each member its own field.
    pub fn pairs<'a>(self, items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let items: Vec<(&str, &str)> = items.into_iter().collect();
        let count = items.len() as i64;
        items.into_iter().fold(self.int(count), |f, (a, b)| f.text(a).text(b))
    }
}

/// A row (or a table's set of rows) that failed its check. Names the table
/// and the row, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} failed its integrity check; the vault may have been edited outside aivault \
     (table {table}; `aivault doctor` lists every such row)"
)]
pub struct IntegrityError {
    pub table: &'static str,
    /// E.g. "credential `openai`".
    pub what: String,
}

impl IntegrityError {
    pub fn new(table: &'static str, what: impl fmt::Display) -> Self {
        IntegrityError { table, what: what.to_string() }
    }
}

/// `text` made safe to print: a tampered row can hold anything, so control
/// characters are escaped and the length is capped.
pub fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(80)
        .flat_map(|c| if is_unprintable(c) { c.escape_default().collect() } else { vec![c] })
        .collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Control characters, and the invisible formatting ones that reorder or
/// hide text on a terminal (bidirectional overrides, zero-width marks).
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeySet {
        KeySet::new("k".into(), Kek::generate(), KeyCheck::Authenticated)
    }

    // A tag verifies for the same fields and key only.
    #[test]
    fn tag_binds_fields_and_key() {
        let keys = keys();
        let fields = Fields::new("t").text("id").opt(Some("x"));
        let tag = keys.rows().tag(&fields);
        assert!(keys.rows().verify(&fields, Some(&tag)));
        assert!(!keys.rows().verify(&Fields::new("t").text("id").opt(None), Some(&tag)));
        assert!(!keys.audit().verify(&fields, Some(&tag)));
        assert!(!self::keys().rows().verify(&fields, Some(&tag)));
        assert!(!keys.rows().verify(&fields, None));
    }

    // Field boundaries are unambiguous: moving bytes between fields or lists
    // changes the encoding.
    #[test]
    fn encoding_is_unambiguous() {
        let a = Fields::new("t").text("ab").text("c");
        let b = Fields::new("t").text("a").text("bc");
        assert_ne!(a.0, b.0);
        let a = Fields::new("t").list(["a", "b"]).text("c");
        let b = Fields::new("t").list(["a"]).text("b").text("c");
        assert_ne!(a.0, b.0);
        assert_ne!(Fields::new("t").opt(None).0, Fields::new("t").opt(Some("")).0);
    }

    // Control characters from a tampered row are never printed raw.
    #[test]
    fn shown_escapes_control_characters() {
        assert_eq!(shown("ok\u{1b}[31m"), "ok\\u{1b}[31m");
        assert_eq!(shown("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 81);
    }
}
