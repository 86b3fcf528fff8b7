//! The data connections this edge node holds right now, by tunnel. The edge picks one per
//! request; rotation and deletion close them all.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
};

use adit_core::{
    ids::{ConnectionId, ConnectorId, TunnelId},
    wire::ConnectorError,
};
use adit_transport::workers;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, combinators::UnsyncBoxBody};
use tokio_util::sync::CancellationToken;

use crate::{clock::now_ms, tunnel::link::LinkSender};

pub use adit_transport::relay::BoxError;
/// A body travelling through the edge, whatever its source.
pub type TunnelBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body with nothing in it; zero-sized, so boxing it allocates nothing.
pub fn empty_body() -> TunnelBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Whether [`resendable`] can copy `request`: no body, no extensions.
pub fn can_resend(request: &Request<TunnelBody>) -> bool {
    hyper::body::Body::is_end_stream(request.body()) && request.extensions().is_empty()
}

/// A copy of `request` to send again if the connection (or node) it went to never
/// processed it: only for a request without a body (a body is streamed once) and without
/// extensions (an upgrade's).
pub fn resendable(request: &Request<TunnelBody>) -> Option<Request<TunnelBody>> {
    if !can_resend(request) {
        return None;
    }
    let mut copy = Request::new(empty_body());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// How long a connector whose origin just failed is passed over while another connector
/// of the tunnel is not; after it, a request finds out whether the origin is back.
pub const ORIGIN_FAILURE_HOLD_MS: i64 = 10_000;

/// What one request through a connection showed of the connector's origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginOutcome {
    /// An origin answered (whatever its status); false when the connector could not reach
    /// one (it answered for it with a 5xx of its own).
    pub reachable: bool,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// The connector's error code when unreachable (`origin_unreachable`, …).
    pub error: Option<ConnectorError>,
}

/// One connector connection that streams can be opened on.
pub struct LiveConnection {
    pub id: ConnectionId,
    pub tunnel_id: TunnelId,
    pub connector_id: ConnectorId,
    pub index: u8,
    /// The data-plane protocol version negotiated in the hello (`adit_core::wire`).
    pub version: u32,
    pub sender: LinkSender,
    /// Cancelling closes the connection's socket.
    pub close: CancellationToken,
    /// The worker thread serving it (`adit_transport::workers`), preferred for visitors
    /// served on the same thread.
    worker: Option<usize>,
    in_flight: AtomicUsize,
    /// Its connector is stopping: no new streams (in-flight ones finish).
    draining: AtomicBool,
    /// When a request through it last reached an origin (ms since the epoch; 0: never).
    /// Atomics, as every request writes one and every pick reads both.
    origin_reached_ms: AtomicI64,
    /// When one last did not (0: never), and the connector's error code then.
    origin_missed_ms: AtomicI64,
    origin_missed_code: Mutex<Option<ConnectorError>>,
}

impl LiveConnection {
    pub fn new(
        id: ConnectionId,
        tunnel_id: TunnelId,
        connector_id: ConnectorId,
        index: u8,
        version: u32,
        sender: LinkSender,
        close: CancellationToken,
    ) -> Self {
        Self {
            id,
            tunnel_id,
            connector_id,
            index,
            version,
            sender,
            close,
            worker: workers::current(),
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            origin_reached_ms: AtomicI64::new(0),
            origin_missed_ms: AtomicI64::new(0),
            origin_missed_code: Mutex::new(None),
        }
    }

