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
