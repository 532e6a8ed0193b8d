//! Where a secret or credential lives: global, one workspace, or one group
//! of a workspace.

use std::fmt;

use serde::Serialize;

/// A scope with its ids. Construct with [`Scope::parse`], which refuses
/// missing and stray ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Workspace { workspace: String },
    Group { workspace: String, group: String },
}

/// The three scope kinds, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    Global,
    Workspace,
    Group,
}

/// Why a scope could not be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    #[error("--scope workspace needs --workspace-id")]
    MissingWorkspace,
    #[error("--scope group needs --workspace-id and --group-id")]
    MissingGroup,
    #[error("--scope global takes no --workspace-id or --group-id (did you mean --scope workspace?)")]
    StrayIdsForGlobal,
    #[error("--scope workspace takes no --group-id (did you mean --scope group?)")]
    StrayGroupForWorkspace,
    #[error("--group-id needs --workspace-id: a group belongs to a workspace")]
    GroupWithoutWorkspace,
    #[error("{what} `{value}` is not allowed: use 1-128 letters, digits, `.`, `_` or `-`")]
    BadId { what: &'static str, value: String },
}

impl Scope {
    /// Builds a scope from the `--scope`, `--workspace-id`, `--group-id` flags.
    pub fn parse(kind: ScopeKind, workspace: Option<&str>, group: Option<&str>) -> Result<Self, ScopeError> {
        let workspace = workspace.map(|w| check_id("workspace id", w)).transpose()?;
        let group = group.map(|g| check_id("group id", g)).transpose()?;
        match (kind, workspace, group) {
            (ScopeKind::Global, None, None) => Ok(Scope::Global),
            (ScopeKind::Global, _, _) => Err(ScopeError::StrayIdsForGlobal),
            (ScopeKind::Workspace, Some(workspace), None) => Ok(Scope::Workspace { workspace }),
            (ScopeKind::Workspace, None, _) => Err(ScopeError::MissingWorkspace),
            (ScopeKind::Workspace, Some(_), Some(_)) => Err(ScopeError::StrayGroupForWorkspace),
            (ScopeKind::Group, Some(workspace), Some(group)) => Ok(Scope::Group { workspace, group }),
            (ScopeKind::Group, _, _) => Err(ScopeError::MissingGroup),
        }
    }

    /// The context of a call: group when both ids are given, workspace when
    /// only the workspace id is, global otherwise.
    pub fn context(workspace: Option<&str>, group: Option<&str>) -> Result<Self, ScopeError> {
        match (workspace, group) {
            (None, None) => Ok(Scope::Global),
            (Some(w), None) => Scope::parse(ScopeKind::Workspace, Some(w), None),
            (Some(w), Some(g)) => Scope::parse(ScopeKind::Group, Some(w), Some(g)),
            (None, Some(_)) => Err(ScopeError::GroupWithoutWorkspace),
        }
    }

    /// Rebuilds a scope from stored columns (empty string = no id). Columns
    /// that do not fit the kind (a global row with a workspace id) are not a
    /// scope: what is read must be exactly what a MAC covers.
    pub fn from_columns(kind: &str, workspace: &str, group: &str) -> Option<Self> {
        match (kind, workspace.is_empty(), group.is_empty()) {
            ("global", true, true) => Some(Scope::Global),
            ("workspace", false, true) => Some(Scope::Workspace { workspace: workspace.to_string() }),
            ("group", false, false) => {
                Some(Scope::Group { workspace: workspace.to_string(), group: group.to_string() })
            }
            _ => None,
        }
    }

    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Global => ScopeKind::Global,
            Scope::Workspace { .. } => ScopeKind::Workspace,
            Scope::Group { .. } => ScopeKind::Group,
        }
    }

    /// `global`, `workspace` or `group`, as stored.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Workspace { .. } => "workspace",
            Scope::Group { .. } => "group",
        }
    }

    /// The workspace id, or "" for global.
    pub fn workspace_id(&self) -> &str {
        match self {
            Scope::Global => "",
            Scope::Workspace { workspace } | Scope::Group { workspace, .. } => workspace,
        }
    }

    /// The group id, or "".
    pub fn group_id(&self) -> &str {
        match self {
            Scope::Group { group, .. } => group,
            _ => "",
        }
    }

    /// The scopes whose credentials a call in this context may use, most
    /// specific first: group, then its workspace, then global.
    pub fn resolution_order(&self) -> Vec<Scope> {
        match self {
            Scope::Global => vec![Scope::Global],
            Scope::Workspace { workspace } => {
                vec![Scope::Workspace { workspace: workspace.clone() }, Scope::Global]
            }
            Scope::Group { workspace, group } => vec![
                Scope::Group { workspace: workspace.clone(), group: group.clone() },
                Scope::Workspace { workspace: workspace.clone() },
                Scope::Global,
            ],
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Workspace { workspace } => write!(f, "workspace:{workspace}"),
            Scope::Group { workspace, group } => write!(f, "group:{workspace}/{group}"),
        }
    }
}

/// Checks a workspace or group id.
pub fn check_id(what: &'static str, value: &str) -> Result<String, ScopeError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok { Ok(value.to_string()) } else { Err(ScopeError::BadId { what, value: value.to_string() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each scope needs exactly its ids: missing and stray ids are errors.
    #[test]
    fn parse_requires_exact_ids() {
        assert_eq!(Scope::parse(ScopeKind::Global, None, None), Ok(Scope::Global));
        assert_eq!(Scope::parse(ScopeKind::Global, Some("w"), None), Err(ScopeError::StrayIdsForGlobal));
        assert_eq!(Scope::parse(ScopeKind::Workspace, None, None), Err(ScopeError::MissingWorkspace));
        assert_eq!(
            Scope::parse(ScopeKind::Workspace, Some("w"), Some("g")),
            Err(ScopeError::StrayGroupForWorkspace)
        );
        assert_eq!(Scope::parse(ScopeKind::Group, Some("w"), None), Err(ScopeError::MissingGroup));
        assert_eq!(
            Scope::parse(ScopeKind::Group, Some("w"), Some("g")),
            Ok(Scope::Group { workspace: "w".into(), group: "g".into() })
        );
    }

    // Ids are plain tokens, so they can never smuggle separators into keys.
    #[test]
    fn ids_are_plain_tokens() {
        assert!(Scope::parse(ScopeKind::Workspace, Some("my ws"), None).is_err());
        assert!(Scope::parse(ScopeKind::Workspace, Some(""), None).is_err());
        assert!(Scope::parse(ScopeKind::Workspace, Some("a/b"), None).is_err());
        assert!(Scope::parse(ScopeKind::Workspace, Some("my-ws_1.2"), None).is_ok());
    }

    // Resolution goes from the most specific scope to global.
    #[test]
    fn resolution_order_is_most_specific_first() {
        let group = Scope::Group { workspace: "w".into(), group: "g".into() };
        assert_eq!(
            group.resolution_order(),
            vec![group.clone(), Scope::Workspace { workspace: "w".into() }, Scope::Global]
        );
    }
}
