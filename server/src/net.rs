//! The accept loop every listener shares, and what it allows a peer that has not proven
//! itself yet: a connection is *pending* from its accept until the listener has seen what
//! it needs (an accepted token on the tunnel listener, a request head on the edge and the
//! API). Pending connections are capped per source address and have a deadline, so sockets
//! held by peers who never get that far cannot starve the process of file descriptors.

use std::{
    collections::HashMap,
    fmt::Display,
    future::Future,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use adit_transport::workers::{self, Spread, Workers};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

/// How long a visitor's or an API client's connection may take to finish its requests
/// once the server is stopping.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts until `shutdown`, turns Nagle off on each socket (small writes must not wait
/// for an ACK), and serves each connection in its own task under a span naming the peer.
/// A source already holding `max_pending` pending connections has the new one closed at
/// once. With `workers`, each connection is served on the worker holding the fewest of this
/// listener's connections (its socket registered with that worker's runtime, so its
/// wake-ups stay on that thread). Returns the connections' tasks, still running, for a
/// caller that drains them.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    what: &'static str,
    max_pending: u32,
    workers: Option<&Workers>,
    shutdown: CancellationToken,
    serve: F,
) -> TaskTracker
where
    F: Fn(TcpStream, SocketAddr, Pending) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let serve = Arc::new(serve);
    let admission = Arc::new(Admission {
        max_pending,
        pending: Mutex::default(),
    });
    let tasks = TaskTracker::new();
    // Without workers (or with none started) connections stay on the caller's runtime.
    let placement = workers
        .filter(|w| w.count() > 0)
        .map(|w| (w, Spread::new(w)));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: pause instead of spinning.
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(pending) = admission.admit(peer.ip()) else {
            // Debug only: a flood would otherwise write a line per connection.
            tracing::debug!(listener = what, %peer, "too many pending connections from this source; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let span = tracing::debug_span!("conn", listener = what, %peer);
        match &placement {
            Some((workers, spread)) => {
                let serve = serve.clone();
                let Ok(task) = workers::moved(stream, move |s| serve(s, peer, pending)) else {
                    continue;
                };
                let placed = spread.place();
                let worker = workers.handle(placed.worker());
                let task = async move {
                    let _placed = placed;
                    if let Err(e) = task.await {
                        tracing::debug!(error = %e, "could not hand a connection to its worker");
                    }
                };
                tasks.spawn_on(task.instrument(span), &worker);
            }
            None => {
                tasks.spawn(serve(stream, peer, pending).instrument(span));
            }
        }
    }
    tasks.close();
    tasks
}

/// Serves one HTTP connection until it ends. It is closed if `pending` has not been proven
/// by `deadline`, and drained (`graceful`, then at most `drain`) when `shutdown` is
/// cancelled. (`graceful` is a function rather than hyper-util's `GracefulConnection`
/// bound, with which the compiler cannot prove the auto connection's future `Send`.)
pub(crate) async fn serve_http<C, E>(
    conn: C,
    graceful: fn(Pin<&mut C>),
    drain: Duration,
    pending: &Pending,
    deadline: Instant,
    shutdown: &CancellationToken,
) where
    C: Future<Output = Result<(), E>>,
    E: Display,
{
    tokio::pin!(conn);
    let expired = async {
        tokio::select! {
            () = pending.proven() => std::future::pending().await,
            () = tokio::time::sleep_until(deadline) => {},
        }
    };
    tokio::select! {
        result = conn.as_mut() => if let Err(e) = result {
            tracing::debug!(error = %e, "connection ended with an error");
        },
        () = expired => tracing::debug!("closed a connection that did not prove itself in time"),
        () = shutdown.cancelled() => {
            graceful(conn.as_mut());
            let _ = tokio::time::timeout(drain, conn).await;
        }
    }
}

/// Pending connections per source, for one listener.
struct Admission {
    max_pending: u32,
    pending: Mutex<HashMap<IpAddr, u32>>,
}

