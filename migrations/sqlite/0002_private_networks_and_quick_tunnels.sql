-- Private-network routes: a CIDR served by a tunnel. Overlaps are allowed (the longest
-- prefix wins), the same network twice in one account is not.
CREATE TABLE ip_routes (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, network)
);
CREATE INDEX ip_routes_tunnel ON ip_routes (tunnel_id);

-- Quick tunnels: ephemeral, made without an account by `adit tunnel --url`, removed when
-- their connector goes away. The client address bounds how many one host may hold.
CREATE TABLE quick_tunnels (
    tunnel_id TEXT PRIMARY KEY REFERENCES tunnels(id) ON DELETE CASCADE,
    hostname TEXT NOT NULL UNIQUE,
    client_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX quick_tunnels_client ON quick_tunnels (client_ip);
