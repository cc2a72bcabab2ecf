-- Why a deploy failed (the provider's refusal, or the worker's reason), shown
-- to the owner as the server's "error".
ALTER TABLE servers ADD COLUMN error text NOT NULL DEFAULT '';
-- Until when the owner can be shown the root password the provider set
-- (once; NULL when there is none to show). The password itself is not here:
-- it is sealed in the event log.
ALTER TABLE servers ADD COLUMN root_password_until timestamptz;
