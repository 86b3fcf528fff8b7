//! Streams that end in a raw TCP connection: a TCP ingress service (`tcp://`, `ssh://`,
//! `rdp://`, …) reached by `adit access`, and a private-network destination reached by
//! `adit access socks`. Both arrive as a WebSocket; the connector answers the handshake
//! itself and bridges the messages to the socket (see `bridge`).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Mutex, PoisonError, RwLock, Weak},
    time::{Duration, Instant},
};

use adit_core::{
    cidr::IpNet, ingress::Rule, wire::HEADER_DESTINATION, wire::HEADER_UPGRADE_STATUS,
};
use adit_transport::relay::{self, BodyIo, BodySender};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use tracing::Instrument;

use crate::{
    Error,
    origin::{ProxyBody, connector_error, origin_failure},
};

/// The WebSocket codec reads from bytes already in memory (the HTTP/2 stream's), so small
/// reads cost little, and a small buffer keeps idle streams cheap.
const WEBSOCKET_READ_BUFFER: usize = 4 * 1024;
/// A destination outside the known networks refreshes the list at most this often.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The body of a stream's answer, and the sender that feeds it.
pub(crate) fn answer_body() -> (ProxyBody, BodySender) {
    let (body, to_edge) = relay::channel_body();
    (body.boxed_unsync(), to_edge)
}

/// The answer for an upgraded stream: HTTP/2 cannot say 101, so it rides in a header.
pub(crate) fn switched(headers: HeaderMap, body: ProxyBody) -> Response<ProxyBody> {
    let mut answer = Response::new(body);
    *answer.headers_mut() = headers;
    answer
        .headers_mut()
        .insert(HEADER_UPGRADE_STATUS, HeaderValue::from_static("101"));
    answer
}

/// Answers the visitor's WebSocket handshake ourselves and bridges it to `tcp`.
fn accept_websocket(req: Request<ProxyBody>, tcp: TcpStream) -> Response<ProxyBody> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return connector_error(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "a TCP stream must arrive as a WebSocket (use `adit access`)".into(),
        );
    };
    let mut headers = HeaderMap::new();
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert("sec-websocket-accept", accept);
    }
    let (body, to_edge) = answer_body();
    let io = BodyIo::new(req.into_body(), to_edge);
    tokio::spawn(
        async move {
            let config = crate::bridge::websocket_config(WEBSOCKET_READ_BUFFER);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            match crate::bridge::bridge(ws, tcp).await {
                Ok(moved) => tracing::debug!(
                    to_origin = moved.to_tcp,
                    from_origin = moved.to_ws,
                    "TCP stream closed"
                ),
                Err(e) => tracing::debug!(error = %e, "TCP stream ended with an error"),
            }
        }
        .instrument(tracing::debug_span!("tcp_stream")),
    );
    switched(headers, body)
}

async fn dial(address: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A WebSocket for a `tcp://`-style rule: dial the origin, then bridge.
pub(crate) async fn tcp_service(rule: &Rule, req: Request<ProxyBody>) -> Response<ProxyBody> {
    let Some(address) = rule.service.tcp_address() else {
        return connector_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "connector_internal",
            "not a TCP rule".into(),
        );
    };
    match dial(&address, rule.origin_request.connect_timeout).await {
        Ok(tcp) => accept_websocket(req, tcp),
        Err(e) => origin_failure(&rule.service.to_string(), &rule.origin_request, &e),
    }
}

/// Where the connector learns its tunnel's private networks (the control plane).
pub trait NetworkSource: Send + Sync {
    fn networks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<IpNet>, Error>> + Send + '_>>;
}

/// The networks routed to this tunnel: the only private destinations the connector dials,
/// whatever the edge asks for.
#[derive(Default)]
pub struct PrivateNetworks {
    nets: RwLock<Vec<IpNet>>,
    source: Mutex<Option<Weak<dyn NetworkSource>>>,
    refreshed: Mutex<Option<Instant>>,
}

impl PrivateNetworks {
    pub fn set_source(&self, source: Weak<dyn NetworkSource>) {
        *self.source.lock().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    fn holds(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|n| n.contains(ip))
    }

    /// Fetches the list again (routes change while we run).
    pub async fn refresh(&self) -> Result<(), Error> {
        let source = self
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Weak::upgrade);
        let Some(source) = source else {
            return Ok(());
        };
        *self
            .refreshed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let nets = source.networks().await?;
        tracing::debug!(networks = ?nets.iter().map(ToString::to_string).collect::<Vec<_>>(), "private networks");
        *self.nets.write().unwrap_or_else(PoisonError::into_inner) = nets;
        Ok(())
    }

    /// Whether `ip` may be dialled, refreshing the list once if it seems not.
    async fn allows(&self, ip: IpAddr) -> bool {
        if self.holds(ip) {
            return true;
        }
        let stale = self
            .refreshed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= REFRESH_AT_MOST_EVERY);
        if stale && let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "could not refresh the private networks");
        }
        self.holds(ip)
    }

    fn describe(&self) -> String {
        let nets = self.nets.read().unwrap_or_else(PoisonError::into_inner);
        if nets.is_empty() {
            "none".into()
        } else {
            nets.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A private-network stream: resolve the destination here (names are resolved on the
/// connector's side), dial the first address inside a routed network, bridge.
pub(crate) async fn private_network(
    networks: &PrivateNetworks,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let Some(destination) = req
        .headers()
        .get(HEADER_DESTINATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return connector_error(
            StatusCode::BAD_REQUEST,
            "bad_destination",
            "the stream names no destination".into(),
        );
    };
    let addresses: Vec<SocketAddr> = match tokio::net::lookup_host(destination.as_str()).await {
        Ok(found) => found.collect(),
        Err(e) => {
            return connector_error(
                StatusCode::BAD_GATEWAY,
                "destination_unresolved",
                format!("{destination} could not be resolved: {e}"),
            );
        }
    };
    let mut allowed = None;
    for address in addresses {
        if networks.allows(address.ip()).await {
            allowed = Some(address);
            break;
        }
    }
    let Some(address) = allowed else {
        tracing::info!(%destination, "refused a private-network destination outside the tunnel's routes");
        return connector_error(
            StatusCode::FORBIDDEN,
            "destination_not_routed",
            format!(
                "{destination} is not inside the networks routed to this tunnel ({})",
                networks.describe()
            ),
        );
    };
    let settings = adit_core::ingress::OriginRequest::default();
    match dial(&address.to_string(), settings.connect_timeout).await {
        Ok(tcp) => accept_websocket(req, tcp),
        Err(e) => origin_failure(&destination, &settings, &e),
    }
}
