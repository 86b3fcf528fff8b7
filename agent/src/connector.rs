//! `adit tunnel run`: register over gRPC, then hold `ha_connections` outbound TLS data
//! connections to the edge, each serving the edge's streams (reverse HTTP/2) through the
//! origin proxy, reconnecting with jittered exponential backoff.

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use adit_core::{
    cidr::IpNet,
    ids::{ConnectionId, ConnectorId},
    ingress::IngressConfig,
    token::TunnelToken,
    wire::{self, DataHello, HelloReply, RejectCode},
};
use adit_proto::v1::{
    ConfigSource, DrainConnectorRequest, ListIpRoutesRequest, LiveNodesRequest, LocalConfiguration,
    RegisterConnectorRequest, RemoteConfiguration, WatchConfigurationRequest,
    connector_service_client::ConnectorServiceClient,
};
use adit_transport::{
    frame::{read_frame, write_frame},
    tls::{EdgeTrust, LinkSocket, client_config, link_socket, server_name},
    workers::Workers,
};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::{
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};
use tokio_rustls::{TlsConnector, client::TlsStream, rustls::ClientConfig};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Error,
    metrics::ConnectorMetrics,
    origin::{NetworkSource, OriginProxy},
};

const DIAL_TIMEOUT: Duration = Duration::from_secs(15);
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that lived this long resets its backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How often an idle control connection (the configuration stream) is pinged, so a
/// vanished edge is noticed and the stream reopened.
const CONTROL_KEEPALIVE: Duration = Duration::from_secs(30);
/// How often the connector asks which nodes of a cluster are alive (a node that joins is
/// used within this, one that dies is left as soon as a connection to it fails).
const NODES_REFRESH: Duration = Duration::from_secs(5);
/// How long a stopping connector waits for the edge to confirm it sends no new streams.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// After a stop signal, how long streams in flight may take to finish (`--grace-period`).
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// Everything a connector needs; built from flags and config by the CLI, or by tests.
pub struct ConnectorConfig {
    pub token: TunnelToken,
    /// Overrides the token's endpoint (`host:port`).
    pub endpoint: Option<String>,
    pub proxy: Arc<OriginProxy>,
    pub ha_connections: u8,
    pub connector_id: ConnectorId,
    /// After `shutdown`, how long streams in flight may take to finish.
    pub grace_period: Duration,
}

pub struct Connector {
    config: ConnectorConfig,
    edge: Arc<EdgeClient>,
}

/// The connector's way to the edge: TLS dials (for data or control connections) and gRPC
/// calls with the token as Bearer. It holds nothing else of the connector's, so the origin
/// proxy can be handed it as its [`NetworkSource`] without a pointer back to the connector.
struct EdgeClient {
    /// `host:port` of the tunnel listener: the bootstrap address (any node of a cluster,
    /// or a name in front of all of them).
    endpoint: String,
    /// TLS to the edge for data connections and for control connections, made once: each
    /// config holds a session cache, and a dial per config made a new one.
    data_tls: Arc<ClientConfig>,
    control_tls: Arc<ClientConfig>,
    token: TunnelToken,
    /// The live nodes of the cluster (their tunnel listeners), as the edge last said;
    /// empty outside a cluster. Data connections spread over them.
    nodes: watch::Sender<Vec<String>>,
    /// Where each data connection is now (by index), so stopping drains every node used
    /// and a connection that moves goes where it is missing.
    connected: std::sync::Mutex<std::collections::BTreeMap<u8, String>>,
    /// How many data connections it keeps (`--ha-connections`).
    connections: u8,
    /// The control connection the live nodes are asked on, kept between the asks (every
    /// few seconds from every connector: a TLS handshake each would load the edge).
    nodes_channel: tokio::sync::Mutex<Option<ConnectorServiceClient<tonic::transport::Channel>>>,
    /// Set once the first data connection is up (systemd's readiness waits for it).
    connected_once: watch::Sender<bool>,
    /// One connection moves between nodes at a time, until its replacement is up: were
    /// all to move at once (a node left, and the spread shifted), none would serve.
    moves: Arc<Semaphore>,
}

enum Attempt {
    /// Served until the link dropped; whether it lived long enough to count as stable.
    Served {
        stable: bool,
        /// It moves to another node: the turn to move, held until the new one is up.
        moving: Option<OwnedSemaphorePermit>,
    },
    Rejected(RejectCode, String),
    Failed(String),
}

