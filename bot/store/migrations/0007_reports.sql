-- After the incident: the post-incident record, action items, the targets each incident was
-- held to (for breach statistics), who looks at the App Home, and a text-search index of
-- past incidents. Portable SQL, except the search index: each store uses its own engine.

-- What the postmortem form recorded (one row per incident, rewritten on every save).
-- started_at: when the impact began; detected_at: when it was first detected (MTTD).
CREATE TABLE postmortems (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    root_cause TEXT NOT NULL DEFAULT '',
    resolution TEXT NOT NULL DEFAULT '',
    prevention TEXT NOT NULL DEFAULT '',
    lessons TEXT NOT NULL DEFAULT '',
    affected_users TEXT NOT NULL DEFAULT '',
    data_impact TEXT NOT NULL DEFAULT '',
    started_at DOUBLE PRECISION,
    detected_at DOUBLE PRECISION,
    updated_by TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- Follow-ups. Open while closed_at is NULL; reminders live in the escalation engine's
-- reminders table (kind 'action_item', level = the item's id).
CREATE TABLE action_items (
    id {autoid},
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    text TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION,
    closed_by TEXT
);
CREATE INDEX action_items_incident ON action_items (incident_id);
CREATE INDEX action_items_owner ON action_items (owner, closed_at);

-- The acknowledgement and resolution deadlines an incident was held to, computed with the
-- policy's calendar at declaration (business days included) and again on a severity change.
CREATE TABLE incident_targets (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    ack_due_at DOUBLE PRECISION NOT NULL,
    resolve_due_at DOUBLE PRECISION NOT NULL
);

-- People who opened the App Home: their view is refreshed when what it shows changes.
CREATE TABLE home_viewers (
    user_id TEXT PRIMARY KEY,
    opened_at DOUBLE PRECISION NOT NULL
);

-- Similar past incidents: title, services and timeline text, indexed by each store's engine.
-- dialect: sqlite
CREATE VIRTUAL TABLE incident_search USING fts5 (
    incident_id UNINDEXED, title, services, body, tokenize = 'porter unicode61'
);
-- dialect: postgres
CREATE TABLE incident_search (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    title TEXT NOT NULL,
    services TEXT NOT NULL,
    body TEXT NOT NULL,
    document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', services), 'B')
        || setweight(to_tsvector('english', body), 'C')
    ) STORED
);
CREATE INDEX incident_search_document ON incident_search USING GIN (document)
