-- `adit login`: a device-authorisation request (RFC 8628). The CLI holds the device code
-- (stored here only as a SHA-256 hash); a logged-in user approves the short user code in
-- the dashboard; the CLI's next poll mints an API token with that user's role and the row
-- is deleted. Rows live ten minutes.
CREATE TABLE device_logins (
    device_code_hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    polled_at BIGINT,
    -- pending | approved | denied
    decision TEXT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX device_logins_expires ON device_logins (expires_at);
