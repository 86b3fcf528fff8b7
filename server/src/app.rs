//! Builds the whole server: data directory, database, certificates, the three listeners
//! (each may be port 0; the bound addresses are reported) and the tasks that serve them.

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use adit_core::{
    hostname::HostPattern,
    identity::{Email, Role},
    ids::{AccountId, ApiTokenId},
    secret::Secret,
};
use adit_transport::{tls::EdgeTrust, workers::Workers};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    Config, Error,
    config::{ConnLimits, EdgeLimits},
    control::acme::{self, AcmeSettings},
    control::nodes::{self, Heartbeat},
    control::quick::QuickTunnels,
    control::{
        Control, DEFAULT_ACCOUNT, Endpoints,
        cluster::{self, Outbox},
    },
    edge::{self, Edge, Https, HttpsPolicy},
    files,
    identity::auth::Auth,
    storage::{ApiTokenRow, Storage},
    trust::edge_certs,
    trust::pki::{self, CertAuthority},
    trust::public_tls::PublicTls,
    trust::secrets::{self, ServerKey},
    tunnel::listener::{self as tunnel_listener, NodeLinkServer, TunnelListener},
    tunnel::node_link::NodeLinks,
    tunnel::registry::Registry,
    tunnel::routes::Routes,
    web::grpc::ConnectorApi,
    web::ui::Ui,
};

/// Where the first admin's generated password is kept (0600) for an operator who did not
/// see the first start on a terminal.
const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

pub struct App {
    pub edge_addr: SocketAddr,
    /// The HTTPS edge, when enabled.
    pub edge_tls_addr: Option<SocketAddr>,
    pub tunnel_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The admin API token, only on the start that created it.
    pub new_admin_token: Option<String>,
    /// The first admin's login and generated password, only on the start that created it.
    pub new_admin_password: Option<(Email, Secret)>,
    pub default_account: AccountId,
    pub control: Arc<Control>,
    /// This node's row in the node registry, kept fresh while it runs.
    heartbeat: Heartbeat,
    edge_listener: TcpListener,
    edge_tls: Option<(TcpListener, TlsAcceptor)>,
    tunnel_listener: TcpListener,
    api_listener: TcpListener,
    acceptor: TlsAcceptor,
    node: String,
    access_log: bool,
    /// How long a leaving node waits for streams in flight (see [`App::run`]).
    grace_period: Duration,
    edge_limits: EdgeLimits,
    conn_limits: ConnLimits,
    ui: Arc<Ui>,
    /// This node's notices to the other nodes of a cluster (on a shared database).
    cluster: Option<Outbox>,
    /// `--acme-*`, when ACME is on.
    acme: Option<AcmeSettings>,
}

/// The edge asks the control plane for challenges and HTTPS-only zones.
struct EdgeHttps(Arc<Control>);

impl HttpsPolicy for EdgeHttps {
    fn http01_answer<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(self.0.http01_answer(token))
    }

    fn https_only(&self, host: &str) -> bool {
        self.0.public_tls.is_https_only(host)
    }
}

fn node_name(config: &Config) -> String {
    config.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "adit-edge".into())
    })
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr} for the {what}: {e}")))
}

impl App {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let data_dir = config.data_dir();
        files::ensure_private_dir(&data_dir)?;
        let node = node_name(&config);

        let storage = Storage::open(&config.database_url()).await?;
        let default_account = storage.ensure_account(DEFAULT_ACCOUNT).await?;
        let stale = storage.close_connections_of_edge(&node).await?;
        if stale > 0 {
            tracing::info!(
                stale,
                "closed connections left open by this node's previous run"
            );
        }

        let edge_listener = bind(config.edge_addr, "public edge").await?;
        let edge_tls_listener = match config.edge_tls_addr {
            Some(addr) => Some(bind(addr, "public HTTPS edge").await?),
            None => None,
        };
        let tunnel_listener = bind(config.tunnel_addr, "tunnel listener").await?;
        let api_listener = bind(config.api_addr, "API").await?;
        let tunnel_addr = tunnel_listener.local_addr()?;

