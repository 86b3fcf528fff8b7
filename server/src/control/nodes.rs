//! The node registry: every `adit-server` sharing the database keeps a row in `nodes` and
//! beats it every [`HEARTBEAT`]. A node whose latest beat is older than [`MISSED_BEATS`]
//! beats, or that shut down, is dead; each beat every node sweeps the open connection rows
//! of dead nodes closed (on PostgreSQL one node at a time), so tunnels do not count
//! connections that died with their node.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use adit_core::{
    api::{self, ChangeKind},
    time::Timestamp,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Error,
    clock::now_ms,
    control::Control,
    storage::{NodeRow, NodeSummary},
};

/// How often a node beats.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A node that missed this many beats is dead.
pub const MISSED_BEATS: u32 = 3;

/// A node dead this long (ms) leaves the node list: a node renamed or retired for good
/// would otherwise stay listed as dead forever.
pub const FORGET_DEAD_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// How old a heartbeat (ms) may be for its node to count as alive.
pub(crate) fn dead_after_ms() -> i64 {
    i64::try_from((HEARTBEAT * MISSED_BEATS).as_millis()).unwrap_or(i64::MAX)
}

/// Whether the node was alive at `now` (ms).
fn alive(node: &NodeRow, now: i64) -> bool {
    node.stopped_at.is_none() && node.heartbeat_at >= now - dead_after_ms()
}

/// `addr` as others reach it: an unspecified IP (`0.0.0.0`, `::`) becomes `public_host`,
/// the host tokens name as the endpoint.
pub fn advertised(addr: SocketAddr, public_host: &str) -> String {
    if addr.ip().is_unspecified() {
        host_port(public_host, addr.port())
    } else {
        addr.to_string()
    }
}

/// `host:port`, with an IPv6 host in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `--token-endpoint`: `HOST`, `HOST:PORT`, `[IPv6]:PORT` or a bare IPv6 address, the port
/// `port` when none is given; (host, `host:port`).
pub fn parse_endpoint(given: &str, port: u16) -> Result<(String, String), Error> {
    let bad = |why: &str| Error::Config(format!("--token-endpoint {given:?}: {why}"));
    let (host, port) = match given.rsplit_once(':') {
        // A bare IPv6 address has colons but no brackets and no port.
        _ if given.parse::<std::net::Ipv6Addr>().is_ok() => (given, port),
        Some((host, number)) if !host.contains(':') || host.starts_with('[') => {
            let number = number
                .parse()
                .map_err(|_| bad("the port is not a number"))?;
            (host.trim_start_matches('[').trim_end_matches(']'), number)
        }
        _ => (given, port),
    };
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(bad("expected HOST or HOST:PORT"));
    }
    Ok((host.to_owned(), host_port(host, port)))
}

/// This node, as it registers itself: [`Heartbeat::run`] keeps its row fresh.
pub struct Heartbeat {
    row: NodeRow,
}

impl Heartbeat {
    /// This run of the node `name`, reached at the advertised addresses (see
    /// [`advertised`]).
    pub fn new(name: &str, tunnel_addr: String, edge_addr: String, api_addr: String) -> Self {
        Self {
            row: NodeRow {
                name: name.to_owned(),
                id: uuid::Uuid::new_v4().to_string(),
                tunnel_addr,
                edge_addr,
                api_addr,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at: 0,
                heartbeat_at: 0,
                stopped_at: None,
            },
        }
    }

    /// Registers the node, then beats and sweeps every [`HEARTBEAT`] until `shutdown`,
    /// when it marks the node stopped (dead at once for the others). A failed write is
    /// logged and tried again at the next beat.
    pub async fn run(self, control: Arc<Control>, shutdown: CancellationToken) {
        let span = tracing::info_span!("heartbeat", node = %self.row.name, id = %self.row.id);
        self.beat_until(control, shutdown).instrument(span).await;
    }

