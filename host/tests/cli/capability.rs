//! `aivault capability list|describe` with no secret stored.

use serde_json::Value;

use crate::support::Vault;

/// How many capabilities the built-in providers declare, counted from the
/// reference registry files they are checked against (all but the drop-in
/// example's).
fn builtin_capabilities() -> usize {
    let dir = format!("{}/../tests/fixtures/registry", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            doc["capabilities"].as_array().unwrap().len()
        })
        .sum()
}

// With an empty vault everything is Available: one line per provider and
// the secrets that would enable it, with how many capabilities and their
// first names.
#[test]
fn list_groups_ready_and_available() {
    let vault = Vault::new();
    let out = vault.ok(&["capability", "list"]);
    assert!(out.starts_with("Ready (0)\n"), "{out}");
    assert!(out.contains(&format!("Available ({})", builtin_capabilities())), "{out}");
    let line = |start: &str| out.lines().find(|l| l.trim_start().starts_with(start)).map(str::to_string);
    let openai = line("openai (needs OPENAI_API_KEY)").unwrap_or_else(|| panic!("{out}"));
    assert!(
        openai.contains("17: assistants, batch, chat-completions") && openai.contains("(11 more)"),
        "{openai}"
    );
    assert!(line("openai (needs CODEX_OAUTH_JSON)").unwrap().contains("3: codex-realtime"), "{out}");
    assert!(line("trello (needs TRELLO_API_KEY + TRELLO_TOKEN)").is_some(), "{out}");
    assert!(line("github (needs GITHUB_TOKEN)").unwrap().contains("9: gists, graphql"), "{out}");
    assert!(out.lines().count() < 80, "the summary is as long as the catalogue:\n{out}");
}

// `--provider` and a search narrow the list and show each capability in full;
// an unknown provider is a mistake with a suggestion.
#[test]
fn list_narrows_by_provider_and_search() {
    let vault = Vault::new();
    let out = vault.ok(&["capability", "list", "--provider", "openai"]);
    assert!(out.contains("Available (20)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("openai/chat-completions")
                && l.contains("/v1/chat/completions")),
        "{out}"
    );
    assert!(!out.contains("github"), "{out}");
    let out = vault.ok(&["capability", "list", "OPENAI/TRANSCR"]);
    assert!(out.contains("Available (1)") && out.contains("openai/transcription"), "{out}");
    let json: Value = serde_json::from_str(&vault.ok(&["capability", "list", "-v", "/v1/models"])).unwrap();
    let ids: Vec<&str> =
        json["available"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"openai/models"), "{ids:?}");
    let err = vault.fails(&["capability", "list", "--provider", "opnai"]);
    assert!(err.contains("no provider `opnai` (did you mean `openai`?)"), "{err}");
}

// `-v` prints JSON a script can read.
#[test]
fn list_verbose_is_json() {
    let vault = Vault::new();
    let json: Value = serde_json::from_str(&vault.ok(&["capability", "list", "-v"])).unwrap();
    assert_eq!(json["ready"].as_array().unwrap().len(), 0);
    let available = json["available"].as_array().unwrap();
    assert_eq!(available.len(), builtin_capabilities());
    let trello_cards = available.iter().find(|c| c["id"] == "trello/cards").unwrap();
    assert_eq!(trello_cards["hosts"], serde_json::json!(["api.trello.com"]));
    assert_eq!(
        trello_cards["credentialKinds"][0]["secrets"],
        serde_json::json!(["TRELLO_API_KEY", "TRELLO_TOKEN"])
    );
}

// describe shows methods, prefixes, host, secrets and an example invoke;
// its aliases do the same.
#[test]
fn describe_and_aliases() {
    let vault = Vault::new();
    let out = vault.ok(&["capability", "describe", "github/repos"]);
    for expected in [
        "github/repos",
        "api.github.com",
        "DELETE, GET, PATCH, POST, PUT",
        "/repos",
        "GITHUB_TOKEN",
        "aivault invoke github/repos --method POST --path /repos",
    ] {
        assert!(out.contains(expected), "missing {expected}:\n{out}");
    }
    for alias in ["args", "shape", "inspect"] {
        assert_eq!(vault.ok(&["capability", alias, "github/repos"]), out);
    }
    let json: Value =
        serde_json::from_str(&vault.ok(&["capability", "describe", "openai/models", "-v"])).unwrap();
    assert_eq!(json["methods"], serde_json::json!(["DELETE", "GET"]));
    assert_eq!(json["example"], "aivault invoke openai/models --method DELETE --path /v1/models");
}

// An unknown id is one clear line, a close match, and a non-zero exit.
#[test]
fn unknown_capability_suggests_close_match() {
    let vault = Vault::new();
    let err = vault.fails(&["capability", "describe", "openai/chat-completion"]);
    assert!(err.contains("no capability `openai/chat-completion`"), "{err}");
    assert!(err.contains("did you mean `openai/chat-completions`?"), "{err}");
    let err = vault.fails(&["capability", "describe", "nothing-like-it"]);
    assert!(!err.contains("did you mean"), "{err}");
}

// Shell completions are generated for the usual shells.
#[test]
fn completions_generate() {
    let vault = Vault::new();
    for shell in ["bash", "zsh", "fish"] {
        assert!(vault.ok(&["completions", shell]).contains("capability"));
    }
}

// Storing a provider's secrets moves its capabilities from Available to
// Ready, naming the credentials that enable them.
#[test]
fn provisioned_capabilities_become_ready() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", crate::support::GITHUB_TOKEN]);
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "GITHUB_TOKEN",
        "--value",
        crate::support::GITHUB_TOKEN,
        "--scope",
        "workspace",
        "--workspace-id",
        "w1",
    ]);
    let out = vault.ok(&["capability", "list"]);
    assert!(out.starts_with("Ready (9)\n  github (via github, github@w1)\n"), "{out}");
    assert!(out.contains(&format!("Available ({})", builtin_capabilities() - 9)), "{out}");
    let json: Value = serde_json::from_str(&vault.ok(&["capability", "list", "-v"])).unwrap();
    assert_eq!(json["ready"][0]["credentials"], serde_json::json!(["github", "github@w1"]));
    let out = vault.ok(&["capability", "describe", "github/repos"]);
    assert!(out.contains("ready (credentials: github, github@w1)"), "{out}");
}

// Colour only on a terminal: piped output carries no escape codes, even
// without NO_COLOR.
#[test]
fn no_colour_when_piped() {
    let vault = Vault::new();
    let mut cmd = vault.std_cmd(&["capability", "list"]);
    cmd.env_remove("NO_COLOR");
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.contains(&0x1b), "escape codes in piped output");
}