    /// Counts a stream as in flight until the guard drops.
    pub fn begin_stream(self: &Arc<Self>) -> StreamGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.clone())
    }

    /// A request through this connection reached an origin.
    pub fn origin_reached(&self) {
        self.origin_reached_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A request through this connection reached no origin: the connector said `code`.
    pub fn origin_missed(&self, code: ConnectorError) {
        // The code first, so a reader that sees the new time finds it.
        *self
            .origin_missed_code
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(code);
        self.origin_missed_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The latest of the two.
    fn last_origin(&self) -> Option<OriginOutcome> {
        let reached = self.origin_reached_ms.load(Ordering::Relaxed);
        let missed = self.origin_missed_ms.load(Ordering::Relaxed);
        if missed > reached {
            let code = *self
                .origin_missed_code
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Some(OriginOutcome {
                reachable: false,
                at_ms: missed,
                error: code,
            })
        } else {
            (reached > 0).then_some(OriginOutcome {
                reachable: true,
                at_ms: reached,
                error: None,
            })
        }
    }

    /// Whether it may take a new stream.
    fn usable(&self) -> bool {
        !self.draining.load(Ordering::Relaxed)
            && !self.sender.is_closed()
            && !self.close.is_cancelled()
    }
}

pub struct StreamGuard(Arc<LiveConnection>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Registry {
    tunnels: Mutex<foldhash::HashMap<TunnelId, Vec<Arc<LiveConnection>>>>,
    rotor: AtomicUsize,
    /// This node is leaving: it takes no more connections.
    leaving: AtomicBool,
}

/// Which worker thread's connections [`Registry::pick`] prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Near {
    /// The caller's: a request and its answer then stay on one thread.
    Same,
    /// Another's: a long byte stream then has a core for each side.
    Other,
}

impl Registry {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, foldhash::HashMap<TunnelId, Vec<Arc<LiveConnection>>>> {
        // A panic while holding the lock leaves the map consistent: every change is one call.
        self.tunnels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a connection for the edge to pick; not once [`release_all`](Self::release_all)
    /// has run (this node is leaving): then the connection is dropped, which closes it.
    /// Whether it took it.
    pub fn add(&self, connection: Arc<LiveConnection>) -> bool {
        let mut tunnels = self.lock();
        if self.leaving.load(Ordering::Relaxed) {
            return false;
        }
        tunnels
            .entry(connection.tunnel_id)
            .or_default()
            .push(connection);
        true
    }

    pub fn remove(&self, tunnel: TunnelId, id: ConnectionId) {
        let mut tunnels = self.lock();
        if let Some(list) = tunnels.get_mut(&tunnel) {
            list.retain(|c| c.id != id);
            if list.is_empty() {
                tunnels.remove(&tunnel);
            }
        }
    }

    /// The usable connection with the fewest streams in flight, skipping `excluded`; ties
    /// go round-robin so load spreads over all of them. A request (`Near::Same`) prefers
    /// the connections served by the caller's worker thread, so it crosses no thread; a
    /// long byte stream (`Near::Other`) prefers another worker's, so that its two sides run
    /// on two cores. Connectors whose origin
    /// failed in the last [`ORIGIN_FAILURE_HOLD_MS`] are passed over while another
    /// connector's is not known to fail.
    pub fn pick(
        &self,
        tunnel: TunnelId,
        excluded: &[ConnectionId],
        near: Near,
    ) -> Option<Arc<LiveConnection>> {
        let tunnels = self.lock();
        let list = tunnels.get(&tunnel)?;
        // Most tunnels never see an origin fail: then no clock read and no allocation.
        let failing = if list
            .iter()
            .any(|c| c.origin_missed_ms.load(Ordering::Relaxed) != 0)
        {
            failing_connectors(list, now_ms())
        } else {
            Vec::new()
        };
        let start = self.rotor.fetch_add(1, Ordering::Relaxed);
        let n = list.len();
        let candidates = || {
            (0..n)
                .map(move |i| &list[(start + i) % n])
                .filter(|c| c.usable() && !excluded.contains(&c.id))
        };
        let here = workers::current();
        let least_loaded = |c: &&Arc<LiveConnection>| {
            let elsewhere = c.worker != here;
            // `false` sorts first: the preferred placement, then the fewest streams.
            let misplaced = match near {
                Near::Same => elsewhere,
                Near::Other => !elsewhere,
            };
            (misplaced, c.in_flight.load(Ordering::Relaxed))
        };
        candidates()
            .filter(|c| !failing.contains(&c.connector_id))
            .min_by_key(least_loaded)
            .or_else(|| candidates().min_by_key(least_loaded))
            .cloned()
    }

    /// Stops giving streams to `connector`'s connections (it is shutting down), or to
    /// one of them (it is moving); streams in flight go on. How many connections that
    /// concerns.
    pub fn drain(
        &self,
        tunnel: TunnelId,
        connector: ConnectorId,
        only: Option<ConnectionId>,
    ) -> usize {
        let tunnels = self.lock();
        let Some(list) = tunnels.get(&tunnel) else {
            return 0;
        };
        list.iter()
            .filter(|c| c.connector_id == connector && only.is_none_or(|id| c.id == id))
            .map(|c| c.draining.store(true, Ordering::Relaxed))
            .count()
    }

    /// Lets go of every connection (this node is leaving the cluster): no new streams
    /// here, and each connection closes (GOAWAY) once its streams in flight are done —
    /// they hold the connection, not the registry. Connections added later are refused.
    /// How many it let go.
    pub fn release_all(&self) -> usize {
        let mut tunnels = self.lock();
        self.leaving.store(true, Ordering::Relaxed);
        std::mem::take(&mut *tunnels)
            .into_values()
            .map(|list| list.len())
            .sum()
    }

    /// Whether this node is leaving ([`release_all`](Self::release_all) ran).
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Relaxed)
    }

    /// The tunnels with a connection here.
    pub fn tunnels(&self) -> Vec<TunnelId> {
        self.lock().keys().copied().collect()
    }

    pub fn connections(&self, tunnel: TunnelId) -> Vec<Arc<LiveConnection>> {
        self.lock().get(&tunnel).cloned().unwrap_or_default()
    }

    /// The latest origin outcome seen through any of `connector`'s connections to this
    /// node: the connector's origin health as this edge knows it.
    pub fn origin_health(&self, tunnel: TunnelId, connector: ConnectorId) -> Option<OriginOutcome> {
        self.lock()
            .get(&tunnel)?
            .iter()
            .filter(|c| c.connector_id == connector)
            .filter_map(|c| c.last_origin())
            .max_by_key(|o| o.at_ms)
    }

    /// Closes every connection of a tunnel (secret rotated, tunnel deleted).
    pub fn close_tunnel(&self, tunnel: TunnelId) -> usize {
        self.close(tunnel, None)
    }

    /// Closes and forgets a tunnel's connections: all, or those of one connector.
    pub fn close(&self, tunnel: TunnelId, connector: Option<ConnectorId>) -> usize {
        let mut tunnels = self.lock();
        let Some(list) = tunnels.get_mut(&tunnel) else {
            return 0;
        };
        let (closing, kept): (Vec<_>, Vec<_>) = std::mem::take(list)
            .into_iter()
            .partition(|c| connector.is_none_or(|id| c.connector_id == id));
        if kept.is_empty() {
            tunnels.remove(&tunnel);
        } else {
            *list = kept;
        }
        for connection in &closing {
            connection.close.cancel();
        }
        closing.len()
    }
}

