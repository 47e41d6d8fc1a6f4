-- Outbox order: each incident's effects are delivered one at a time, in the order queued.
-- `order_seq` is an effect's place in that order when it is not its own id: an effect queued
-- while another of the same incident was being delivered (a follow-up) takes its place.
ALTER TABLE outbox ADD COLUMN order_seq BIGINT;

-- The effects still to deliver, by incident: what the claim looks at before taking one.
CREATE INDEX outbox_undone ON outbox (incident_id, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
