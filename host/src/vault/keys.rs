//! Master-key (KEK) providers:
//! - `file`: a random key in `<vault>/keys/<kek-id>.key`, mode 0600, created
//!   by the first command that needs it, so a new user needs no set-up;
//! - `env`: the base64 of 32 bytes in `AIVAULT_KEY`;
//! - `passphrase`: Argon2id over `AIVAULT_PASSPHRASE` (or a no-echo prompt on
//!   a terminal), with the salt and parameters stored in the vault.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{Kek, KeyCheck};
use super::store::KeyConfigRow;
use crate::fsutil;

/// Which provider holds the master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyProvider {
    /// A random key file inside the vault directory (the default).
    File,
    /// A base64 key in the `AIVAULT_KEY` environment variable.
    Env,
    /// A passphrase (`AIVAULT_PASSPHRASE` or a prompt), stretched with Argon2id.
    Passphrase,
}

/// Why a key is being created, which decides where its material comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The vault's first key: `AIVAULT_KEY` / `AIVAULT_PASSPHRASE`.
    Init,
    /// The replacement in `rotate-master`: `AIVAULT_NEW_KEY` /
    /// `AIVAULT_NEW_PASSPHRASE`, so the old and new can both be given.
    Rotate,
}

/// Key failures, each saying how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(
        "the key file {0} is missing; restore it from a backup (without it the vault's secrets cannot be decrypted)"
    )]
    FileMissing(PathBuf),
    #[error("the key file {0} is damaged: it must hold the base64 of 32 bytes")]
    FileInvalid(PathBuf),
    #[error("cannot write the key file {path}: {source}")]
    FileWrite { path: PathBuf, source: std::io::Error },
    #[error(
        "{var} is not set; this vault's key comes from it (the base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"
    )]
    EnvMissing { var: &'static str },
    #[error("{var} must be the base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)")]
    EnvInvalid { var: &'static str },
    #[error("the vault is locked: set {var} or run aivault in a terminal to be asked for the passphrase")]
    Locked { var: &'static str },
    #[error("the passphrase is empty or shorter than 8 characters")]
    WeakPassphrase,
    #[error("the two passphrases differ")]
    PassphraseMismatch,
    #[error("cannot read the passphrase: {0}")]
    Prompt(std::io::Error),
    #[error("the {0} does not open this vault")]
    WrongKey(&'static str),
    #[error("the vault is locked: aivaultd holds no key until `aivault unlock`")]
    DaemonLocked,
    #[error("the vault's key configuration is unreadable: {0}")]
    BadParams(String),
}

/// Stored with the key configuration; only the passphrase provider uses it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argon2id: Option<Argon2Params>,
}

/// Argon2id salt and cost parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Argon2Params {
    pub salt: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// OWASP's recommended minimum for Argon2id (19 MiB, 2 passes).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_ITERATIONS: u32 = 2;

impl KeyProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProvider::File => "file",
            KeyProvider::Env => "env",
            KeyProvider::Passphrase => "passphrase",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(KeyProvider::File),
            "env" => Some(KeyProvider::Env),
            "passphrase" => Some(KeyProvider::Passphrase),
            _ => None,
        }
    }
}

/// The key file of key `kek_id`.
pub fn key_file(dir: &Path, kek_id: &str) -> PathBuf {
    dir.join("keys").join(format!("{kek_id}.key"))
}

/// Creates new key material for `provider`, returning the key and the
/// parameters to store. A file key is written to disk here.
pub fn create(
    dir: &Path,
    provider: KeyProvider,
    kek_id: &str,
    purpose: Purpose,
) -> Result<(Kek, KeyParams), KeyError> {
    let replacing = purpose == Purpose::Rotate;
    match provider {
        KeyProvider::File => {
            let kek = Kek::generate();
            let path = key_file(dir, kek_id);
            let write = |path: &Path| -> std::io::Result<()> {
                fsutil::create_private_dir(path.parent().unwrap_or(dir))?;
                let encoded = Zeroizing::new(format!("{}\n", B64.encode(kek.as_bytes())));
                fsutil::write_new_private_file(path, encoded.as_bytes())
            };
            write(&path).map_err(|source| KeyError::FileWrite { path, source })?;
            Ok((kek, KeyParams::default()))
        }
        KeyProvider::Env => {
            let var = if replacing { "AIVAULT_NEW_KEY" } else { "AIVAULT_KEY" };
            Ok((env_key(var)?, KeyParams::default()))
        }
        KeyProvider::Passphrase => {
            let var = if replacing { "AIVAULT_NEW_PASSPHRASE" } else { "AIVAULT_PASSPHRASE" };
            let passphrase = read_passphrase(var, true)?;
            let mut salt = [0u8; 16];
            getrandom_fill(&mut salt);
            let params = Argon2Params {
                salt: B64.encode(salt),
                memory_kib: ARGON2_MEMORY_KIB,
                iterations: ARGON2_ITERATIONS,
                parallelism: 1,
            };
            let kek = derive(&passphrase, &params)?;
            Ok((kek, KeyParams { argon2id: Some(params) }))
        }
    }
}

/// Recovers the current key described by `config`, checking it against the
/// stored key check (which also says whether the vault's rows are
/// authenticated yet).
pub fn unlock(dir: &Path, config: &KeyConfigRow) -> Result<(Kek, KeyCheck), KeyError> {
    unlock_from(dir, config, None)
}