        let public_host = config.public_host.clone().unwrap_or_else(|| {
            if tunnel_addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                tunnel_addr.ip().to_string()
            }
        });
        let (token_host, token_endpoint) = match &config.token_endpoint {
            Some(given) => nodes::parse_endpoint(given, tunnel_addr.port())?,
            None => (
                public_host.clone(),
                nodes::host_port(&public_host, tunnel_addr.port()),
            ),
        };
        let certs = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => pki::load_operator(cert, key)?,
            _ => {
                let mut names = vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                    "::1".to_owned(),
                    node.clone(),
                ];
                for name in [&public_host, &token_host] {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                pki::ensure_self_signed(&data_dir, &names)?
            }
        };
        let ca_pin = certs.authority.as_ref().map(CertAuthority::pin);
        let authority = certs.authority.map(Arc::new);
        let quick_domain = config
            .quick_tunnel_domain
            .as_deref()
            .map(|domain| {
                HostPattern::parse_zone(domain).map_err(|_| {
                    Error::Config(format!(
                        "--quick-tunnel-domain {domain:?} is not a domain name"
                    ))
                })
            })
            .transpose()?;
        let routes = Arc::new(Routes::new(quick_domain.clone()));
        let acme = config.acme();
        let alpn_challenges = acme
            .as_ref()
            .is_some_and(|acme| acme.challenge == acme::AcmeChallenge::TlsAlpn01);
        if alpn_challenges && edge_tls_listener.is_none() {
            return Err(Error::Config(
                "--acme-challenge tls-alpn-01 is answered on the HTTPS edge, which --edge-tls-addr off turns off".into(),
            ));
        }
        let public_tls = Arc::new(PublicTls::default());
        let https_edge = match edge_tls_listener {
            Some(listener) => {
                let routed = routes.clone();
                let config = edge_certs::server_config(
                    authority.clone(),
                    certs.chain.clone(),
                    certs.key.clone_key(),
                    Arc::new(move |name: &str| routed.lookup(name).is_some()),
                    public_tls.clone(),
                    alpn_challenges,
                )?;
                Some((listener, TlsAcceptor::from(config)))
            }
            None => None,
        };
        let acceptor =
            TlsAcceptor::from(adit_transport::tls::server_config(certs.chain, certs.key)?);
        let node_addr = nodes::host_port(&public_host, tunnel_addr.port());

        let key = ServerKey::load_or_create(&data_dir.join("server.key"))?;
        let auth = Auth::load(storage.clone(), key.clone()).await?;
        let mut control = Control::new(
            storage.clone(),
            auth,
            Arc::new(Registry::default()),
            routes,
            key,
            Endpoints {
                token: token_endpoint,
                node: node_addr,
            },
            ca_pin,
        );
        if let Some(domain) = quick_domain {
            control = control.with_quick_tunnels(QuickTunnels {
                domain,
                per_client_limit: config.quick_tunnel_limit,
                grace: config.quick_tunnel_grace,
            });
        }
        control.public_tls = public_tls;
        let cluster = storage.is_shared().then(|| control.cluster.open());
        let control = Arc::new(control.with_secure_cookies(config.secure_cookies));
        control.load_routes().await?;
        control.reload_public_tls().await?;

        for zone in &config.zones {
            control
                .ensure_zone(default_account, zone)
                .await
                .map_err(|e| Error::Config(format!("--zone {zone}: {e}")))?;
        }
        let new_admin_password = if storage.count_users().await? == 0 {
            let admin = control
                .create_user(default_account, &config.admin_email, Role::Admin, None)
                .await?;
            match admin.password {
                Some(password) => {
                    files::write_private(
                        &data_dir.join(INITIAL_PASSWORD_FILE),
                        password.expose().as_bytes(),
                    )?;
                    Some((admin.user.email, password))
                }
                None => None,
            }
        } else {
            None
        };
        let new_admin_token = if storage.count_api_tokens(default_account).await? == 0 {
            let token = secrets::new_api_token();
            let row = ApiTokenRow {
                id: ApiTokenId::random(),
                account_id: default_account,
                name: "admin".into(),
                scopes: Role::Admin.scopes(),
                created_at: crate::clock::now_ms(),
                last_used_at: None,
                revoked_at: None,
            };
            storage
                .insert_api_token(&row, &secrets::sha256_hex(token.as_bytes()))
                .await?;
            files::write_private(&data_dir.join("admin-token"), token.as_bytes())?;
            Some(token)
        } else {
            None
        };
        let api_addr = api_listener.local_addr()?;
        files::write_private(
            &data_dir.join("api-url"),
            format!("http://{api_addr}").as_bytes(),
        )?;

        Ok(Self {
            edge_addr: edge_listener.local_addr()?,
            edge_tls_addr: https_edge
                .as_ref()
                .map(|(l, _)| l.local_addr())
                .transpose()?,
            tunnel_addr,
            api_addr,
            data_dir,
            new_admin_token,
            new_admin_password,
            default_account,
            control,
            heartbeat: Heartbeat::new(
                &node,
                nodes::advertised(tunnel_addr, &public_host),
                nodes::advertised(edge_listener.local_addr()?, &public_host),
                nodes::advertised(api_addr, &public_host),
            ),
            edge_listener,
            edge_tls: https_edge,
            tunnel_listener,
            api_listener,
            acceptor,
            node,
            access_log: config.access_log,
            grace_period: config.grace_period,
            edge_limits: config.edge_limits(),
            conn_limits: config.conn_limits(),
            ui: Arc::new(Ui::new(config.ui_dir())),
            cluster,
            acme,
        })
    }

    /// Serves until `shutdown` is cancelled, then drains and returns. In a cluster the node
    /// first leaves (see [`leave`]): its connectors move to the other nodes while its
    /// streams in flight finish, and its edge keeps answering by forwarding meanwhile.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        self.announce_first_secrets();
        tracing::info!(
            edge = %self.edge_addr,
            edge_tls = ?self.edge_tls_addr,
            tunnel = %self.tunnel_addr,
            api = %self.api_addr,
            node = %self.node,
            "adit-server listening"
        );
        self.ui.warn_if_missing();
        let control = self.control.clone();
        // Visitors' and connectors' connections run on these; the API stays on the main
        // runtime. Dropped (stopped) when `run` returns, after the database is closed.
        let workers = Arc::new(Workers::start_configured("adit-edge")?);

        let connector_grpc = tonic::service::Routes::new(
            adit_proto::v1::connector_service_server::ConnectorServiceServer::new(ConnectorApi(
                control.clone(),
            )),
        )
        .into_axum_router();
        let mut edge = Edge::new(
            control.routes.clone(),
            control.registry.clone(),
            control.metrics.clone(),
            self.access_log,
            self.edge_limits,
            self.conn_limits,
        );
        // In a cluster, requests for tunnels held by other nodes go there over node links.
        let in_cluster = self.cluster.is_some();
        if in_cluster {
            let trust = match &control.ca_pin {
                Some(pin) => EdgeTrust::Pinned(pin.clone()),
                None => EdgeTrust::SystemRoots,
            };
            let links = NodeLinks::new(control.clone(), trust, control.key.node_link_proof());
            edge = edge.with_peers(Arc::new(links));
        }
        let edge = Arc::new(
            edge.with_https(Https {
                policy: Arc::new(EdgeHttps(control.clone())),
                port: self
                    .edge_tls_addr
                    .map(|addr| addr.port())
                    .filter(|port| *port != 443),
            }),
        );
        let listener = Arc::new(TunnelListener {
            connections: control.clone(),
            registry: control.registry.clone(),
            metrics: control.metrics.clone(),
            acceptor: self.acceptor,
            grpc: connector_grpc,
            node: self.node,
            node_addr: control.endpoints.node.clone(),
            limits: self.conn_limits,
            node_links: in_cluster.then(|| NodeLinkServer {
                proof: control.key.node_link_proof(),
                relay: edge.clone(),
            }),
            data_connections: TaskTracker::new(),
        });
        let data_connections = listener.data_connections.clone();
        // `shutdown` starts the leaving; `stop` ends what must serve while the node leaves.
        let stop = CancellationToken::new();

        let api = crate::web::router(control.clone(), edge.clone(), self.ui.clone());

        if let Some((listener, acceptor)) = self.edge_tls {
            tokio::spawn(edge::serve_tls(
                listener,
                edge.clone(),
                acceptor,
                workers.clone(),
                stop.clone(),
            ));
        }
        let traffic = tokio::spawn(flush_traffic(control.clone(), stop.clone()));
        let cluster = self
            .cluster
            .map(|outbox| tokio::spawn(cluster::run(control.clone(), outbox, stop.clone())));
        let acme = self.acme.map(|settings| {
            let node = control.endpoints.node.clone();
            tokio::spawn(
                acme::run(control.clone(), settings, node, stop.clone())
                    .instrument(tracing::info_span!("acme")),
            )
        });
        if let Some(quick) = &control.quick {
            tokio::spawn(sweep_quick_tunnels(
                control.clone(),
                quick.grace,
                stop.clone(),
            ));
        }
        let tasks = [
            tokio::spawn(tunnel_listener::serve(
                self.tunnel_listener,
                listener,
                workers.clone(),
                shutdown.clone(),
                stop.clone(),
            )),
            tokio::spawn(edge::serve(
                self.edge_listener,
                edge,
                workers.clone(),
                stop.clone(),
            )),
            tokio::spawn(serve_api(
                self.api_listener,
                api,
                self.conn_limits,
                control.clone(),
                stop.clone(),
            )),
        ];
        let heartbeat = tokio::spawn(self.heartbeat.run(control.clone(), shutdown.clone()));
        shutdown.cancelled().await;
        // Marked stopped first, so no node or connector counts on this one any more.
        if let Err(e) = heartbeat.await {
            tracing::error!(error = %e, "the heartbeat task panicked");
        }
        if in_cluster {
            leave(&control.registry, data_connections, self.grace_period).await;
        }
        stop.cancel();
        for task in tasks
            .into_iter()
            .chain([traffic])
            .chain(cluster)
            .chain(acme)
        {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a server task panicked");
            }
        }
        control.storage.close().await;
        drop(workers);
        Ok(())
    }
}

