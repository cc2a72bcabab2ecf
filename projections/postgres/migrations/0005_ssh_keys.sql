-- The SSH keys stored on an account, oldest first, as JSON:
-- [{"id","name","key":{"fingerprint","key"},"createdAt"}].
ALTER TABLE accounts ADD COLUMN ssh_keys jsonb NOT NULL DEFAULT '[]';
