//! An in-memory connector for unit tests: a [`LiveConnection`] whose far end is an HTTP/2
//! server on the other half of a `tokio::io::duplex`, answering each stream with a
//! function of its request. No socket, no TLS, no database.

use std::{convert::Infallible, sync::Arc};

use adit_core::{
    ids::{ConnectionId, ConnectorId, TunnelId},
    wire::PROTOCOL_VERSIONS,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::tunnel::registry::LiveConnection;

/// A connection of `tunnel` whose connector answers with `answer`.
pub(crate) async fn connection<F>(tunnel: TunnelId, answer: F) -> Arc<LiveConnection>
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    connection_speaking(tunnel, PROTOCOL_VERSIONS[0], answer).await
}

/// [`connection`], with `version` as the protocol version its hello settled on.
pub(crate) async fn connection_speaking<F>(
    tunnel: TunnelId,
    version: u32,
    answer: F,
) -> Arc<LiveConnection>
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    spawn_connection(tunnel, version, answer).await.0
}

/// [`connection`], with the connector's side of it, which ends when the edge closes the
/// connection.
pub(crate) async fn connection_watched<F>(
    tunnel: TunnelId,
    answer: F,
) -> (Arc<LiveConnection>, JoinHandle<()>)
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    spawn_connection(tunnel, PROTOCOL_VERSIONS[0], answer).await
}

async fn spawn_connection<F>(
    tunnel: TunnelId,
    version: u32,
    answer: F,
) -> (Arc<LiveConnection>, JoinHandle<()>)
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let (edge_end, connector_end) = tokio::io::duplex(64 * 1024);
    let answer = Arc::new(answer);
    let connector = tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let response = answer(&req);
            async move { Ok::<_, Infallible>(response) }
        });
        let _ = adit_transport::h2::server_builder()
            .serve_connection(TokioIo::new(connector_end), service)
            .await;
    });
    let (sender, driver) = crate::tunnel::link::handshake(edge_end, CancellationToken::new())
        .await
        .expect("an in-memory HTTP/2 handshake");
    tokio::spawn(driver);
    let live = Arc::new(LiveConnection::new(
        ConnectionId::random(),
        tunnel,
        ConnectorId::random(),
        0,
        version,
        sender,
        CancellationToken::new(),
    ));
    (live, connector)
}

/// A connector that answers every stream 200 with `body`.
pub(crate) async fn ok_connection(tunnel: TunnelId, body: &'static str) -> Arc<LiveConnection> {
    connection(tunnel, move |_| {
        Response::new(Full::new(Bytes::from_static(body.as_bytes())))
    })
    .await
}
