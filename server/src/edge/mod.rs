//! The public edge: accepts visitors' HTTP/1.1 (and h2c), maps Host → route → tunnel → a
//! live connection, and relays the request as one HTTP/2 stream to the connector. Bodies
//! stream both ways; WebSocket upgrades become a full-duplex stream.
//!
//! Rule: edge/ uses only tunnel/, observe/ and ground: no storage, no control, no axum.

mod error_page;
mod https_policy;
mod limits;
mod visitor_io;

pub(crate) use https_policy::Https;
pub use https_policy::HttpsPolicy;
pub use limits::EdgeLimits;

use std::{
    collections::hash_map::Entry,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use adit_core::{
    hostname::normalize_host,
    ids::{ConnectionId, TunnelId},
    wire::{
        CONNECTOR_MAKES_FORWARDED, ConnectorError, HEADER_ERROR_CODE, HEADER_NODE_REFUSED,
        HEADER_TUNNEL, StreamKind, UPGRADE_RAW_TCP,
    },
};
use adit_transport::{
    headers::{
        CLIENT_ADDR, DESTINATION, RESPONSE_SOURCE, STREAM_KIND, UPGRADE_STATUS, X_FORWARDED_HOST,
        X_FORWARDED_PROTO, add_forwarded, strip_hop_by_hop,
    },
    relay::{self, BodySender},
    workers::Workers,
};
use bytes::Bytes;
use futures_util::future::OptionFuture;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header,
};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::error_page::{
    connector_error, connector_error_code, error_response, error_response_with, full, wants_json,
};
use crate::{
    edge::visitor_io::{ConnState, Framing, Watched},
    net::ConnLimits,
    net::{self, Pending},
    observe::metrics::{ErrorSource, Metrics, TunnelCounters},
    tunnel::link::{LinkBody, Unsent},
    tunnel::node_link::{Forward, Forwarded, Relay},
    tunnel::registry::{
        BoxError, LiveConnection, Near, Registry, StreamGuard, TunnelBody, empty_body, resendable,
    },
    tunnel::routes::Routes,
};

/// How many connections a request tries before the visitor gets a 502.
const MAX_ATTEMPTS: usize = 4;
/// hyper's HTTP/1 read buffer cannot be smaller than this.
const MIN_BUF_SIZE: usize = 8192;

pub struct Edge {
    routes: Arc<Routes>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// Log one line per request (`--access-log`).
    access_log: bool,
    limits: EdgeLimits,
    conn_limits: ConnLimits,
    /// Streams in flight per tunnel, for `--edge-max-streams-per-tunnel`. This map and the
    /// others every request looks in (routes, live connections, metrics) hash with foldhash,
    /// seeded per process, not SipHash: SipHash was 2 % of the edge's instructions per
    /// request (bench/README.md, issue 14 step 21).
    tunnel_streams: Arc<Mutex<foldhash::HashMap<TunnelId, u32>>>,
    /// In a cluster: the way to other nodes, for tunnels this one holds no connection of.
    peers: Option<Arc<dyn Forward>>,
    /// ACME challenges and HTTPS-only zones (see `https_policy`).
    https: Option<Https>,
}

/// Where a stream may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// This node's connections, else another node's (a visitor's request).
    AnyNode,
    /// This node's connections only (a stream another node forwarded here).
    ThisNode,
}

/// A stream is in flight while this lives: it counts toward its connection's load and the
/// active-streams gauge.
struct InFlight {
    /// `None` when another node carries the stream.
    _connection: Option<StreamGuard>,
    _gauge: adit_transport::metrics::ActiveStream,
    _tunnel: TunnelSlot,
}

/// Who a request came from, with the header value that says so, made once per connection
/// (formatting an address costs about as much as building the rest of the request's
/// headers).
#[derive(Clone)]
struct Visitor {
    /// Its IP and port, for the connector (`adit-client-addr`).
    addr_value: Option<HeaderValue>,
}

impl Visitor {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr_value: HeaderValue::try_from(addr.to_string()).ok(),
        }
    }
}

/// One of a tunnel's stream slots, given back when dropped.
struct TunnelSlot {
    tunnel: TunnelId,
    counts: Arc<Mutex<foldhash::HashMap<TunnelId, u32>>>,
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut n) = counts.entry(self.tunnel) {
            *n.get_mut() = n.get().saturating_sub(1);
            if *n.get() == 0 {
                n.remove();
            }
        }
    }
}

/// A visitor's request body that gives up when the visitor stalls: no frame for the body
/// timeout, counted only while the tunnel side is waiting for one (a slow origin does not
/// count against the visitor). On timeout, or when the body cannot be read (a malformed
/// chunk, a connection cut short), it tells `forward`, which blames the visitor (408 or
/// 400) if the response has not begun, and ends the stream with an error.
struct VisitorBody {
    inner: Incoming,
    idle: Duration,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// A frame was asked for and has not come yet (the timer is running).
    waiting: bool,
    fault: Option<oneshot::Sender<BodyFault>>,
}

/// How a visitor's request body failed.
#[derive(Debug, Clone, Copy)]
enum BodyFault {
    Stalled,
    Unreadable,
}

impl BodyFault {
    fn response(self, json: bool) -> Response<TunnelBody> {
        closing(match self {
            Self::Stalled => error_response(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "The request body stopped arriving.",
                json,
            ),
            Self::Unreadable => error_response(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "The request body could not be read (malformed chunked encoding, or cut short).",
                json,
            ),
        })
    }
}

