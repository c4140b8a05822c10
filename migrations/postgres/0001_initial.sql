-- Timestamps: *_at columns are unix microseconds; not_before/not_after are unix seconds.
CREATE TABLE cas (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    subject         TEXT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    certificate_pem TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    removed_at      BIGINT
);
-- The same CA may be uploaded again after a delete: it becomes a new CA.
CREATE UNIQUE INDEX cas_live_fingerprint ON cas (fingerprint) WHERE removed_at IS NULL;

CREATE TABLE agents (
    id               TEXT PRIMARY KEY,
    hostname         TEXT NOT NULL,
    description      TEXT,
    tags             TEXT NOT NULL,
    ca_id            TEXT NOT NULL REFERENCES cas (id),
    fingerprint      TEXT NOT NULL,
    fingerprint_sha1 TEXT NOT NULL,
    subject          TEXT NOT NULL,
    serial           TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    certificate_pem  TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    allowed_ips      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    revoked_at       BIGINT,
    ca_removed_at    BIGINT,
    last_seen_at     BIGINT,
    last_seen_ip     TEXT,
    version          BIGINT NOT NULL
);
-- One live agent per certificate; rows whose CA was removed stay for audit.
CREATE UNIQUE INDEX agents_live_fingerprint ON agents (fingerprint) WHERE ca_removed_at IS NULL;
CREATE INDEX agents_fingerprint_sha1 ON agents (fingerprint_sha1);
CREATE INDEX agents_ca_id ON agents (ca_id);
CREATE INDEX agents_created_at ON agents (created_at);

CREATE TABLE policy (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    enforcement_enabled  BOOLEAN NOT NULL,
    reject_unknown_certs BOOLEAN NOT NULL,
    auto_enroll          BOOLEAN NOT NULL,
    updated_at           BIGINT NOT NULL
);
INSERT INTO policy VALUES (1, TRUE, TRUE, FALSE, CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT));

-- Every write appends here in its transaction; replicas follow it to stay coherent.
CREATE TABLE changes (
    seq       BIGSERIAL PRIMARY KEY,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    at        BIGINT NOT NULL
);