impl Admission {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Pending> {
        let source = source_of(ip);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let held = pending.entry(source).or_default();
        if *held >= self.max_pending {
            return None;
        }
        *held += 1;
        Some(Pending(Arc::new(PendingInner {
            admission: self.clone(),
            source,
            proven: AtomicBool::new(false),
            notify: Notify::new(),
        })))
    }

    fn release(&self, source: IpAddr) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = pending.get_mut(&source) {
            *held -= 1;
            if *held == 0 {
                pending.remove(&source);
            }
        }
    }
}

/// Whom the cap counts as one source: an IPv4 address, or an IPv6 /64 (one host or LAN is
/// usually given a whole /64, so counting single IPv6 addresses would cap nothing).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// A connection's place among its source's pending ones, given back when the connection
/// proves itself or ends. Clones share the place (the gRPC handlers get one to prove it).
#[derive(Clone)]
pub(crate) struct Pending(Arc<PendingInner>);

struct PendingInner {
    admission: Arc<Admission>,
    source: IpAddr,
    proven: AtomicBool,
    notify: Notify,
}

impl Pending {
    /// The peer has shown what the listener needs: its deadline and its place end.
    pub(crate) fn prove(&self) {
        if !self.0.proven.swap(true, Ordering::AcqRel) {
            self.0.admission.release(self.0.source);
            // A permit is stored if nobody waits yet, so `proven` cannot miss it.
            self.0.notify.notify_one();
        }
    }

    async fn proven(&self) {
        if !self.0.proven.load(Ordering::Acquire) {
            self.0.notify.notified().await;
        }
    }
}

impl Drop for PendingInner {
    fn drop(&mut self) {
        if !*self.proven.get_mut() {
            self.admission.release(self.source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_pending: u32) -> Arc<Admission> {
        Arc::new(Admission {
            max_pending,
            pending: Mutex::default(),
        })
    }

    #[test]
    fn pending_places_are_capped_per_source_and_given_back() {
        let a = admission(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = a.admit(ip).unwrap();
        let second = a.admit(ip).unwrap();
        assert!(a.admit(ip).is_none(), "a third from the same source");
        assert!(
            a.admit("192.0.2.2".parse().unwrap()).is_some(),
            "another source"
        );

        second.prove();
        second.prove();
        let third = a.admit(ip).unwrap();
        assert!(a.admit(ip).is_none(), "proving gives back one place, once");
        drop(second);
        assert!(
            a.admit(ip).is_none(),
            "dropping a proven one gives back nothing more"
        );

        drop((first, third));
        assert!(a.pending.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a = admission(1);
        let _held = a.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(a.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(a.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = a.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert!(a.admit("::ffff:192.0.2.7".parse().unwrap()).is_none());
    }

    #[tokio::test]
    async fn proven_returns_whether_proven_before_or_after_the_wait() {
        let a = admission(4);
        let early = a.admit("192.0.2.1".parse().unwrap()).unwrap();
        early.prove();
        early.proven().await;
        let late = a.admit("192.0.2.1".parse().unwrap()).unwrap();
        let proof = late.clone();
        tokio::spawn(async move { proof.prove() });
        late.proven().await;
    }
}

/// What every listener (edge, tunnel listener, API) allows a peer that has not proven
/// itself yet, and how HTTP/2 connections find dead peers (see the flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub max_pending_per_source: u32,
    pub tunnel_auth_timeout: Duration,
    pub api_header_timeout: Duration,
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
}

impl ConnLimits {
    /// Unproven connections from one address are few only on average: a burst from one
    /// NAT, proxy or client (the e2e suite sends 500 requests at once) has them all pending
    /// together while the server is busy, and closing one is a failed request. So the cap
    /// is set above such bursts; it still keeps one address from holding more than a
    /// sliver of the (raised) descriptor limit, and the deadlines turn its sockets over.
    pub const DEFAULT: Self = Self {
        max_pending_per_source: 512,
        tunnel_auth_timeout: Duration::from_secs(10),
        api_header_timeout: Duration::from_secs(30),
        http2_keep_alive_interval: Duration::from_secs(20),
        http2_keep_alive_timeout: Duration::from_secs(20),
    };
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
