-- The public status page (bot.status): nothing is public until a person publishes it.
-- Portable SQL (SQLite and PostgreSQL); one column per ALTER, as SQLite requires.

-- An incident shown on the status page: when it was published and by whom (NULL: internal).
ALTER TABLE incidents ADD COLUMN public_at DOUBLE PRECISION;
ALTER TABLE incidents ADD COLUMN public_by TEXT;
CREATE INDEX incidents_public ON incidents (public_at);

-- A status update (a timeline entry of kind updated or resolved) shown on the page: its
-- words as typed, never the rest of the timeline (notes, roles, diagnoses, remediations).
ALTER TABLE timeline ADD COLUMN public_at DOUBLE PRECISION;
ALTER TABLE timeline ADD COLUMN public_by TEXT;

-- Bumped in the transaction of every change to a public fact: each process rebuilds its
-- cached page when it sees a new number, and reads nothing else between changes.
CREATE TABLE status_page_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO status_page_version (id, version) VALUES (1, 0);
