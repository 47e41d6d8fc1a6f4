-- A status update withdrawn from the status page (`/incident unpublish ... update N`): it
-- stays off the page, and a later `/incident publish` of its incident does not put it back.
ALTER TABLE timeline ADD COLUMN withdrawn_at DOUBLE PRECISION;
