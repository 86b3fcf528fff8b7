-- Indexes for accounts with many tunnels. A tunnel's connections are counted (open ones)
-- and looked up by tunnel in every listing, status, delete and quick-tunnel sweep; only
-- connections(connector_id) was indexed, so each of these read the whole table.
CREATE INDEX connections_tunnel ON connections (tunnel_id, closed_at);
-- Routes are listed per account (a page of tunnels reads its tunnels' routes by tunnel,
-- already indexed; the full list reads the account's).
CREATE INDEX routes_account ON routes (account_id, hostname);
