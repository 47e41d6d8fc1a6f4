-- Whom the first level paged at declaration when the announcement carried that page (an
-- incident without a war room): the card shows it until someone acknowledges. A JSON list.
ALTER TABLE incidents ADD COLUMN announced_page TEXT NOT NULL DEFAULT '[]';