impl App {
    /// Tells the operator about the first admin's password and API token. They are printed,
    /// never logged — and printed only to a terminal: a service manager or container runtime
    /// sends standard output to the same collector as the logs, so there it is told only
    /// where the 0600 files holding them are.
    fn announce_first_secrets(&self) {
        let on_terminal = std::io::stdout().is_terminal();
        if let Some((email, password)) = &self.new_admin_password {
            let file = self.data_dir.join(INITIAL_PASSWORD_FILE);
            if on_terminal {
                println!(
                    "Dashboard admin (password shown once, also saved to {}; change it with `adit-server admin reset-password`):\n\n    {email}  {}\n",
                    file.display(),
                    password.expose()
                );
            } else {
                println!(
                    "Dashboard admin: {email}; its generated password is in {} (readable by this user only; change it with `adit-server admin reset-password`)",
                    file.display()
                );
            }
        }
        if let Some(token) = &self.new_admin_token {
            let file = self.data_dir.join("admin-token");
            if on_terminal {
                println!(
                    "Admin API token (shown once; also saved to {}):\n\n    {token}\n",
                    file.display()
                );
            } else {
                println!(
                    "Admin API token: in {} (readable by this user only)",
                    file.display()
                );
            }
        }
    }
}

/// The API listener: the same accept discipline as the other listeners (a connection is
/// pending until its first request head, which must come within `--api-header-timeout`),
/// HTTP/1's header timeout and HTTP/2 pings. Returns once every connection has drained.
async fn serve_api(
    listener: TcpListener,
    api: axum::Router,
    limits: ConnLimits,
    control: Arc<Control>,
    shutdown: CancellationToken,
) {
    let connections = crate::net::accept_loop(
        listener,
        "api",
        limits.max_pending_per_source,
        None,
        shutdown.clone(),
        move |stream, peer, pending| {
            let (api, shutdown) = (api.clone(), shutdown.clone());
            async move {
                let deadline = tokio::time::Instant::now() + limits.api_header_timeout;
                let proof = pending.clone();
                let service =
                    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        proof.prove();
                        req.extensions_mut().insert(ConnectInfo(peer));
                        // The router is always ready, so it may be called without `poll_ready`.
                        tower::Service::call(&mut api.clone(), req)
                    });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.api_header_timeout);
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .keep_alive_interval(limits.http2_keep_alive_interval)
                    .keep_alive_timeout(limits.http2_keep_alive_timeout)
                    // WebSockets over HTTP/2 (private-network connects) need CONNECT.
                    .enable_connect_protocol();
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                crate::net::serve_http(
                    conn,
                    |c| c.graceful_shutdown(),
                    crate::net::DRAIN_TIMEOUT,
                    &pending,
                    deadline,
                    &shutdown,
                )
                .await;
            }
        },
    )
    .await;
    // Event streams never end by themselves: they close as the drain begins.
    control.changes.close();
    connections.wait().await;
}

