//! The tunnel listener: one TLS port for connectors. ALPN tells a data connection
//! (`adit-data`: hello, then reversed HTTP/2) from the gRPC control channel (`h2`). Until a
//! connection's token is accepted it is pending (see `net`): it must authenticate within
//! the auth timeout, and each source may hold only so many such connections.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use adit_core::{
    ids::{ConnectionId, TunnelId},
    secret::Secret,
    wire::{self, DataHello, HelloReply, NodeHello, RejectCode},
};
use adit_transport::{
    frame::{read_frame, write_frame},
    tls::{LinkSocket, link_socket},
    workers::Workers,
};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    Error,
    clock::now_ms,
    net::{self, ConnLimits, Pending},
    observe::metrics::Metrics,
    storage::{ConnectionRow, ConnectorRow},
    tunnel::{
        link,
        node_link::Relay,
        registry::{BoxError, LiveConnection, Registry, empty_body},
    },
};

/// What the listener asks the control plane about data connections. `Control` answers;
/// the listener names only this, so the tunnel plane sits below the control plane.
pub trait Connections: Send + Sync + 'static {
    /// Checks a hello's token and connector: the connector, or the refusal to send it.
    fn authorize(
        &self,
        hello: &DataHello,
    ) -> impl Future<Output = Result<Result<ConnectorRow, (RejectCode, String)>, Error>> + Send;

    /// Records a connection that has opened.
    fn opened(
        &self,
        connector: &ConnectorRow,
        connection: &ConnectionRow,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Records a connection's end.
    fn closed(
        &self,
        connector: &ConnectorRow,
        connection: ConnectionId,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The peer address, handed to gRPC handlers as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

pub struct TunnelListener<C> {
    pub connections: Arc<C>,
    /// Where accepted data connections go, for the edge to pick.
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub acceptor: TlsAcceptor,
    /// The gRPC services connectors call (ConnectorService). Each call also gets the
    /// connection's `Pending` as an extension, to prove it once a token is accepted.
    pub grpc: axum::Router,
    /// This edge node's name, recorded on each connection.
    pub node: String,
    /// Where other nodes reach this one (its tunnel listener), recorded on each connection
    /// so they can forward its tunnels' requests here.
    pub node_addr: String,
    pub limits: ConnLimits,
    /// In a cluster: links from other nodes, and what takes their streams.
    pub node_links: Option<NodeLinkServer>,
    /// The data connections' tasks, which a leaving node waits for.
    pub data_connections: TaskTracker,
}

/// The accepting side of node-to-node links.
pub struct NodeLinkServer {
    /// What a dialling node must show ([`NodeHello`]).
    pub proof: Secret,
    pub relay: Arc<dyn Relay>,
}

/// Accepts connectors until `accepting` is cancelled (the node is leaving, or stopping),
/// and serves each connection until it ends or `shutdown`.
pub async fn serve<C: Connections>(
    listener: TcpListener,
    this: Arc<TunnelListener<C>>,
    workers: Arc<Workers>,
    accepting: CancellationToken,
    shutdown: CancellationToken,
) {
    let max_pending = this.limits.max_pending_per_source;
    net::accept_loop(
        listener,
        "tunnel",
        max_pending,
        Some(&workers),
        accepting,
        move |stream, peer, pending| {
            let (this, shutdown) = (this.clone(), shutdown.clone());
            async move { this.accept(stream, peer, pending, shutdown).await }
        },
    )
    .await;
}

impl<C: Connections> TunnelListener<C> {
    async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        pending: Pending,
        shutdown: CancellationToken,
    ) {
        // One deadline for the whole unauthenticated phase, TLS handshake included.
        let deadline = Instant::now() + self.limits.tunnel_auth_timeout;
        let tls = match tokio::time::timeout_at(deadline, self.acceptor.accept(link_socket(stream)))
            .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        };
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        if alpn.as_deref() == Some(wire::ALPN_DATA) {
            self.data_connections
                .track_future(self.serve_data(tls, peer, pending, deadline, shutdown))
                .await;
        } else if alpn.as_deref() == Some(wire::ALPN_NODE) {
            self.serve_node(tls, peer, pending, deadline, shutdown)
                .await;
        } else {
            self.serve_grpc(tls, peer, pending, deadline, shutdown)
                .await;
        }
    }

    /// gRPC for connectors. Every call carries the tunnel token, and the first one whose
    /// token is accepted proves the connection; one that makes none in time is closed.
    async fn serve_grpc(
        &self,
        tls: TlsStream<LinkSocket>,
        peer: SocketAddr,
        pending: Pending,
        deadline: Instant,
        shutdown: CancellationToken,
    ) {
        let router = self
            .grpc
            .clone()
            .layer(axum::Extension(PeerAddr(peer)))
            .layer(axum::Extension(pending.clone()));
        let service = TowerToHyperService::new(router);
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(self.limits.http2_keep_alive_interval)
            .keep_alive_timeout(self.limits.http2_keep_alive_timeout);
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        // No drain: a connector's configuration watch never ends by itself, and a connector
        // whose control connection drops dials again (the next server, on a restart).
        net::serve_http(
            conn,
            |c| c.graceful_shutdown(),
            Duration::ZERO,
            &pending,
            deadline,
            &shutdown,
        )
        .await;
    }

    /// A link from another node: its hello must prove it a node of the cluster; then each
    /// of its streams goes to one of this node's connections of the tunnel it names.
    async fn serve_node(
        &self,
        mut tls: TlsStream<LinkSocket>,
        peer: SocketAddr,
        pending: Pending,
        deadline: Instant,
        shutdown: CancellationToken,
    ) {
        let Some(links) = &self.node_links else {
            tracing::debug!(%peer, "refused a node link: this server is not in a cluster");
            return;
        };
        let hello: NodeHello = match tokio::time::timeout_at(
            deadline,
            read_frame(&mut tls, wire::MAX_HELLO_LEN),
        )
        .await
        {
            Ok(Ok(hello)) => hello,
            _ => {
                tracing::info!(%peer, "refused a node link without a readable hello");
                return;
            }
        };
        if !same_secret(&hello.proof, &links.proof) {
            tracing::warn!(%peer, "refused a node link with a wrong proof");
            return;
        }
        pending.prove();
        let relay = links.relay.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let relay = relay.clone();
            async move {
                let tunnel = request
                    .headers()
                    .get(wire::HEADER_TUNNEL)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<TunnelId>().ok());
                let response = match tunnel {
                    Some(tunnel) => {
                        let request =
                            request.map(|body| body.map_err(BoxError::from).boxed_unsync());
                        relay.relay(tunnel, request).await
                    }
                    None => {
                        let mut refused = Response::new(empty_body());
                        *refused.status_mut() = http::StatusCode::BAD_REQUEST;
                        refused
                    }
                };
                Ok::<_, Infallible>(response)
            }
        });
        let conn =
            adit_transport::h2::server_builder().serve_connection(TokioIo::new(tls), service);
        let span = tracing::info_span!("node_link_in", %peer);
        async {
            tracing::info!("another node linked");
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => if let Err(e) = result {
                    tracing::debug!(error = %e, "node link ended with an error");
                },
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
                }
            }
        }
        .instrument(span)
        .await;
    }

    async fn serve_data(
        &self,
        mut tls: TlsStream<LinkSocket>,
        peer: SocketAddr,
        pending: Pending,
        deadline: Instant,
        shutdown: CancellationToken,
    ) {
        let hello: DataHello = match tokio::time::timeout_at(
            deadline,
            read_frame(&mut tls, wire::MAX_HELLO_LEN),
        )
        .await
        {
            Ok(Ok(hello)) => hello,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "refused a data connection with a malformed hello");
                let _ = reject(&mut tls, RejectCode::Malformed, e.to_string()).await;
                return;
            }
            Err(_) => {
                tracing::debug!("refused a data connection that sent no hello in time");
                return;
            }
        };
        let Some(version) = wire::negotiate_version(&hello.versions) else {
            let _ = reject(
                &mut tls,
                RejectCode::UnsupportedVersion,
                format!(
                    "this edge speaks protocol versions {:?}",
                    wire::PROTOCOL_VERSIONS
                ),
            )
            .await;
            return;
        };
        let connector = match self.connections.authorize(&hello).await {
            Ok(Ok(connector)) => {
                pending.prove();
                connector
            }
            Ok(Err((code, message))) => {
                self.metrics.registration(false);
                tracing::info!(connector = %hello.connector_id, ?code, "refused a data connection");
                let _ = reject(&mut tls, code, message).await;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not check a data connection");
                return;
            }
        };
        let connection = ConnectionRow {
            id: ConnectionId::random(),
            connector_id: connector.id,
            index: hello.index,
            edge: self.node.clone(),
            node_addr: self.node_addr.clone(),
            origin_ip: peer.ip().to_string(),
            opened_at: now_ms(),
        };
        let reply = HelloReply::Accepted {
            version,
            connection_id: connection.id,
            edge: self.node.clone(),
        };
        if let Err(e) = write_frame(&mut tls, &reply).await {
            tracing::debug!(error = %e, "connector left during the hello");
            return;
        }
        let close = shutdown.child_token();
        let (sender, driver) = match link::handshake(tls, close.clone()).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::info!(error = %e, "HTTP/2 handshake with the connector failed");
                return;
            }
        };
        if let Err(e) = self.connections.opened(&connector, &connection).await {
            tracing::error!(error = %e, "could not record a connection");
            return;
        }
        let live = Arc::new(LiveConnection::new(
            connection.id,
            connector.tunnel_id,
            connector.id,
            hello.index,
            version,
            sender,
            close.clone(),
        ));
        if !self.registry.add(live) {
            // This node started leaving meanwhile: the dropped connection closes and the
            // connector dials another node.
            if let Err(e) = self.connections.closed(&connector, connection.id).await {
                tracing::warn!(error = %e, "could not record the connection's end");
            }
            return;
        }
        self.metrics.registration(true);
        self.metrics.ha_connections.inc();
        let span = tracing::info_span!(
            "tunnel_connection",
            tunnel = %connector.tunnel_id,
            connector = %connector.id,
            connection = %connection.id,
            conn_index = hello.index,
        );
        async {
            tracing::info!("registered tunnel connection");
            if let Err(e) = driver.await {
                tracing::debug!(error = %e, "connection driver ended with an error");
            }
            self.registry.remove(connector.tunnel_id, connection.id);
            self.metrics.ha_connections.dec();
            if let Err(e) = self.connections.closed(&connector, connection.id).await {
                tracing::warn!(error = %e, "could not record the connection's end");
            }
            tracing::info!("unregistered tunnel connection");
        }
        .instrument(span)
        .await;
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    use sha2::{Digest, Sha256};
    let digest = |s: &Secret| Sha256::digest(s.expose().as_bytes());
    // Comparing digests: the time taken tells nothing about the secrets' bytes.
    digest(a) == digest(b)
}

async fn reject(
    tls: &mut TlsStream<LinkSocket>,
    code: RejectCode,
    message: String,
) -> Result<(), adit_transport::Error> {
    write_frame(tls, &HelloReply::Rejected { code, message }).await?;
    tokio::io::AsyncWriteExt::shutdown(tls).await?;
    Ok(())
}