/// Full-jitter exponential backoff: wait a random time up to base·2ⁿ, capped.
struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(30);

    fn next(&mut self) -> (Duration, Duration) {
        let ceiling = Self::BASE
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(Self::CAP);
        self.attempt += 1;
        let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
        (wait, ceiling)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

pub fn arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

impl Connector {
    pub fn new(config: ConnectorConfig) -> Result<Self, Error> {
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| config.token.endpoint.clone())
            .ok_or_else(|| {
                Error::Usage("the token names no edge endpoint; pass --edge HOST:PORT".into())
            })?;
        let trust = match &config.token.ca_pin {
            Some(pin) => EdgeTrust::Pinned(pin.clone()),
            None => EdgeTrust::SystemRoots,
        };
        let edge = Arc::new(EdgeClient {
            endpoint,
            data_tls: client_config(&trust, wire::ALPN_DATA)?,
            control_tls: client_config(&trust, wire::ALPN_GRPC)?,
            token: config.token.clone(),
            nodes: watch::Sender::new(Vec::new()),
            connected: std::sync::Mutex::default(),
            connections: config.ha_connections,
            nodes_channel: tokio::sync::Mutex::default(),
            connected_once: watch::Sender::new(false),
            moves: Arc::new(Semaphore::new(1)),
        });
        Ok(Self { config, edge })
    }

    /// What it counts, including how many connections are up (`/ready`).
    pub fn metrics(&self) -> Arc<ConnectorMetrics> {
        self.config.proxy.metrics.clone()
    }

    /// Turns true once a first data connection is up.
    pub fn connected_once(&self) -> watch::Receiver<bool> {
        self.edge.connected_once.subscribe()
    }

    /// Runs until `shutdown`, or until the edge refuses the token (an error). Stopping
    /// loses no request: the edge is first told to open no new streams here, then each
    /// connection ends (HTTP/2 GOAWAY) once its streams finish, within the grace period.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let this = Arc::new(self);
        tracing::info!(
            tunnel = %this.config.token.tunnel_id,
            connector = %this.config.connector_id,
            edge = %this.edge.endpoint,
            version = env!("CARGO_PKG_VERSION"),
            "Starting tunnel"
        );
        // Taken before registration reports the local rules, so no later version is missed.
        let local_versions = this.config.proxy.local_versions();
        let mut backoff = Backoff { attempt: 0 };
        let remotely_managed = loop {
            match this.register().await {
                Ok(remote) => break remote,
                Err(Error::InvalidToken) => return Err(Error::InvalidToken),
                Err(e) => {
                    let (wait, ceiling) = backoff.next();
                    tracing::warn!(error = %e, "could not register the connector; retrying in up to {ceiling:?}");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {},
                        () = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        };
        let networks = &this.config.proxy.networks;
        networks.set_source(this.edge.clone());
        if let Err(e) = networks.refresh().await {
            tracing::warn!(error = %e, "could not fetch the tunnel's private networks");
        }
        this.refresh_nodes().await;
        // Ends the connections: after the drain when `shutdown` comes, at once when a
        // connection finds the token refused.
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        {
            let this = this.clone();
            let stop = stop.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(
                async move {
                    tokio::select! {
                        () = shutdown.cancelled() => this.drain().await,
                        () = stop.cancelled() => {}
                    }
                    stop.cancel();
                    Ok(())
                }
                .instrument(tracing::info_span!("drain")),
            );
        }
        // Each connection, with its streams and their origin requests, runs on one worker
        // thread (`adit_transport::workers`); the control tasks stay on the main runtime.
        let workers = Workers::start_configured("adit-conn")?;
        for index in 0..this.config.ha_connections {
            let this = this.clone();
            let stop = stop.clone();
            tasks.spawn_on(
                async move { Box::pin(this.connection_loop(index, stop)).await }
                    .instrument(tracing::info_span!("connection", conn_index = index)),
                &workers.handle(usize::from(index)),
            );
        }
        {
            let this = this.clone();
            let stop = stop.clone();
            tasks.spawn(
                async move {
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep(NODES_REFRESH) => this.refresh_nodes().await,
                            () = stop.cancelled() => return Ok(()),
                        }
                    }
                }
                .instrument(tracing::info_span!("nodes")),
            );
        }
        if remotely_managed {
            let this = this.clone();
            let stop = stop.clone();
            let span = tracing::info_span!(
                "configuration",
                tunnel = %this.config.token.tunnel_id,
                connector = %this.config.connector_id,
            );
            tasks.spawn(async move { this.follow_configuration(stop).await }.instrument(span));
        } else {
            let this = this.clone();
            let stop = stop.clone();
            let span = tracing::info_span!(
                "local_configuration",
                tunnel = %this.config.token.tunnel_id,
                connector = %this.config.connector_id,
            );
            tasks.spawn(
                async move { this.report_local_versions(local_versions, stop).await }
                    .instrument(span),
            );
        }
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Err(e)) => {
                    stop.cancel();
                    result = Err(e);
                }
                Ok(Ok(())) => {}
                Err(e) => tracing::error!(error = %e, "a connection task panicked"),
            }
        }
        result
    }

    /// Asks the edge to give this connector no new streams, and waits (a bounded time)
    /// for it to confirm. Without the confirmation the connections close all the same.
    async fn drain(&self) {
        tracing::info!(grace_period = ?self.config.grace_period, "Draining: the edge sends no new requests; those in flight may finish");
        let mut nodes: Vec<String> = self.edge.connected_nodes();
        if nodes.is_empty() {
            nodes.push(self.edge.endpoint.clone());
        }
        let drained = async {
            let mut connections = 0;
            for node in &nodes {
                connections += self.drain_at(node, None).await?;
            }
            Ok::<_, Error>(connections)
        };
        match tokio::time::timeout(DRAIN_TIMEOUT, drained).await {
            Ok(Ok(connections)) => {
                tracing::info!(connections, "The edge confirmed the drain");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not ask the edge to drain; closing the connections anyway");
            }
            Err(_) => tracing::warn!(
                "the edge did not confirm the drain in {DRAIN_TIMEOUT:?}; closing the connections anyway"
            ),
        }
    }

    /// Asks the node at `addr` to give this connector's connections there (or only the
    /// connection `only`) no new streams; how many it stopped.
    async fn drain_at(&self, addr: &str, only: Option<ConnectionId>) -> Result<u32, Error> {
        let mut client = self.edge.control_at(addr).await?;
        let request = self.edge.authorized(DrainConnectorRequest {
            connector_id: self.config.connector_id.to_string(),
            connection_id: only.map(|id| id.to_string()).unwrap_or_default(),
        })?;
        let reply = client.drain_connector(request).await.map_err(from_status)?;
        Ok(reply.into_inner().connections)
    }

    /// Asks which nodes of the cluster are alive, for the data connections to spread over.
    /// An edge that is no cluster (or too old to say) leaves the list empty.
    async fn refresh_nodes(&self) {
        match self.edge.live_nodes().await {
            Ok(nodes) => {
                self.edge.nodes.send_if_modified(|known| {
                    let changed = *known != nodes;
                    if changed {
                        tracing::info!(?nodes, "Edge nodes");
                        known.clone_from(&nodes);
                    }
                    changed
                });
            }
            Err(e) => tracing::debug!(error = %e, "could not list the edge's nodes"),
        }
    }

    /// Registers with the control plane and takes up how the tunnel is managed (with a
    /// remote tunnel's configuration, when it has one); whether it is managed remotely.
    async fn register(&self) -> Result<bool, Error> {
        let mut client = self.edge.control().await?;
        let request = self.edge.authorized(RegisterConnectorRequest {
            connector_id: self.config.connector_id.to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
            arch: arch(),
            hostname: host_name(),
            ha_connections: u32::from(self.config.ha_connections),
        })?;
        let reply = client
            .register_connector(request)
            .await
            .map_err(from_status)?
            .into_inner();
        let remote = reply.config_source() == ConfigSource::Remote;
        tracing::info!(tunnel = %reply.tunnel_id, name = %reply.tunnel_name, connector = %self.config.connector_id, remotely_managed = remote, "Registered connector");
        let proxy = &self.config.proxy;
        if remote {
            proxy.manage_remotely();
            match reply.configuration {
                Some(config) => self.adopt(&config),
                None => tracing::info!(
                    "The tunnel is managed remotely and has no configuration yet; requests get 503 until a public hostname is added (dashboard or API)"
                ),
            }
        } else {
            proxy.manage_locally()?;
            if let Some(rules) = proxy.local_rules() {
                self.report_local_rules(&mut client, &rules).await;
            }
        }
        Ok(remote)
    }

    /// Tells the control plane the local rules in force, for the API and dashboard to
    /// show. Best effort: serving does not depend on it.
    async fn report_local_rules(
        &self,
        client: &mut ConnectorServiceClient<tonic::transport::Channel>,
        rules: &IngressConfig,
    ) {
        let reported = async {
            let config_json = serde_json::to_vec(rules)?;
            let request = self.edge.authorized(LocalConfiguration { config_json })?;
            client.report_local_configuration(request).await?;
            Ok::<_, Error>(())
        };
        if let Err(e) = reported.await {
            tracing::warn!(error = %e, "could not report the local configuration to the edge");
        }
    }

    /// Reports each new version of the local rules (config.yml edited, see
    /// agent/src/config_watch.rs) as registration reported the first, until `stop`.
    async fn report_local_versions(
        &self,
        mut versions: watch::Receiver<i64>,
        stop: CancellationToken,
    ) -> Result<(), Error> {
        loop {
            tokio::select! {
                changed = versions.changed() => if changed.is_err() { return Ok(()) },
                () = stop.cancelled() => return Ok(()),
            }
            let Some(rules) = self.config.proxy.local_rules() else {
                continue;
            };
            let report = async {
                match self.edge.control().await {
                    Ok(mut client) => self.report_local_rules(&mut client, &rules).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not report the local configuration to the edge")
                    }
                }
            };
            tokio::select! {
                () = report => {},
                () = stop.cancelled() => return Ok(()),
            }
        }
    }

    /// Puts a configuration from the edge in force; a bad one is logged and the rules in
    /// force stay (as cloudflared does).
    fn adopt(&self, config: &RemoteConfiguration) {
        if let Err(e) = self
            .config
            .proxy
            .apply_remote(config.version, &config.config_json)
        {
            tracing::error!(error = %e, "keeping the configuration in force");
        }
    }

    /// Follows the tunnel's remote configuration until `stop`: one long-lived stream on a
    /// control connection of its own, reopened with backoff when it drops. Each opening
    /// first brings the current version if it is newer, so nothing missed meanwhile is lost.
    async fn follow_configuration(&self, stop: CancellationToken) -> Result<(), Error> {
        let mut backoff = Backoff { attempt: 0 };
        loop {
            let started = tokio::time::Instant::now();
            let outcome = tokio::select! {
                outcome = self.watch_configuration() => outcome,
                () = stop.cancelled() => return Ok(()),
            };
            match outcome {
                Err(Error::InvalidToken) => return Err(Error::InvalidToken),
                Err(e) => tracing::warn!(error = %e, "lost the configuration stream"),
                Ok(()) => tracing::info!("the edge ended the configuration stream"),
            }
            if started.elapsed() >= STABLE_AFTER {
                backoff.reset();
            }
            let (wait, ceiling) = backoff.next();
            tracing::info!("Reopening the configuration stream in up to {ceiling:?}");
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                () = stop.cancelled() => return Ok(()),
            }
        }
    }

    async fn watch_configuration(&self) -> Result<(), Error> {
        let mut client = self.edge.control().await?;
        let known_version = self.config.proxy.remote_version().unwrap_or(0);
        let request = self
            .edge
            .authorized(WatchConfigurationRequest { known_version })?;
        let mut versions = client
            .watch_configuration(request)
            .await
            .map_err(from_status)?
            .into_inner();
        while let Some(config) = versions.message().await.map_err(from_status)? {
            self.adopt(&config);
        }
        Ok(())
    }

    async fn connection_loop(&self, index: u8, stop: CancellationToken) -> Result<(), Error> {
        let mut backoff = Backoff { attempt: 0 };
        // How many nodes past its own this connection moves after failures.
        let mut skip = 0;
        // Its turn to move, while it moves.
        let mut moving = None;
        while !stop.is_cancelled() {
            match Box::pin(self.connect_once(index, skip, &stop, moving.take())).await {
                Attempt::Served {
                    stable,
                    moving: Some(turn),
                } if !stop.is_cancelled() => {
                    // Moving: dial the new node at once.
                    if stable {
                        backoff.reset();
                        skip = 0;
                    }
                    moving = Some(turn);
                    continue;
                }
                Attempt::Served { stable, .. } => {
                    if stable {
                        backoff.reset();
                        skip = 0;
                    }
                    if stop.is_cancelled() {
                        break;
                    }
                    // The node may be leaving the cluster: ask who is alive before dialling.
                    self.refresh_nodes().await;
                    if stable {
                        // A connection that served a while: its replacement is dialled at
                        // once (a tunnel with one connection would be offline meanwhile).
                        continue;
                    }
                }
                Attempt::Rejected(RejectCode::Unauthorized, message) => {
                    tracing::error!(%message, "the edge refused the tunnel token");
                    return Err(Error::InvalidToken);
                }
                Attempt::Rejected(RejectCode::UnknownConnector, _) => {
                    if let Err(e) = self.register().await {
                        if matches!(e, Error::InvalidToken) {
                            return Err(e);
                        }
                        tracing::warn!(error = %e, "could not register the connector again");
                    }
                }
                Attempt::Rejected(code, message) => {
                    tracing::warn!(?code, %message, "the edge refused the connection");
                }
                Attempt::Failed(message) => {
                    tracing::warn!(%message, "connection failed");
                    // The node may be gone: try the next, and ask who is alive now.
                    skip += 1;
                    self.refresh_nodes().await;
                }
            }
            let (wait, ceiling) = backoff.next();
            tracing::info!("Retrying connection in up to {ceiling:?}");
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                () = stop.cancelled() => break,
            }
        }
        Ok(())
    }

    /// One connection to the node `index` belongs on (`skip` nodes further after
    /// failures), served until it ends. `moving` (its turn to move) is given back once the
    /// new connection is up or has failed.
    async fn connect_once(
        &self,
        index: u8,
        skip: usize,
        stop: &CancellationToken,
        moving: Option<OwnedSemaphorePermit>,
    ) -> Attempt {
        let addr = self.edge.target(index, skip);
        let mut tls = match self.edge.dial_at(&addr, &self.edge.data_tls).await {
            Ok(tls) => tls,
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        let hello = DataHello {
            versions: wire::PROTOCOL_VERSIONS.to_vec(),
            token: self.config.token.encode().into(),
            connector_id: self.config.connector_id,
            index,
        };
        let reply = async {
            write_frame(&mut tls, &hello).await?;
            read_frame::<_, HelloReply>(&mut tls, wire::MAX_HELLO_LEN).await
        };
        let (connection, edge) = match tokio::time::timeout(HELLO_TIMEOUT, reply).await {
            Ok(Ok(HelloReply::Accepted {
                connection_id,
                edge,
                ..
            })) => (connection_id, edge),
            Ok(Ok(HelloReply::Rejected { code, message })) => {
                self.config.proxy.metrics.registration(false);
                return Attempt::Rejected(code, message);
            }
            Ok(Err(e)) => return Attempt::Failed(format!("hello failed: {e}")),
            Err(_) => return Attempt::Failed("the edge did not answer the hello in time".into()),
        };
        // Placed before the turn to move passes on: the next to move counts this one.
        self.edge.set_connected(index, Some(&addr));
        drop(moving);
        Box::pin(self.serve(tls, index, &addr, connection, edge, stop)).await
    }

    /// Serves the edge's streams on one connection until it drops, the connector stops,
    /// or the cluster's nodes change so that this connection belongs on another node: it
    /// then moves without losing a stream (drained at its node first, then GOAWAY).
    async fn serve(
        &self,
        tls: TlsStream<LinkSocket>,
        index: u8,
        addr: &str,
        connection: ConnectionId,
        edge: String,
        stop: &CancellationToken,
    ) -> Attempt {
        let mut nodes = self.edge.nodes.subscribe();
        let belongs_elsewhere = || {
            let wanted = self.edge.target(index, 0);
            (wanted != addr && self.edge.is_node(&wanted)).then_some(wanted)
        };
        let moved = async {
            loop {
                if nodes.changed().await.is_err() {
                    return std::future::pending().await;
                }
                if belongs_elsewhere().is_none() {
                    continue;
                }
                let Ok(turn) = self.edge.moves.clone().acquire_owned().await else {
                    return std::future::pending().await;
                };
                // The nodes may have changed again while it waited.
                let Some(wanted) = belongs_elsewhere() else {
                    continue;
                };
                tracing::info!(conn_index = index, from = %addr, to = %wanted, "Moving the connection to another node");
                if let Err(e) = self.drain_at(addr, Some(connection)).await {
                    tracing::warn!(error = %e, "could not drain the connection before moving it");
                }
                return turn;
            }
        };
        tracing::info!(conn_index = index, %connection, %edge, "Registered tunnel connection");
        let metrics = &self.config.proxy.metrics;
        metrics.registration(true);
        metrics.ha_connections.inc();
        self.edge.connected_once.send_replace(true);
        let started = tokio::time::Instant::now();
        let proxy = self.config.proxy.clone();
        let service = hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(proxy.handle(req).await) }
        });
        let conn =
            adit_transport::h2::server_builder().serve_connection(TokioIo::new(tls), service);
        tokio::pin!(conn);
        let ending = async {
            tokio::select! {
                () = stop.cancelled() => None,
                turn = moved => Some(turn),
            }
        };
        let (result, moving) = tokio::select! {
            result = conn.as_mut() => (result, None),
            moving = ending => {
                conn.as_mut().graceful_shutdown();
                let grace = self.config.grace_period;
                let result = tokio::time::timeout(grace, conn).await.unwrap_or_else(|_| {
                    tracing::warn!(conn_index = index, "grace period of {grace:?} over; closing with streams in flight");
                    Ok(())
                });
                (result, moving)
            }
        };
        metrics.ha_connections.dec();
        self.edge.set_connected(index, None);
        match result {
            Ok(()) => {
                tracing::info!(conn_index = index, %connection, "Unregistered tunnel connection")
            }
            Err(e) => {
                tracing::warn!(conn_index = index, %connection, error = %e, "Connection lost")
            }
        }
        Attempt::Served {
            stable: started.elapsed() >= STABLE_AFTER,
            moving,
        }
    }
}

