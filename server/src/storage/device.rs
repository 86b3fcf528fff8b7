//! Pending `adit login` requests (device authorisation, RFC 8628).

use adit_core::ids::{AccountId, UserId};
use sqlx::{Row, any::AnyRow};

use super::{Storage, conflict_or, parse_id};
use crate::Error;

/// What the user decided about a device login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pending,
    /// Approved by this user, acting in this account.
    Approved(UserId, AccountId),
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLoginRow {
    pub device_code_hash: String,
    /// Eight letters, stored without the dash.
    pub user_code: String,
    /// What the CLI called itself, e.g. `adit on build-7`.
    pub client: String,
    pub source_ip: String,
    /// The network of `source_ip` the per-network limit counts in (`203.0.113.0/24`).
    pub source_network: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub polled_at: Option<i64>,
    pub decision: Decision,
}

/// How many pending device logins one address, one network and the whole server may hold.
#[derive(Debug, Clone, Copy)]
pub struct PendingLimits {
    pub per_address: i64,
    pub per_network: i64,
    pub in_all: i64,
}

const COLUMNS: &str = "device_code_hash, user_code, client, source_ip, source_network, created_at, expires_at, polled_at, decision, user_id, account_id";

fn device_login_from(row: &AnyRow) -> Result<DeviceLoginRow, Error> {
    let decision: String = row.try_get("decision")?;
    let decision = match decision.as_str() {
        "pending" => Decision::Pending,
        "denied" => Decision::Denied,
        "approved" => Decision::Approved(parse_id(row, "user_id")?, parse_id(row, "account_id")?),
        other => return Err(Error::Corrupt(format!("device login decision {other:?}"))),
    };
    Ok(DeviceLoginRow {
        device_code_hash: row.try_get("device_code_hash")?,
        user_code: row.try_get("user_code")?,
        client: row.try_get("client")?,
        source_ip: row.try_get("source_ip")?,
        source_network: row.try_get("source_network")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        polled_at: row.try_get("polled_at")?,
        decision,
    })
}

impl Storage {
    /// Forgets device logins that expired before `now`.
    pub async fn purge_device_logins(&self, now: i64) -> Result<(), Error> {
        sqlx::query("DELETE FROM device_logins WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a new pending login unless its address, its network or the whole server
    /// already holds as many as `limits` allow: false then. `Conflict` if its user code is
    /// taken (the caller draws another).
    pub async fn insert_device_login(
        &self,
        login: &DeviceLoginRow,
        limits: &PendingLimits,
    ) -> Result<bool, Error> {
        // One lock for every device login: the server-wide count involves them all.
        let mut tx = self.begin_limited("device_logins").await?;
        let done = sqlx::query(
            "INSERT INTO device_logins (device_code_hash, user_code, client, source_ip, source_network, created_at, expires_at, decision) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 'pending' \
             WHERE (SELECT COUNT(*) FROM device_logins WHERE source_ip = $4) < $8 \
             AND (SELECT COUNT(*) FROM device_logins WHERE source_network = $5) < $9 \
             AND (SELECT COUNT(*) FROM device_logins) < $10",
        )
        .bind(&login.device_code_hash)
        .bind(&login.user_code)
        .bind(&login.client)
        .bind(&login.source_ip)
        .bind(&login.source_network)
        .bind(login.created_at)
        .bind(login.expires_at)
        .bind(limits.per_address)
        .bind(limits.per_network)
        .bind(limits.in_all)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || "user code taken".into()))?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn device_login_by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceLoginRow>, Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM device_logins WHERE user_code = $1 AND expires_at > $2"
        ))
        .bind(user_code)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(device_login_from)
        .transpose()
    }

    pub async fn device_login_by_hash(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceLoginRow>, Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM device_logins WHERE device_code_hash = $1"
        ))
        .bind(device_code_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(device_login_from)
        .transpose()
    }

    /// Records the user's decision on a still pending, unexpired login; false when there
    /// is none (decided already, or expired).
    pub async fn decide_device_login(
        &self,
        user_code: &str,
        decision: Decision,
        now: i64,
    ) -> Result<bool, Error> {
        let (text, user, account) = match decision {
            Decision::Pending => return Ok(false),
            Decision::Denied => ("denied", None, None),
            Decision::Approved(user, account) => (
                "approved",
                Some(user.to_string()),
                Some(account.to_string()),
            ),
        };
        let done = sqlx::query(
            "UPDATE device_logins SET decision = $1, user_id = $2, account_id = $3 WHERE user_code = $4 AND decision = 'pending' AND expires_at > $5",
        )
        .bind(text)
        .bind(user)
        .bind(account)
        .bind(user_code)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_device_login(&self, device_code_hash: &str, now: i64) -> Result<(), Error> {
        sqlx::query("UPDATE device_logins SET polled_at = $1 WHERE device_code_hash = $2")
            .bind(now)
            .bind(device_code_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the login; true for exactly one caller, so a decision is acted on once.
    pub async fn take_device_login(&self, device_code_hash: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM device_logins WHERE device_code_hash = $1")
            .bind(device_code_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
