-- The nodes of a deployment (one, or a cluster on a shared PostgreSQL database): each
-- upserts its row when it starts and beats every 2 s; one whose beat is older than three
-- beats, or that stopped, is dead, and its open connection rows are closed by the others.
-- `name` is the node's --node-name, as `connections.edge` holds it; `id` is new at each
-- start; times are milliseconds since the epoch.
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    tunnel_addr TEXT NOT NULL,
    edge_addr TEXT NOT NULL,
    api_addr TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT
);
CREATE INDEX connections_open_edge ON connections (edge) WHERE closed_at IS NULL;