impl EdgeClient {
    /// Where data connection `index` goes: outside a cluster, the bootstrap address; in
    /// one, see [`placement`] (`skip` places further down its list after failures).
    fn target(&self, index: u8, skip: usize) -> String {
        let nodes = self.nodes.borrow();
        if nodes.is_empty() {
            return self.endpoint.clone();
        }
        let connected = self
            .connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        placement(index, skip, &connected, &nodes, self.connections)
    }

    fn is_node(&self, addr: &str) -> bool {
        self.nodes.borrow().iter().any(|n| n == addr)
    }

    fn set_connected(&self, index: u8, addr: Option<&str>) {
        let mut connected = self
            .connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match addr {
            Some(addr) => connected.insert(index, addr.to_owned()),
            None => connected.remove(&index),
        };
    }

    /// The nodes this connector's data connections are on now.
    fn connected_nodes(&self) -> Vec<String> {
        let connected = self
            .connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut nodes: Vec<String> = connected.values().cloned().collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    async fn dial_at(
        &self,
        addr: &str,
        tls: &Arc<ClientConfig>,
    ) -> Result<TlsStream<LinkSocket>, Error> {
        let unreachable = |message: String| Error::Unreachable {
            url: addr.to_owned(),
            message,
        };
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tcp.set_nodelay(true)?;
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let connector = TlsConnector::from(tls.clone());
        let tls = tokio::time::timeout(
            DIAL_TIMEOUT,
            connector.connect(server_name(host)?, link_socket(tcp)),
        )
        .await
        .map_err(|_| unreachable("TLS handshake timed out".into()))?
        .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))?;
        Ok(tls)
    }

    /// A gRPC client on a fresh control connection: to the bootstrap address, else to the
    /// first live node that answers (the bootstrap node may be the one that died).
    async fn control(&self) -> Result<ConnectorServiceClient<tonic::transport::Channel>, Error> {
        let first = self.control_at(&self.endpoint).await;
        if first.is_ok() {
            return first;
        }
        let nodes = self.nodes.borrow().clone();
        for node in nodes.iter().filter(|n| **n != self.endpoint) {
            if let Ok(client) = self.control_at(node).await {
                return Ok(client);
            }
        }
        first
    }

    /// The cluster's live nodes, asked on the kept control connection; on a new one
    /// (through any node) when there is none or it failed.
    async fn live_nodes(&self) -> Result<Vec<String>, Error> {
        let mut kept = self.nodes_channel.lock().await;
        if let Some(client) = kept.as_mut() {
            // Bounded like a fresh dial's handshake: a node that hangs is left as soon.
            match tokio::time::timeout(HELLO_TIMEOUT, self.list_live_nodes(client)).await {
                Ok(Ok(nodes)) => return Ok(nodes),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "the kept control connection failed; dialling anew");
                }
                Err(_) => tracing::debug!("the kept control connection hung; dialling anew"),
            }
        }
        *kept = None;
        let mut client = self.control().await?;
        let nodes = self.list_live_nodes(&mut client).await?;
        *kept = Some(client);
        Ok(nodes)
    }

    async fn list_live_nodes(
        &self,
        client: &mut ConnectorServiceClient<tonic::transport::Channel>,
    ) -> Result<Vec<String>, Error> {
        let request = self.authorized(LiveNodesRequest {})?;
        let reply = client.list_live_nodes(request).await.map_err(from_status)?;
        Ok(reply.into_inner().node_addrs)
    }

    /// A gRPC client on a fresh control connection to the node at `addr`.
    async fn control_at(
        &self,
        addr: &str,
    ) -> Result<ConnectorServiceClient<tonic::transport::Channel>, Error> {
        let tls = self.dial_at(addr, &self.control_tls).await?;
        let io = std::sync::Mutex::new(Some(TokioIo::new(tls)));
        // One pre-dialled connection, handed to tonic once.
        let channel = tonic::transport::Endpoint::from_static("http://edge")
            .http2_keep_alive_interval(CONTROL_KEEPALIVE)
            .keep_alive_timeout(HELLO_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_with_connector(tower::service_fn(move |_| {
                let io = io.lock().ok().and_then(|mut slot| slot.take());
                async move { io.ok_or_else(|| std::io::Error::other("connection already used")) }
            }))
            .await
            .map_err(|e| Error::Unreachable {
                url: addr.to_owned(),
                message: e.to_string(),
            })?;
        Ok(ConnectorServiceClient::new(channel))
    }

    fn authorized<T>(&self, message: T) -> Result<tonic::Request<T>, Error> {
        let mut request = tonic::Request::new(message);
        let bearer = format!("Bearer {}", self.token.encode());
        request.metadata_mut().insert(
            "authorization",
            bearer.parse().map_err(|_| Error::InvalidToken)?,
        );
        Ok(request)
    }
}

