//! Envelope encryption. Each secret value has its own random 256-bit data
//! key (DEK); the value is sealed under the DEK and the DEK under the master
//! key (KEK), both with AES-256-GCM. Both seals bind the same associated
//! data — secret id, scope, pinned provider, value version — so a row
//! swapped, re-scoped or re-pinned in the database fails to open instead of
//! yielding another secret's value.

use aes_gcm::aead::rand_core::RngCore as _;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::Zeroizing;

use super::scope::Scope;

const NONCE_LEN: usize = 12;

/// A 256-bit master key. Wiped on drop.
pub struct Kek(Zeroizing<[u8; 32]>);

/// What ties a ciphertext to its row.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub secret_id: &'a str,
    pub scope: &'a Scope,
    pub pinned_provider: Option<&'a str>,
    pub value_version: i64,
}

/// A sealed value and its wrapped data key, each `nonce || ciphertext+tag`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub wrapped_dek: Vec<u8>,
}

/// Decryption failed: wrong key, or data that does not belong to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed: the data was altered, moved between rows, or sealed under another key")]
pub struct DecryptError;

impl Kek {
    /// A fresh random key.
    pub fn generate() -> Self {
        Kek(random_key())
    }

    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(Kek(Zeroizing::new(array)))
    }

    /// The raw key, for writing a key file.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_slice()))
    }

    /// A token sealed under this key, stored with the key configuration so a
    /// wrong key or passphrase is reported as such, before any secret is
    /// touched. Its label also records that the vault's rows are
    /// authenticated, which only the key holder can claim.
    pub fn key_check(&self) -> Vec<u8> {
        seal_with(&self.cipher(), b"aivault key check", KEY_CHECK_V2)
    }

    /// Which kind of key check `check` is under this key, if it is one.
    pub fn verify_key_check(&self, check: &[u8]) -> Option<KeyCheck> {
        if open_with(&self.cipher(), check, KEY_CHECK_V2).is_ok() {
            Some(KeyCheck::Authenticated)
        } else if open_with(&self.cipher(), check, KEY_CHECK_V1).is_ok() {
            Some(KeyCheck::Legacy)
        } else {
            None
        }
    }
}

/// The key check of a vault whose rows predate authentication.
const KEY_CHECK_V1: &[u8] = b"aivault/v1/key-check";
/// The key check of a vault whose rows carry MACs.
const KEY_CHECK_V2: &[u8] = b"aivault/v2/key-check";

/// What a verified key check says about the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// Made by an aivault that authenticates rows.
    Authenticated,
    /// Made before rows were authenticated: migrate on the first write.
    Legacy,
}

/// What ties a value derived by a token refresh (an access token) to the
/// credential and kind it serves and the exact secret versions it came from.
#[derive(Debug, Clone, Copy)]
pub struct DerivedBinding<'a> {
    pub credential_id: &'a str,
    pub kind: &'a str,
    /// The secrets' ids and value versions (see `Vault::derived`).
    pub source: &'a str,
}

/// Anything a sealed value is bound to: it yields the associated data both
/// seals (value and data key) carry.
pub trait Bound {
    fn associated_data(&self, purpose: &str) -> Vec<u8>;
}

/// Length-prefixed fields, so no two field lists give the same bytes.
fn fields(purpose: &str, values: &[&[u8]]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(128);
    for bytes in std::iter::once(purpose.as_bytes()).chain(values.iter().copied()) {
        ad.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        ad.extend_from_slice(bytes);
    }
    ad
}

impl Bound for DerivedBinding<'_> {
    fn associated_data(&self, purpose: &str) -> Vec<u8> {
        fields(
            purpose,
            &[b"derived", self.credential_id.as_bytes(), self.kind.as_bytes(), self.source.as_bytes()],
        )
    }
}

impl<'a> Binding<'a> {
    /// The binding of a stored secret as it is now.
    pub fn of(secret: &'a super::store::SecretRow) -> Self {
        Binding {
            secret_id: &secret.id,
            scope: &secret.scope,
            pinned_provider: secret.pinned_provider.as_deref(),
            value_version: secret.value_version,
        }
    }
}

impl Bound for Binding<'_> {
    fn associated_data(&self, purpose: &str) -> Vec<u8> {
        fields(
            purpose,
            &[
                self.secret_id.as_bytes(),
                self.scope.kind_str().as_bytes(),
                self.scope.workspace_id().as_bytes(),
                self.scope.group_id().as_bytes(),
                self.pinned_provider.unwrap_or("").as_bytes(),
                &self.value_version.to_be_bytes(),
            ],
        )
    }
}

/// Seals `plaintext` under a fresh DEK, and the DEK under `kek`.
pub fn seal(kek: &Kek, binding: &impl Bound, plaintext: &[u8]) -> Sealed {
    let dek = random_key();
    let value_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(dek.as_slice()));
    Sealed {
        ciphertext: seal_with(&value_cipher, plaintext, &binding.associated_data("aivault/v1/value")),
        wrapped_dek: seal_with(&kek.cipher(), dek.as_slice(), &binding.associated_data("aivault/v1/dek")),
    }
}

