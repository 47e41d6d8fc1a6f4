-- Foundation: incidents, timeline, audit log with its chain head, request de-duplication,
-- and the outbox of notifications still to deliver.
-- Portable SQL; {autoid} becomes the dialect's auto-increment primary key.

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    seq INTEGER NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    impact TEXT NOT NULL DEFAULT '',
    services TEXT NOT NULL DEFAULT '[]',
    declared_by TEXT NOT NULL,
    declared_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    acknowledged_at DOUBLE PRECISION,
    acknowledged_by TEXT,
    resolved_at DOUBLE PRECISION,
    resolved_by TEXT,
    resolution TEXT NOT NULL DEFAULT '',
    eta TEXT NOT NULL DEFAULT '',
    current_status TEXT NOT NULL DEFAULT '',
    roles TEXT NOT NULL DEFAULT '{}',
    channel_id TEXT,
    summary_ts TEXT,
    announce_ts TEXT,
    next_update_due DOUBLE PRECISION,
    version INTEGER NOT NULL DEFAULT 1,
    UNIQUE (day, seq)
);
CREATE INDEX incidents_status ON incidents (status);
CREATE INDEX incidents_channel ON incidents (channel_id);

-- One row per day: the last sequence number handed out (INC-YYYYMMDD-NNN).
CREATE TABLE incident_counters (
    day TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);

CREATE TABLE timeline (
    id {autoid},
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_incident ON timeline (incident_id, at);

-- Append-only, hash-chained. audit_head holds the last link so a deleted tail shows.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    args TEXT NOT NULL,
    outcome TEXT NOT NULL,
    incident_id TEXT,
    request_id TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_incident ON audit_log (incident_id);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- Slack requests already handled (retries and redeliveries change nothing twice).
CREATE TABLE handled_requests (
    request_id TEXT PRIMARY KEY,
    handled_at DOUBLE PRECISION NOT NULL
);

-- Notifications accepted but not yet delivered; survives Slack outages and restarts.
CREATE TABLE outbox (
    id {autoid},
    kind TEXT NOT NULL,
    incident_id TEXT,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    available_at DOUBLE PRECISION NOT NULL,
    claimed_until DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at DOUBLE PRECISION,
    failed_at DOUBLE PRECISION,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, failed_at, available_at);
