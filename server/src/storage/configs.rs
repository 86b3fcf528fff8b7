//! Tunnel configurations: the stored JSON of each tunnel's ingress rules, its version, and
//! for remotely managed tunnels the hostname routes that follow it.

use adit_core::ids::{RouteId, TunnelId};
use sqlx::Row;

use super::{RouteRow, Storage, TunnelRow, insert_route, route_from};
use crate::Error;

/// A tunnel's configuration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// 0 while there has been none.
    pub version: i64,
    /// `{"ingress":[...],"originRequest":{...}}`; `None` while there has been none.
    pub json: Option<String>,
    /// When `version` was written (milliseconds since the epoch).
    pub updated_at: Option<i64>,
}

/// What storing a remote configuration did.
#[derive(Debug)]
pub struct ConfigWritten {
    pub version: i64,
    /// Routes made for hostnames the new version has and the tunnel had not.
    pub added: Vec<RouteRow>,
    /// Routes removed for hostnames the previous version had and the new one drops.
    pub removed: Vec<RouteRow>,
}

/// A new version of a remotely managed tunnel's configuration.
#[derive(Debug)]
pub struct ConfigChange<'a> {
    pub tunnel: &'a TunnelRow,
    pub json: &'a str,
    /// The hostname patterns (normalised text) the new configuration routes.
    pub hostnames: &'a [String],
    pub at: i64,
}

impl Storage {
    /// `None` when the tunnel does not exist.
    pub async fn tunnel_config(&self, tunnel: TunnelId) -> Result<Option<StoredConfig>, Error> {
        let row = sqlx::query(
            "SELECT config_version, config_json, config_updated_at FROM tunnels WHERE id = $1",
        )
        .bind(tunnel.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredConfig {
                version: row.try_get("config_version")?,
                json: row.try_get("config_json")?,
                updated_at: row.try_get("config_updated_at")?,
            })
        })
        .transpose()
    }

    /// Stores a remotely managed tunnel's next configuration version and, in the same
    /// transaction, routes its new hostnames to the tunnel and removes the routes of those
    /// the previous version had and this one drops (routes made by hand are left alone).
    /// `routed_by(previous_json)` names the previous version's hostnames. A hostname that
    /// is routed elsewhere fails the whole change with a conflict. Returns the new version
    /// and the routes added and removed.
    pub async fn write_remote_config(
        &self,
        change: &ConfigChange<'_>,
        routed_by: impl FnOnce(Option<&str>) -> Result<Vec<String>, Error>,
    ) -> Result<ConfigWritten, Error> {
        let tunnel = change.tunnel.id.to_string();
        let mut tx = self.pool.begin().await?;
        // A write first: it takes the tunnel's row lock (PostgreSQL) or the write lock
        // (SQLite) before anything is read, so concurrent changes queue here.
        let row = sqlx::query(
            "UPDATE tunnels SET config_version = config_version + 1 \
             WHERE id = $1 AND config_src = 'remote' RETURNING config_version, config_json",
        )
        .bind(&tunnel)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "remotely managed tunnel",
            name: change.tunnel.name.clone(),
        })?;
        let version: i64 = row.try_get("config_version")?;
        let previous: Option<String> = row.try_get("config_json")?;
        let dropped: Vec<String> = routed_by(previous.as_deref())?
            .into_iter()
            .filter(|h| !change.hostnames.contains(h))
            .collect();
        let mut removed = Vec::new();
        for hostname in &dropped {
            let rows = sqlx::query(
                "DELETE FROM routes WHERE tunnel_id = $1 AND hostname = $2 \
                 RETURNING id, account_id, tunnel_id, hostname, created_at",
            )
            .bind(&tunnel)
            .bind(hostname)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                removed.push(route_from(row)?);
            }
        }
        let routed: Vec<String> = sqlx::query("SELECT hostname FROM routes WHERE tunnel_id = $1")
            .bind(&tunnel)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("hostname"))
            .collect::<Result<_, _>>()?;
        let mut added = Vec::new();
        for hostname in change.hostnames.iter().filter(|h| !routed.contains(h)) {
            let route = RouteRow {
                id: RouteId::random(),
                account_id: change.tunnel.account_id,
                tunnel_id: change.tunnel.id,
                hostname: hostname.clone(),
                created_at: change.at,
            };
            insert_route(&mut *tx, &route).await?;
            added.push(route);
        }
        sqlx::query("UPDATE tunnels SET config_json = $1, config_updated_at = $2 WHERE id = $3")
            .bind(change.json)
            .bind(change.at)
            .bind(&tunnel)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ConfigWritten {
            version,
            added,
            removed,
        })
    }

    /// Records the rules a locally managed tunnel's connector runs, as a new version when
    /// they differ from the stored ones. Whether it did.
    pub async fn write_local_config(
        &self,
        tunnel: TunnelId,
        json: &str,
        at: i64,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE tunnels SET config_version = config_version + 1, config_json = $1, config_updated_at = $2 \
             WHERE id = $3 AND config_src = 'local' AND (config_json IS NULL OR config_json <> $1)",
        )
        .bind(json)
        .bind(at)
        .bind(tunnel.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
