//! Which credential serves a call: the most specific one for the call's
//! context (group, then workspace, then global), under the group access
//! rules: in a group context a group credential serves only its group, a
//! workspace credential any group of its workspace, and any other (global)
//! credential only a group all its secrets are attached to.

use std::collections::HashMap;

use crate::vault::{CredentialRow, Scope, SecretRow};

/// Why no credential could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    #[error(
        "no credential enables {capability} for {context}; store its secrets ({needs}) with `aivault secrets create`"
    )]
    None { capability: String, context: Scope, needs: String },
    #[error(
        "credential {credential} ({scope}) does not serve group {workspace}/{group}: attach its secrets with \
         `aivault secrets attach-group --id … --workspace-id {workspace} --group-id {group}`"
    )]
    NotAttached { credential: String, scope: Scope, workspace: String, group: String },
    #[error("several credentials enable {capability} in {scope} ({ids}); pick one with --credential")]
    Ambiguous { capability: String, scope: Scope, ids: String },
    #[error("no credential `{0}`; `aivault credential list` shows them")]
    Unknown(String),
    #[error("credential {credential} does not enable {capability}")]
    DoesNotEnable { credential: String, capability: String },
    #[error("credential {credential} ({scope}) cannot be used for {context}")]
    OutOfContext { credential: String, scope: Scope, context: Scope },
}

/// Whether `credential` may serve a call in `context`.
pub fn accessible(credential: &CredentialRow, secrets: &HashMap<String, SecretRow>, context: &Scope) -> bool {
    match context {
        Scope::Global => credential.scope == Scope::Global,
        Scope::Workspace { .. } => context.resolution_order().contains(&credential.scope),
        Scope::Group { workspace, group } => {
            credential.scope == *context
                || credential.scope == (Scope::Workspace { workspace: workspace.clone() })
                || attached_to(credential, secrets, workspace, group)
        }
    }
}

fn attached_to(
    credential: &CredentialRow,
    secrets: &HashMap<String, SecretRow>,
    workspace: &str,
    group: &str,
) -> bool {
    !credential.secrets.is_empty()
        && credential.secrets.iter().all(|(_, id)| {
            secrets.get(id).is_some_and(|s| s.attachments.iter().any(|(w, g)| w == workspace && g == group))
        })
}

/// Picks the credential for `capability` in `context`, or the one named.
pub fn choose<'a>(
    capability: &str,
    credentials: &'a [CredentialRow],
    secrets: &HashMap<String, SecretRow>,
    context: &Scope,
    requested: Option<&str>,
    needs: &str,
) -> Result<&'a CredentialRow, ResolveError> {
    let enables = |c: &&CredentialRow| c.capabilities.iter().any(|id| id == capability);
    if let Some(id) = requested {
        let credential =
            credentials.iter().find(|c| c.id == id).ok_or_else(|| ResolveError::Unknown(id.to_string()))?;
        if !enables(&credential) {
            return Err(ResolveError::DoesNotEnable {
                credential: id.to_string(),
                capability: capability.to_string(),
            });
        }
        return if accessible(credential, secrets, context) {
            Ok(credential)
        } else {
            Err(refusal(credential, context))
        };
    }
    let candidates: Vec<&CredentialRow> = credentials.iter().filter(enables).collect();
    let mut tiers: Vec<Scope> = context.resolution_order();
    // Past the context's own scopes come credentials shared by attachment.
    let pick = |in_tier: Vec<&'a CredentialRow>, scope: &Scope| match in_tier.len() {
        0 => Ok(None),
        1 => Ok(Some(in_tier[0])),
        _ => Err(ResolveError::Ambiguous {
            capability: capability.to_string(),
            scope: scope.clone(),
            ids: in_tier.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", "),
        }),
    };
    for scope in tiers.drain(..) {
        let in_tier: Vec<&CredentialRow> = candidates
            .iter()
            .copied()
            .filter(|c| c.scope == scope && accessible(c, secrets, context))
            .collect();
        if let Some(found) = pick(in_tier, &scope)? {
            return Ok(found);
        }
    }
    if let Scope::Group { .. } = context {
        let shared: Vec<&CredentialRow> = candidates
            .iter()
            .copied()
            .filter(|c| !context.resolution_order().contains(&c.scope) && accessible(c, secrets, context))
            .collect();
        if let Some(found) = pick(shared, context)? {
            return Ok(found);
        }
        // Something would serve it if attached: say so.
        if let Some(global) = candidates.iter().find(|c| c.scope == Scope::Global) {
            return Err(refusal(global, context));
        }
    }
    Err(ResolveError::None {
        capability: capability.to_string(),
        context: context.clone(),
        needs: needs.to_string(),
    })
}

