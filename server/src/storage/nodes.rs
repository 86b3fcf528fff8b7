//! The nodes of a deployment: each node's row (its advertised addresses, version, start and
//! latest heartbeat), and the sweep that closes the connection rows of dead nodes.

use adit_core::ids::{AccountId, TunnelId};
use sqlx::{Row, any::AnyRow};

use super::{Backend, Storage, parse_id};
use crate::Error;

/// One node as it registers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// `--node-name`, as `connections.edge` holds it.
    pub name: String,
    /// New at each start of the process (a UUID).
    pub id: String,
    pub tunnel_addr: String,
    pub edge_addr: String,
    pub api_addr: String,
    pub version: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Set when the node shut down gracefully; `None` while it runs (or vanished).
    pub stopped_at: Option<i64>,
}

/// A node with its open connection rows, counted in the query that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    pub node: NodeRow,
    pub open_connections: i64,
}

/// The sweep's lock on PostgreSQL (`pg_try_advisory_xact_lock`): one node sweeps at a time.
const SWEEP_LOCK: i64 = 0x6164_6974_6e6f_6465; // "aditnode"

const NODE_COLUMNS: &str =
    "name, id, tunnel_addr, edge_addr, api_addr, version, started_at, heartbeat_at, stopped_at";

fn node_from(row: &AnyRow) -> Result<NodeRow, Error> {
    Ok(NodeRow {
        name: row.try_get("name")?,
        id: row.try_get("id")?,
        tunnel_addr: row.try_get("tunnel_addr")?,
        edge_addr: row.try_get("edge_addr")?,
        api_addr: row.try_get("api_addr")?,
        version: row.try_get("version")?,
        started_at: row.try_get("started_at")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
        stopped_at: row.try_get("stopped_at")?,
    })
}

impl Storage {
    /// Writes the node's row as it starts (a row of a previous run of the same name is
    /// replaced).
    pub async fn upsert_node(&self, node: &NodeRow) -> Result<(), Error> {
        sqlx::query(&format!(
            "INSERT INTO nodes ({NODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (name) DO UPDATE SET id = excluded.id, tunnel_addr = excluded.tunnel_addr, \
             edge_addr = excluded.edge_addr, api_addr = excluded.api_addr, version = excluded.version, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             stopped_at = excluded.stopped_at"
        ))
        .bind(&node.name)
        .bind(&node.id)
        .bind(&node.tunnel_addr)
        .bind(&node.edge_addr)
        .bind(&node.api_addr)
        .bind(&node.version)
        .bind(node.started_at)
        .bind(node.heartbeat_at)
        .bind(node.stopped_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One heartbeat of the node `name` started as `id`: false when its row is gone or now
    /// belongs to another start (another process with the same name).
    pub async fn beat_node(&self, name: &str, id: &str, at: i64) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE nodes SET heartbeat_at = $1 WHERE name = $2 AND id = $3 AND stopped_at IS NULL",
        )
        .bind(at)
        .bind(name)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The node `name`, started as `id`, shut down at `at`: it is dead from now on.
    pub async fn stop_node(&self, name: &str, id: &str, at: i64) -> Result<(), Error> {
        sqlx::query(
            "UPDATE nodes SET stopped_at = $1, heartbeat_at = $1 WHERE name = $2 AND id = $3",
        )
        .bind(at)
        .bind(name)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets a node's latest heartbeat, whoever it belongs to (tests age a node with it).
    pub async fn set_node_heartbeat(&self, name: &str, at: i64) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE name = $2")
            .bind(at)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every node by name, each with its open connection rows.
    pub async fn node_summaries(&self) -> Result<Vec<NodeSummary>, Error> {
        let columns = NODE_COLUMNS
            .split(", ")
            .map(|c| format!("n.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns}, (SELECT COUNT(*) FROM connections k \
             WHERE k.edge = n.name AND k.closed_at IS NULL) AS open_connections \
             FROM nodes n ORDER BY n.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeSummary {
                    node: node_from(row)?,
                    open_connections: row.try_get("open_connections")?,
                })
            })
            .collect()
    }

    /// Closes, at `now`, the open connection rows of every node other than `me` that
    /// stopped or last beat before `cutoff`, and forgets the nodes whose last beat is
    /// older than `forget_before`. On PostgreSQL one node at a time sweeps (a
    /// transaction-level advisory lock; a node that finds it taken skips this round).
    /// The tunnels whose connections were closed, with their accounts.
    pub async fn close_connections_of_dead_nodes(
        &self,
        me: &str,
        cutoff: i64,
        forget_before: i64,
        now: i64,
    ) -> Result<Vec<(AccountId, TunnelId)>, Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            let row = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind(SWEEP_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if !row.try_get::<bool, _>("locked")? {
                tx.rollback().await?;
                return Ok(Vec::new());
            }
        }
        let rows = sqlx::query(
            "UPDATE connections SET closed_at = $1 WHERE closed_at IS NULL AND edge IN \
             (SELECT name FROM nodes WHERE name <> $2 AND (stopped_at IS NOT NULL OR heartbeat_at < $3)) \
             RETURNING account_id, tunnel_id",
        )
        .bind(now)
        .bind(me)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE name <> $1 AND heartbeat_at < $2")
            .bind(me)
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut closed = Vec::new();
        for row in &rows {
            let pair = (parse_id(row, "account_id")?, parse_id(row, "tunnel_id")?);
            if !closed.contains(&pair) {
                closed.push(pair);
            }
        }
        Ok(closed)
    }
}
