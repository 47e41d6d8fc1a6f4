-- The storm cap (bot.alerts.storm) counts, under its lock, the incidents the bot declared on
-- alerts within its window, and every batch of a storm asks. With no index on who declared
-- an incident and when, that count read the whole incidents table (every incident ever
-- declared) while each service's decision waited on the lock; this one reads the window's.
CREATE INDEX incidents_declared ON incidents (declared_by, declared_at);
