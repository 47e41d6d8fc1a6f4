-- An alert taken from a post that left part of its group out (Alertmanager's or Grafana's
-- max_alerts, or past the bot's 2,000 a post): a resolution among those left out is never
-- sent again, so its incident's card says the firing count may include alerts that have
-- cleared (README "Alerts in"). Rows recorded before: none known, 0.
ALTER TABLE alerts ADD COLUMN cut_short INTEGER NOT NULL DEFAULT 0;
