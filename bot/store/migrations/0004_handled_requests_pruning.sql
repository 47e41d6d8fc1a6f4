-- Handled Slack requests are forgotten after a retention window (bot/dedup.py): find the
-- old ones by time.
CREATE INDEX handled_requests_at ON handled_requests (handled_at);
