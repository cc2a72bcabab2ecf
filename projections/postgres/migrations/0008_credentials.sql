-- What the log says of an account's credentials (never a hash: those are in
-- the credential store, see pgcreds): its token version, which a password
-- change moves on (an access token issued at another version is void), and
-- its API keys, oldest first, as JSON: [{"id","name","createdAt"}].
ALTER TABLE accounts ADD COLUMN token_version integer NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN api_keys jsonb NOT NULL DEFAULT '[]';
