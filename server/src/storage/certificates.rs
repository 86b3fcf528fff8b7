//! Public TLS queries: zones' uploaded certificates and HTTPS-only setting, the ACME
//! account, ACME certificates with their ordering leases, and pending challenges. Keys
//! arrive here sealed; this layer never sees one in clear.

use adit_core::ids::ZoneId;
use sqlx::{Row, any::AnyRow};

use super::{Storage, parse_id};
use crate::Error;

/// A zone's uploaded certificate, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCertificateRow {
    pub zone_id: ZoneId,
    pub zone: String,
    pub chain_pem: String,
    pub key_sealed: String,
    pub uploaded_at: i64,
}

/// One hostname's ACME state. `chain_pem`/`key_sealed` are `None` until an order succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeCertificateRow {
    pub hostname: String,
    pub chain_pem: Option<String>,
    pub key_sealed: Option<String>,
    pub not_after: Option<i64>,
    pub last_error: Option<String>,
    pub failures: i64,
    pub next_attempt_at: i64,
}

/// A challenge waiting for the CA's validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub hostname: String,
    /// `http-01` or `tls-alpn-01`.
    pub kind: String,
    pub token: String,
    pub key_authorization: String,
}

fn acme_from(row: &AnyRow) -> Result<AcmeCertificateRow, Error> {
    Ok(AcmeCertificateRow {
        hostname: row.try_get("hostname")?,
        chain_pem: row.try_get("chain_pem")?,
        key_sealed: row.try_get("key_sealed")?,
        not_after: row.try_get("not_after")?,
        last_error: row.try_get("last_error")?,
        failures: row.try_get("failures")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
    })
}

const ACME_COLUMNS: &str =
    "hostname, chain_pem, key_sealed, not_after, last_error, failures, next_attempt_at";

impl Storage {
    // ---- zones' TLS ----

