-- The network a device login came from (/24 for IPv4, /64 for IPv6), so pending logins are
-- limited per network too: many addresses of one network cannot take the server's quota
-- from everyone else. Rows made before this have '' and expire within ten minutes.
ALTER TABLE device_logins ADD COLUMN source_network TEXT NOT NULL DEFAULT '';
CREATE INDEX device_logins_source_ip ON device_logins (source_ip);
CREATE INDEX device_logins_source_network ON device_logins (source_network);
