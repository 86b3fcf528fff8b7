//! What a node tells the other nodes of a cluster after a change, and what it does when
//! told. Each node keeps in memory what the edge needs at once — the route table, the live
//! connections, the configuration watchers, the dashboard's notice streams — so a change
//! stored by one node must reach the others' memory too. They learn it from a notice on
//! the database ([`Storage::broadcast`], PostgreSQL `NOTIFY`), sent once the change is
//! committed; a node that may have missed notices (its listening connection dropped)
//! re-reads everything instead. On SQLite there is one node and nothing to send.

use std::{sync::Arc, time::Duration};

use adit_core::{
    api::ChangeKind,
    hostname::HostPattern,
    ids::{AccountId, ConnectorId, RouteId, TunnelId},
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Control;
use crate::tunnel::routes::{RouteChange, RouteEntry};

/// A change other nodes must apply to what they hold in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum ClusterEvent {
    /// A dashboard notice (`GET /api/v1/events`) for the account's pages.
    Notice {
        account: AccountId,
        kind: ChangeKind,
        tunnel: TunnelId,
    },
    /// Routes were added or removed: each node applies the same changes to its table.
    Routes { changes: Vec<RouteDelta> },
    /// Routes changed in more ways than one notice holds: the route table is read again.
    RoutesChanged,
    /// The tunnel was deleted or given a new secret: its connections close.
    TunnelClosed { tunnel: TunnelId },
    /// Connectors were cleaned up (all of the tunnel's, or one): their connections close.
    ConnectorsDropped {
        tunnel: TunnelId,
        connector: Option<ConnectorId>,
    },
    /// A remotely managed tunnel has a new configuration: its watchers send it.
    Configuration { tunnel: TunnelId },
    /// Public TLS changed (a zone's certificate or HTTPS-only setting, an ACME certificate
    /// or challenge): what the edge serves of it is read again.
    PublicTls,
}

/// One [`RouteChange`] on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum RouteDelta {
    Add {
        id: RouteId,
        hostname: HostPattern,
        tunnel: TunnelId,
        created_at: i64,
    },
    Remove {
        id: RouteId,
        hostname: HostPattern,
    },
    RemoveTunnel {
        tunnel: TunnelId,
    },
}

impl From<&RouteChange> for RouteDelta {
    fn from(change: &RouteChange) -> Self {
        match change {
            RouteChange::Add(route) => Self::Add {
                id: route.id,
                hostname: route.pattern.clone(),
                tunnel: route.tunnel,
                created_at: route.created_at,
            },
            RouteChange::Remove { id, pattern } => Self::Remove {
                id: *id,
                hostname: pattern.clone(),
            },
            RouteChange::RemoveTunnel(tunnel) => Self::RemoveTunnel { tunnel: *tunnel },
        }
    }
}

impl From<RouteDelta> for RouteChange {
    fn from(delta: RouteDelta) -> Self {
        match delta {
            RouteDelta::Add {
                id,
                hostname,
                tunnel,
                created_at,
            } => Self::Add(RouteEntry {
                id,
                pattern: hostname,
                tunnel,
                created_at,
            }),
            RouteDelta::Remove { id, hostname } => Self::Remove {
                id,
                pattern: hostname,
            },
            RouteDelta::RemoveTunnel { tunnel } => Self::RemoveTunnel(tunnel),
        }
    }
}

impl ClusterEvent {
    pub(crate) fn routes(changes: &[RouteChange]) -> Self {
        Self::Routes {
            changes: changes.iter().map(RouteDelta::from).collect(),
        }
    }
}

/// PostgreSQL refuses a `NOTIFY` payload of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

/// A notice on the wire: the event and the node that sent it (which ignores its own).
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: uuid::Uuid,
    #[serde(flatten)]
    event: ClusterEvent,
}

/// This node's side of the cluster's notices. Without an outbox (SQLite, or before the
/// cluster task runs) events are not sent anywhere.
pub(crate) struct ClusterBus {
    /// Tells this node's own notices from the others'.
    node: uuid::Uuid,
    outbox: Option<mpsc::UnboundedSender<ClusterEvent>>,
}

impl Default for ClusterBus {
    fn default() -> Self {
        Self {
            node: uuid::Uuid::new_v4(),
            outbox: None,
        }
    }
}