/// Opens a sealed value; fails unless key, binding and bytes all match.
pub fn open(kek: &Kek, binding: &impl Bound, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let dek = unwrap_dek(kek, binding, &sealed.wrapped_dek)?;
    let value_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(dek.as_slice()));
    open_with(&value_cipher, &sealed.ciphertext, &binding.associated_data("aivault/v1/value"))
}

/// Re-wraps a DEK from `old` to `new` without touching the value ciphertext.
pub fn rewrap(
    old: &Kek,
    new: &Kek,
    binding: &Binding<'_>,
    wrapped_dek: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let dek = unwrap_dek(old, binding, wrapped_dek)?;
    Ok(seal_with(&new.cipher(), dek.as_slice(), &binding.associated_data("aivault/v1/dek")))
}

/// Whether `new` opens a DEK wrapped by [`rewrap`] (verification before commit).
pub fn can_unwrap(kek: &Kek, binding: &Binding<'_>, wrapped_dek: &[u8]) -> bool {
    unwrap_dek(kek, binding, wrapped_dek).is_ok()
}

/// 32 random bytes from the OS, generated straight into wiped-on-drop memory.
fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    key
}

fn unwrap_dek(kek: &Kek, binding: &impl Bound, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let dek = open_with(&kek.cipher(), wrapped, &binding.associated_data("aivault/v1/dek"))?;
    if dek.len() != 32 {
        return Err(DecryptError);
    }
    Ok(dek)
}

fn seal_with(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(&nonce, Payload { msg: plaintext, aad })
        .expect("AES-GCM encryption cannot fail for in-memory buffers of this size");
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open_with(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(DecryptError);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| DecryptError)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn binding<'a>(id: &'a str, scope: &'a Scope) -> Binding<'a> {
        Binding { secret_id: id, scope, pinned_provider: Some("openai"), value_version: 1 }
    }

    // A sealed value opens with the same key and binding.
    #[test]
    fn round_trip() {
        let kek = Kek::generate();
        let scope = Scope::Global;
        let sealed = seal(&kek, &binding("a", &scope), b"sk-value");
        assert_eq!(open(&kek, &binding("a", &scope), &sealed).unwrap().as_slice(), b"sk-value");
    }

    // Any change to id, scope, pin or version makes decryption fail.
    #[test]
    fn binding_changes_fail() {
        let kek = Kek::generate();
        let scope = Scope::Global;
        let other_scope = Scope::Workspace { workspace: "w".into() };
        let sealed = seal(&kek, &binding("a", &scope), b"sk-value");
        assert_eq!(open(&kek, &binding("b", &scope), &sealed), Err(DecryptError));
        assert_eq!(open(&kek, &binding("a", &other_scope), &sealed), Err(DecryptError));
        let unpinned = Binding { pinned_provider: None, ..binding("a", &scope) };
        assert_eq!(open(&kek, &unpinned, &sealed), Err(DecryptError));
        let bumped = Binding { value_version: 2, ..binding("a", &scope) };
        assert_eq!(open(&kek, &bumped, &sealed), Err(DecryptError));
    }

    // Each value gets its own DEK, so swapping ciphertexts between rows fails.
    #[test]
    fn swapped_ciphertexts_fail() {
        let kek = Kek::generate();
        let scope = Scope::Global;
        let a = seal(&kek, &binding("a", &scope), b"value-a");
        let b = seal(&kek, &binding("b", &scope), b"value-b");
        let mixed = Sealed { ciphertext: b.ciphertext.clone(), wrapped_dek: a.wrapped_dek.clone() };
        assert_eq!(open(&kek, &binding("a", &scope), &mixed), Err(DecryptError));
        assert_eq!(open(&kek, &binding("a", &scope), &b), Err(DecryptError));
    }

    // Re-wrapping moves the DEK to the new key and leaves the value alone.
    #[test]
    fn rewrap_keeps_ciphertext() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let scope = Scope::Global;
        let b = binding("a", &scope);
        let sealed = seal(&old, &b, b"v");
        let rewrapped = Sealed {
            ciphertext: sealed.ciphertext.clone(),
            wrapped_dek: rewrap(&old, &new, &b, &sealed.wrapped_dek).unwrap(),
        };
        assert_eq!(open(&new, &b, &rewrapped).unwrap().as_slice(), b"v");
        assert_eq!(open(&old, &b, &rewrapped), Err(DecryptError));
    }

    // The key check tells a right key from a wrong one, and an old vault's
    // check from a current one.
    #[test]
    fn key_check_detects_wrong_key() {
        let kek = Kek::generate();
        let check = kek.key_check();
        assert_eq!(kek.verify_key_check(&check), Some(KeyCheck::Authenticated));
        assert_eq!(Kek::generate().verify_key_check(&check), None);
        let old = seal_with(&kek.cipher(), b"aivault key check", KEY_CHECK_V1);
        assert_eq!(kek.verify_key_check(&old), Some(KeyCheck::Legacy));
    }
}
