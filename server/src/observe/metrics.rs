//! What the server counts, for Prometheus (`/metrics` on the API listener) and for each
//! tunnel's traffic history. Per-tunnel series are bounded by the tunnels this node
//! serves; everything else has a handful of label values.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use adit_core::{ids::TunnelId, wire::StreamKind};
use adit_transport::metrics::{ActiveStream, StreamGauges, status_class};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::Registry,
};

/// Who a failed request blames, as logs and metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum ErrorSource {
    /// No error.
    None,
    /// The connector or the origin behind it (502/504).
    Upstream,
    /// The visitor (bad request, went away).
    Downstream,
    /// The edge itself.
    Internal,
    /// The edge refused on purpose: a limit (streams per tunnel) was reached.
    Edge,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    tunnel: String,
    status_class: &'static str,
    error_source: ErrorSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TunnelLabels {
    tunnel: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BytesLabels {
    tunnel: String,
    direction: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NodeLabels {
    node: String,
    version: &'static str,
}

/// Upper bounds (seconds) of the latency buckets kept per tunnel for p50/p99.
const LATENCY_BOUNDS: [f64; 20] = [
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    f64::INFINITY,
];

/// One tunnel's running totals: Prometheus reads them, the traffic history diffs them.
pub struct TunnelCounters {
    pub requests: Counter,
    pub errors: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    latency: [AtomicU64; LATENCY_BOUNDS.len()],
    /// The totals at the last traffic flush.
    flushed: Mutex<Totals>,
    /// This tunnel's `edge_requests` series, found once each: no label string is built
    /// per request.
    outcomes: Mutex<foldhash::HashMap<(&'static str, ErrorSource), Counter>>,
    label: String,
}

/// A tunnel's counts: totals at one moment, or the change between two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency: [u64; LATENCY_BOUNDS.len()],
}

impl Totals {
    fn since(&self, before: &Self) -> Self {
        Self {
            requests: self.requests - before.requests,
            errors: self.errors - before.errors,
            bytes_in: self.bytes_in - before.bytes_in,
            bytes_out: self.bytes_out - before.bytes_out,
            latency: std::array::from_fn(|i| self.latency[i] - before.latency[i]),
        }
    }

    /// Whether nothing happened.
    pub fn is_idle(&self) -> bool {
        self.requests == 0 && self.bytes_in == 0 && self.bytes_out == 0
    }
}

impl TunnelCounters {
    fn totals(&self) -> Totals {
        Totals {
            requests: self.requests.get(),
            errors: self.errors.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            latency: std::array::from_fn(|i| self.latency[i].load(Ordering::Relaxed)),
        }
    }

    /// What happened since the last call: the traffic history's next delta.
    pub fn take_delta(&self) -> Totals {
        let now = self.totals();
        let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        let delta = now.since(&flushed);
        *flushed = now;
        delta
    }

    /// What happened since the last flush, leaving it to the next: the minute in progress,
    /// for pages that show traffic as it happens.
    pub fn peek_delta(&self) -> Totals {
        let now = self.totals();
        now.since(&self.flushed.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The latency (seconds) below which `q` of the samples fall, from bucket counts.
pub fn quantile(counts: &[u64; LATENCY_BOUNDS.len()], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            // The last bucket is open-ended: report the largest finite bound.
            return Some(LATENCY_BOUNDS[i].min(LATENCY_BOUNDS[LATENCY_BOUNDS.len() - 2]));
        }
    }
    None
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    tunnel_requests: Family<TunnelLabels, Counter>,
    tunnel_errors: Family<TunnelLabels, Counter>,
    bytes: Family<BytesLabels, Counter>,
    /// `edge_response_seconds` of each stream kind, made once (no label lookup per request).
    duration: [Histogram; StreamKind::ALL.len()],
    streams: StreamGauges,
    pub ha_connections: Gauge,
    registrations: Family<ResultLabels, Counter>,
    /// `adit_node_info{node, version} 1`: which node this is, once it is named.
    node: Family<NodeLabels, Gauge>,
    tunnels: Mutex<foldhash::HashMap<TunnelId, Arc<TunnelCounters>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("adit");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "edge_requests",
            "Requests through the edge",
            requests.clone(),
        );
        let tunnel_requests = Family::<TunnelLabels, Counter>::default();
        registry.register(
            "tunnel_requests",
            "Requests per tunnel",
            tunnel_requests.clone(),
        );
        let tunnel_errors = Family::<TunnelLabels, Counter>::default();
        registry.register(
            "tunnel_errors",
            "Failed requests per tunnel (5xx or no answer)",
            tunnel_errors.clone(),
        );
        let bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "tunnel_bytes",
            "Body bytes per tunnel (in: from visitors, out: to visitors)",
            bytes.clone(),
        );
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BOUNDS[..LATENCY_BOUNDS.len() - 1].iter().copied())
        });
        registry.register(
            "edge_response_seconds",
            "Time from a visitor's request to the response head",
            duration.clone(),
        );
        let duration = StreamKind::ALL.map(|kind| {
            duration
                .get_or_create(&KindLabels {
                    kind: kind.as_str(),
                })
                .clone()
        });
        let streams = StreamGauges::register(&mut registry, "edge");
        let ha_connections = Gauge::default();
        registry.register(
            "tunnel_ha_connections",
            "Connector data connections held by this node",
            ha_connections.clone(),
        );
        let registrations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tunnel_connection_registrations",
            "Data connection hellos by result",
            registrations.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let node = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "node_info",
            "This node: its --node-name and version (always 1)",
            node.clone(),
        );
        Self {
            registry,
            requests,
            tunnel_requests,
            tunnel_errors,
            bytes,
            duration,
            streams,
            ha_connections,
            registrations,
            node,
            tunnels: Mutex::default(),
        }
    }

    /// Names this node in `adit_node_info` (a node has one name for its whole run).
    pub fn set_node(&self, name: &str) {
        self.node
            .get_or_create(&NodeLabels {
                node: name.to_owned(),
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The counters of one tunnel, created on its first request.
    pub fn tunnel(&self, tunnel: TunnelId) -> Arc<TunnelCounters> {
        let mut tunnels = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
        tunnels
            .entry(tunnel)
            .or_insert_with(|| {
                let id = tunnel.to_string();
                let labels = TunnelLabels { tunnel: id.clone() };
                let bytes = |direction| BytesLabels {
                    tunnel: id.clone(),
                    direction,
                };
                // One statement each: a family's read guard must be gone before the
                // next `get_or_create` on it may need its write lock.
                let requests = self.tunnel_requests.get_or_create(&labels).clone();
                let errors = self.tunnel_errors.get_or_create(&labels).clone();
                let bytes_in = self.bytes.get_or_create(&bytes("in")).clone();
                let bytes_out = self.bytes.get_or_create(&bytes("out")).clone();
                Arc::new(TunnelCounters {
                    requests,
                    errors,
                    bytes_in,
                    bytes_out,
                    latency: std::array::from_fn(|_| AtomicU64::new(0)),
                    flushed: Mutex::default(),
                    outcomes: Mutex::default(),
                    label: id,
                })
            })
            .clone()
    }

    /// Every tunnel seen so far, for the traffic history.
    pub fn tunnels(&self) -> Vec<(TunnelId, Arc<TunnelCounters>)> {
        self.tunnels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect()
    }

    /// One tunnel's counters, if it has served anything since this node started.
    pub fn tunnel_counters(&self, tunnel: TunnelId) -> Option<Arc<TunnelCounters>> {
        self.tunnels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tunnel)
            .cloned()
    }

    /// Drops a deleted tunnel's series.
    pub fn forget(&self, tunnel: TunnelId) {
        self.tunnels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tunnel);
        let id = tunnel.to_string();
        self.tunnel_requests
            .remove(&TunnelLabels { tunnel: id.clone() });
        self.tunnel_errors
            .remove(&TunnelLabels { tunnel: id.clone() });
        for direction in ["in", "out"] {
            self.bytes.remove(&BytesLabels {
                tunnel: id.clone(),
                direction,
            });
        }
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            for source in [
                ErrorSource::None,
                ErrorSource::Upstream,
                ErrorSource::Downstream,
                ErrorSource::Internal,
                ErrorSource::Edge,
            ] {
                self.requests.remove(&RequestLabels {
                    tunnel: id.clone(),
                    status_class: class,
                    error_source: source,
                });
            }
        }
    }

    /// One answered request: its status, who is to blame if it failed, how long it took.
    pub fn request(
        &self,
        tunnel: Option<&TunnelCounters>,
        status: u16,
        source: ErrorSource,
        kind: StreamKind,
        took: Duration,
    ) {
        let status_class = status_class(status);
        let series = |tunnel: &str| {
            self.requests
                .get_or_create(&RequestLabels {
                    tunnel: tunnel.to_owned(),
                    status_class,
                    error_source: source,
                })
                .clone()
        };
        match tunnel {
            Some(counters) => counters
                .outcomes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((status_class, source))
                .or_insert_with(|| series(&counters.label))
                .inc(),
            None => series("none").inc(),
        };
        let seconds = took.as_secs_f64();
        self.duration[kind.index()].observe(seconds);
        if let Some(counters) = tunnel {
            counters.requests.inc();
            if status >= 500 {
                counters.errors.inc();
            }
            let bucket = LATENCY_BOUNDS
                .iter()
                .position(|b| seconds <= *b)
                .unwrap_or(LATENCY_BOUNDS.len() - 1);
            counters.latency[bucket].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A stream opened to a connector; the guard closes it in the gauge.
    pub fn stream(&self, kind: StreamKind) -> ActiveStream {
        self.streams.open(kind)
    }

    pub fn registration(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "rejected" };
        self.registrations
            .get_or_create(&ResultLabels { result })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_from_buckets() {
        let mut counts = [0u64; LATENCY_BOUNDS.len()];
        assert_eq!(quantile(&counts, 0.5), None);
        counts[1] = 98; // ≤ 1 ms
        counts[7] = 2; // ≤ 100 ms
        assert_eq!(quantile(&counts, 0.5), Some(0.001));
        assert_eq!(quantile(&counts, 0.99), Some(0.1));
    }

    #[test]
    fn renders_and_forgets_tunnel_series() {
        let m = Metrics::new();
        let t = TunnelId::random();
        let counters = m.tunnel(t);
        m.request(
            Some(&counters),
            200,
            ErrorSource::None,
            StreamKind::Http,
            Duration::from_millis(3),
        );
        counters.bytes_out.inc_by(10);
        let text = m.render();
        assert!(
            text.contains(&format!("adit_tunnel_requests_total{{tunnel=\"{t}\"}} 1")),
            "{text}"
        );
        assert!(text.contains("adit_build_info"), "{text}");
        assert!(!text.contains("adit_node_info{"), "{text}");
        m.set_node("edge-1");
        assert!(
            m.render().contains(&format!(
                "adit_node_info{{node=\"edge-1\",version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{}",
            m.render()
        );
        let delta = counters.take_delta();
        assert_eq!((delta.requests, delta.bytes_out), (1, 10));
        assert_eq!(counters.take_delta().requests, 0, "a delta is taken once");
        m.forget(t);
        assert!(!m.render().contains(&t.to_string()));
    }
}
