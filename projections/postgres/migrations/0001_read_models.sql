-- The read models of CryptoVPS, projected from the event log. Nothing here is
-- the source of truth: `cryptovps projections rebuild` drops every table and
-- refills it from the log. Identifiers use the "C" collation so that ordering
-- is by bytes, the same order the in-memory read model gives.
--
-- Times are timestamptz (microseconds). The log keeps nanoseconds, so the
-- columns ending in _ns hold the nanoseconds below the microsecond (0-999):
-- the API's answers, and whether a backup has expired at a given instant, are
-- then exactly what the in-memory model says. People can ignore them.
--
-- log_commit / log_prepare are global positions in the event log (KurrentDB's
-- commit and prepare positions; the embedded store uses its sequence number
-- for both). On an entity row they say where it was created, which orders
-- lists oldest first.

CREATE TABLE accounts (
    id             text COLLATE "C" PRIMARY KEY,
    email          text NOT NULL DEFAULT '',
    registered     boolean NOT NULL DEFAULT false,
    suspended      boolean NOT NULL DEFAULT false,
    suspend_reason text NOT NULL DEFAULT '',
    server_limit   integer NOT NULL DEFAULT 0,
    balance        numeric NOT NULL DEFAULT 0,
    last_hash      text NOT NULL DEFAULT '',
    created_at     timestamptz,
    created_at_ns  integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE accounts IS 'Customer accounts. balance equals SELECT sum(amount) FROM postings WHERE account = ''customer:'' || id.';
COMMENT ON COLUMN accounts.last_hash IS 'Hash of the account''s last ledger transaction: the head of its hash chain.';

CREATE TABLE servers (
    account_id    text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    label         text NOT NULL,
    plan          text NOT NULL,
    region        text NOT NULL,
    hourly_price  numeric NOT NULL,
    ssh_keys      text[] NOT NULL DEFAULT '{}',
    backup_id     text NOT NULL DEFAULT '',
    status        text NOT NULL,
    ipv4          text NOT NULL DEFAULT '',
    instance_id   text NOT NULL DEFAULT '',
    attempts      integer NOT NULL DEFAULT 0,
    activated     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    created_at_ns integer NOT NULL DEFAULT 0,
    suspended_at  timestamptz,
    destroyed_at  timestamptz,
    log_commit    bigint NOT NULL,
    log_prepare   bigint NOT NULL,
    PRIMARY KEY (account_id, id)
);
COMMENT ON COLUMN servers.ssh_keys IS 'SHA256 fingerprints of the SSH keys installed at deploy.';
COMMENT ON COLUMN servers.ipv4 IS 'Last address the provider gave; the API shows it only while ACTIVE.';
-- Background work looks for accounts with a server not yet DESTROYED or ERROR.
CREATE INDEX servers_live ON servers (account_id) WHERE status NOT IN ('DESTROYED', 'ERROR');

CREATE TABLE topups (
    account_id    text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    amount        numeric NOT NULL,
    currency      text NOT NULL,
    pay_address   text NOT NULL,
    provider_ref  text NOT NULL,
    status        text NOT NULL,
    created_at    timestamptz NOT NULL,
    created_at_ns integer NOT NULL DEFAULT 0,
    paid_at       timestamptz,
    paid_at_ns    integer NOT NULL DEFAULT 0,
    log_commit    bigint NOT NULL,
    log_prepare   bigint NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE backups (
    id            text COLLATE "C" PRIMARY KEY,
    account_id    text COLLATE "C" NOT NULL DEFAULT '',
    server_id     text NOT NULL DEFAULT '',
    instance_id   text NOT NULL DEFAULT '',
    label         text NOT NULL DEFAULT '',
    plan          text NOT NULL DEFAULT '',
    region        text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT '',
    snapshot_id   text NOT NULL DEFAULT '',
    restores      text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz,
    created_at_ns integer NOT NULL DEFAULT 0,
    expires_at    timestamptz,
    expires_at_ns integer NOT NULL DEFAULT 0,
    log_commit    bigint,
    log_prepare   bigint
);
COMMENT ON COLUMN backups.restores IS 'Servers deployed from this backup, in order.';
CREATE INDEX backups_by_account ON backups (account_id, log_commit, log_prepare);
CREATE INDEX backups_open ON backups (id) WHERE status IN ('PENDING', 'AVAILABLE', 'ERROR');

-- One row per LedgerPosted event: a balanced double-entry transaction.
CREATE TABLE ledger_transactions (
    log_commit  bigint NOT NULL,
    log_prepare bigint NOT NULL,
    tx_id       text NOT NULL,
    kind        text NOT NULL,
    account_id  text COLLATE "C" NOT NULL,
    server_id   text,
    hour_from   timestamptz,
    hour_to     timestamptz,
    topup_id    text,
    created_at  timestamptz NOT NULL,
    -- The nanoseconds below the microsecond, as in the tables above: the
    -- account's ledger history (GET /billing/ledger) shows exact times.
    created_at_ns  integer NOT NULL DEFAULT 0,
    hour_from_ns   integer NOT NULL DEFAULT 0,
    hour_to_ns     integer NOT NULL DEFAULT 0,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    PRIMARY KEY (log_commit, log_prepare)
);
COMMENT ON TABLE ledger_transactions IS 'Ledger transactions, one per LedgerPosted event. tx_id is deterministic (the same hour of the same server always has the same id), so it is deliberately not unique: a doubled charge would show as two rows.';
CREATE INDEX ledger_transactions_tx_id ON ledger_transactions (tx_id);
CREATE INDEX ledger_transactions_account ON ledger_transactions (account_id, log_commit, log_prepare);

-- One row per posting: sum(amount) over an account is its balance, and over
-- one transaction it is zero.
CREATE TABLE postings (
    log_commit  bigint NOT NULL,
    log_prepare bigint NOT NULL,
    n           smallint NOT NULL,
    tx_id       text NOT NULL,
    kind        text NOT NULL,
    account     text COLLATE "C" NOT NULL,
    amount      numeric NOT NULL,
    server_id   text,
    hour_from   timestamptz,
    hour_to     timestamptz,
    topup_id    text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (log_commit, log_prepare, n)
);
COMMENT ON TABLE postings IS 'Ledger postings. Balance of a customer: SELECT sum(amount) FROM postings WHERE account = ''customer:<account id>''. Other accounts: promo:signup, crypto:deposits, revenue:compute.';
COMMENT ON COLUMN postings.n IS 'Index of the posting within its transaction.';
CREATE INDEX postings_account ON postings (account);

-- How far each projection has applied the log. Rows and checkpoint move in
-- the same transaction, so the tables always hold exactly the events up to
-- the checkpoint.
CREATE TABLE projection_checkpoints (
    name        text PRIMARY KEY,
    log_commit  bigint NOT NULL DEFAULT 0,
    log_prepare bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoints (name) VALUES ('read_models');
