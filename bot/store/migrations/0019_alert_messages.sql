-- Where each batch's alerts message was posted, so a silence (or its end) updates it in
-- place: its Silence button hidden while the silence holds, shown again once it ended.
CREATE TABLE alert_messages (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    batch INTEGER NOT NULL,
    channel_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (incident_id, batch)
);
