-- The reminder engine (bot/reminders/): a kind's own reference lives in `subject`.
-- Portable SQL (SQLite and PostgreSQL).

-- An action item's reminder named the item in `level`; it is now its subject
-- ("action_item:<id>", level 0). One live reminder per incident, kind, level and subject
-- (NULL subjects count as one), so still one pending per item and per escalation level.
DROP INDEX reminders_one_pending;
UPDATE reminders SET subject = 'action_item:' || CAST(level AS TEXT), level = 0
    WHERE kind = 'action_item';
CREATE UNIQUE INDEX reminders_one_pending
    ON reminders (incident_id, kind, level, COALESCE(subject, ''))
    WHERE status = 'pending';
