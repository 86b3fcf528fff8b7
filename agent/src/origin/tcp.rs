//! Streams that end in a raw TCP connection. A TCP ingress service (`tcp://`, `ssh://`,
//! `rdp://`, …) reached by `adit access` arrives as a raw stream: the connector dials the
//! socket and joins the stream's bodies to it byte for byte. Older `adit access` clients
//! and private-network destinations (see `private`) arrive as a WebSocket: the connector
//! answers the handshake itself and bridges the messages to the socket (see
//! `crate::bridge`).

use std::time::Duration;

use adit_core::ingress::Rule;
use adit_core::wire::ConnectorError;
use adit_transport::relay::{self, BodyIo};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use tracing::Instrument;

use super::{
    body::{ProxyBody, answer_body, switched},
    errors::{connector_error, origin_failure},
};
use crate::bridge;

/// The WebSocket codec reads from bytes already in memory (the HTTP/2 stream's), so small
/// reads cost little, and a small buffer keeps idle streams cheap.
const WEBSOCKET_READ_BUFFER: usize = 4 * 1024;

/// A WebSocket for a `tcp://`-style rule: dial the origin, then bridge.
pub(super) async fn serve(rule: &Rule, req: Request<ProxyBody>) -> Response<ProxyBody> {
    match dial_rule(rule).await {
        Ok(tcp) => accept_websocket(req, tcp),
        Err(refused) => refused,
    }
}

/// The origin of a `tcp://`-style rule, dialled; else the answer that says why not.
async fn dial_rule(rule: &Rule) -> Result<TcpStream, Response<ProxyBody>> {
    let Some(address) = rule.service.tcp_address() else {
        return Err(connector_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ConnectorError::ConnectorInternal,
            "not a TCP rule".into(),
        ));
    };
    dial(&address, rule.origin_request.connect_timeout)
        .await
        .map_err(|e| origin_failure(&rule.service.to_string(), &rule.origin_request, &e))
}

/// A raw stream for a `tcp://`-style rule: dial the origin, then join the stream's bodies
/// to the socket as they are (no framing; the end of a body is a half-close).
pub(super) async fn serve_raw(rule: &Rule, req: Request<ProxyBody>) -> Response<ProxyBody> {
    let tcp = match dial_rule(rule).await {
        Ok(tcp) => tcp,
        Err(refused) => return refused,
    };
    let (body, to_edge) = answer_body();
    let from_edge = req.into_body();
    tokio::spawn(
        async move {
            let moved = relay::splice(tcp, from_edge, to_edge).await;
            tracing::debug!(
                to_origin = moved.to_socket,
                from_origin = moved.from_socket,
                "TCP stream closed"
            );
        }
        .instrument(tracing::debug_span!("tcp_stream")),
    );
    switched(HeaderMap::new(), body)
}

pub(super) async fn dial(address: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Answers the visitor's WebSocket handshake ourselves and bridges it to `tcp`.
pub(super) fn accept_websocket(req: Request<ProxyBody>, tcp: TcpStream) -> Response<ProxyBody> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return connector_error(
            StatusCode::BAD_REQUEST,
            ConnectorError::WebsocketRequired,
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
            let config = bridge::websocket_config(WEBSOCKET_READ_BUFFER);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            match bridge::bridge(ws, tcp).await {
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
