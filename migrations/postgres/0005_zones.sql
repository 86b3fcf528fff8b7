-- The domains each account serves. A zone belongs to one account; hostname routes must lie
-- inside one of their account's zones.
CREATE TABLE zones (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX zones_account ON zones (account_id);