impl NetworkSource for EdgeClient {
    fn networks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<IpNet>, Error>> + Send + '_>> {
        Box::pin(async move {
            let mut client = self.control().await?;
            let reply = client
                .list_ip_routes(self.authorized(ListIpRoutesRequest {})?)
                .await?
                .into_inner();
            Ok(reply
                .networks
                .iter()
                .filter_map(|n| IpNet::parse(n).ok())
                .collect())
        })
    }
}

/// The control plane refusing the token means it is no longer valid: no retry can help.
fn from_status(status: tonic::Status) -> Error {
    if status.code() == tonic::Code::Unauthenticated {
        Error::InvalidToken
    } else {
        status.into()
    }
}

/// The node data connection `index` belongs on, given where the others are (`connected`)
/// and the live `nodes` (not empty), `total` connections in all: where it is, while its
/// node keeps no more than its share; else the node with fewest of them. A connection
/// leaves a node only when another has fewer than its fair share (or it has more than
/// its most), so a node joining or leaving moves few connections and never empties a
/// node that stays of them (when there are at least as many connections as nodes).
fn placement(
    index: u8,
    skip: usize,
    connected: &std::collections::BTreeMap<u8, String>,
    nodes: &[String],
    total: u8,
) -> String {
    let load = |node: &str| {
        connected
            .iter()
            .filter(|(i, at)| **i != index && *at == node)
            .count()
    };
    let fewest = usize::from(total) / nodes.len();
    let most = usize::from(total).div_ceil(nodes.len());
    let current = connected.get(&index).filter(|at| nodes.contains(at));
    if let (Some(at), 0) = (current, skip) {
        let mine = load(at) + 1;
        let short = nodes.iter().any(|n| n != at && load(n) < fewest);
        if mine <= fewest || (mine <= most && !short) {
            return at.clone();
        }
    }
    // Ties go round by index, so connections placed at once spread over the nodes.
    let mut candidates: Vec<&String> = nodes.iter().filter(|n| Some(*n) != current).collect();
    if candidates.is_empty() {
        return nodes[0].clone();
    }
    let turn = usize::from(index) % candidates.len();
    candidates.rotate_left(turn);
    candidates.sort_by_key(|n| load(n));
    candidates[skip % candidates.len()].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff { attempt: 0 };
        let ceilings: Vec<_> = (0..10).map(|_| b.next().1).collect();
        assert_eq!(ceilings[0], Duration::from_millis(250));
        assert_eq!(ceilings[1], Duration::from_millis(500));
        assert_eq!(ceilings[9], Backoff::CAP);
        for _ in 0..100 {
            let (wait, ceiling) = b.next();
            assert!(wait <= ceiling);
        }
        b.reset();
        assert_eq!(b.next().1, Duration::from_millis(250));
    }

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    /// Places four connections one after another, as a connector starting does.
    fn place_all(nodes: &[String]) -> std::collections::BTreeMap<u8, String> {
        let mut connected = std::collections::BTreeMap::new();
        for index in 0..4 {
            let at = placement(index, 0, &connected, nodes, 4);
            connected.insert(index, at);
        }
        connected
    }

    fn counts(connected: &std::collections::BTreeMap<u8, String>, nodes: &[String]) -> Vec<usize> {
        nodes
            .iter()
            .map(|n| connected.values().filter(|at| *at == n).count())
            .collect()
    }

    /// Moves connections one at a time, as the connector does, until each stays; how
    /// many moved. No node of `nodes` is left without a connection by a move.
    fn settle(connected: &mut std::collections::BTreeMap<u8, String>, nodes: &[String]) -> usize {
        let mut moves = 0;
        loop {
            let moving =
                (0..4u8).find(|i| connected.get(i) != Some(&placement(*i, 0, connected, nodes, 4)));
            let Some(index) = moving else {
                return moves;
            };
            let from = connected.remove(&index);
            if let Some(from) = from.filter(|f| nodes.contains(f)) {
                assert!(
                    connected.values().any(|at| *at == from),
                    "moving {index} emptied {from}"
                );
            }
            let to = placement(index, 0, connected, nodes, 4);
            connected.insert(index, to);
            moves += 1;
            assert!(moves <= 8, "no end to the moves: {connected:?}");
        }
    }

    #[test]
    fn connections_spread_over_the_nodes_and_move_little() {
        let three = nodes(&["a", "b", "c"]);
        let mut connected = place_all(&three);
        let mut spread = counts(&connected, &three);
        spread.sort_unstable();
        assert_eq!(spread, [1, 1, 2]);
        assert_eq!(settle(&mut connected, &three), 0);

        // A rolling restart: each node leaves (its connections go to the others) and
        // comes back (one connection moves to it); no staying node is ever emptied.
        for leaving in ["a", "b", "c"] {
            let others: Vec<String> = three.iter().filter(|n| *n != leaving).cloned().collect();
            settle(&mut connected, &others);
            assert_eq!(counts(&connected, &others), [2, 2]);
            let moved = settle(&mut connected, &three);
            assert!(moved <= 1, "{moved} moved back for {leaving}");
            assert!(counts(&connected, &three).iter().all(|n| *n >= 1));
        }

        // One node, then five: all on the one; then never two on a node.
        let one = nodes(&["a"]);
        settle(&mut connected, &one);
        assert_eq!(counts(&connected, &one), [4]);
        let five = nodes(&["a", "b", "c", "d", "e"]);
        settle(&mut connected, &five);
        assert!(counts(&connected, &five).iter().all(|n| *n <= 1));

        // After a failure, the next node down the list.
        let fresh = std::collections::BTreeMap::new();
        assert_ne!(
            placement(0, 0, &fresh, &three, 4),
            placement(0, 1, &fresh, &three, 4)
        );
    }
}
