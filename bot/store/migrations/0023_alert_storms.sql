-- An alert storm's incident (bot.alerts.storm): the one incident that services whose alerts
-- would open more than `alerts.storm.max_incidents` within its window are folded into.
-- Marked here so it is found (and its folded services told apart) with one indexed read.
ALTER TABLE alert_incidents ADD COLUMN storm INTEGER NOT NULL DEFAULT 0;