impl VisitorBody {
    fn blame(&mut self, fault: BodyFault) {
        if let Some(tx) = self.fault.take() {
            let _ = tx.send(fault);
        }
    }
}

impl http_body::Body for VisitorBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                if let Some(Err(_)) = &frame {
                    this.blame(BodyFault::Unreadable);
                }
                return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
            }
            Poll::Pending => {}
        }
        let deadline = tokio::time::Instant::now() + this.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.waiting {
            this.waiting = true;
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            this.blame(BodyFault::Stalled);
            return Poll::Ready(Some(Err(
                "the visitor stopped sending the request body".into()
            )));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What one access-log line says, written when the response body ends.
struct AccessLog {
    tunnel: TunnelId,
    host: String,
    method: http::Method,
    path: String,
    status: u16,
    source: ErrorSource,
    started: Instant,
}

/// A body that counts its bytes into a counter (and, for responses, writes the access log
/// line once it has been sent or dropped).
struct Metered {
    inner: TunnelBody,
    counter: prometheus_client::metrics::counter::Counter,
    seen: u64,
    access: Option<AccessLog>,
}

impl Metered {
    fn new(
        inner: TunnelBody,
        counter: prometheus_client::metrics::counter::Counter,
        access: Option<AccessLog>,
    ) -> Self {
        Self {
            inner,
            counter,
            seen: 0,
            access,
        }
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.counter.inc_by(n);
            self.seen += n;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if let Some(a) = self.access.take() {
            tracing::info!(
                target: "adit::access",
                tunnel = %a.tunnel,
                host = %a.host,
                method = %a.method,
                path = %a.path,
                status = a.status,
                bytes = self.seen,
                duration_ms = a.started.elapsed().as_millis() as u64,
                error_source = ?a.source,
                "request"
            );
        }
    }
}

impl Edge {
    pub(crate) fn new(
        routes: Arc<Routes>,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        access_log: bool,
        limits: EdgeLimits,
        conn_limits: ConnLimits,
    ) -> Self {
        Self {
            routes,
            registry,
            metrics,
            access_log,
            limits,
            conn_limits,
            tunnel_streams: Arc::default(),
            peers: None,
            https: None,
        }
    }

    /// Answers ACME challenges and redirects HTTPS-only zones' plain HTTP visitors.
    pub(crate) fn with_https(mut self, https: Https) -> Self {
        self.https = Some(https);
        self
    }

    /// Sends requests for tunnels this node holds no connection of to `peers`.
    pub(crate) fn with_peers(mut self, peers: Arc<dyn Forward>) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Takes one of the tunnel's stream slots, or `None` when all are in use.
    fn claim(&self, tunnel: TunnelId) -> Option<TunnelSlot> {
        let mut counts = self
            .tunnel_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(tunnel).or_insert(0);
        if *n >= self.limits.max_streams_per_tunnel {
            return None;
        }
        *n += 1;
        Some(TunnelSlot {
            tunnel,
            counts: self.tunnel_streams.clone(),
        })
    }
}

/// Removes every `adit-*` header: that prefix is Adit's own stream metadata, which only the
/// edge (toward the connector) and the connector (toward the edge) may set. Whatever a
/// visitor or an origin sends under it is dropped, whether or not this build knows the name.
fn strip_internal(headers: &mut HeaderMap, also: &[&HeaderName]) {
    let internal: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("adit-") || also.contains(name))
        .cloned()
        .collect();
    for name in internal {
        headers.remove(name);
    }
}

/// Notes on `connection` what a response says of its connector's origins: any answer not
/// made by the connector came from an origin; a 5xx the connector made itself means it
/// could not reach one; its 4xx (no ingress rule matched, …) says nothing about them.
fn note_origin(connection: &LiveConnection, response: &Response<LinkBody>) {
    if !is_from_connector(response) {
        connection.origin_reached();
    } else if response.status().is_server_error() {
        connection.origin_missed(connector_error_code(response));
    }
}

fn is_from_connector(response: &Response<LinkBody>) -> bool {
    response
        .headers()
        .get(&RESPONSE_SOURCE)
        .is_some_and(|v| v == "connector")
}

pub async fn serve(
    listener: TcpListener,
    edge: Arc<Edge>,
    workers: Arc<Workers>,
    shutdown: CancellationToken,
) {
    let max_pending = edge.conn_limits.max_pending_per_source;
    net::accept_loop(
        listener,
        "edge",
        max_pending,
        Some(&workers),
        shutdown.clone(),
        move |stream, peer, pending| {
            let (edge, shutdown) = (edge.clone(), shutdown.clone());
            async move {
                edge.serve_visitor(stream, peer, pending, Scheme::Http, shutdown)
                    .await
            }
        },
    )
    .await;
}

/// The HTTPS edge: TLS first, then the same service as the plain edge.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    edge: Arc<Edge>,
    acceptor: tokio_rustls::TlsAcceptor,
    workers: Arc<Workers>,
    shutdown: CancellationToken,
) {
    let max_pending = edge.conn_limits.max_pending_per_source;
    net::accept_loop(
        listener,
        "edge-tls",
        max_pending,
        Some(&workers),
        shutdown.clone(),
        move |stream, peer, pending| {
            let (edge, shutdown, acceptor) = (edge.clone(), shutdown.clone(), acceptor.clone());
            async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        edge.serve_visitor(tls, peer, pending, Scheme::Https, shutdown)
                            .await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "visitor TLS handshake failed"),
                    Err(_) => tracing::debug!("visitor TLS handshake timed out"),
                }
            }
        },
    )
    .await;
}

