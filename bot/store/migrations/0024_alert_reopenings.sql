-- The storm cap (bot.alerts.storm) counts the bot's reopenings within its window as it counts
-- its declarations: each pages. This partial index holds only the timeline's reopenings, so
-- that count reads the window's few rows, not the whole timeline, under the storm lock.
CREATE INDEX timeline_reopenings ON timeline (at) WHERE kind = 'reopened';
