-- Lifecycle: ETAs as times, war-room topic tracking, timeline entries copied from Slack.
-- Portable SQL (SQLite and PostgreSQL); one column per ALTER, as SQLite requires.

-- The ETA of the latest update as a time (`eta` keeps the words it was given in).
ALTER TABLE incidents ADD COLUMN eta_at DOUBLE PRECISION;

-- What the war room's topic was last set from (severity|status|commander), so the topic is
-- only set again when it changes: every topic change posts a line in the channel.
ALTER TABLE incidents ADD COLUMN topic_key TEXT;

-- Where a timeline entry came from when it copies something (a Slack message
-- `slack:<channel>:<ts>`): at most one entry per source and incident.
ALTER TABLE timeline ADD COLUMN source TEXT;
CREATE UNIQUE INDEX timeline_source ON timeline (incident_id, source);