/// How the visitor reached the edge, for `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// The stream an HTTP/1.1 upgrade asks for: a WebSocket, or a raw TCP stream
/// (`Upgrade: adit-tcp`, from `adit access`); `None` for a plain request.
fn upgrade_kind<B>(req: &Request<B>) -> Option<StreamKind> {
    let has_token = |name: HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if req.method() != Method::GET || !has_token(header::CONNECTION, "upgrade") {
        return None;
    }
    if has_token(header::UPGRADE, "websocket") {
        Some(StreamKind::WebSocket)
    } else if has_token(header::UPGRADE, UPGRADE_RAW_TCP) {
        Some(StreamKind::Raw)
    } else {
        None
    }
}

fn is_websocket_upgrade<B>(req: &Request<B>) -> bool {
    upgrade_kind(req) == Some(StreamKind::WebSocket)
}

enum Failure {
    NoConnector,
    Stream(h2::Error),
    /// The node holding the tunnel's connection took the stream, and the link failed.
    Peer(BoxError),
    /// The tunnel has `--edge-max-streams-per-tunnel` streams in flight already.
    Busy(u32),
}

/// An error answer after which the connection must not be reused: the visitor's framing is
/// in doubt, or its request body was left unread.
fn closing(mut response: Response<TunnelBody>) -> Response<TunnelBody> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a request names its host ambiguously, if it does: two `Host` headers, or a request
/// target (HTTP/1 absolute form, HTTP/2 `:authority`) naming another host than `Host`. The
/// edge routes by one name and the origin may read the other, so neither is trusted.
fn ambiguous_host<B>(req: &Request<B>) -> Option<(&'static str, &'static str)> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Some((
            "duplicate_host",
            "The request has more than one Host header.",
        ));
    }
    let (Some(host), Some(authority)) = (host, req.uri().authority()) else {
        return None;
    };
    let same = host
        .to_str()
        .is_ok_and(|host| normalize_host(host) == normalize_host(authority.as_str()));
    (!same).then_some((
        "host_mismatch",
        "The request target names another host than the Host header.",
    ))
}

/// Whether a `Transfer-Encoding` is the one value a proxy can relay without guessing.
fn plain_chunked(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::TRANSFER_ENCODING).iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(v), None) => v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => false,
    }
}

