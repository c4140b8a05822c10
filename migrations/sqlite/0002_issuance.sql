-- certgate as its own CA: the internal CA row, agent profiles, and one-time enrolment tokens.
ALTER TABLE cas ADD COLUMN internal BOOLEAN NOT NULL DEFAULT FALSE;
-- At most one live internal CA: replicas that race to register it agree on one.
CREATE UNIQUE INDEX cas_live_internal ON cas (internal) WHERE internal AND removed_at IS NULL;

ALTER TABLE agents ADD COLUMN profile TEXT NOT NULL DEFAULT 'agent';

-- One row per agent that may (re-)enrol with a token. The token itself is never stored,
-- only its SHA-256; a used row keeps used_at so a second use is told apart from a typo.
CREATE TABLE enrollments (
    agent_id    TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL,
    description TEXT,
    tags        TEXT NOT NULL,
    allowed_ips TEXT NOT NULL,
    profile     TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE UNIQUE INDEX enrollments_token_hash ON enrollments (token_hash);

-- Certificates an agent no longer uses. One it renewed away from keeps verifying until
-- not_after (its own expiry or the end of the renewal grace window, whichever comes first);
-- one replaced by a re-enrolment is revoked. Rows stay, so these certificates are denied
-- for what they are (expired or revoked), never mistaken for unknown ones.
CREATE TABLE superseded_certificates (
    fingerprint      TEXT PRIMARY KEY,
    fingerprint_sha1 TEXT NOT NULL,
    agent_id         TEXT NOT NULL REFERENCES agents (id),
    ca_id            TEXT NOT NULL REFERENCES cas (id),
    serial           TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    superseded_at    BIGINT NOT NULL,
    revoked          BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX superseded_certificates_agent ON superseded_certificates (agent_id);

-- Hosts asking to be enrolled (no credential yet): an administrator approves or denies each.
-- The host polls with its token, stored only as SHA-256; it proves nothing but patience,
-- so the request carries the host's signing request and certgate never sees its key.
CREATE TABLE enrollment_requests (
    id          TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL,
    machine_id  TEXT NOT NULL,
    ip_address  TEXT NOT NULL,
    os_details  TEXT NOT NULL,
    csr_pem     TEXT NOT NULL,
    key_sha256  TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    status      TEXT NOT NULL,
    agent_id    TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_at  BIGINT
);
CREATE UNIQUE INDEX enrollment_requests_token_hash ON enrollment_requests (token_hash);
CREATE INDEX enrollment_requests_status ON enrollment_requests (status, created_at);

-- The latest CRL uploaded for an external CA, with its serials (uppercase hex, as agents
-- store theirs) as a JSON list, so verify can deny them without parsing the CRL again.
CREATE TABLE crls (
    ca_id       TEXT PRIMARY KEY REFERENCES cas (id),
    crl_pem     TEXT NOT NULL,
    serials     TEXT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT,
    updated_at  BIGINT NOT NULL
);