/// [`unlock`] with the key material handed over (the base64 key of an `env`
/// vault, or the passphrase) instead of read from the environment or a
/// prompt: how `aivault unlock` gives a daemon the key.
pub fn unlock_from(
    dir: &Path,
    config: &KeyConfigRow,
    material: Option<&str>,
) -> Result<(Kek, KeyCheck), KeyError> {
    let provider =
        KeyProvider::parse(&config.provider).ok_or_else(|| KeyError::BadParams(config.provider.clone()))?;
    let (kek, what) = match provider {
        KeyProvider::File => {
            let path = key_file(dir, &config.kek_id);
            let text = Zeroizing::new(match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(KeyError::FileMissing(path));
                }
                Err(_) => return Err(KeyError::FileInvalid(path)),
            });
            let bytes =
                Zeroizing::new(B64.decode(text.trim()).map_err(|_| KeyError::FileInvalid(path.clone()))?);
            (Kek::from_bytes(&bytes).ok_or(KeyError::FileInvalid(path))?, "key file")
        }
        KeyProvider::Env => match material {
            Some(value) => (parse_key(value, "AIVAULT_KEY")?, "key given"),
            None => (env_key("AIVAULT_KEY")?, "key in AIVAULT_KEY"),
        },
        KeyProvider::Passphrase => {
            let params: KeyParams =
                serde_json::from_str(&config.params).map_err(|e| KeyError::BadParams(e.to_string()))?;
            let argon =
                params.argon2id.ok_or_else(|| KeyError::BadParams("no Argon2id parameters".into()))?;
            let passphrase = match material {
                Some(given) => Zeroizing::new(given.to_string()),
                None => read_passphrase("AIVAULT_PASSPHRASE", false)?,
            };
            (derive(&passphrase, &argon)?, "passphrase")
        }
    };
    match kek.verify_key_check(&config.key_check) {
        Some(check) => Ok((kek, check)),
        None => Err(KeyError::WrongKey(what)),
    }
}

/// Whether the current key could be unlocked without asking anyone.
pub fn unlockable_without_prompt(config: &KeyConfigRow) -> bool {
    match KeyProvider::parse(&config.provider) {
        Some(KeyProvider::Env) => std::env::var_os("AIVAULT_KEY").is_some(),
        Some(KeyProvider::Passphrase) => std::env::var_os("AIVAULT_PASSPHRASE").is_some(),
        _ => true,
    }
}

fn env_key(var: &'static str) -> Result<Kek, KeyError> {
    let value = Zeroizing::new(std::env::var(var).map_err(|_| KeyError::EnvMissing { var })?);
    parse_key(&value, var)
}

fn parse_key(value: &str, var: &'static str) -> Result<Kek, KeyError> {
    let bytes = Zeroizing::new(B64.decode(value.trim()).map_err(|_| KeyError::EnvInvalid { var })?);
    Kek::from_bytes(&bytes).ok_or(KeyError::EnvInvalid { var })
}

/// The key material `aivault unlock` hands a daemon for `config`'s
/// provider: `AIVAULT_KEY` or `AIVAULT_PASSPHRASE` (or a prompt); `None`
/// for a key file, which the daemon reads itself.
pub fn material_for(config: &KeyConfigRow) -> Result<Option<Zeroizing<String>>, KeyError> {
    match KeyProvider::parse(&config.provider) {
        Some(KeyProvider::Env) => {
            let var = "AIVAULT_KEY";
            Ok(Some(Zeroizing::new(std::env::var(var).map_err(|_| KeyError::EnvMissing { var })?)))
        }
        Some(KeyProvider::Passphrase) => read_passphrase("AIVAULT_PASSPHRASE", false).map(Some),
        _ => Ok(None),
    }
}

fn read_passphrase(var: &'static str, confirm: bool) -> Result<Zeroizing<String>, KeyError> {
    let passphrase = match std::env::var(var) {
        Ok(value) => Zeroizing::new(value),
        Err(_) => {
            if !std::io::stdin().is_terminal() {
                return Err(KeyError::Locked { var });
            }
            let first =
                Zeroizing::new(rpassword::prompt_password("Vault passphrase: ").map_err(KeyError::Prompt)?);
            if confirm {
                let again = Zeroizing::new(
                    rpassword::prompt_password("Repeat passphrase: ").map_err(KeyError::Prompt)?,
                );
                if *first != *again {
                    return Err(KeyError::PassphraseMismatch);
                }
            }
            first
        }
    };
    if confirm && passphrase.chars().count() < 8 {
        return Err(KeyError::WeakPassphrase);
    }
    Ok(passphrase)
}

fn derive(passphrase: &str, p: &Argon2Params) -> Result<Kek, KeyError> {
    let salt = B64.decode(&p.salt).map_err(|e| KeyError::BadParams(e.to_string()))?;
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| KeyError::BadParams(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, out.as_mut())
        .map_err(|e| KeyError::BadParams(e.to_string()))?;
    Ok(Kek::from_bytes(out.as_ref()).expect("32 bytes"))
}

/// Random bytes from the OS (through the AEAD crate's RNG, already a dependency).
fn getrandom_fill(buf: &mut [u8]) {
    use aes_gcm::aead::rand_core::RngCore as _;
    aes_gcm::aead::OsRng.fill_bytes(buf);
}