impl Edge {
    async fn serve_visitor<IO>(
        self: Arc<Self>,
        stream: IO,
        peer: SocketAddr,
        pending: Pending,
        scheme: Scheme,
        shutdown: CancellationToken,
    ) where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.limits;
        let max_head = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
        let max_headers = usize::try_from(limits.max_headers).unwrap_or(usize::MAX);
        let state = ConnState::new();
        let stream = Watched::new(
            stream,
            state.clone(),
            max_head,
            max_headers,
            limits.idle_timeout,
        );
        // HTTP/1 has hyper's header timeout for this too; HTTP/2 has only this deadline.
        let deadline = tokio::time::Instant::now() + limits.header_timeout;
        let keep_alive = (
            self.conn_limits.http2_keep_alive_interval,
            self.conn_limits.http2_keep_alive_timeout,
        );
        let proof = pending.clone();
        let visitor = Visitor::new(peer);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            proof.prove();
            let edge = self.clone();
            let visitor = visitor.clone();
            // HTTP/2 frames its messages itself; only HTTP/1 heads pass the scanner. Asked
            // here, not in the future, so that verdicts are taken in request order.
            let framing = if req.version() == Version::HTTP_2 {
                Framing::Clear
            } else {
                state.next_framing()
            };
            let in_flight = state.begin();
            let state = state.clone();
            async move {
                let response = edge.handle(req, &visitor, scheme, framing).await;
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    state.mark_upgraded();
                }
                // The connection is busy, not idle, until the response body is done.
                let response = response.map(|body| {
                    body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    })
                    .boxed_unsync()
                });
                Ok::<_, Infallible>(response)
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            // Past this hyper answers 431 itself (request line and headers count alike).
            .max_buf_size(max_head.max(MIN_BUF_SIZE))
            .max_headers(max_headers)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(keep_alive.0)
            .keep_alive_timeout(keep_alive.1)
            .max_concurrent_streams(limits.max_streams_per_connection)
            .max_header_list_size(limits.max_header_bytes);
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        net::serve_http(
            conn,
            |c| c.graceful_shutdown(),
            net::DRAIN_TIMEOUT,
            &pending,
            deadline,
            &shutdown,
        )
        .await;
    }

    /// The edge's own checks on a visitor's request, before anything is routed; the
    /// refusal when one fails.
    fn screen(
        &self,
        req: &Request<Incoming>,
        framing: Framing,
        json: bool,
    ) -> Option<Response<TunnelBody>> {
        let refuse =
            |status, code, message: &str| Some(error_response(status, code, message, json));
        match framing {
            Framing::Clear => {}
            Framing::Ambiguous => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "ambiguous_framing",
                    "The request has both Content-Length and Transfer-Encoding, or conflicting Content-Length headers.",
                )
                .map(closing);
            }
            Framing::Unknown => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed_request",
                    "The request's framing could not be verified.",
                )
                .map(closing);
            }
        }
        if !plain_chunked(req.headers()) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_transfer_encoding",
                "Transfer-Encoding must be exactly `chunked`.",
            )
            .map(closing);
        }
        if let Some(refusal) = ambiguous_host(req) {
            return refuse(StatusCode::BAD_REQUEST, refusal.0, refusal.1).map(closing);
        }
        // hyper counts HTTP/1 headers itself; HTTP/2 has only a byte limit.
        if req.headers().len() > usize::try_from(self.limits.max_headers).unwrap_or(usize::MAX) {
            return refuse(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too_many_headers",
                "The request has too many header fields.",
            );
        }
        let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
            + req.uri().authority().map_or(0, |a| a.as_str().len());
        if uri_len > usize::try_from(self.limits.max_uri_bytes).unwrap_or(usize::MAX) {
            return refuse(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                "The request target is too long.",
            );
        }
        None
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        visitor: &Visitor,
        scheme: Scheme,
        framing: Framing,
    ) -> Response<TunnelBody> {
        let started = Instant::now();
        let json = wants_json(req.headers());
        if let Some(refusal) = self.screen(&req, framing, json) {
            self.metrics.request(
                None,
                refusal.status().as_u16(),
                ErrorSource::Downstream,
                StreamKind::Http,
                started.elapsed(),
            );
            return refusal;
        }
        let kind = upgrade_kind(&req).unwrap_or(StreamKind::Http);
        // Kept only for the access log: the request itself moves on.
        let logged = self
            .access_log
            .then(|| (req.method().clone(), req.uri().path().to_owned()));
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        let Some(host) = host else {
            let response = error_response(
                StatusCode::BAD_REQUEST,
                "missing_host",
                "The request has no Host header.",
                json,
            );
            self.metrics
                .request(None, 400, ErrorSource::Downstream, kind, started.elapsed());
            return response;
        };
        let name = normalize_host(&host);
        if let Some(answer) = self.https_answer(&req, &name, scheme).await {
            self.metrics.request(
                None,
                answer.status().as_u16(),
                ErrorSource::None,
                kind,
                started.elapsed(),
            );
            return answer;
        }
        let Some(tunnel) = self.routes.lookup(&name) else {
            let response = error_response(
                StatusCode::NOT_FOUND,
                "host_not_routed",
                &format!("The host {host} is not routed to any tunnel."),
                json,
            );
            self.metrics
                .request(None, 404, ErrorSource::Downstream, kind, started.elapsed());
            return response;
        };
        let counters = self.metrics.tunnel(tunnel);
        let (mut response, source) = self
            .forward(tunnel, &counters, req, visitor, scheme, kind, &host, json)
            .await;
        self.add_hsts(&mut response, &name, scheme);
        let status = response.status();
        self.metrics.request(
            Some(&counters),
            status.as_u16(),
            source,
            kind,
            started.elapsed(),
        );
        let access = logged.map(|(method, path)| AccessLog {
            tunnel,
            host,
            method,
            path,
            status: status.as_u16(),
            source,
            started,
        });
        response.map(|body| Metered::new(body, counters.bytes_out.clone(), access).boxed_unsync())
    }

    /// Sends one visitor request through the tunnel; the answer and who is to blame if
    /// it is an error.
    #[allow(clippy::too_many_arguments)] // one request's facts, each used once
    async fn forward(
        &self,
        tunnel: TunnelId,
        counters: &TunnelCounters,
        mut req: Request<Incoming>,
        visitor: &Visitor,
        scheme: Scheme,
        kind: StreamKind,
        host: &str,
        json: bool,
    ) -> (Response<TunnelBody>, ErrorSource) {
        let visitor_upgrade = (kind != StreamKind::Http).then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        // Where a request body that fails says how (only a body that is read has one).
        let mut fault = None;
        let (body, visitor_tx) = match kind {
            // Nothing to time, meter or fault (a GET): no layers, and no allocation for them.
            StreamKind::Http if hyper::body::Body::is_end_stream(&body) => (empty_body(), None),
            StreamKind::Http => {
                let (fault_tx, fault_rx) = oneshot::channel();
                fault = Some(fault_rx);
                let body = VisitorBody {
                    inner: body,
                    idle: self.limits.body_timeout,
                    timer: None,
                    waiting: false,
                    fault: Some(fault_tx),
                };
                let body = Metered::new(body.boxed_unsync(), counters.bytes_in.clone(), None);
                (body.boxed_unsync(), None)
            }
            StreamKind::WebSocket | StreamKind::Tcp | StreamKind::Raw => {
                let (body, tx) = upgrade_body();
                (body, Some(tx))
            }
        };
        let Some(outgoing) = stream_request(parts, host, kind, visitor, scheme, body) else {
            let response = error_response(
                StatusCode::BAD_REQUEST,
                "bad_host",
                "The Host header is not valid.",
                json,
            );
            return (response, ErrorSource::Downstream);
        };
        let sent = tokio::select! {
            biased;
            // Only fires while the request body is still being sent; once it has ended the
            // sender is gone and this branch is disabled, as it is at once without a body.
            Some(Ok(fault)) = OptionFuture::from(fault.as_mut()) => {
                return (fault.response(json), ErrorSource::Downstream);
            }
            sent = self.send(tunnel, kind, outgoing, Reach::AnyNode) => sent,
        };
        // A body that failed as the answer came makes an error answer the visitor's doing.
        let failed = match &sent {
            Ok((response, _)) => {
                response.status().is_client_error() || response.status().is_server_error()
            }
            Err(_) => true,
        };
        if failed && let Some(Ok(fault)) = fault.as_mut().map(oneshot::Receiver::try_recv) {
            return (fault.response(json), ErrorSource::Downstream);
        }
        match sent {
            Ok((response, in_flight)) => {
                let from_connector = is_from_connector(&response);
                let response = finish(
                    response,
                    in_flight,
                    visitor_upgrade
                        .zip(visitor_tx)
                        .map(|(upgrade, tx)| (kind, upgrade, tx)),
                    json,
                    host,
                )
                .await;
                let source = if from_connector && response.status().is_server_error() {
                    ErrorSource::Upstream
                } else if from_connector && response.status().is_client_error() {
                    ErrorSource::Downstream
                } else {
                    ErrorSource::None
                };
                (response, source)
            }
            Err(Failure::Busy(limit)) => (
                Failure::Busy(limit).response(tunnel, json),
                ErrorSource::Edge,
            ),
            Err(failure) => (failure.response(tunnel, json), ErrorSource::Upstream),
        }
    }

    /// A private-network stream: a WebSocket from `adit access socks` that the connector
    /// of one of `tunnels` bridges to `destination`. A connector that says the destination
    /// is outside its routes passes it to the next candidate.
    pub(crate) async fn private_connect<B>(
        &self,
        tunnels: &[TunnelId],
        mut req: Request<B>,
        peer: SocketAddr,
        destination: &str,
    ) -> Response<TunnelBody> {
        let json = true;
        if !is_websocket_upgrade(&req) {
            return error_response(
                StatusCode::BAD_REQUEST,
                "websocket_required",
                "This endpoint speaks WebSocket only.",
                json,
            );
        }
        let Ok(destination_header) = HeaderValue::from_str(destination) else {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad_destination",
                "The destination is not valid.",
                json,
            );
        };
        let visitor = Visitor::new(peer);
        let upgrade = hyper::upgrade::on(&mut req);
        let (parts, _) = req.into_parts();
        let mut last = error_response(
            StatusCode::NOT_FOUND,
            "no_route",
            &format!("No private-network route holds {destination}."),
            json,
        );
        for tunnel in tunnels {
            let (body, tx) = upgrade_body();
            let mut head = Request::new(());
            *head.method_mut() = parts.method.clone();
            *head.uri_mut() = parts.uri.clone();
            *head.headers_mut() = parts.headers.clone();
            // The caller's API token and cookies are for us, never for a connector.
            head.headers_mut().remove(header::AUTHORIZATION);
            head.headers_mut().remove(header::COOKIE);
            head.headers_mut()
                .insert(&DESTINATION, destination_header.clone());
            let (head, ()) = head.into_parts();
            let Some(outgoing) = stream_request(
                head,
                "private.adit.internal",
                StreamKind::Tcp,
                &visitor,
                Scheme::Http,
                body,
            ) else {
                break;
            };
            let (response, guard) = match self
                .send(*tunnel, StreamKind::Tcp, outgoing, Reach::AnyNode)
                .await
            {
                Ok(pair) => pair,
                Err(failure) => {
                    last = failure.response(*tunnel, json);
                    continue;
                }
            };
            if response
                .headers()
                .get(HEADER_ERROR_CODE)
                .is_some_and(|v| v == ConnectorError::DestinationNotRouted.as_str())
            {
                last = connector_error(response, json, destination).await;
                continue;
            }
            let upgrade = Some((StreamKind::WebSocket, upgrade, tx));
            return finish(response, guard, upgrade, json, destination).await;
        }
        last
    }

    /// Opens the stream on a live connection, moving to another when one is closed
    /// before the request left (the visitor never sees that). With no connection of the
    /// tunnel here, another node holding one takes it, when `reach` allows.
    async fn send(
        &self,
        tunnel: TunnelId,
        kind: StreamKind,
        mut request: Request<TunnelBody>,
        reach: Reach,
    ) -> Result<(Response<LinkBody>, InFlight), Failure> {
        let slot = self
            .claim(tunnel)
            .ok_or(Failure::Busy(self.limits.max_streams_per_tunnel))?;
        let mut tried: Vec<ConnectionId> = Vec::new();
        let mut last_error = None;
        // A request stays on the visitor's thread; a byte stream's two sides get a core each.
        let near = match kind {
            StreamKind::Http => Near::Same,
            StreamKind::WebSocket | StreamKind::Tcp | StreamKind::Raw => Near::Other,
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some(connection) = self.registry.pick(tunnel, &tried, near) else {
                break;
            };
            tried.push(connection.id);
            let stream = connection.begin_stream();
            let gauge = self.metrics.stream(kind);
            if connection.version < CONNECTOR_MAKES_FORWARDED {
                request = with_forwarded(request);
            }
            let spare = resendable(&request);
            match connection.sender.send(request).await {
                Ok(response) => {
                    note_origin(&connection, &response);
                    let in_flight = InFlight {
                        _connection: Some(stream),
                        _gauge: gauge,
                        _tunnel: slot,
                    };
                    return Ok((response, in_flight));
                }
                Err(Unsent {
                    error: e,
                    request: Some(back),
                }) => {
                    tracing::debug!(connection = %connection.id, error = %e, "connection refused the stream; trying another");
                    request = back;
                    last_error = Some(e);
                }
                Err(Unsent {
                    error: e,
                    request: None,
                }) => match spare.filter(|_| unprocessed(&e)) {
                    // The connector was closing the connection (GOAWAY) and never saw the
                    // stream: a request without a body is sent again on another one.
                    Some(again) => {
                        tracing::debug!(connection = %connection.id, error = %e, "the stream went unprocessed; trying another connection");
                        request = again;
                        last_error = Some(e);
                    }
                    None => return Err(Failure::Stream(e)),
                },
            }
        }
        if let (true, Reach::AnyNode, Some(peers)) = (tried.is_empty(), reach, &self.peers) {
            let gauge = self.metrics.stream(kind);
            // That node's connectors may speak version 1.
            return match peers.forward(tunnel, with_forwarded(request)).await {
                Forwarded::Answered(response) => Ok((
                    response,
                    InFlight {
                        _connection: None,
                        _gauge: gauge,
                        _tunnel: slot,
                    },
                )),
                Forwarded::NoHolder => Err(Failure::NoConnector),
                Forwarded::Failed(e) => Err(Failure::Peer(e)),
            };
        }
        Err(last_error.map_or(Failure::NoConnector, Failure::Stream))
    }
}

