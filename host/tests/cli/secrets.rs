//! `aivault secrets …` through the real binary: every example of
//! `spec/secrets-cli.txt`, with realistic values, and the rules around them.

use serde_json::Value;

use crate::support::{GITHUB_TOKEN, OPENAI_KEY, OPENAI_KEY_2, TRELLO_KEY, TRELLO_TOKEN, Vault};

fn secrets_json(vault: &Vault, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["secrets", "list", "-v"];
    args.extend_from_slice(extra);
    serde_json::from_str::<Value>(&vault.ok(&args)).unwrap().as_array().unwrap().clone()
}

fn id_of(vault: &Vault, name: &str, scope: &str) -> String {
    secrets_json(vault, &[])
        .into_iter()
        .find(|s| s["name"] == name && s["scope"] == scope)
        .unwrap_or_else(|| panic!("no {name} in {scope}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

// The spec's create examples print exactly the spec's lines.
#[test]
fn spec_create_examples() {
    let vault = Vault::new();
    let out = vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        OPENAI_KEY,
        "--scope",
        "global",
    ]);
    assert_eq!(
        out,
        "Secret created: OPENAI_API_KEY (pinned to provider: openai)\n\
         Credential auto-provisioned: openai (17 capabilities enabled)\n"
    );

    let out = vault.ok(&[
        "secrets",
        "create",
        "--name",
        "MY_CUSTOM_KEY",
        "--value",
        "custom-value-1",
        "--scope",
        "global",
    ]);
    assert_eq!(out, "Secret created: MY_CUSTOM_KEY\n");

    let out = vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        OPENAI_KEY_2,
        "--scope",
        "workspace",
        "--workspace-id",
        "my-workspace",
    ]);
    assert!(out.starts_with("Secret created: OPENAI_API_KEY (pinned to provider: openai)\n"), "{out}");

    let out = vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        OPENAI_KEY_2,
        "--scope",
        "group",
        "--workspace-id",
        "my-workspace",
        "--group-id",
        "my-group",
    ]);
    assert!(out.contains("Credential auto-provisioned: openai (17 capabilities enabled)"), "{out}");

    let secrets = secrets_json(&vault, &[]);
    assert_eq!(secrets.len(), 4);
    let credentials: Value = serde_json::from_str(&vault.ok(&["credential", "list", "-v"])).unwrap();
    let ids: Vec<&str> = credentials.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["openai", "openai@my-workspace", "openai@my-workspace/my-group"]);
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(OPENAI_KEY_2);
    vault.assert_nowhere("custom-value-1");
}

// The alias example: repeatable --alias, shown by list.
#[test]
fn spec_create_with_aliases() {
    let vault = Vault::new();
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "OPENAI_API_KEY",
        "--value",
        OPENAI_KEY,
        "--scope",
        "global",
        "--alias",
        "openai",
        "--alias",
        "gpt-key",
    ]);
    let secrets = secrets_json(&vault, &[]);
    assert_eq!(secrets[0]["aliases"], serde_json::json!(["gpt-key", "openai"]));
    assert_eq!(secrets[0]["pinnedProvider"], "openai");
    let table = vault.ok(&["secrets", "list"]);
    assert!(table.contains("gpt-key,openai"), "{table}");
    // An alias identifies the secret wherever an id is accepted.
    assert!(
        vault
            .ok(&["secrets", "rotate", "--id", "gpt-key", "--value", OPENAI_KEY_2])
            .contains("value version 2")
    );
}

// Trello needs both secrets: the first prints a waiting line, the second provisions.
#[test]
fn trello_waits_for_both_secrets() {
    let vault = Vault::new();
    let out = vault.ok(&["secrets", "create", "--name", "TRELLO_API_KEY", "--value", TRELLO_KEY]);
    assert_eq!(
        out,
        "Secret created: TRELLO_API_KEY (pinned to provider: trello)\n\
         Credential pending: trello (waiting for TRELLO_TOKEN)\n"
    );
    assert!(vault.ok(&["credential", "list"]).contains("No credentials"));
    let out = vault.ok(&["secrets", "create", "--name", "TRELLO_TOKEN", "--value", TRELLO_TOKEN]);
    assert_eq!(
        out,
        "Secret created: TRELLO_TOKEN (pinned to provider: trello)\n\
         Credential auto-provisioned: trello (17 capabilities enabled)\n"
    );
    let list = vault.ok(&["credential", "list"]);
    assert!(
        list.contains("trello")
            && list.contains("TRELLO_API_KEY,TRELLO_TOKEN")
            && list.contains("api.trello.com")
    );
    // A provider's secrets in different scopes never combine.
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "TRELLO_API_KEY", "--value", TRELLO_KEY]);
    let out = vault.ok(&[
        "secrets",
        "create",
        "--name",
        "TRELLO_TOKEN",
        "--value",
        TRELLO_TOKEN,
        "--scope",
        "workspace",
        "--workspace-id",
        "w",
    ]);
    assert!(out.contains("waiting for TRELLO_API_KEY"), "{out}");
}

