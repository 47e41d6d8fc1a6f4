-- Paging services (PagerDuty, Opsgenie) paged for an incident: one row per incident and
-- provider. `state` is what the bot last asked of it: paged | acknowledged | resolved
-- (the calls themselves go through the outbox); `outage_since` is set while the provider cannot be reached and its outage was
-- told in the incident channel (told once, cleared when a call goes through).

CREATE TABLE paging_alerts (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    provider TEXT NOT NULL,
    state TEXT NOT NULL,
    level INTEGER NOT NULL DEFAULT 1,
    outage_since DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (incident_id, provider)
);
