-- Remediations behind approval: one row per request, moved under a row lock through
-- requested -> approved -> running -> succeeded | failed, or requested -> expired | denied;
-- a request found running after its executor died is closed as unknown (never re-run).

CREATE TABLE remediation_requests (
    id {autoid},
    action TEXT NOT NULL,
    service TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    risk TEXT NOT NULL,
    preview TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'requested',
    requested_by TEXT NOT NULL,
    requested_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    approvals_needed INTEGER NOT NULL DEFAULT 1,
    approvals TEXT NOT NULL DEFAULT '[]',
    decided_by TEXT,
    decided_at DOUBLE PRECISION,
    incident_id TEXT REFERENCES incidents (id),
    channel_id TEXT,
    message_ts TEXT,
    runner TEXT,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    outcome TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '{}',
    origin TEXT NOT NULL DEFAULT 'command',
    request_key TEXT UNIQUE,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX remediation_requests_status ON remediation_requests (status, expires_at);

-- Reminders may now concern something other than an incident (a request's expiry): their
-- `subject` names it, and such reminders have no incident.
-- dialect: postgres
ALTER TABLE reminders ALTER COLUMN incident_id DROP NOT NULL;
ALTER TABLE reminders ADD COLUMN subject TEXT;
-- dialect: sqlite
PRAGMA defer_foreign_keys = ON;
CREATE TABLE reminders_0008 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT REFERENCES incidents (id),
    plan INTEGER NOT NULL,
    kind TEXT NOT NULL,
    level INTEGER NOT NULL DEFAULT 0,
    due_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    notify TEXT NOT NULL DEFAULT '[]',
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    fired_at DOUBLE PRECISION,
    closed_at DOUBLE PRECISION,
    outcome TEXT NOT NULL DEFAULT '',
    subject TEXT
);
INSERT INTO reminders_0008 (id, incident_id, plan, kind, level, due_at, status, notify, reason,
    actor, created_at, claimed_by, claimed_until, attempts, fired_at, closed_at, outcome)
    SELECT id, incident_id, plan, kind, level, due_at, status, notify, reason, actor,
    created_at, claimed_by, claimed_until, attempts, fired_at, closed_at, outcome
    FROM reminders;
DROP TABLE reminders;
ALTER TABLE reminders_0008 RENAME TO reminders;
CREATE INDEX reminders_due ON reminders (status, due_at);
CREATE INDEX reminders_incident ON reminders (incident_id, status);
CREATE UNIQUE INDEX reminders_one_pending ON reminders (incident_id, kind, level)
    WHERE status = 'pending';
-- dialect: all
CREATE INDEX reminders_subject ON reminders (subject);