impl Failure {
    fn response(self, tunnel: TunnelId, json: bool) -> Response<TunnelBody> {
        match self {
            Failure::NoConnector => error_response(
                StatusCode::BAD_GATEWAY,
                "tunnel_offline",
                "The tunnel has no connector online. Start one with `adit tunnel run`.",
                json,
            ),
            Failure::Busy(limit) => {
                tracing::debug!(%tunnel, limit, "tunnel at its stream limit");
                let mut response = error_response_with(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "tunnel_busy",
                    "The tunnel has too many requests in flight. Try again shortly.",
                    serde_json::json!({ "error_source": "edge", "limit": limit }),
                    json,
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            Failure::Peer(e) => {
                tracing::debug!(%tunnel, error = %e, "stream through another node failed");
                error_response(
                    StatusCode::BAD_GATEWAY,
                    "connector_error",
                    "The connection to the tunnel's connector failed while sending the request.",
                    json,
                )
            }
            Failure::Stream(e) => {
                tracing::debug!(%tunnel, error = %e, "stream to the connector failed");
                error_response(
                    StatusCode::BAD_GATEWAY,
                    "connector_error",
                    "The connection to the tunnel's connector failed while sending the request.",
                    json,
                )
            }
        }
    }
}

/// The body of an upgraded stream: the visitor's bytes, fed in after the 101.
fn upgrade_body() -> (TunnelBody, BodySender) {
    let (body, tx) = relay::channel_body();
    (body.boxed_unsync(), tx)
}

/// The HTTP/2 request for one stream: the visitor's head without per-hop headers, with
/// `X-Forwarded-*` and our stream metadata. `None` when `host` is not a valid authority.
fn stream_request(
    parts: http::request::Parts,
    host: &str,
    kind: StreamKind,
    visitor: &Visitor,
    scheme: Scheme,
    body: TunnelBody,
) -> Option<Request<TunnelBody>> {
    let destination = match kind {
        StreamKind::Tcp => parts.headers.get(&DESTINATION).cloned(),
        StreamKind::Http | StreamKind::WebSocket | StreamKind::Raw => None,
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    // A visitor's own would stand for the ones the connector makes (version 2), or that
    // `send` makes for a version-1 connector: `add_forwarded` leaves them be when there.
    strip_internal(&mut headers, &[&X_FORWARDED_PROTO, &X_FORWARDED_HOST]);
    if let Some(destination) = destination {
        headers.insert(&DESTINATION, destination);
    }
    // Absent means HTTP to every connector and node: the name is sent only when it says
    // more, which spares one header's encoding, decoding and map entry per request. A
    // visitor's own went with the hop-by-hop strip.
    if kind != StreamKind::Http {
        headers.insert(&STREAM_KIND, HeaderValue::from_static(kind.as_str()));
    }
    if let Some(addr) = &visitor.addr_value {
        headers.insert(&CLIENT_ADDR, addr.clone());
    }
    // The visitor's path as hyper parsed it; only the authority is new.
    let mut uri = http::uri::Parts::default();
    // The visitor's: a version-2 connector makes `x-forwarded-proto` from it.
    uri.scheme = Some(match scheme {
        Scheme::Http => http::uri::Scheme::HTTP,
        Scheme::Https => http::uri::Scheme::HTTPS,
    });
    uri.authority = Some(host.parse().ok()?);
    uri.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    let uri = http::Uri::from_parts(uri).ok()?;
    let mut outgoing = Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.version_mut() = Version::HTTP_2;
    *outgoing.headers_mut() = headers;
    Some(outgoing)
}

/// Turns the connector's answer into the visitor's: our own page for the connector's
/// errors, a 101 and a joined socket for an accepted upgrade, else the origin's response.
async fn finish(
    response: Response<LinkBody>,
    guard: InFlight,
    upgrade: Option<(StreamKind, hyper::upgrade::OnUpgrade, BodySender)>,
    json: bool,
    host: &str,
) -> Response<TunnelBody> {
    if is_from_connector(&response)
        && (response.status().is_client_error() || response.status().is_server_error())
    {
        return connector_error(response, json, host).await;
    }
    match upgrade {
        Some((kind, upgrade, tx))
            if response
                .headers()
                .get(&UPGRADE_STATUS)
                .is_some_and(|v| v == "101") =>
        {
            switch_protocols(response, kind, upgrade, tx, guard)
        }
        _ => relay_response(response, guard),
    }
}

/// `request` with the `x-forwarded-*` headers a version-1 connector expects from the edge
/// (unchanged when it has them).
fn with_forwarded(request: Request<TunnelBody>) -> Request<TunnelBody> {
    let (mut parts, body) = request.into_parts();
    add_forwarded(&mut parts.headers, &parts.uri);
    Request::from_parts(parts, body)
}

/// Whether a stream failed because the connector's GOAWAY came before it: HTTP/2 promises
/// such a stream was not processed (RFC 9113, 6.8).
fn unprocessed(error: &h2::Error) -> bool {
    error.is_go_away() && error.is_remote() && error.reason() == Some(h2::Reason::NO_ERROR)
}

fn relay_response(response: Response<LinkBody>, guard: InFlight) -> Response<TunnelBody> {
    let mut response = hold_in_flight(response, guard);
    strip_hop_by_hop(response.headers_mut());
    strip_internal(response.headers_mut(), &[]);
    *response.version_mut() = Version::HTTP_11;
    response
}

/// The response as it came, its stream counted in flight until its body ends.
fn hold_in_flight(response: Response<LinkBody>, guard: InFlight) -> Response<TunnelBody> {
    response.map(|body| {
        body.map_frame(move |frame| {
            // The guard lives as long as the body: the stream is in flight until then.
            let _ = &guard;
            frame
        })
        .map_err(BoxError::from)
        .boxed_unsync()
    })
}

/// Streams other nodes forward here go to this node's connections only, and come back
/// as the connector answered (its metadata headers too: the forwarding node reads them).
impl Relay for Edge {
    fn relay(
        &self,
        tunnel: TunnelId,
        mut request: Request<TunnelBody>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<TunnelBody>> + Send + '_>>
    {
        Box::pin(async move {
            request.headers_mut().remove(HEADER_TUNNEL);
            let kind = request
                .headers()
                .get(&STREAM_KIND)
                .and_then(|v| v.to_str().ok())
                .and_then(StreamKind::parse)
                .unwrap_or(StreamKind::Http);
            // The visitor's own Accept header came along: its errors in the format it wants.
            let json = wants_json(request.headers());
            match self.send(tunnel, kind, request, Reach::ThisNode).await {
                Ok((response, in_flight)) => hold_in_flight(response, in_flight),
                Err(Failure::NoConnector) => {
                    let mut refused = Failure::NoConnector.response(tunnel, json);
                    refused.headers_mut().insert(
                        HEADER_NODE_REFUSED,
                        HeaderValue::from_static("no_connection"),
                    );
                    refused
                }
                Err(failure) => failure.response(tunnel, json),
            }
        })
    }
}

/// Answers the visitor 101 (in the protocol of `kind`) and joins its upgraded socket to
/// the stream.
fn switch_protocols(
    response: Response<LinkBody>,
    kind: StreamKind,
    visitor: hyper::upgrade::OnUpgrade,
    to_connector: BodySender,
    guard: InFlight,
) -> Response<TunnelBody> {
    let (mut parts, from_connector) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    strip_internal(&mut parts.headers, &[]);
    parts.status = StatusCode::SWITCHING_PROTOCOLS;
    parts.version = Version::HTTP_11;
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let protocol = if kind == StreamKind::Raw {
        UPGRADE_RAW_TCP
    } else {
        "websocket"
    };
    parts
        .headers
        .insert(header::UPGRADE, HeaderValue::from_static(protocol));
    tokio::spawn(
        async move {
            let _guard = guard;
            let upgraded = match visitor.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "visitor upgrade failed");
                    return;
                }
            };
            relay::splice(TokioIo::new(upgraded), from_connector, to_connector).await;
        }
        .instrument(tracing::debug_span!("upgraded", kind = kind.as_str())),
    );
    Response::from_parts(parts, full(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use adit_core::{
        api::ApiError,
        wire::{
            HEADER_CLIENT_ADDR, HEADER_DESTINATION, HEADER_RESPONSE_SOURCE, HEADER_STREAM_KIND,
            HEADER_UPGRADE_STATUS,
        },
    };
    use http_body_util::Full;

    #[test]
    fn only_requests_without_a_body_or_extensions_are_kept_to_send_again() {
        let get = Request::builder()
            .method("GET")
            .uri("http://app.example.com/x?y=1")
            .header("accept", "text/html")
            .body(full(Bytes::new()))
            .unwrap();
        let again = resendable(&get).expect("a GET without a body");
        assert_eq!(
            (again.method(), again.uri(), again.headers()),
            (get.method(), get.uri(), get.headers())
        );
        assert!(hyper::body::Body::is_end_stream(again.body()));

        let post = Request::builder()
            .method("POST")
            .body(full("a body is streamed once"))
            .unwrap();
        assert!(resendable(&post).is_none());
        let mut upgrade = Request::new(full(Bytes::new()));
        upgrade.extensions_mut().insert(42_u8);
        assert!(resendable(&upgrade).is_none());
    }

    use super::*;
    use crate::tunnel::testing;

    #[tokio::test]
    async fn the_edge_makes_forwarded_headers_for_version_1_connectors_only() {
        let visitor = Visitor::new("127.0.0.2:5000".parse().unwrap());
        let (parts, ()) = Request::builder()
            .uri("/x")
            .header("x-forwarded-proto", "forged")
            .header("x-forwarded-host", "forged.example")
            .header("x-forwarded-for", "10.0.0.1")
            .body(())
            .unwrap()
            .into_parts();
        let request = || {
            stream_request(
                parts.clone(),
                "app.example.com",
                StreamKind::Http,
                &visitor,
                Scheme::Https,
                full(Bytes::new()),
            )
            .unwrap()
        };
        let seen_by = |version| async move {
            let registry = Arc::new(Registry::default());
            let tunnel = TunnelId::random();
            let (seen_tx, seen) = std::sync::mpsc::channel();
            let answer = move |req: &Request<Incoming>| {
                let _ = seen_tx.send((req.uri().clone(), req.headers().clone()));
                Response::new(Full::new(Bytes::new()))
            };
            registry.add(testing::connection_speaking(tunnel, version, answer).await);
            let edge = edge(&registry, EdgeLimits::DEFAULT);
            let sent = edge.send(tunnel, StreamKind::Http, request(), Reach::ThisNode);
            assert!(sent.await.is_ok());
            seen.try_recv().unwrap()
        };
        // Version 2: none on the link (the visitor's forged ones are gone); the connector
        // makes them from the scheme, the authority and `adit-client-addr`.
        let (uri, headers) = seen_by(2).await;
        assert_eq!(uri.scheme_str(), Some("https"));
        assert_eq!(uri.authority().unwrap(), "app.example.com");
        assert_eq!(headers[HEADER_CLIENT_ADDR], "127.0.0.2:5000");
        assert!(headers.get("x-forwarded-proto").is_none());
        assert!(headers.get("x-forwarded-host").is_none());
        assert_eq!(
            headers["x-forwarded-for"], "10.0.0.1",
            "the prior one, untouched"
        );
        // Version 1: the edge makes them.
        let (_, headers) = seen_by(1).await;
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "app.example.com");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
    }

    #[test]
    fn the_stream_kind_is_named_unless_http() {
        let visitor = Visitor::new("127.0.0.2:5000".parse().unwrap());
        let link_headers = |kind| {
            let (parts, ()) = Request::builder()
                .uri("/x")
                .header(HEADER_STREAM_KIND, "tcp")
                .body(())
                .unwrap()
                .into_parts();
            let body = full(Bytes::new());
            let request =
                stream_request(parts, "app.example.com", kind, &visitor, Scheme::Http, body);
            request.unwrap().headers().clone()
        };
        // The visitor's forged kind is gone either way.
        assert!(
            link_headers(StreamKind::Http)
                .get(HEADER_STREAM_KIND)
                .is_none()
        );
        assert_eq!(
            link_headers(StreamKind::WebSocket)[HEADER_STREAM_KIND],
            "websocket"
        );
        assert_eq!(
            link_headers(StreamKind::Raw)[HEADER_CLIENT_ADDR],
            "127.0.0.2:5000"
        );
    }

    /// An edge over an empty route table and `registry`, with no socket of its own.
    fn edge(registry: &Arc<Registry>, limits: EdgeLimits) -> Edge {
        Edge::new(
            Arc::new(Routes::new(None)),
            registry.clone(),
            Arc::new(Metrics::new()),
            false,
            limits,
            ConnLimits::DEFAULT,
        )
    }

    /// `adit access socks`'s WebSocket request, with the caller's API token.
    fn connect_request() -> Request<()> {
        Request::builder()
            .uri("/api/v1/private/connect?destination=10.0.0.5:22")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::AUTHORIZATION, "Bearer adit_secret")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap()
    }

    async fn code_of(response: Response<TunnelBody>) -> String {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let error: ApiError = serde_json::from_slice(&body).unwrap();
        error.code
    }

    const PEER: &str = "127.0.0.9:5000";

    /// `adit access socks` asking `edge` for 10.0.0.5:22 through `tunnels`, from [`PEER`].
    async fn connect(edge: Edge, tunnels: &[TunnelId]) -> Response<TunnelBody> {
        edge.private_connect(
            tunnels,
            connect_request(),
            PEER.parse().unwrap(),
            "10.0.0.5:22",
        )
        .await
    }

    #[tokio::test]
    async fn a_tunnel_without_connections_is_offline() {
        let registry = Arc::new(Registry::default());
        let response = connect(edge(&registry, EdgeLimits::DEFAULT), &[TunnelId::random()]).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(code_of(response).await, "tunnel_offline");
    }

    #[tokio::test]
    async fn private_streams_take_the_tunnels_stream_slots() {
        let registry = Arc::new(Registry::default());
        let tunnel = TunnelId::random();
        registry.add(testing::ok_connection(tunnel, "").await);
        let limits = EdgeLimits {
            max_streams_per_tunnel: 0,
            ..EdgeLimits::DEFAULT
        };
        let response = connect(edge(&registry, limits), &[tunnel]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(code_of(response).await, "tunnel_busy");
    }

    #[tokio::test]
    async fn a_private_stream_goes_to_the_tunnel_whose_connector_takes_it() {
        let registry = Arc::new(Registry::default());
        let (refusing, taking) = (TunnelId::random(), TunnelId::random());
        registry.add(
            testing::connection(refusing, |_| {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::FORBIDDEN;
                let headers = response.headers_mut();
                headers.insert(
                    HEADER_RESPONSE_SOURCE,
                    HeaderValue::from_static("connector"),
                );
                headers.insert(
                    HEADER_ERROR_CODE,
                    HeaderValue::from_static(ConnectorError::DestinationNotRouted.as_str()),
                );
                response
            })
            .await,
        );
        let (seen_tx, seen) = std::sync::mpsc::channel();
        registry.add(
            testing::connection(taking, move |req| {
                let _ = seen_tx.send(req.headers().clone());
                let mut response = Response::new(Full::new(Bytes::new()));
                response
                    .headers_mut()
                    .insert(HEADER_UPGRADE_STATUS, HeaderValue::from_static("101"));
                response
            })
            .await,
        );
        let response = connect(edge(&registry, EdgeLimits::DEFAULT), &[refusing, taking]).await;
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let headers = seen.try_recv().unwrap();
        assert_eq!(headers[HEADER_STREAM_KIND], "tcp");
        assert_eq!(headers[HEADER_DESTINATION], "10.0.0.5:22");
        assert_eq!(headers[HEADER_CLIENT_ADDR], PEER);
        assert!(headers.get(header::AUTHORIZATION).is_none());
    }
}
