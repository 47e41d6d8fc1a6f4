-- The outbox's order key is a lane, not always an incident: an incident's id, or the id and a
-- part of its work that keeps its own order (`INC-.../pagerduty`). Both stores rename a column
-- in place (SQLite since 3.25) and carry the `outbox_undone` index over to the new name.
ALTER TABLE outbox RENAME COLUMN incident_id TO lane;
