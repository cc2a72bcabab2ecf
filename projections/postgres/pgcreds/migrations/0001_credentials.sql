-- The credential store of the scale-out topology: the one copy of every
-- password hash and API-key hash, shared by every API process. Unlike the
-- read models this is a source of truth: `cryptovps projections rebuild`
-- never drops it, and nothing in the event log can rebuild it.

-- A hash is stored under a ref of its own before the log names it
-- (AccountRegistered / PasswordChanged credentialRef); the log says which is
-- the account's. Accounts registered by older builds have theirs under
-- their own id.
CREATE TABLE credential_passwords (
    ref        text COLLATE "C" PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE credential_passwords IS 'Password hashes (argon2id, PHC string), each under the ref the event log names.';
CREATE INDEX credential_passwords_account ON credential_passwords (account_id);

-- An erased account: no hash found in an old event log is ever moved back.
CREATE TABLE credential_erased (
    account_id text COLLATE "C" PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credential_api_keys (
    account_id   text COLLATE "C" NOT NULL,
    key_id       text COLLATE "C" NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    sealed       text NOT NULL DEFAULT '',
    sealed_until timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key_id)
);
COMMENT ON COLUMN credential_api_keys.key_hash IS 'SHA-256 of the key; the key itself is never stored.';
COMMENT ON COLUMN credential_api_keys.sealed IS 'The key sealed with the secrets key, kept until sealed_until (24 h) for idempotent retries of its creation only.';

CREATE TABLE credential_meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);
COMMENT ON TABLE credential_meta IS 'imported: the log position up to which hashes older builds wrote into the log were moved here.';
