-- Emails are unique per account, not per server: creating a user must not reveal that the
-- email has a user in another account. The account lives in memberships, which no index on
-- users can span, so `insert_user` enforces it in its transaction; users keep an index on
-- email for logins.
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE INDEX users_email ON users (email);
