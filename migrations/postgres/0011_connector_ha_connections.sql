-- How many data connections each connector keeps (`--ha-connections`): a tunnel is healthy
-- when its live connectors have all of theirs open. Connectors registered before this
-- column kept the default, 4.
ALTER TABLE connectors ADD COLUMN ha_connections BIGINT NOT NULL DEFAULT 4;
