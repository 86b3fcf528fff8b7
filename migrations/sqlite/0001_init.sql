-- Adit's first schema. Times are milliseconds since the Unix epoch; ids are UUID text.
-- Every row carries its account, so no query can reach across accounts by accident.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE TABLE tunnels (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_generation BIGINT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    conns_active_at BIGINT,
    UNIQUE (account_id, name)
);

CREATE TABLE routes (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    hostname TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX routes_tunnel ON routes (tunnel_id);

CREATE TABLE connectors (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    hostname TEXT NOT NULL,
    origin_ip TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE INDEX connectors_tunnel ON connectors (tunnel_id);

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    connector_id TEXT NOT NULL REFERENCES connectors(id) ON DELETE CASCADE,
    conn_index BIGINT NOT NULL,
    edge TEXT NOT NULL,
    origin_ip TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX connections_connector ON connections (connector_id);