    async fn beat_until(mut self, control: Arc<Control>, shutdown: CancellationToken) {
        control.metrics.set_node(&self.row.name);
        let mut registered = false;
        let mut ticks = tokio::time::interval(HEARTBEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let now = now_ms();
            match self.beat(&control, registered, now).await {
                Ok(()) => registered = true,
                Err(e) => tracing::warn!(error = %e, "could not write this node's heartbeat"),
            }
            match control
                .storage
                .close_connections_of_dead_nodes(
                    &self.row.name,
                    now - dead_after_ms(),
                    now - FORGET_DEAD_AFTER_MS,
                    now,
                )
                .await
            {
                Ok(closed) => {
                    if !closed.is_empty() {
                        tracing::info!(
                            tunnels = closed.len(),
                            "closed the connections of dead nodes"
                        );
                    }
                    for (account, tunnel) in closed {
                        control
                            .changes
                            .notify(account, ChangeKind::Connection, tunnel);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not sweep dead nodes' connections"),
            }
        }
        if registered
            && let Err(e) = control
                .storage
                .stop_node(&self.row.name, &self.row.id, now_ms())
                .await
        {
            tracing::warn!(error = %e, "could not mark this node stopped");
        }
    }

    /// Writes the row at the first beat, then its heartbeat; writes the row again when it
    /// was taken over or removed (two processes with one --node-name fight over it: said).
    async fn beat(&mut self, control: &Control, registered: bool, now: i64) -> Result<(), Error> {
        if registered
            && control
                .storage
                .beat_node(&self.row.name, &self.row.id, now)
                .await?
        {
            return Ok(());
        }
        if registered {
            tracing::warn!(
                "this node's row was replaced or removed: does another node run with the same --node-name?"
            );
        } else {
            self.row.started_at = now;
        }
        self.row.heartbeat_at = now;
        control.storage.upsert_node(&self.row).await
    }
}

impl Control {
    /// Every node of the deployment by name, alive or not, with the connections it holds.
    /// Whether this node should get new visitors and connectors: not while it is leaving
    /// the cluster, nor while its database does not answer; why not.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        if self.registry.is_leaving() {
            return Err("leaving the cluster");
        }
        match self.storage.ping().await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "the database does not answer");
                Err("the database does not answer")
            }
        }
    }

    pub async fn list_nodes(&self) -> Result<Vec<api::Node>, Error> {
        let now = now_ms();
        let nodes = self.storage.node_summaries().await?;
        Ok(nodes
            .into_iter()
            .map(
                |NodeSummary {
                     node,
                     open_connections,
                 }| api::Node {
                    alive: alive(&node, now),
                    started_at: Timestamp::from_unix_ms(node.started_at),
                    last_seen_at: Timestamp::from_unix_ms(node.heartbeat_at),
                    connections: u64::try_from(open_connections).unwrap_or_default(),
                    name: node.name,
                    tunnel_addr: node.tunnel_addr,
                    edge_addr: node.edge_addr,
                    api_addr: node.api_addr,
                    version: node.version,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_endpoints_take_a_host_with_or_without_a_port() {
        let parsed = |given| parse_endpoint(given, 7844).map(|(_, endpoint)| endpoint);
        assert_eq!(
            parsed("tunnels.example.com").unwrap(),
            "tunnels.example.com:7844"
        );
        assert_eq!(
            parsed("tunnels.example.com:443").unwrap(),
            "tunnels.example.com:443"
        );
        assert_eq!(parsed("10.0.0.1").unwrap(), "10.0.0.1:7844");
        assert_eq!(parsed("[fd00::1]:443").unwrap(), "[fd00::1]:443");
        assert_eq!(parsed("fd00::1").unwrap(), "[fd00::1]:7844");
        assert_eq!(
            parse_endpoint("[fd00::1]:443", 1).unwrap().0,
            "fd00::1",
            "the certificate names the host without brackets"
        );
        for bad in ["", ":443", "tunnels.example.com:https", "a b:1", "http://x"] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
    }

    fn node(heartbeat_at: i64, stopped_at: Option<i64>) -> NodeRow {
        NodeRow {
            name: "edge-1".into(),
            id: "id".into(),
            tunnel_addr: "127.0.0.1:7844".into(),
            edge_addr: "127.0.0.1:8080".into(),
            api_addr: "127.0.0.1:8000".into(),
            version: "0.1.0".into(),
            started_at: 0,
            heartbeat_at,
            stopped_at,
        }
    }

    #[test]
    fn a_node_dies_after_three_missed_beats_or_when_it_stops() {
        let now = 100_000;
        assert!(alive(&node(now, None), now));
        assert!(alive(&node(now - 6_000, None), now));
        assert!(!alive(&node(now - 6_001, None), now));
        assert!(!alive(&node(now, Some(now)), now));
    }

    #[test]
    fn unspecified_addresses_are_advertised_as_the_public_host() {
        let any4: SocketAddr = "0.0.0.0:7844".parse().unwrap();
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        let bound: SocketAddr = "10.0.0.5:8000".parse().unwrap();
        assert_eq!(
            advertised(any4, "edge.example.com"),
            "edge.example.com:7844"
        );
        assert_eq!(advertised(any6, "2001:db8::1"), "[2001:db8::1]:8080");
        assert_eq!(advertised(bound, "edge.example.com"), "10.0.0.5:8000");
    }
}