/// What the cluster task sends: the events of this node, in the order they happened.
pub struct Outbox(mpsc::UnboundedReceiver<ClusterEvent>);

impl ClusterBus {
    /// Starts queueing events for [`run`], which sends them.
    pub(crate) fn open(&mut self) -> Outbox {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.outbox = Some(sender);
        Outbox(receiver)
    }

    pub(crate) fn announce(&self, event: ClusterEvent) {
        if let Some(outbox) = &self.outbox {
            // Closed only when the cluster task has ended: the server is stopping.
            let _ = outbox.send(event);
        }
    }
}

impl Control {
    /// Tells the account's live pages, on every node, that `tunnel` changed.
    pub(crate) fn notify(&self, account: AccountId, kind: ChangeKind, tunnel: TunnelId) {
        self.changes.notify(account, kind, tunnel);
        self.cluster.announce(ClusterEvent::Notice {
            account,
            kind,
            tunnel,
        });
    }

    /// Applies another node's change to what this node holds.
    async fn apply(&self, event: ClusterEvent) {
        match event {
            ClusterEvent::Notice {
                account,
                kind,
                tunnel,
            } => self.changes.notify(account, kind, tunnel),
            ClusterEvent::Routes { changes } => {
                let changes: Vec<RouteChange> = changes.into_iter().map(Into::into).collect();
                self.routes.apply(&changes);
            }
            ClusterEvent::RoutesChanged => {
                if let Err(e) = self.load_routes().await {
                    tracing::error!(error = %e, "could not re-read the routes another node changed");
                }
            }
            ClusterEvent::TunnelClosed { tunnel } => {
                let closed = self.registry.close_tunnel(tunnel);
                tracing::info!(%tunnel, closed, "tunnel closed by another node");
            }
            ClusterEvent::ConnectorsDropped { tunnel, connector } => {
                self.registry.close(tunnel, connector);
            }
            ClusterEvent::Configuration { tunnel } => self.config_events.publish(tunnel),
            ClusterEvent::PublicTls => {
                if let Err(e) = self.reload_public_tls().await {
                    tracing::error!(error = %e, "could not re-read the public TLS another node changed");
                }
            }
        }
    }

    /// After notices may have been lost: everything they could have said, read again.
    async fn resync(&self) -> Result<(), crate::Error> {
        self.load_routes().await?;
        self.reload_public_tls().await?;
        for tunnel in self.registry.tunnels() {
            if self.storage.tunnel_by_id(tunnel).await?.is_none() {
                self.registry.close_tunnel(tunnel);
            }
            // Watchers re-read the stored version and send it only when it is newer.
            self.config_events.publish(tunnel);
        }
        self.changes.resync_all();
        Ok(())
    }
}

impl Control {
    /// The live nodes a connector of the token's tunnel may spread its connections over:
    /// none outside a cluster (it keeps the address it was given).
    pub async fn node_addrs_for_token(&self, token: &str) -> Result<Vec<String>, crate::Error> {
        self.authenticate_token(token).await?;
        if !self.storage.is_shared() {
            return Ok(Vec::new());
        }
        let alive_since = crate::clock::now_ms() - super::nodes::dead_after_ms();
        self.storage.live_node_addrs(alive_since).await
    }
}

impl crate::tunnel::node_link::Directory for Control {
    async fn holders(&self, tunnel: TunnelId) -> Result<Vec<String>, crate::Error> {
        self.storage
            .tunnel_holders(tunnel, &self.endpoints.node)
            .await
    }
}

/// Sends this node's events and applies the others', until `shutdown`.
pub async fn run(control: Arc<Control>, outbox: Outbox, shutdown: CancellationToken) {
    let sending = send(control.clone(), outbox, shutdown.clone())
        .instrument(tracing::info_span!("cluster_send"));
    let receiving = receive(control, shutdown).instrument(tracing::info_span!("cluster_receive"));
    tokio::join!(sending, receiving);
}

async fn send(control: Arc<Control>, mut outbox: Outbox, shutdown: CancellationToken) {
    let from = control.cluster.node;
    loop {
        let event = tokio::select! {
            event = outbox.0.recv() => event,
            () = shutdown.cancelled() => None,
        };
        let Some(event) = event else { return };
        let payload = match encode(from, event) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "could not encode a cluster notice");
                continue;
            }
        };
        if let Err(e) = control.storage.broadcast(&payload).await {
            // The others will resync when their own connection notices the outage; when
            // only this node's pool failed, they miss this one change until the next.
            tracing::warn!(error = %e, "could not send a notice to the other nodes");
        }
    }
}