/// A node of a cluster leaving it: it lets go of its connectors' connections, each of
/// which closes (GOAWAY) once its streams in flight are done, at most `grace` later; its
/// connectors dial the other nodes meanwhile (this one is marked stopped and takes no new
/// connection). Its edge stays open: what it no longer holds it forwards.
async fn leave(registry: &Registry, data_connections: TaskTracker, grace: Duration) {
    let released = registry.release_all();
    tracing::info!(
        connections = released,
        ?grace,
        "leaving the cluster: connectors move to the other nodes; streams in flight may finish"
    );
    data_connections.close();
    if tokio::time::timeout(grace, data_connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period of {grace:?} over; closing with streams in flight");
    }
}

/// Writes the traffic history every minute, and once more when stopping.
async fn flush_traffic(control: Arc<Control>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = ticks.tick() => false,
        };
        if let Err(e) = control.flush_traffic().await {
            tracing::warn!(error = %e, "could not write the traffic history");
        }
        if stopping {
            break;
        }
    }
}

/// Removes abandoned quick tunnels, checking a few times per grace period.
async fn sweep_quick_tunnels(
    control: Arc<Control>,
    grace: std::time::Duration,
    shutdown: CancellationToken,
) {
    let every = (grace / 4).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(5),
    );
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                if let Err(e) = control.sweep_quick_tunnels().await {
                    tracing::warn!(error = %e, "could not sweep quick tunnels");
                }
            }
        }
    }
}
