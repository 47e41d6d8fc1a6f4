-- Automatic recovery (`auto_recovery:` in the catalog). One row per watched service: when it
-- is next checked, which process holds the check now (claimed_by until claimed_until, so one
-- process checks it however many run), and what the bot remembers of each deployment between
-- checks (JSON). Each restart the bot made is a row of its own: the window counts them, so a
-- restart of the bot forgets nothing.

CREATE TABLE auto_recovery_checks (
    service TEXT PRIMARY KEY,
    next_check_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    memory TEXT NOT NULL DEFAULT '{}',
    checked_at DOUBLE PRECISION,
    last_result TEXT NOT NULL DEFAULT ''
);

CREATE TABLE auto_recovery_restarts (
    id {autoid},
    service TEXT NOT NULL,
    deployment TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    incident_id TEXT REFERENCES incidents (id),
    status TEXT NOT NULL DEFAULT 'started',
    outcome TEXT NOT NULL DEFAULT '',
    finished_at DOUBLE PRECISION
);
CREATE INDEX auto_recovery_restarts_window ON auto_recovery_restarts (service, deployment, at);
