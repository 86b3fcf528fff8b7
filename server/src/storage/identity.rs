//! Identity queries: users and their roles per account, dashboard sessions and the keys
//! that sign them, API tokens, and the audit log.

use adit_core::{
    identity::{Email, Role, Scopes},
    ids::{AccountId, ApiTokenId, SessionId, UserId, ZoneId},
};
use sqlx::{Row, any::AnyRow};

use super::{Storage, conflict_or, parse_id};
use crate::{Error, clock::now_ms};

/// An API token's use is written down at most this often (ms), not on every request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A session-signing key as stored: its id, from which `server.key` derives its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub id: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: ApiTokenId,
    pub account_id: AccountId,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub account_id: AccountId,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_ip: String,
    pub outcome: String,
}

fn parse_text<T: std::str::FromStr<Err = adit_core::Error>>(
    row: &AnyRow,
    column: &str,
) -> Result<T, Error> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: adit_core::Error| Error::Corrupt(format!("{column}: {e}")))
}

fn user_from(row: &AnyRow) -> Result<UserRow, Error> {
    Ok(UserRow {
        id: parse_id(row, "id")?,
        email: parse_text(row, "email")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

fn token_from(row: &AnyRow) -> Result<ApiTokenRow, Error> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiTokenRow {
        id: parse_id(row, "id")?,
        account_id: parse_id(row, "account_id")?,
        name: row.try_get("name")?,
        scopes: Scopes::parse_list(&scopes).map_err(|e| Error::Corrupt(format!("scopes: {e}")))?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const USER_COLUMNS: &str = "u.id, u.email, u.password_hash, u.created_at";
const TOKEN_COLUMNS: &str = "id, account_id, name, scopes, created_at, last_used_at, revoked_at";

impl Storage {
    // ---- accounts by name ----

    pub async fn account_by_name(&self, name: &str) -> Result<Option<AccountId>, Error> {
        sqlx::query("SELECT id FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| parse_id(&row, "id"))
            .transpose()
    }

    pub async fn account_name(&self, account: AccountId) -> Result<String, Error> {
        let row = sqlx::query("SELECT name FROM accounts WHERE id = $1")
            .bind(account.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("name")?)
    }

    // ---- users and memberships ----

    pub async fn count_users(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// A new user with a role in `account`, in one transaction. Emails are unique per
    /// account, not per server, and the account is in memberships, which no unique index on
    /// users can span: once both rows are written, the transaction counts the account's
    /// users with this email and refuses a second. Under the account's lock, so two
    /// concurrent inserts cannot both count one.
    pub async fn insert_user(
        &self,
        user: &UserRow,
        account: AccountId,
        role: Role,
    ) -> Result<(), Error> {
        let mut tx = self.begin_limited(&format!("users:{account}")).await?;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO memberships (user_id, account_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(user.id.to_string())
        .bind(account.to_string())
        .bind(role.as_str())
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.account_id = $1 AND u.email = $2",
        )
        .bind(account.to_string())
        .bind(user.email.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if row.try_get::<i64, _>("n")? > 1 {
            // Dropping the transaction rolls both rows back.
            return Err(Error::Conflict(format!(
                "a user {} already exists",
                user.email
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The users with this email, oldest first: one per account at most, and only the one
    /// in the account named `account` when given.
    pub async fn users_by_email(
        &self,
        email: &Email,
        account: Option<&str>,
    ) -> Result<Vec<UserRow>, Error> {
        let rows = match account {
            None => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1 ORDER BY u.created_at, u.id"
                ))
                .bind(email.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            Some(name) => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN memberships m ON m.user_id = u.id JOIN accounts a ON a.id = m.account_id WHERE u.email = $1 AND a.name = $2 ORDER BY u.created_at, u.id"
                ))
                .bind(email.as_str())
                .bind(name)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(user_from).collect()
    }

    pub async fn user_by_id(&self, user: UserId) -> Result<Option<UserRow>, Error> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
        ))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| user_from(&row))
        .transpose()
    }

    /// Sets a new password and ends every session of the user.
    pub async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user's role in `account`, if a member.
    pub async fn role_in(&self, user: UserId, account: AccountId) -> Result<Option<Role>, Error> {
        sqlx::query("SELECT role FROM memberships WHERE user_id = $1 AND account_id = $2")
            .bind(user.to_string())
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| parse_text(&row, "role"))
            .transpose()
    }

    /// The accounts the user belongs to: (account, its name, role), oldest membership first.
    pub async fn memberships_of(
        &self,
        user: UserId,
    ) -> Result<Vec<(AccountId, String, Role)>, Error> {
        let rows = sqlx::query(
            "SELECT m.account_id, a.name, m.role FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.user_id = $1 ORDER BY m.created_at, a.name",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(row, "account_id")?,
                    row.try_get("name")?,
                    parse_text(row, "role")?,
                ))
            })
            .collect()
    }

    /// The account's users with their roles, by email.
    pub async fn members(&self, account: AccountId) -> Result<Vec<(UserRow, Role)>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.account_id = $1 ORDER BY u.email"
        ))
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((user_from(row)?, parse_text(row, "role")?)))
            .collect()
    }

    /// Every user with every membership, for `adit-server admin list`.
    pub async fn all_users(&self) -> Result<Vec<(UserRow, String, Role)>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, a.name AS account, m.role FROM users u JOIN memberships m ON m.user_id = u.id JOIN accounts a ON a.id = m.account_id ORDER BY u.email, a.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    user_from(row)?,
                    row.try_get("account")?,
                    parse_text(row, "role")?,
                ))
            })
            .collect()
    }

    /// Changes a member's role; false when the user is not a member of `account`.
    pub async fn set_role(
        &self,
        account: AccountId,
        user: UserId,
        role: Role,
    ) -> Result<bool, Error> {
        let done =
            sqlx::query("UPDATE memberships SET role = $1 WHERE account_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(account.to_string())
                .bind(user.to_string())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a member (and the user, once in no account); false when not a member.
    pub async fn remove_member(&self, account: AccountId, user: UserId) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
            .bind(account.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)",
        )
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn count_admins(&self, account: AccountId) -> Result<i64, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM memberships WHERE account_id = $1 AND role = 'admin'",
        )
        .bind(account.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    // ---- session signing keys and sessions ----

    /// Keys that verify sessions, newest (the signing one) first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRow {
                    id: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Adds a signing key; with `retire_others`, older keys and every session end.
    pub async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        retire_others: bool,
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        if retire_others {
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
            // Other nodes may still hold the old keys in memory: the session rows decide.
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL")
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO signing_keys (id, created_at) VALUES ($1, $2)")
            .bind(&key.id)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retires keys created before `cutoff` (ms) except the newest: a rotated-out key keeps
    /// verifying the sessions it signed until they could no longer be renewed anyway.
    pub async fn retire_signing_keys_before(&self, cutoff: i64) -> Result<u64, Error> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND created_at < $2 AND id <> (SELECT id FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, id LIMIT 1)",
        )
        .bind(now_ms())
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_session(&self, session: &SessionRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(session.account_id.to_string())
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session that has neither ended nor expired.
    pub async fn live_session(&self, session: SessionId) -> Result<Option<SessionRow>, Error> {
        sqlx::query(
            "SELECT id, user_id, account_id, created_at, expires_at FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(session.to_string())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| {
            Ok(SessionRow {
                id: parse_id(&row, "id")?,
                user_id: parse_id(&row, "user_id")?,
                account_id: parse_id(&row, "account_id")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, session: SessionId) -> Result<(), Error> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(session.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- API tokens ----

    pub async fn count_api_tokens(&self, account: AccountId) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens WHERE account_id = $1")
            .bind(account.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn insert_api_token(
        &self,
        token: &ApiTokenRow,
        token_hash: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO api_tokens (id, account_id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id.to_string())
        .bind(token.account_id.to_string())
        .bind(&token.name)
        .bind(token_hash)
        .bind(token.scopes.to_string())
        .bind(token.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live (unrevoked) token with this hash, recording its use.
    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, Error> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let token = token_from(&row)?;
        let now = now_ms();
        if token
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS)
        {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token.id.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(token))
    }

    pub async fn list_api_tokens(&self, account: AccountId) -> Result<Vec<ApiTokenRow>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE account_id = $1 ORDER BY created_at, name"
        ))
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from).collect()
    }

    /// Revokes a token of the account; false when it has none by that id (or it is revoked).
    pub async fn revoke_api_token(
        &self,
        account: AccountId,
        token: ApiTokenId,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE account_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(account.to_string())
        .bind(token.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- zones ----

    pub async fn insert_zone(
        &self,
        id: ZoneId,
        account: AccountId,
        name: &str,
        created_at: i64,
    ) -> Result<(), Error> {
        sqlx::query("INSERT INTO zones (id, account_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.to_string())
            .bind(account.to_string())
            .bind(name)
            .bind(created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, || format!("zone {name} is already registered")))?;
        Ok(())
    }

    /// Every zone of every account: (id, account, name, created at), by name.
    pub async fn all_zones(&self) -> Result<Vec<(ZoneId, AccountId, String, i64)>, Error> {
        let rows = sqlx::query("SELECT id, account_id, name, created_at FROM zones ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(row, "id")?,
                    parse_id(row, "account_id")?,
                    row.try_get("name")?,
                    row.try_get("created_at")?,
                ))
            })
            .collect()
    }

    /// Removes a zone of the account; false when it has none by that id.
    pub async fn delete_zone(&self, account: AccountId, zone: ZoneId) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM zones WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(zone.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- audit log ----

    pub async fn insert_audit(&self, entry: &AuditRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO audit_log (id, account_id, at, actor, action, target, source_ip, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(entry.account_id.to_string())
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.source_ip)
        .bind(&entry.outcome)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account's newest entries first, at most `limit`.
    pub async fn list_audit(&self, account: AccountId, limit: i64) -> Result<Vec<AuditRow>, Error> {
        let rows = sqlx::query(
            "SELECT account_id, at, actor, action, target, source_ip, outcome FROM audit_log WHERE account_id = $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(account.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRow {
                    account_id: parse_id(row, "account_id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    source_ip: row.try_get("source_ip")?,
                    outcome: row.try_get("outcome")?,
                })
            })
            .collect()
    }
}
