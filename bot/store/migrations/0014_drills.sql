-- Drills and catch-ups.
-- Portable SQL (SQLite and PostgreSQL); one column per ALTER, as SQLite requires.

-- A drill is an incident with this flag: the same machinery, marked DRILL wherever it shows,
-- left out of statistics and the App Home, listed apart. Its scenario is its title.
ALTER TABLE incidents ADD COLUMN drill BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX incidents_drill ON incidents (drill, status);

-- Who has been given the catch-up on joining an incident's war room: once per person and
-- incident, however often Slack redelivers the event or they leave and join again.
CREATE TABLE catchup_sent (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    user_id TEXT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (incident_id, user_id)
);
