-- The audit trail: who changed what, written in the transaction of the change. Never
-- pruned by certgate; details hold no secret, token, key or certificate.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    request_id  TEXT,
    source_ip   TEXT,
    details     TEXT NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_target ON audit_events (target_id, id);
CREATE INDEX audit_events_at ON audit_events (at);
