-- What started an incident's escalation: 'declared' or 'reopened'. The page line says it
-- ("on declaration", "on reopening"); it was guessed from the anchor being the declaration
-- time, which a reopening at that same instant (or a state read before it) got wrong.
-- Rows written before: a reopening's escalation is the one anchored after the declaration.
ALTER TABLE escalations ADD COLUMN started_by TEXT NOT NULL DEFAULT 'declared';
UPDATE escalations SET started_by = 'reopened'
WHERE anchor_at > (SELECT declared_at FROM incidents WHERE incidents.id = escalations.incident_id);