/// The connectors among `list`'s whose latest origin outcome, over all their connections,
/// is a failure less than [`ORIGIN_FAILURE_HOLD_MS`] old.
fn failing_connectors(list: &[Arc<LiveConnection>], now: i64) -> Vec<ConnectorId> {
    // (connector, latest reached, latest missed); a handful of connectors per tunnel.
    let mut latest: Vec<(ConnectorId, i64, i64)> = Vec::new();
    for c in list {
        let reached = c.origin_reached_ms.load(Ordering::Relaxed);
        let missed = c.origin_missed_ms.load(Ordering::Relaxed);
        match latest.iter_mut().find(|(id, ..)| *id == c.connector_id) {
            Some(entry) => {
                entry.1 = entry.1.max(reached);
                entry.2 = entry.2.max(missed);
            }
            None => latest.push((c.connector_id, reached, missed)),
        }
    }
    latest
        .into_iter()
        .filter(|&(_, reached, missed)| missed > reached && now - missed < ORIGIN_FAILURE_HOLD_MS)
        .map(|(id, ..)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;

    use super::*;
    use crate::tunnel::testing::{self, ok_connection};

    #[tokio::test]
    async fn a_stream_crosses_the_in_memory_connection() {
        let tunnel = TunnelId::random();
        let connection = ok_connection(tunnel, "hello").await;
        let request = http::Request::builder()
            .uri("http://app.example.com/")
            .body(empty_body())
            .unwrap();
        let response = connection.sender.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
    }

    #[tokio::test]
    async fn pick_takes_the_least_loaded_usable_connection() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let (a, b) = (
            ok_connection(tunnel, "a").await,
            ok_connection(tunnel, "b").await,
        );
        registry.add(a.clone());
        registry.add(b.clone());
        assert_eq!(
            registry
                .pick(TunnelId::random(), &[], Near::Same)
                .map(|c| c.id),
            None
        );

        let busy = a.begin_stream();
        for _ in 0..4 {
            assert_eq!(registry.pick(tunnel, &[], Near::Same).unwrap().id, b.id);
        }
        assert_eq!(registry.pick(tunnel, &[b.id], Near::Same).unwrap().id, a.id);
        drop(busy);

        // With equal loads, both take turns.
        let picked: std::collections::HashSet<_> = (0..4)
            .map(|_| registry.pick(tunnel, &[], Near::Same).unwrap().id)
            .collect();
        assert_eq!(picked.len(), 2);

        b.close.cancel();
        assert_eq!(registry.pick(tunnel, &[], Near::Same).unwrap().id, a.id);
        registry.remove(tunnel, a.id);
        assert!(registry.pick(tunnel, &[], Near::Same).is_none());
    }

    #[tokio::test]
    async fn pick_prefers_the_callers_worker_for_requests_and_another_for_byte_streams() {
        let workers = adit_transport::workers::Workers::start(2, "test-edge").unwrap();
        let registry = Arc::new(Registry::default());
        let tunnel = TunnelId::random();
        let on = |worker| workers.handle(worker).spawn(ok_connection(tunnel, "ok"));
        let (a, b) = (on(0).await.unwrap(), on(1).await.unwrap());
        registry.add(a.clone());
        registry.add(b.clone());
        let _busy = [b.begin_stream(), b.begin_stream()];
        let pick_on = |worker| {
            let registry = registry.clone();
            workers
                .handle(worker)
                .spawn(async move { registry.pick(tunnel, &[], Near::Same).unwrap().id })
        };
        // On worker 1, its own connection even though it is busier; on worker 0, its own.
        for _ in 0..4 {
            assert_eq!(pick_on(1).await.unwrap(), b.id);
            assert_eq!(pick_on(0).await.unwrap(), a.id);
        }
        // A long stream prefers the other worker's connection.
        let other_on = |worker| {
            let registry = registry.clone();
            workers
                .handle(worker)
                .spawn(async move { registry.pick(tunnel, &[], Near::Other).unwrap().id })
        };
        assert_eq!(other_on(0).await.unwrap(), b.id);
        assert_eq!(other_on(1).await.unwrap(), a.id);
        // Off the workers, the least loaded; without its own, a worker takes another's.
        assert_eq!(registry.pick(tunnel, &[], Near::Same).unwrap().id, a.id);
        registry.remove(tunnel, b.id);
        assert_eq!(pick_on(1).await.unwrap(), a.id);
    }

    #[tokio::test]
    async fn released_connections_close_once_their_streams_are_done() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let ok = |_: &Request<Incoming>| Response::new(Full::new(Bytes::from_static(b"ok")));
        let (idle, idle_end) = testing::connection_watched(tunnel, ok).await;
        let (busy, busy_end) = testing::connection_watched(tunnel, ok).await;
        registry.add(idle);
        registry.add(busy.clone());
        let in_flight = busy.begin_stream();
        drop(busy);

        assert_eq!(registry.release_all(), 2);
        assert!(
            registry.pick(tunnel, &[], Near::Same).is_none(),
            "no new streams"
        );
        let late = ok_connection(tunnel, "late").await;
        assert!(
            !registry.add(late),
            "a leaving node takes no new connection"
        );
        let closes = Duration::from_secs(5);
        tokio::time::timeout(closes, idle_end)
            .await
            .expect("an idle connection closes at once")
            .unwrap();
        let mut busy_end = busy_end;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut busy_end)
                .await
                .is_err(),
            "a connection stays while a stream is in flight on it"
        );
        drop(in_flight);
        tokio::time::timeout(closes, busy_end)
            .await
            .expect("closes when its last stream is done")
            .unwrap();
    }

    #[tokio::test]
    async fn close_tunnel_closes_and_forgets_all_its_connections() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let other = TunnelId::random();
        let (a, b, c) = (
            ok_connection(tunnel, "a").await,
            ok_connection(tunnel, "b").await,
            ok_connection(other, "c").await,
        );
        for connection in [&a, &b, &c] {
            registry.add(connection.clone());
        }
        assert_eq!(registry.close_tunnel(tunnel), 2);
        assert!(a.close.is_cancelled() && b.close.is_cancelled());
        assert!(registry.connections(tunnel).is_empty());
        assert!(!c.close.is_cancelled());
        assert_eq!(registry.connections(other).len(), 1);
    }

    #[tokio::test]
    async fn origin_health_is_the_latest_outcome_of_the_connectors_connections() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let connection = ok_connection(tunnel, "a").await;
        registry.add(connection.clone());
        assert_eq!(
            registry.origin_health(tunnel, connection.connector_id),
            None
        );

        connection.origin_missed(ConnectorError::OriginRefused);
        let health = registry
            .origin_health(tunnel, connection.connector_id)
            .unwrap();
        assert!(!health.reachable);
        assert_eq!(health.error, Some(ConnectorError::OriginRefused));
        assert_eq!(registry.origin_health(tunnel, ConnectorId::random()), None);
    }

    #[tokio::test]
    async fn a_draining_connector_gets_no_new_streams() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let (a, b) = (
            ok_connection(tunnel, "a").await,
            ok_connection(tunnel, "b").await,
        );
        registry.add(a.clone());
        registry.add(b.clone());
        assert_eq!(registry.drain(tunnel, a.connector_id, None), 1);
        for _ in 0..4 {
            assert_eq!(registry.pick(tunnel, &[], Near::Same).unwrap().id, b.id);
        }
        assert_eq!(registry.drain(tunnel, b.connector_id, Some(b.id)), 1);
        assert!(registry.pick(tunnel, &[], Near::Same).is_none());
        // Draining is not closing: the connector ends its connections itself.
        assert!(!a.close.is_cancelled());
        assert_eq!(registry.connections(tunnel).len(), 2);
    }

    #[tokio::test]
    async fn a_connector_whose_origin_fails_is_passed_over_while_another_is_not() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let (a, b) = (
            ok_connection(tunnel, "a").await,
            ok_connection(tunnel, "b").await,
        );
        registry.add(a.clone());
        registry.add(b.clone());
        a.origin_missed(ConnectorError::OriginRefused);
        for _ in 0..4 {
            assert_eq!(registry.pick(tunnel, &[], Near::Same).unwrap().id, b.id);
        }
        // When every connector's origin fails, they all still serve.
        b.origin_missed(ConnectorError::OriginUnreachable);
        let picked: std::collections::HashSet<_> = (0..4)
            .map(|_| registry.pick(tunnel, &[], Near::Same).unwrap().id)
            .collect();
        assert_eq!(picked.len(), 2);
        // An origin that answers again makes its connector preferred again.
        a.origin_reached();
        for _ in 0..4 {
            assert_eq!(registry.pick(tunnel, &[], Near::Same).unwrap().id, a.id);
        }
    }

    #[tokio::test]
    async fn an_origin_failure_is_held_against_its_connector_for_a_while() {
        let tunnel = TunnelId::random();
        let connection = ok_connection(tunnel, "a").await;
        let list = [connection.clone()];
        connection.origin_reached_ms.store(1_000, Ordering::Relaxed);
        connection.origin_missed_ms.store(2_000, Ordering::Relaxed);
        let failing = |now| failing_connectors(&list, now);
        assert_eq!(
            failing(2_000 + ORIGIN_FAILURE_HOLD_MS - 1),
            [connection.connector_id]
        );
        assert!(failing(2_000 + ORIGIN_FAILURE_HOLD_MS).is_empty());
        connection.origin_reached_ms.store(3_000, Ordering::Relaxed);
        assert!(failing(3_000).is_empty());
    }

    #[tokio::test]
    async fn closing_one_connector_keeps_the_others() {
        let registry = Registry::default();
        let tunnel = TunnelId::random();
        let (a, b) = (
            ok_connection(tunnel, "a").await,
            ok_connection(tunnel, "b").await,
        );
        registry.add(a.clone());
        registry.add(b.clone());
        assert_eq!(registry.close(tunnel, Some(a.connector_id)), 1);
        assert!(a.close.is_cancelled() && !b.close.is_cancelled());
        assert_eq!(registry.connections(tunnel).len(), 1);
        assert_eq!(registry.close(tunnel, Some(a.connector_id)), 0);
        assert_eq!(registry.close(tunnel, None), 1);
        assert!(registry.connections(tunnel).is_empty());
    }
}