// The spec's list examples: by scope, by workspace, and -v JSON without values.
#[test]
fn spec_list_examples() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "GLOBAL_ONE", "--value", "value-global-1"]);
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "WS_ONE",
        "--value",
        "value-ws-1",
        "--scope",
        "workspace",
        "--workspace-id",
        "my-ws",
    ]);
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "WS_TWO",
        "--value",
        "value-ws-2",
        "--scope",
        "workspace",
        "--workspace-id",
        "other",
    ]);
    let all = vault.ok(&["secrets", "list"]);
    assert!(all.contains("GLOBAL_ONE") && all.contains("WS_ONE") && all.contains("WS_TWO"));
    let global = vault.ok(&["secrets", "list", "--scope", "global"]);
    assert!(global.contains("GLOBAL_ONE") && !global.contains("WS_ONE"));
    let ws = secrets_json(&vault, &["--scope", "workspace", "--workspace-id", "my-ws"]);
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["name"], "WS_ONE");
    assert_eq!(ws[0]["workspaceId"], "my-ws");
    assert!(ws[0].get("value").is_none());
    vault.assert_nowhere("value-global-1");
    vault.assert_nowhere("value-ws-2");
}

// update: rename, add aliases, clear aliases; the value stays.
#[test]
fn spec_update_examples() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OLD_NAME", "--value", "value-to-keep"]);
    let id = id_of(&vault, "OLD_NAME", "global");
    assert_eq!(
        vault.ok(&["secrets", "update", "--id", &id, "--name", "NEW_NAME"]),
        "Secret updated: NEW_NAME (aliases: none)\n"
    );
    assert_eq!(
        vault.ok(&["secrets", "update", "--id", &id, "--alias", "new-alias"]),
        "Secret updated: NEW_NAME (aliases: new-alias)\n"
    );
    assert_eq!(
        vault.ok(&["secrets", "update", "--id", &id, "--clear-aliases"]),
        "Secret updated: NEW_NAME (aliases: none)\n"
    );
    let s = &secrets_json(&vault, &[])[0];
    assert_eq!((s["name"].as_str(), s["valueVersion"].as_i64()), (Some("NEW_NAME"), Some(1)));
}

// A pinned secret keeps its name and pin; no rename may create or move a pin.
#[test]
fn pins_are_immutable() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    vault.ok(&["secrets", "create", "--name", "PLAIN", "--value", "plain-value"]);
    let err =
        vault.fails_unchanged(&["secrets", "update", "--id", "OPENAI_API_KEY", "--name", "SOMETHING_ELSE"]);
    assert!(err.contains("pinned to provider openai"), "{err}");
    let err = vault.fails_unchanged(&["secrets", "update", "--id", "PLAIN", "--name", "GITHUB_TOKEN"]);
    assert!(err.contains("secret name of provider github"), "{err}");
    let err = vault.fails_unchanged(&["secrets", "update", "--id", "PLAIN", "--alias", "TRELLO_TOKEN"]);
    assert!(err.contains("provider trello"), "{err}");
    assert_eq!(secrets_json(&vault, &[])[0]["pinnedProvider"], "openai");
}

// rotate: fresh value, version + 1, an audit event, and the old value gone.
#[test]
fn spec_rotate_example() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", GITHUB_TOKEN]);
    let id = id_of(&vault, "GITHUB_TOKEN", "global");
    let new_value = "ghp_R0tat3dT0kenZyXwVuTsRqPoNmLkJiHgFe98";
    let out = vault.ok(&["secrets", "rotate", "--id", &id, "--value", new_value]);
    assert_eq!(out, "Secret rotated: GITHUB_TOKEN (value version 2)\n");
    let audit = vault.ok(&["audit"]);
    assert!(audit.contains("secret.rotate") && audit.contains("\"toVersion\":2"), "{audit}");
    // The pinned provider still checks rotated values.
    let err = vault.fails_unchanged(&["secrets", "rotate", "--id", &id, "--value", "not-a-github-token"]);
    assert!(err.contains("provider `github`"), "{err}");
    vault.assert_nowhere(GITHUB_TOKEN);
    vault.assert_nowhere(new_value);
}

