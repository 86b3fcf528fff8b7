//! Notices between the nodes of a cluster: PostgreSQL's `LISTEN`/`NOTIFY` on one channel.
//! A notice is sent after the change it announces is committed, so a node that reads the
//! database on receiving it sees the change. SQLite is one node's: nothing to tell.

use sqlx::{Row, postgres::PgListener};

use super::{Backend, Storage};
use crate::Error;

/// The channel every node listens on.
const CHANNEL: &str = "adit_cluster";

impl Storage {
    /// Whether other nodes may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Tells every node listening (this one too) `payload` (at most 8000 bytes).
    pub async fn broadcast(&self, payload: &str) -> Result<(), Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The tunnel-listener addresses of the nodes alive (beat since `alive_since`, not
    /// stopped), by name.
    pub async fn live_node_addrs(&self, alive_since: i64) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(
            "SELECT tunnel_addr FROM nodes \
             WHERE stopped_at IS NULL AND heartbeat_at >= $1 ORDER BY name",
        )
        .bind(alive_since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("tunnel_addr").map_err(Error::from))
            .collect()
    }

    /// Starts listening for notices on a connection of its own.
    pub async fn listen(&self) -> Result<BusListener, Error> {
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(BusListener(listener))
    }
}

pub struct BusListener(PgListener);

impl BusListener {
    /// The next notice; `None` when the connection to the database was lost (and is
    /// opened again by the next call), so notices may have been missed meanwhile.
    pub async fn next(&mut self) -> Result<Option<String>, Error> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}
