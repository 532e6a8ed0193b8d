//! The secret values handed to `inject`.

use std::fmt;

use zeroize::Zeroizing;

use crate::InjectError;

/// Secret values keyed by placeholder. Values are wiped when dropped, and
/// `Debug` shows only placeholders.
#[derive(Default)]
pub struct Secrets {
    values: Vec<(String, Zeroizing<String>)>,
}

impl Secrets {
    /// Builds the set from `(placeholder, value)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Secrets { values: pairs.into_iter().map(|(p, v)| (p, Zeroizing::new(v))).collect() }
    }

    /// The value for `placeholder`, or [`InjectError::MissingSecret`].
    pub fn get(&self, placeholder: &str) -> Result<&str, InjectError> {
        self.values
            .iter()
            .find(|(p, _)| p == placeholder)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| InjectError::MissingSecret(placeholder.to_string()))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values.iter().map(|(p, _)| p)).finish()
    }
}