// A value can come from stdin, so it never sits in shell history.
#[test]
fn value_from_stdin() {
    let vault = Vault::new();
    let mut cmd = vault.cmd(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", "-"]);
    cmd.write_stdin(format!("{OPENAI_KEY}\n"));
    let (ok, out, err) = vault.run_cmd(cmd);
    assert!(ok, "{err}");
    assert!(out.contains("pinned to provider: openai"));
    let mut cmd = vault.cmd(&["secrets", "rotate", "--id", "OPENAI_API_KEY", "--value", "-"]);
    cmd.write_stdin(OPENAI_KEY_2);
    assert!(vault.run_cmd(cmd).0);
    // Without --value and without a terminal, a clear error.
    let err = vault.fails_unchanged(&["secrets", "create", "--name", "X_KEY"]);
    assert!(err.contains("--value -"), "{err}");
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(OPENAI_KEY_2);
}

// delete removes the credential and its capabilities; re-creating re-provisions.
#[test]
fn spec_delete_example() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "TRELLO_API_KEY", "--value", TRELLO_KEY]);
    vault.ok(&["secrets", "create", "--name", "TRELLO_TOKEN", "--value", TRELLO_TOKEN]);
    let id = id_of(&vault, "TRELLO_TOKEN", "global");
    let out = vault.ok(&["secrets", "delete", "--id", &id]);
    assert_eq!(out, "Secret deleted: TRELLO_TOKEN\nCredential removed: trello\n");
    assert!(vault.ok(&["credential", "list"]).contains("No credentials"));
    let ready: Value = serde_json::from_str(&vault.ok(&["capability", "list", "-v"])).unwrap();
    assert_eq!(ready["ready"].as_array().unwrap().len(), 0);
    let out = vault.ok(&["secrets", "create", "--name", "TRELLO_TOKEN", "--value", TRELLO_TOKEN]);
    assert!(out.contains("Credential auto-provisioned: trello (17 capabilities enabled)"), "{out}");
}

// attach-group / detach-group, as in the spec.
#[test]
fn spec_attach_detach_examples() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "SHARED", "--value", "shared-value"]);
    let id = id_of(&vault, "SHARED", "global");
    let out = vault.ok(&[
        "secrets",
        "attach-group",
        "--id",
        &id,
        "--workspace-id",
        "my-workspace",
        "--group-id",
        "my-group",
    ]);
    assert_eq!(out, "Secret attached: SHARED -> group my-workspace/my-group\n");
    assert_eq!(
        secrets_json(&vault, &[])[0]["attachedGroups"],
        serde_json::json!([{"workspaceId": "my-workspace", "groupId": "my-group"}])
    );
    let err = vault.fails_unchanged(&[
        "secrets",
        "attach-group",
        "--id",
        &id,
        "--workspace-id",
        "my-workspace",
        "--group-id",
        "my-group",
    ]);
    assert!(err.contains("already attached"), "{err}");
    let out = vault.ok(&[
        "secrets",
        "detach-group",
        "--id",
        &id,
        "--workspace-id",
        "my-workspace",
        "--group-id",
        "my-group",
    ]);
    assert_eq!(out, "Secret detached: SHARED from group my-workspace/my-group\n");
    let err = vault.fails_unchanged(&[
        "secrets",
        "detach-group",
        "--id",
        &id,
        "--workspace-id",
        "my-workspace",
        "--group-id",
        "my-group",
    ]);
    assert!(err.contains("not attached"), "{err}");
}

// The spec's import example: each entry as if created alone.
#[test]
fn spec_import_example() {
    const ANTHROPIC_KEY: &str = "sk-ant-api03-T3stValueAbcdefGhijklMnopqrStuvwx0123456789";
    let vault = Vault::new();
    let out = vault.ok(&[
        "secrets",
        "import",
        "--entry",
        &format!("OPENAI_API_KEY={OPENAI_KEY}"),
        "--entry",
        &format!("ANTHROPIC_API_KEY={ANTHROPIC_KEY}"),
        "--entry",
        &format!("GITHUB_TOKEN={GITHUB_TOKEN}"),
        "--scope",
        "global",
    ]);
    assert_eq!(
        out,
        "Secret created: OPENAI_API_KEY (pinned to provider: openai)\n\
         Credential auto-provisioned: openai (17 capabilities enabled)\n\
         Secret created: ANTHROPIC_API_KEY (pinned to provider: anthropic)\n\
         Credential auto-provisioned: anthropic (2 capabilities enabled)\n\
         Secret created: GITHUB_TOKEN (pinned to provider: github)\n\
         Credential auto-provisioned: github (9 capabilities enabled)\n"
    );
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(ANTHROPIC_KEY);
    vault.assert_nowhere(GITHUB_TOKEN);
}

