-- Each person a page's DM could never reach (deactivated, not in the workspace...), once per
-- page: when every person a level names is here, the next level is paged at once.
CREATE TABLE page_unreached (
    reminder_id BIGINT NOT NULL REFERENCES reminders (id),
    user_id TEXT NOT NULL,
    code TEXT NOT NULL,
    failed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (reminder_id, user_id)
);
