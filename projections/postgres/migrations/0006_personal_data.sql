-- Personal data out of the log: an account's email is sealed with a data key
-- of its own (kept in data_keys, outside the log), so the read model keeps
-- the sealed form (sealed_email). email keeps the plain address only for an
-- account registered before emails were sealed and not migrated yet (the
-- start migrates them); both are emptied when the account is forgotten.
ALTER TABLE accounts ADD COLUMN sealed_email text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN forgotten boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN accounts.email IS 'Plain email of an account registered before emails were sealed and not migrated yet; empty otherwise.';
COMMENT ON COLUMN accounts.sealed_email IS 'The email sealed with the account''s data key (data_keys): readable by the API only while the key exists.';

-- The key store of the scale-out topology. NOT read models: a rebuild keeps
-- them (keptTables), so they are created only if missing. One row per
-- account that has (or had) a data key: wrapped is the key, wrapped with a
-- key derived from --secrets-key; NULL once the account is forgotten (the
-- row stays, so that no key is created for it again).
CREATE TABLE IF NOT EXISTS data_keys (
    account_id   text COLLATE "C" PRIMARY KEY,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    forgotten_at timestamptz
);
COMMENT ON TABLE data_keys IS 'Per-account data keys sealing personal data in the log. Deleting a key (forgetting) makes that data unreadable in every copy of the log.';

-- The login index: an HMAC-SHA256 (keyed by --secrets-key) of the normalised
-- email, never the email, to the account it names.
CREATE TABLE IF NOT EXISTS email_index (
    lookup     bytea PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS email_index_account ON email_index (account_id);
COMMENT ON TABLE email_index IS 'Login lookup: keyed hash of the normalised email -> account id. Entries of a forgotten account are deleted.';
