-- last_seen is the one thing verify traffic writes, for every agent seen within a flush
-- interval. In the agents table, whose rows carry the certificate, a flush for a busy fleet
-- rewrote nearly every page of the table; in a narrow table of its own it rewrites a few.
CREATE TABLE agent_sightings (
    agent_id     TEXT PRIMARY KEY REFERENCES agents (id),
    last_seen_at BIGINT NOT NULL,
    last_seen_ip TEXT
);
INSERT INTO agent_sightings (agent_id, last_seen_at, last_seen_ip)
    SELECT id, last_seen_at, last_seen_ip FROM agents WHERE last_seen_at IS NOT NULL;
ALTER TABLE agents DROP COLUMN last_seen_at;
ALTER TABLE agents DROP COLUMN last_seen_ip;
