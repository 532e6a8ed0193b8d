//! Errors a provider returns to the host. None may contain a secret value.

use std::fmt;

/// Why a secret value was refused at `secrets create`/`rotate` time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The value is empty or only whitespace.
    Empty,
    /// The value cannot be a credential of this provider; the message says
    /// why and what a valid value looks like, without repeating the value.
    Malformed(String),
    /// The provider declares no vault secret of this name.
    UnknownName(String),
}

/// Why a request could not be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectError {
    /// A secret the strategy needs was not supplied (names its placeholder).
    MissingSecret(String),
    /// A supplied secret cannot be used, e.g. unparsable JSON.
    MalformedSecret(String),
    /// The provider cannot serve this request.
    Unsupported(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Empty => f.write_str("the value is empty"),
            SecretError::Malformed(why) => f.write_str(why),
            SecretError::UnknownName(name) => write!(f, "no vault secret named `{name}`"),
        }
    }
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectError::MissingSecret(p) => write!(f, "secret `{p}` was not supplied"),
            InjectError::MalformedSecret(why) => f.write_str(why),
            InjectError::Unsupported(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SecretError {}
impl std::error::Error for InjectError {}
