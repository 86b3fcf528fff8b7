-- Remotely managed tunnels (cloudflared's config_src): `local` tunnels take their ingress
-- rules from the connector's config.yml; `remote` ones from the configuration stored here,
-- which the API edits and the edge pushes to connectors. A local tunnel's connector
-- reports its rules into the same columns, so they can be shown read-only.
ALTER TABLE tunnels ADD COLUMN config_src TEXT NOT NULL DEFAULT 'local';
-- Rises with every change. Incrementing it is also the first write of a change, which
-- serialises concurrent changes of one tunnel on both backends.
ALTER TABLE tunnels ADD COLUMN config_version BIGINT NOT NULL DEFAULT 0;
-- JSON: {"ingress":[...],"originRequest":{...}}; NULL while there is none.
ALTER TABLE tunnels ADD COLUMN config_json TEXT;
ALTER TABLE tunnels ADD COLUMN config_updated_at BIGINT;
