//! The connector's own endpoints (`--metrics ADDR`, as cloudflared's): `/metrics` for
//! Prometheus, `/ready` (200 while at least one connection to the edge is up, else 503,
//! with JSON `status`, `readyConnections`, `connectorId`) and `/healthcheck`.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use adit_core::{ids::ConnectorId, wire::StreamKind};
use adit_transport::metrics::{ActiveStream, StreamGauges, status_class};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::Registry,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Error;

/// Ports tried for the metrics server when none is given, as cloudflared does.
const DEFAULT_PORTS: std::ops::RangeInclusive<u16> = 20241..=20245;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    status_class: &'static str,
    error_source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

pub struct ConnectorMetrics {
    registry: Registry,
    pub ha_connections: Gauge,
    /// The remote configuration's version in force; 1 for local rules, 0 while a remotely
    /// managed tunnel waits for its first.
    pub config_version: Gauge<i64>,
    registrations: Family<ResultLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    streams: StreamGauges,
    pub bytes_to_origin: Counter,
    pub bytes_from_origin: Counter,
    origin_latency: Histogram,
}

impl Default for ConnectorMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("adit");
        let ha_connections = Gauge::default();
        registry.register(
            "tunnel_ha_connections",
            "Data connections to the edge that are up",
            ha_connections.clone(),
        );
        let registrations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tunnel_registrations",
            "Data connection registrations by result",
            registrations.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "tunnel_requests",
            "Streams answered, by status class and error source",
            requests.clone(),
        );
        let streams = StreamGauges::register(&mut registry, "tunnel");
        let bytes = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "tunnel_bytes",
            "HTTP body bytes (to_origin, from_origin)",
            bytes.clone(),
        );
        let bytes_to_origin = bytes
            .get_or_create(&DirectionLabels {
                direction: "to_origin",
            })
            .clone();
        let bytes_from_origin = bytes
            .get_or_create(&DirectionLabels {
                direction: "from_origin",
            })
            .clone();
        let origin_latency = Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "proxy_origin_response_seconds",
            "Time from a stream's arrival to the origin's response head",
            origin_latency.clone(),
        );
        let config_version = Gauge::<i64>::default();
        // Local rules start as version 1; each edit of config.yml put in force is one more.
        config_version.set(1);
        registry.register(
            "config_version",
            "Version of the ingress configuration in use",
            config_version.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            ha_connections,
            config_version,
            registrations,
            requests,
            streams,
            bytes_to_origin,
            bytes_from_origin,
            origin_latency,
        }
    }
}

impl ConnectorMetrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn registration(&self, accepted: bool) {
        let result = if accepted { "success" } else { "failure" };
        self.registrations
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn stream(&self, kind: StreamKind) -> ActiveStream {
        self.streams.open(kind)
    }

    /// One answered stream; `from_connector` when the connector made the answer itself
    /// (an error reaching the origin, or a refusal).
    pub fn answered(&self, status: StatusCode, from_connector: bool, took: Duration) {
        let status_class = status_class(status.as_u16());
        let error_source = match (
            from_connector,
            status.is_server_error(),
            status.is_client_error(),
        ) {
            (true, true, _) => "upstream",
            (true, _, true) => "downstream",
            _ => "none",
        };
        self.requests
            .get_or_create(&RequestLabels {
                status_class,
                error_source,
            })
            .inc();
        if !from_connector {
            self.origin_latency.observe(took.as_secs_f64());
        }
    }
}

/// A metrics address as `--metrics` and config.yml's `metrics` take it: `IP:PORT`, or
/// `localhost:PORT` (cloudflared's usual spelling) for 127.0.0.1.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.strip_prefix("localhost:")
        .and_then(|port| port.parse::<u16>().ok())
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .ok_or_else(|| {
            format!("`{text}` is not a metrics address: write IP:PORT or localhost:PORT")
        })
}

/// Binds `addr`, or with none the first free of 127.0.0.1:20241–20245, else any port.
pub async fn bind(addr: Option<SocketAddr>) -> Result<TcpListener, Error> {
    if let Some(addr) = addr {
        return Ok(TcpListener::bind(addr).await?);
    }
    for port in DEFAULT_PORTS {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return Ok(listener);
        }
    }
    Ok(TcpListener::bind(("127.0.0.1", 0)).await?)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves `/metrics`, `/ready` and `/healthcheck` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<ConnectorMetrics>,
    connector: ConnectorId,
    shutdown: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("Starting metrics server on {addr}/metrics");
    }
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(
            async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        Ok::<_, Infallible>(match req.uri().path() {
                            "/metrics" => text(
                                StatusCode::OK,
                                "text/plain; version=0.0.4",
                                metrics.render(),
                            ),
                            "/healthcheck" => text(StatusCode::OK, "text/plain", "OK\n".into()),
                            "/ready" => {
                                let ready = metrics.ha_connections.get();
                                let status = if ready > 0 {
                                    StatusCode::OK
                                } else {
                                    StatusCode::SERVICE_UNAVAILABLE
                                };
                                let body = serde_json::json!({
                                    "status": status.as_u16(),
                                    "readyConnections": ready,
                                    "connectorId": connector,
                                });
                                text(status, "application/json", body.to_string())
                            }
                            _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
                        })
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
            .instrument(tracing::debug_span!("metrics_request")),
        );
    }
}

/// `adit tunnel ready --metrics ADDR`: whether the connector there has a connection up.
pub async fn check_ready(addr: &str) -> Result<(), Error> {
    let unreachable = |message: String| Error::Unreachable {
        url: format!("http://{addr}/ready"),
        message,
    };
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(conn);
    let request = Request::get("/ready")
        .header(header::HOST, addr)
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if response.status() == StatusCode::OK {
        Ok(())
    } else {
        Err(Error::NotReady(response.status().as_u16()))
    }
}