    /// Sets whether a zone is served over HTTPS only; false when there is no such zone.
    pub async fn set_zone_https_only(&self, zone: ZoneId, on: bool) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE zones SET https_only = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(zone.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The names of every zone served over HTTPS only.
    pub async fn https_only_zones(&self) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT name FROM zones WHERE https_only <> 0 ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get("name").map_err(Error::from))
            .collect()
    }

    /// Stores (or replaces) a zone's uploaded certificate.
    pub async fn put_zone_certificate(
        &self,
        zone: ZoneId,
        chain_pem: &str,
        key_sealed: &str,
        not_after: i64,
        uploaded_at: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO zone_certificates (zone_id, chain_pem, key_sealed, not_after, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (zone_id) DO UPDATE SET \
             chain_pem = excluded.chain_pem, key_sealed = excluded.key_sealed, \
             not_after = excluded.not_after, uploaded_at = excluded.uploaded_at",
        )
        .bind(zone.to_string())
        .bind(chain_pem)
        .bind(key_sealed)
        .bind(not_after)
        .bind(uploaded_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a zone's uploaded certificate; false when it had none.
    pub async fn delete_zone_certificate(&self, zone: ZoneId) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM zone_certificates WHERE zone_id = $1")
            .bind(zone.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every uploaded certificate, with its zone's name.
    pub async fn zone_certificates(&self) -> Result<Vec<ZoneCertificateRow>, Error> {
        let rows = sqlx::query(
            "SELECT c.zone_id, z.name, c.chain_pem, c.key_sealed, c.uploaded_at \
             FROM zone_certificates c JOIN zones z ON z.id = c.zone_id ORDER BY z.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ZoneCertificateRow {
                    zone_id: parse_id(row, "zone_id")?,
                    zone: row.try_get("name")?,
                    chain_pem: row.try_get("chain_pem")?,
                    key_sealed: row.try_get("key_sealed")?,
                    uploaded_at: row.try_get("uploaded_at")?,
                })
            })
            .collect()
    }

    // ---- ACME ----

    /// The sealed credentials of the ACME account at `directory`, if one was made.
    pub async fn acme_account(&self, directory: &str) -> Result<Option<String>, Error> {
        let row = sqlx::query("SELECT credentials_sealed FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|row| row.try_get("credentials_sealed"))
            .transpose()?)
    }

    /// Keeps a new ACME account; when another node kept one first, theirs stays.
    pub async fn insert_acme_account(
        &self,
        directory: &str,
        credentials_sealed: &str,
        now: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO acme_accounts (directory, credentials_sealed, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (directory) DO NOTHING",
        )
        .bind(directory)
        .bind(credentials_sealed)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes a row for each of `hostnames` that has none (nothing issued yet).
    pub async fn ensure_acme_hostnames(&self, hostnames: &[String]) -> Result<(), Error> {
        for hostname in hostnames {
            sqlx::query(
                "INSERT INTO acme_certificates (hostname) VALUES ($1) ON CONFLICT (hostname) DO NOTHING",
            )
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Every hostname's ACME state, by hostname.
    pub async fn acme_certificates(&self) -> Result<Vec<AcmeCertificateRow>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {ACME_COLUMNS} FROM acme_certificates ORDER BY hostname"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(acme_from).collect()
    }

    /// Takes the lease to order `hostname`'s certificate until `until`, unless another node
    /// holds an unexpired one; whether it was taken.
    pub async fn take_acme_lease(
        &self,
        hostname: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE acme_certificates SET lease_holder = $1, lease_until = $2 \
             WHERE hostname = $3 AND (lease_until IS NULL OR lease_until < $4 OR lease_holder = $1)",
        )
        .bind(holder)
        .bind(until)
        .bind(hostname)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a newly issued certificate and lets go of the lease.
    pub async fn store_acme_certificate(
        &self,
        hostname: &str,
        chain_pem: &str,
        key_sealed: &str,
        not_after: i64,
        now: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_certificates SET chain_pem = $1, key_sealed = $2, not_after = $3, \
             issued_at = $4, last_error = NULL, failures = 0, next_attempt_at = 0, \
             lease_holder = NULL, lease_until = NULL WHERE hostname = $5",
        )
        .bind(chain_pem)
        .bind(key_sealed)
        .bind(not_after)
        .bind(now)
        .bind(hostname)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed order (`error` holds no secret), when to try again, and lets go of
    /// the lease.
    pub async fn fail_acme_order(
        &self,
        hostname: &str,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_certificates SET last_error = $1, failures = failures + 1, \
             next_attempt_at = $2, lease_holder = NULL, lease_until = NULL WHERE hostname = $3",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(hostname)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Publishes a challenge for every node to answer.
    pub async fn put_challenge(
        &self,
        challenge: &ChallengeRow,
        expires_at: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO acme_challenges (hostname, kind, token, key_authorization, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hostname, kind) DO UPDATE SET \
             token = excluded.token, key_authorization = excluded.key_authorization, \
             expires_at = excluded.expires_at",
        )
        .bind(&challenge.hostname)
        .bind(&challenge.kind)
        .bind(&challenge.token)
        .bind(&challenge.key_authorization)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_challenges(&self, hostname: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM acme_challenges WHERE hostname = $1")
            .bind(hostname)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The key authorization of the HTTP-01 challenge `token`, unless expired at `now`.
    pub async fn http01_challenge(&self, token: &str, now: i64) -> Result<Option<String>, Error> {
        let row = sqlx::query(
            "SELECT key_authorization FROM acme_challenges \
             WHERE token = $1 AND kind = 'http-01' AND expires_at > $2",
        )
        .bind(token)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|row| row.try_get("key_authorization"))
            .transpose()?)
    }

    /// The challenges not expired at `now`.
    pub async fn live_challenges(&self, now: i64) -> Result<Vec<ChallengeRow>, Error> {
        let rows = sqlx::query(
            "SELECT hostname, kind, token, key_authorization FROM acme_challenges \
             WHERE expires_at > $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ChallengeRow {
                    hostname: row.try_get("hostname")?,
                    kind: row.try_get("kind")?,
                    token: row.try_get("token")?,
                    key_authorization: row.try_get("key_authorization")?,
                })
            })
            .collect()
    }
}
