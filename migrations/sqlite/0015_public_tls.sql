-- Public TLS at the HTTPS edge. Every node of a cluster serves what is stored here; private
-- keys and the ACME account's credentials are sealed (AES-256-GCM, a key derived from the
-- server key), so a copy of the database alone yields none of them. Times are milliseconds
-- since the epoch.

-- A zone served over HTTPS only: plain HTTP is redirected, HTTPS answers carry HSTS (0/1).
ALTER TABLE zones ADD COLUMN https_only BIGINT NOT NULL DEFAULT 0;

-- A certificate an admin uploaded for a zone (its names cover the zone or `*.zone`).
CREATE TABLE zone_certificates (
    zone_id TEXT PRIMARY KEY REFERENCES zones(id) ON DELETE CASCADE,
    chain_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL
);

-- The ACME account, one per directory URL.
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    credentials_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One routed hostname's ACME certificate (none yet until the first order succeeds), its
-- last failure and when to try again, and the lease of the node ordering it (one at a time).
CREATE TABLE acme_certificates (
    hostname TEXT PRIMARY KEY,
    chain_pem TEXT,
    key_sealed TEXT,
    not_after BIGINT,
    issued_at BIGINT,
    last_error TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    lease_holder TEXT,
    lease_until BIGINT
);

-- Challenges being validated, so that whichever node the CA reaches answers them.
CREATE TABLE acme_challenges (
    hostname TEXT NOT NULL,
    kind TEXT NOT NULL,
    token TEXT NOT NULL,
    key_authorization TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (hostname, kind)
);
