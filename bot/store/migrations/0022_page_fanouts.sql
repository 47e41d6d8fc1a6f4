-- A page's fan-out that read every user group it names (and asked the paging services who is
-- on call) and queued its last DMs: from then on page_recipients holds everyone the page was
-- sent to by DM (the people named and the groups' members, each once), so the last refusal
-- can tell that every one of them was refused (bot.escalation.unreached). page_unreached
-- also holds a paging service (by its policy name) that refused a level's page for good.
CREATE TABLE page_fanouts (
    reminder_id BIGINT NOT NULL PRIMARY KEY REFERENCES reminders (id),
    finished_at DOUBLE PRECISION NOT NULL
);
