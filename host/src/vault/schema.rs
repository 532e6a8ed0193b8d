//! The database schema, as an append-only list of migrations. The number of
//! migrations applied is kept in SQLite's `user_version`; PostgreSQL's
//! spelling of each migration is in [`pg`].

mod pg;

pub use pg::MIGRATIONS as POSTGRES_MIGRATIONS;

/// Migration `i` takes the schema from version `i` to `i + 1`. Never edit a
/// shipped entry; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE key_config (
        singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
        provider       TEXT NOT NULL CHECK (provider IN ('file', 'env', 'passphrase')),
        kek_id         TEXT NOT NULL,
        params         TEXT NOT NULL,
        key_check      BLOB NOT NULL,
        created_at_ms  INTEGER NOT NULL,
        rotated_at_ms  INTEGER
    );

    -- Ids are '' when the scope has none, so UNIQUE sees them (NULLs never collide).
    CREATE TABLE secrets (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        scope            TEXT NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id     TEXT NOT NULL,
        group_id         TEXT NOT NULL,
        pinned_provider  TEXT,
        value_version    INTEGER NOT NULL,
        ciphertext       BLOB NOT NULL,
        wrapped_dek      BLOB NOT NULL,
        kek_id           TEXT NOT NULL,
        created_at_ms    INTEGER NOT NULL,
        updated_at_ms    INTEGER NOT NULL,
        UNIQUE (scope, workspace_id, group_id, name)
    );

    CREATE TABLE secret_aliases (
        secret_id     TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        alias         TEXT NOT NULL,
        scope         TEXT NOT NULL,
        workspace_id  TEXT NOT NULL,
        group_id      TEXT NOT NULL,
        PRIMARY KEY (secret_id, alias),
        UNIQUE (scope, workspace_id, group_id, alias)
    );

    CREATE TABLE group_attachments (
        secret_id      TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        workspace_id   TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        created_at_ms  INTEGER NOT NULL,
        PRIMARY KEY (secret_id, workspace_id, group_id)
    );

    CREATE TABLE credentials (
        id                TEXT PRIMARY KEY,
        provider          TEXT NOT NULL,
        kind              TEXT NOT NULL,
        scope             TEXT NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id      TEXT NOT NULL,
        group_id          TEXT NOT NULL,
        host              TEXT,
        auto_provisioned  INTEGER NOT NULL,
        created_at_ms     INTEGER NOT NULL
    );
    CREATE INDEX credentials_by_provider ON credentials (provider, kind, scope, workspace_id, group_id);

    CREATE TABLE credential_secrets (
        credential_id  TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        secret_name    TEXT NOT NULL,
        secret_id      TEXT NOT NULL REFERENCES secrets(id),
        PRIMARY KEY (credential_id, secret_name)
    );
    CREATE INDEX credential_secrets_by_secret ON credential_secrets (secret_id);

    CREATE TABLE credential_capabilities (
        credential_id  TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        capability_id  TEXT NOT NULL,
        PRIMARY KEY (credential_id, capability_id)
    );

    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms      INTEGER NOT NULL,
        event      TEXT NOT NULL,
        subject    TEXT NOT NULL,
        details    TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (ts_ms);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
    // 2: the broker: custom capabilities, policies, consumer bindings and
    // the invocation log rate limits count from.
    r#"
    CREATE TABLE custom_capabilities (
        id             TEXT PRIMARY KEY,
        credential_id  TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        description    TEXT NOT NULL,
        methods        TEXT NOT NULL,
        path_prefixes  TEXT NOT NULL,
        host           TEXT,
        created_at_ms  INTEGER NOT NULL
    );

    CREATE TABLE capability_policies (
        capability_id            TEXT PRIMARY KEY,
        rate_limit_per_minute    INTEGER,
        max_request_body_bytes   INTEGER,
        max_response_body_bytes  INTEGER,
        response_block           TEXT NOT NULL,
        updated_at_ms            INTEGER NOT NULL
    );

    CREATE TABLE capability_bindings (
        capability_id  TEXT NOT NULL,
        consumer       TEXT NOT NULL,
        scope          TEXT NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id   TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        created_at_ms  INTEGER NOT NULL,
        PRIMARY KEY (capability_id, consumer, scope, workspace_id, group_id)
    );

    CREATE TABLE invocations (
        capability_id  TEXT NOT NULL,
        ts_ms          INTEGER NOT NULL
    );
    CREATE INDEX invocations_by_capability ON invocations (capability_id, ts_ms);
    "#,
    // 3: operator approvals of dropped-in provider components.
    r#"
    CREATE TABLE provider_approvals (
        provider_id     TEXT PRIMARY KEY,
        file_name       TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        manifest        TEXT NOT NULL,
        enabled         INTEGER NOT NULL,
        approved_at_ms  INTEGER NOT NULL
    );
    "#,
    // 4: the database is not trusted. Every row the broker, the registry or
    // the resolver acts on carries an HMAC under a key derived from the
    // master key (NULL until an old vault's first write with the key);
    // `seals` holds MACs over whole tables and the audit log's head. The
    // audit log stays append-only except for its MAC column, which master-key
    // rotation re-keys.
    r#"
    ALTER TABLE secrets ADD COLUMN mac BLOB;
    ALTER TABLE credentials ADD COLUMN mac BLOB;
    ALTER TABLE custom_capabilities ADD COLUMN mac BLOB;
    ALTER TABLE capability_policies ADD COLUMN mac BLOB;
    ALTER TABLE capability_bindings ADD COLUMN mac BLOB;
    ALTER TABLE provider_approvals ADD COLUMN mac BLOB;
    ALTER TABLE audit ADD COLUMN mac BLOB;

    CREATE TABLE seals (
        name   TEXT PRIMARY KEY,
        value  TEXT NOT NULL,
        mac    BLOB NOT NULL
    );

    DROP TRIGGER audit_no_update;
    CREATE TRIGGER audit_no_update BEFORE UPDATE OF seq, ts_ms, event, subject, details, prev_hash, hash ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
    // 5: proxy tokens for `aivault serve`: only a hash of each token is
    // kept, with what it may call, in which context, until when; and the
    // grants of agents (other OS users) calling through aivaultd. Rows carry
    // MACs and both tables are sealed (a revoked token or grant must not
    // come back).
    r#"
    CREATE TABLE proxy_tokens (
        id             TEXT PRIMARY KEY,
        hash           TEXT NOT NULL UNIQUE,
        capabilities   TEXT NOT NULL,
        scope          TEXT NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id   TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        consumer       TEXT,
        created_at_ms  INTEGER NOT NULL,
        expires_at_ms  INTEGER,
        mac            BLOB
    );

    -- What an OS user other than the vault's owner may invoke through
    -- aivaultd, and in which context: one grant per user and capability.
    CREATE TABLE agent_grants (
        uid            INTEGER NOT NULL,
        user           TEXT NOT NULL,
        capability_id  TEXT NOT NULL,
        scope          TEXT NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id   TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        consumer       TEXT NOT NULL,
        created_at_ms  INTEGER NOT NULL,
        mac            BLOB,
        PRIMARY KEY (uid, capability_id)
    );
    "#,
    // 6: values a token refresh derived from a credential's secrets (an
    // OAuth2 access token), sealed like a secret's value and bound to the
    // credential, its kind and the secret versions they came from. No MAC:
    // the seal authenticates them, and an old row put back is only an
    // expired token, refreshed again.
    r#"
    CREATE TABLE derived_tokens (
        credential_id   TEXT NOT NULL,
        kind            TEXT NOT NULL,
        source          TEXT NOT NULL,
        ciphertext      BLOB NOT NULL,
        wrapped_dek     BLOB NOT NULL,
        refreshed_at_ms INTEGER NOT NULL,
        PRIMARY KEY (credential_id, kind)
    );
    "#,
    // 7: every call forgets the rate-limit entries older than a minute by
    // time alone; without this index that was a scan of the whole minute's
    // calls (tens of thousands under `serve`), every call.
    r#"
    CREATE INDEX invocations_by_time ON invocations (ts_ms);
    "#,
    // 8: nothing here. (On PostgreSQL the audit log's high-water mark
    // became a row written in the event's transaction; SQLite's
    // `sqlite_sequence` always was.) The numbering stays the same on both.
    r#"
    -- (nothing to do)
    "#,
    // 9: a number every committed write moves on, except the broker's own
    // audit records and rate counts: a long-running front-end keeps the
    // rows it checked while it stands still (`vault/config_cache.rs`). A
    // version older than this one refuses the database, so no writer
    // leaves it behind.
    r#"
    CREATE TABLE generation (
        only_row  INTEGER PRIMARY KEY CHECK (only_row = 1),
        value     INTEGER NOT NULL
    );
    "#,
    // 10: no index of the audit log by time. No query used it (`audit
    // --before` walks back from the newest event, which is what a page
    // newest-first needs), yet every event wrote a page of it: one of the
    // four pages a call's intent commits.
    r#"
    DROP INDEX IF EXISTS audit_by_time;
    "#,
];

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_every_version() {
        assert_eq!(super::MIGRATIONS.len(), super::POSTGRES_MIGRATIONS.len());
    }
}