// Import validates every entry before writing any: one bad entry, nothing stored.
#[test]
fn import_is_all_or_nothing() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "EXISTING", "--value", "existing-value"]);
    let cases: [(&[&str], &str); 5] = [
        (&["--entry", "GOOD_ONE=fine-value", "--entry", "OPENAI_API_KEY=sk-......."], "provider `openai`"),
        (&["--entry", "GOOD_ONE=fine-value", "--entry", "SHORT_ONE=1234567"], "shorter than 8 characters"),
        (&["--entry", "GOOD_ONE=fine-value", "--entry", "no-equals-sign-secret"], "--entry #2 has no `=`"),
        (&["--entry", "GOOD_ONE=fine-value", "--entry", "EXISTING=again-value"], "already exists"),
        (&["--entry", "GOOD_ONE=fine-value", "--entry", "GOOD_ONE=twice-value"], "appears twice"),
    ];
    for (entries, why) in cases {
        let mut args = vec!["secrets", "import"];
        args.extend_from_slice(entries);
        let err = vault.fails_unchanged(&args);
        assert!(err.contains(why), "{entries:?}: {err}");
        assert!(!err.contains("no-equals-sign-secret") && !err.contains("sk-....."), "{err}");
        assert!(!err.contains("1234567"), "{err}");
    }
    assert_eq!(secrets_json(&vault, &[]).len(), 1);
}

// Import from a dotenv file: comments, quotes, export prefixes.
#[test]
fn import_env_file() {
    let vault = Vault::new();
    let file = vault.path().parent().unwrap().join(format!("{}.env", std::process::id()));
    std::fs::write(
        &file,
        format!(
            "# tokens\nexport GITHUB_TOKEN={GITHUB_TOKEN}\nQUOTED=\"line one\\nline two\"\nSINGLE='lit $HOME #x'\nPLAIN=plain-value # note\n"
        ),
    )
    .unwrap();
    let out = vault.ok(&["secrets", "import", "--env-file", file.to_str().unwrap()]);
    assert!(out.contains("Secret created: GITHUB_TOKEN (pinned to provider: github)"), "{out}");
    let names: Vec<String> =
        secrets_json(&vault, &[]).iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["GITHUB_TOKEN", "PLAIN", "QUOTED", "SINGLE"]);
    // A malformed file names the line, not the value.
    std::fs::write(&file, "GOOD=1\nBROKEN='sk-unterminated-secret\n").unwrap();
    let err = vault.fails_unchanged(&["secrets", "import", "--env-file", file.to_str().unwrap()]);
    assert!(err.contains("line 2: unterminated single quote") && !err.contains("sk-unterminated"), "{err}");
    std::fs::remove_file(&file).unwrap();
    vault.assert_nowhere(GITHUB_TOKEN);
    vault.assert_nowhere("plain-value");
}

