-- The SSH host key fingerprints of a server's instance ("SHA256:..."), as
-- the provider told them when it first ran; empty when it did not tell.
ALTER TABLE servers ADD COLUMN host_keys text[] NOT NULL DEFAULT '{}';
