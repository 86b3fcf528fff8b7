-- Emails are unique per account, not per server: creating a user must not reveal that the
-- email has a user in another account. The account lives in memberships, which no index on
-- users can span, so `insert_user` enforces it in its transaction; users keep an index on
-- email for logins.
--
-- SQLite cannot drop a UNIQUE constraint, so the table is rebuilt (SQLite's twelve-step
-- procedure). `Storage::open` runs migrations with foreign keys off: dropping the old table
-- would otherwise delete, by ON DELETE CASCADE, every membership, session and device login
-- of every user. sqlx runs this file in a transaction, where that pragma cannot change.
CREATE TABLE users_new (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
INSERT INTO users_new (id, email, password_hash, created_at, password_changed_at)
    SELECT id, email, password_hash, created_at, password_changed_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_email ON users (email);
