//! The same schema for PostgreSQL, migration for migration: entry `i` here
//! does what entry `i` of [`super::MIGRATIONS`] does, so a version number
//! means one schema on both backends. Integers are `BIGINT` (SQLite's are
//! 64-bit), blobs `BYTEA`, and text compares byte by byte (`COLLATE "C"`)
//! as SQLite's does, whatever the server's locale. The number applied is
//! kept in `aivault_schema`.

pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE key_config (
        singleton      BIGINT PRIMARY KEY CHECK (singleton = 1),
        provider       TEXT COLLATE "C" NOT NULL CHECK (provider IN ('file', 'env', 'passphrase')),
        kek_id         TEXT COLLATE "C" NOT NULL,
        params         TEXT COLLATE "C" NOT NULL,
        key_check      BYTEA NOT NULL,
        created_at_ms  BIGINT NOT NULL,
        rotated_at_ms  BIGINT
    );

    CREATE TABLE secrets (
        id               TEXT COLLATE "C" PRIMARY KEY,
        name             TEXT COLLATE "C" NOT NULL,
        scope            TEXT COLLATE "C" NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id     TEXT COLLATE "C" NOT NULL,
        group_id         TEXT COLLATE "C" NOT NULL,
        pinned_provider  TEXT COLLATE "C",
        value_version    BIGINT NOT NULL,
        ciphertext       BYTEA NOT NULL,
        wrapped_dek      BYTEA NOT NULL,
        kek_id           TEXT COLLATE "C" NOT NULL,
        created_at_ms    BIGINT NOT NULL,
        updated_at_ms    BIGINT NOT NULL,
        UNIQUE (scope, workspace_id, group_id, name)
    );

    CREATE TABLE secret_aliases (
        secret_id     TEXT COLLATE "C" NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        alias         TEXT COLLATE "C" NOT NULL,
        scope         TEXT COLLATE "C" NOT NULL,
        workspace_id  TEXT COLLATE "C" NOT NULL,
        group_id      TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (secret_id, alias),
        UNIQUE (scope, workspace_id, group_id, alias)
    );

    CREATE TABLE group_attachments (
        secret_id      TEXT COLLATE "C" NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        workspace_id   TEXT COLLATE "C" NOT NULL,
        group_id       TEXT COLLATE "C" NOT NULL,
        created_at_ms  BIGINT NOT NULL,
        PRIMARY KEY (secret_id, workspace_id, group_id)
    );

    CREATE TABLE credentials (
        id                TEXT COLLATE "C" PRIMARY KEY,
        provider          TEXT COLLATE "C" NOT NULL,
        kind              TEXT COLLATE "C" NOT NULL,
        scope             TEXT COLLATE "C" NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id      TEXT COLLATE "C" NOT NULL,
        group_id          TEXT COLLATE "C" NOT NULL,
        host              TEXT COLLATE "C",
        auto_provisioned  BIGINT NOT NULL,
        created_at_ms     BIGINT NOT NULL
    );
    CREATE INDEX credentials_by_provider ON credentials (provider, kind, scope, workspace_id, group_id);

    CREATE TABLE credential_secrets (
        credential_id  TEXT COLLATE "C" NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        secret_name    TEXT COLLATE "C" NOT NULL,
        secret_id      TEXT COLLATE "C" NOT NULL REFERENCES secrets(id),
        PRIMARY KEY (credential_id, secret_name)
    );
    CREATE INDEX credential_secrets_by_secret ON credential_secrets (secret_id);

    CREATE TABLE credential_capabilities (
        credential_id  TEXT COLLATE "C" NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        capability_id  TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (credential_id, capability_id)
    );

    -- Sequence numbers are chosen by the writer (the chain's head + 1);
    -- this sequence remembers the highest ever written, as SQLite's
    -- AUTOINCREMENT does, so deleting the newest events shows (a row
    -- since migration 8).
    CREATE TABLE audit (
        seq        BIGINT PRIMARY KEY,
        ts_ms      BIGINT NOT NULL,
        event      TEXT COLLATE "C" NOT NULL,
        subject    TEXT COLLATE "C" NOT NULL,
        details    TEXT COLLATE "C" NOT NULL,
        prev_hash  TEXT COLLATE "C" NOT NULL,
        hash       TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (ts_ms);
    CREATE SEQUENCE audit_seq_seq;
    CREATE FUNCTION audit_high_water() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM setval('audit_seq_seq', GREATEST(NEW.seq, (SELECT last_value FROM audit_seq_seq)));
        RETURN NEW;
    END $$;
    CREATE TRIGGER audit_high_water AFTER INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_high_water();
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only';
    END $$;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    -- TRUNCATE skips row triggers; SQLite has no TRUNCATE to guard.
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
    "#,
    // 2: the broker: custom capabilities, policies, consumer bindings and
    // the invocation log rate limits count from.
    r#"
    CREATE TABLE custom_capabilities (
        id             TEXT COLLATE "C" PRIMARY KEY,
        credential_id  TEXT COLLATE "C" NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        description    TEXT COLLATE "C" NOT NULL,
        methods        TEXT COLLATE "C" NOT NULL,
        path_prefixes  TEXT COLLATE "C" NOT NULL,
        host           TEXT COLLATE "C",
        created_at_ms  BIGINT NOT NULL
    );

    CREATE TABLE capability_policies (
        capability_id            TEXT COLLATE "C" PRIMARY KEY,
        rate_limit_per_minute    BIGINT,
        max_request_body_bytes   BIGINT,
        max_response_body_bytes  BIGINT,
        response_block           TEXT COLLATE "C" NOT NULL,
        updated_at_ms            BIGINT NOT NULL
    );

    CREATE TABLE capability_bindings (
        capability_id  TEXT COLLATE "C" NOT NULL,
        consumer       TEXT COLLATE "C" NOT NULL,
        scope          TEXT COLLATE "C" NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id   TEXT COLLATE "C" NOT NULL,
        group_id       TEXT COLLATE "C" NOT NULL,
        created_at_ms  BIGINT NOT NULL,
        PRIMARY KEY (capability_id, consumer, scope, workspace_id, group_id)
    );

    CREATE TABLE invocations (
        capability_id  TEXT COLLATE "C" NOT NULL,
        ts_ms          BIGINT NOT NULL
    );
    CREATE INDEX invocations_by_capability ON invocations (capability_id, ts_ms);
    "#,
    // 3: operator approvals of dropped-in provider components.
    r#"
    CREATE TABLE provider_approvals (
        provider_id     TEXT COLLATE "C" PRIMARY KEY,
        file_name       TEXT COLLATE "C" NOT NULL,
        sha256          TEXT COLLATE "C" NOT NULL,
        manifest        TEXT COLLATE "C" NOT NULL,
        enabled         BIGINT NOT NULL,
        approved_at_ms  BIGINT NOT NULL
    );
    "#,
    // 4: row MACs, table seals, and an audit log whose MAC column alone may
    // change (master-key rotation re-keys it).
    r#"
    ALTER TABLE secrets ADD COLUMN mac BYTEA;
    ALTER TABLE credentials ADD COLUMN mac BYTEA;
    ALTER TABLE custom_capabilities ADD COLUMN mac BYTEA;
    ALTER TABLE capability_policies ADD COLUMN mac BYTEA;
    ALTER TABLE capability_bindings ADD COLUMN mac BYTEA;
    ALTER TABLE provider_approvals ADD COLUMN mac BYTEA;
    ALTER TABLE audit ADD COLUMN mac BYTEA;

    CREATE TABLE seals (
        name   TEXT COLLATE "C" PRIMARY KEY,
        value  TEXT COLLATE "C" NOT NULL,
        mac    BYTEA NOT NULL
    );

    DROP TRIGGER audit_no_update ON audit;
    CREATE TRIGGER audit_no_update BEFORE UPDATE OF seq, ts_ms, event, subject, details, prev_hash, hash ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    "#,
    // 5: proxy tokens for `aivault serve`, and the grants of agents.
    r#"
    CREATE TABLE proxy_tokens (
        id             TEXT COLLATE "C" PRIMARY KEY,
        hash           TEXT COLLATE "C" NOT NULL UNIQUE,
        capabilities   TEXT COLLATE "C" NOT NULL,
        scope          TEXT COLLATE "C" NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id   TEXT COLLATE "C" NOT NULL,
        group_id       TEXT COLLATE "C" NOT NULL,
        consumer       TEXT COLLATE "C",
        created_at_ms  BIGINT NOT NULL,
        expires_at_ms  BIGINT,
        mac            BYTEA
    );

    CREATE TABLE agent_grants (
        uid            BIGINT NOT NULL,
        "user"         TEXT COLLATE "C" NOT NULL,
        capability_id  TEXT COLLATE "C" NOT NULL,
        scope          TEXT COLLATE "C" NOT NULL CHECK (scope IN ('global', 'workspace', 'group')),
        workspace_id   TEXT COLLATE "C" NOT NULL,
        group_id       TEXT COLLATE "C" NOT NULL,
        consumer       TEXT COLLATE "C" NOT NULL,
        created_at_ms  BIGINT NOT NULL,
        mac            BYTEA,
        PRIMARY KEY (uid, capability_id)
    );
    "#,
    // 6: values a token refresh derived from a credential's secrets.
    r#"
    CREATE TABLE derived_tokens (
        credential_id   TEXT COLLATE "C" NOT NULL,
        kind            TEXT COLLATE "C" NOT NULL,
        source          TEXT COLLATE "C" NOT NULL,
        ciphertext      BYTEA NOT NULL,
        wrapped_dek     BYTEA NOT NULL,
        refreshed_at_ms BIGINT NOT NULL,
        PRIMARY KEY (credential_id, kind)
    );
    "#,
    // 7: rate-limit entries are forgotten by time alone.
    r#"
    CREATE INDEX invocations_by_time ON invocations (ts_ms);
    "#,
    // 8: the audit log's high-water mark is a row, written in the event's
    // own transaction. A sequence's setval is not transactional: a write
    // rolled back after its event was inserted (a broker killed mid-call,
    // a lost connection) left the mark past the last event, which `audit
    // verify` then reported as events deleted. The sequence's value is
    // kept, so a truncation it recorded stays visible.
    r#"
    CREATE TABLE audit_high_water (
        only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        seq      BIGINT NOT NULL
    );
    INSERT INTO audit_high_water (seq) SELECT GREATEST(
        COALESCE((SELECT MAX(seq) FROM audit), 0),
        COALESCE((SELECT last_value FROM pg_sequences
                  WHERE schemaname = current_schema() AND sequencename = 'audit_seq_seq'), 0)
    );
    CREATE OR REPLACE FUNCTION audit_high_water() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE audit_high_water SET seq = GREATEST(seq, NEW.seq);
        RETURN NEW;
    END $$;
    DROP SEQUENCE audit_seq_seq;
    "#,
    // 9: the number every write but the broker's own records moves on.
    r#"
    CREATE TABLE generation (
        only_row  BIGINT PRIMARY KEY CHECK (only_row = 1),
        value     BIGINT NOT NULL
    );
    "#,
    // 10: no index of the audit log by time, which only cost every event's
    // insert (see the SQLite schema's note).
    r#"
    DROP INDEX IF EXISTS audit_by_time;
    "#,
];
