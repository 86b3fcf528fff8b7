-- Where other nodes of a cluster reach the node holding each connection (`host:port` of
-- its tunnel listener), so a node without a connection of a tunnel can forward a request
-- to one with. Rows from before the column have none: they were opened by a lone node.
ALTER TABLE connections ADD COLUMN node_addr TEXT NOT NULL DEFAULT '';
