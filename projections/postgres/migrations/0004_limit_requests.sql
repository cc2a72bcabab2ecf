-- An account's requests for a higher server limit, oldest first, as JSON:
-- [{"id","serverLimit","reason","status","note","createdAt","decidedAt"}].
ALTER TABLE accounts ADD COLUMN limit_requests jsonb NOT NULL DEFAULT '[]';
CREATE INDEX accounts_pending_limit_requests ON accounts USING gin (limit_requests jsonb_path_ops);
