-- Escalation: the reminders planned from the severity and escalation matrices, the one
-- active escalation plan per incident, and who each page was sent to.
-- The store is the source of truth; the in-memory scheduler only triggers what is here.

-- One row per incident: the active plan (a reminder of an older plan is stale), what its
-- delays count from, the highest level paged, and the breaches recorded.
CREATE TABLE escalations (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    plan INTEGER NOT NULL,
    severity TEXT NOT NULL,
    anchor_at DOUBLE PRECISION NOT NULL,
    level INTEGER NOT NULL DEFAULT 0,
    ack_breached_at DOUBLE PRECISION,
    resolve_breached_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);

-- status: pending -> firing (claimed by one process until claimed_until) -> fired | skipped;
-- pending or firing -> cancelled by a change. `actor` is set for a page made by hand.
CREATE TABLE reminders (
    id {autoid},
    incident_id TEXT NOT NULL REFERENCES incidents (id),
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
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reminders_due ON reminders (status, due_at);
CREATE INDEX reminders_incident ON reminders (incident_id, status);
-- Never two live reminders of one kind and level for an incident.
CREATE UNIQUE INDEX reminders_one_pending ON reminders (incident_id, kind, level)
    WHERE status = 'pending';

-- Each person a page was sent to by direct message (user groups expanded), once per page.
CREATE TABLE page_recipients (
    reminder_id BIGINT NOT NULL REFERENCES reminders (id),
    user_id TEXT NOT NULL,
    queued_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (reminder_id, user_id)
);