fn refusal(credential: &CredentialRow, context: &Scope) -> ResolveError {
    match context {
        Scope::Group { workspace, group } => ResolveError::NotAttached {
            credential: credential.id.clone(),
            scope: credential.scope.clone(),
            workspace: workspace.clone(),
            group: group.clone(),
        },
        _ => ResolveError::OutOfContext {
            credential: credential.id.clone(),
            scope: credential.scope.clone(),
            context: context.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(id: &str, scope: Scope, secret: &str) -> CredentialRow {
        CredentialRow {
            id: id.into(),
            provider: "openai".into(),
            kind: "api-key".into(),
            scope,
            host: None,
            auto_provisioned: true,
            created_at_ms: 0,
            secrets: vec![("OPENAI_API_KEY".into(), secret.into())],
            capabilities: vec!["openai/models".into()],
        }
    }

    fn ws(w: &str) -> Scope {
        Scope::Workspace { workspace: w.into() }
    }

    fn group(w: &str, g: &str) -> Scope {
        Scope::Group { workspace: w.into(), group: g.into() }
    }

    fn secrets(attached: &[(&str, &str, &str)]) -> HashMap<String, SecretRow> {
        let mut map = HashMap::new();
        for id in ["s-global", "s-ws", "s-group"] {
            let row = SecretRow {
                id: id.into(),
                name: "OPENAI_API_KEY".into(),
                scope: Scope::Global,
                pinned_provider: None,
                value_version: 1,
                sealed: Default::default(),
                kek_id: String::new(),
                created_at_ms: 0,
                updated_at_ms: 0,
                aliases: vec![],
                attachments: attached
                    .iter()
                    .filter(|(s, _, _)| *s == id)
                    .map(|(_, w, g)| (w.to_string(), g.to_string()))
                    .collect(),
            };
            map.insert(id.to_string(), row);
        }
        map
    }

    fn pick(
        creds: &[CredentialRow],
        s: &HashMap<String, SecretRow>,
        context: &Scope,
    ) -> Result<String, ResolveError> {
        choose("openai/models", creds, s, context, None, "OPENAI_API_KEY").map(|c| c.id.clone())
    }

    // The most specific scope wins: group, then workspace, then global.
    #[test]
    fn most_specific_first() {
        let creds = vec![
            credential("g", Scope::Global, "s-global"),
            credential("w", ws("w1"), "s-ws"),
            credential("gr", group("w1", "g1"), "s-group"),
        ];
        let s = secrets(&[]);
        assert_eq!(pick(&creds, &s, &group("w1", "g1")).unwrap(), "gr");
        assert_eq!(pick(&creds, &s, &group("w1", "other")).unwrap(), "w");
        assert_eq!(pick(&creds, &s, &ws("w1")).unwrap(), "w");
        assert_eq!(pick(&creds, &s, &ws("w2")).unwrap(), "g");
        assert_eq!(pick(&creds, &s, &Scope::Global).unwrap(), "g");
    }

    // A global credential serves a group only when its secret is attached.
    #[test]
    fn global_needs_attachment_in_group_context() {
        let creds = vec![credential("g", Scope::Global, "s-global")];
        let err = pick(&creds, &secrets(&[]), &group("w1", "g1")).unwrap_err();
        assert!(matches!(err, ResolveError::NotAttached { .. }), "{err}");
        assert_eq!(pick(&creds, &secrets(&[("s-global", "w1", "g1")]), &group("w1", "g1")).unwrap(), "g");
    }

    // Workspaces never see each other's credentials.
    #[test]
    fn workspace_isolation() {
        let creds = vec![credential("w", ws("w1"), "s-ws")];
        assert!(matches!(pick(&creds, &secrets(&[]), &ws("w2")), Err(ResolveError::None { .. })));
        assert!(matches!(pick(&creds, &secrets(&[]), &group("w2", "g")), Err(ResolveError::None { .. })));
        let err = choose("openai/models", &creds, &secrets(&[]), &ws("w2"), Some("w"), "").unwrap_err();
        assert!(matches!(err, ResolveError::OutOfContext { .. }), "{err}");
    }

    // Two credentials in the same scope need --credential.
    #[test]
    fn ambiguity_needs_a_choice() {
        let creds = vec![credential("a", Scope::Global, "s-global"), credential("b", Scope::Global, "s-ws")];
        assert!(matches!(pick(&creds, &secrets(&[]), &Scope::Global), Err(ResolveError::Ambiguous { .. })));
        let chosen = choose("openai/models", &creds, &secrets(&[]), &Scope::Global, Some("b"), "").unwrap();
        assert_eq!(chosen.id, "b");
    }
}