/// The notice for `event`; route changes too many for one notice become "read the routes
/// again".
fn encode(from: uuid::Uuid, event: ClusterEvent) -> Result<String, serde_json::Error> {
    let payload = serde_json::to_string(&Envelope { from, event })?;
    if payload.len() <= MAX_PAYLOAD {
        return Ok(payload);
    }
    let event = ClusterEvent::RoutesChanged;
    serde_json::to_string(&Envelope { from, event })
}

/// How long to wait before listening again after the database refused.
const RELISTEN: Duration = Duration::from_secs(1);

async fn receive(control: Arc<Control>, shutdown: CancellationToken) {
    let own = control.cluster.node;
    loop {
        let mut listener = tokio::select! {
            listener = control.storage.listen() => match listener {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RELISTEN) => continue,
                        () = shutdown.cancelled() => return,
                    }
                }
            },
            () = shutdown.cancelled() => return,
        };
        // Whatever happened before listening started was not heard.
        if let Err(e) = control.resync().await {
            tracing::warn!(error = %e, "could not resync with the other nodes");
        }
        loop {
            let next = tokio::select! {
                next = listener.next() => next,
                () = shutdown.cancelled() => return,
            };
            match next {
                Ok(Some(payload)) => match serde_json::from_str::<Envelope>(&payload) {
                    Ok(envelope) if envelope.from == own => {}
                    Ok(envelope) => control.apply(envelope.event).await,
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed cluster notice"),
                },
                Ok(None) => {
                    tracing::warn!(
                        "lost the database connection that hears other nodes; resyncing"
                    );
                    if let Err(e) = control.resync().await {
                        tracing::warn!(error = %e, "could not resync with the other nodes");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other nodes' changes failed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_back_as_sent() {
        let events = [
            ClusterEvent::Notice {
                account: AccountId::random(),
                kind: ChangeKind::Route,
                tunnel: TunnelId::random(),
            },
            ClusterEvent::RoutesChanged,
            ClusterEvent::routes(&[
                RouteChange::Add(RouteEntry {
                    id: RouteId::random(),
                    pattern: HostPattern::parse("*.example.com").unwrap(),
                    tunnel: TunnelId::random(),
                    created_at: 1,
                }),
                RouteChange::Remove {
                    id: RouteId::random(),
                    pattern: HostPattern::parse("app.example.com").unwrap(),
                },
                RouteChange::RemoveTunnel(TunnelId::random()),
            ]),
            ClusterEvent::TunnelClosed {
                tunnel: TunnelId::random(),
            },
            ClusterEvent::ConnectorsDropped {
                tunnel: TunnelId::random(),
                connector: None,
            },
            ClusterEvent::Configuration {
                tunnel: TunnelId::random(),
            },
            ClusterEvent::PublicTls,
        ];
        for event in events {
            let from = uuid::Uuid::new_v4();
            let text = serde_json::to_string(&Envelope {
                from,
                event: event.clone(),
            })
            .unwrap();
            assert!(text.len() < 8000, "fits a NOTIFY payload");
            let back: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!((back.from, back.event), (from, event));
        }
    }

    #[test]
    fn route_changes_too_many_for_one_notice_ask_for_a_reload() {
        let changes: Vec<RouteChange> = (0..200)
            .map(|n| {
                RouteChange::Add(RouteEntry {
                    id: RouteId::random(),
                    pattern: HostPattern::parse(&format!("host-{n}.example.com")).unwrap(),
                    tunnel: TunnelId::random(),
                    created_at: n,
                })
            })
            .collect();
        let from = uuid::Uuid::new_v4();
        let text = encode(from, ClusterEvent::routes(&changes)).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.event, ClusterEvent::RoutesChanged);
        let one = encode(from, ClusterEvent::routes(&changes[..1])).unwrap();
        let back: Envelope = serde_json::from_str(&one).unwrap();
        assert_eq!(back.event, ClusterEvent::routes(&changes[..1]));
    }
}
