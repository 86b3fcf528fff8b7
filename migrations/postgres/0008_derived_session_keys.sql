-- Session-signing keys are derived from server.key, HMAC(server.key, label ‖ id): the
-- table keeps only their ids, so a copy of the database signs no session. The keys it held
-- in clear are dropped, and with them every session they signed (users log in again).
DROP TABLE signing_keys;

-- The newest unretired key signs; all unretired ones verify.
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