// Scopes need exactly their ids; names and aliases are unique per scope only.
#[test]
fn scope_rules() {
    let vault = Vault::new();
    for (args, why) in [
        (&["--scope", "workspace"][..], "--scope workspace needs --workspace-id"),
        (&["--scope", "group", "--workspace-id", "w"], "--scope group needs --workspace-id and --group-id"),
        (&["--scope", "global", "--workspace-id", "w"], "takes no --workspace-id"),
        (&["--scope", "workspace", "--workspace-id", "w", "--group-id", "g"], "takes no --group-id"),
        (&["--scope", "workspace", "--workspace-id", "bad id"], "workspace id `bad id` is not allowed"),
    ] {
        let mut full = vec!["secrets", "create", "--name", "K", "--value", "v-1234-value"];
        full.extend_from_slice(args);
        let err = vault.fails_unchanged(&full);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let err =
        vault.fails(&["secrets", "create", "--name", "K", "--value", "v-1234-value", "--scope", "planet"]);
    assert!(err.contains("invalid value 'planet'") || err.contains("planet"), "{err}");
    vault.ok(&["secrets", "create", "--name", "K", "--value", "v-1234-value"]);
    vault.ok(&[
        "secrets",
        "create",
        "--name",
        "K",
        "--value",
        "v-1234-value",
        "--scope",
        "workspace",
        "--workspace-id",
        "w",
    ]);
    let err = vault.fails_unchanged(&["secrets", "create", "--name", "K", "--value", "v-5678-value"]);
    assert!(err.contains("a secret named `K` already exists in scope global"), "{err}");
    // With the same name in two scopes, the name alone is ambiguous.
    let err = vault.fails_unchanged(&["secrets", "delete", "--id", "K"]);
    assert!(err.contains("names 2 secrets (global, workspace:w)"), "{err}");
}

// Each bad input: one line, non-zero exit, nothing changed.
#[test]
fn errors_are_one_line_and_change_nothing() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY]);
    let cases: [(&[&str], &str); 8] = [
        (&["secrets", "delete", "--id", "00000000-0000-0000-0000-000000000000"], "no secret with id"),
        (
            &["secrets", "rotate", "--id", "OPENAI_API_KY", "--value", OPENAI_KEY_2],
            "did you mean `OPENAI_API_KEY`?",
        ),
        (&["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY_2], "already exists"),
        (
            &["secrets", "create", "--name", "GITHUB_TOKEN", "--value", "ghp-........"],
            "refused the value of GITHUB_TOKEN",
        ),
        // Too short to be redacted safely from anything that echoes it.
        (&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", "ghp_123"], "shorter than 8"),
        (&["secrets", "create", "--name", "GITHUB_TOKEN", "--value", ""], "empty"),
        (
            &["secrets", "create", "--name", "bad name", "--value", "x"],
            "secret name `bad name` is not allowed",
        ),
        (&["secrets", "update", "--id", "OPENAI_API_KEY"], "nothing to update"),
    ];
    for (args, why) in cases {
        let err = vault.fails_unchanged(args);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    vault.assert_nowhere(OPENAI_KEY);
    vault.assert_nowhere(OPENAI_KEY_2);
}

// Twenty processes creating secrets at once all succeed, and all are stored.
#[test]
fn twenty_concurrent_creates() {
    let vault = Vault::new();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut cmd = vault.std_cmd(&[
                "secrets",
                "create",
                "--name",
                &format!("KEY_{i}"),
                "--value",
                &format!("concurrent-value-{i}"),
            ]);
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let names: std::collections::BTreeSet<String> =
        secrets_json(&vault, &[]).iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 20);
    assert!(vault.ok(&["audit", "verify"]).contains("chain intact and sealed"));
    // Exactly one key file: concurrent first commands agree on one master key.
    assert_eq!(std::fs::read_dir(vault.path().join("keys")).unwrap().count(), 1);
}

// A listing of many secrets reads aliases and group attachments in one
// pass rather than per secret: each still shows exactly its own (the other
// tests here list a few, read per secret).
#[test]
fn many_secrets_keep_their_own_aliases_and_groups() {
    let vault = Vault::new();
    let file = vault.path().parent().unwrap().join(format!("{}-many.env", std::process::id()));
    let text: String = (0..80).map(|i| format!("MANY_{i:02}=many-value-{i:02}-abcdef\n")).collect();
    std::fs::write(&file, text).unwrap();
    vault.ok(&["secrets", "import", "--env-file", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    for (name, aliases) in [("MANY_03", &["three", "trois"][..]), ("MANY_70", &["seventy"][..])] {
        let id = id_of(&vault, name, "global");
        for alias in aliases {
            vault.ok(&["secrets", "update", "--id", &id, "--alias", alias]);
        }
    }
    let id = id_of(&vault, "MANY_41", "global");
    vault.ok(&["secrets", "attach-group", "--id", &id, "--workspace-id", "w", "--group-id", "g"]);
    let listed = secrets_json(&vault, &[]);
    assert_eq!(listed.len(), 80);
    for secret in &listed {
        let (aliases, groups) = match secret["name"].as_str().unwrap() {
            "MANY_03" => (serde_json::json!(["three", "trois"]), serde_json::json!([])),
            "MANY_70" => (serde_json::json!(["seventy"]), serde_json::json!([])),
            "MANY_41" => (serde_json::json!([]), serde_json::json!([{"workspaceId": "w", "groupId": "g"}])),
            _ => (serde_json::json!([]), serde_json::json!([])),
        };
        assert_eq!((&secret["aliases"], &secret["attachedGroups"]), (&aliases, &groups), "{secret}");
    }
}
