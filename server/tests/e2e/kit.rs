//! The test kit: a real adit-server and real connectors in-process on 127.0.0.1:0, real
//! origins, real clients. Waiting is done with `eventually`, never a bare sleep.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use adit_agent::{
    connector::{Connector, ConnectorConfig},
    metrics::ConnectorMetrics,
    origin::OriginProxy,
};
use adit_core::{
    api::ConfigSource,
    identity::Role,
    ids::{AccountId, ConnectorId},
    ingress::Ingress,
    token::TunnelToken,
};
use adit_server::{App, Config, control::Control};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,h2=info,hyper=info,sqlx=warn",
            ))
            .with_test_writer()
            .try_init();
    }
}

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// What a test needs is missing: under CI (`CI=true`) the test fails, since a test that
/// passes by skipping proves nothing; elsewhere it says SKIPPED and the test returns.
pub fn missing_environment(what: &str) {
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "CI=true, but {what}"
    );
    eprintln!("SKIPPED: {what}");
}

/// A fresh PostgreSQL database, or `None` (SKIPPED; a failure under CI) when
/// ADIT_TEST_DATABASE_URL is unset.
pub async fn fresh_postgres() -> Option<String> {
    let Ok(base) = std::env::var("ADIT_TEST_DATABASE_URL") else {
        missing_environment("ADIT_TEST_DATABASE_URL is not set (the PostgreSQL tests need it)");
        return None;
    };
    let name = format!("adit_t_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to ADIT_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    Some(format!("{prefix}/{name}"))
}

pub struct TestServer {
    pub edge: SocketAddr,
    pub edge_tls: SocketAddr,
    pub tunnel: SocketAddr,
    pub api: SocketAddr,
    pub admin_token: String,
    /// The first admin's login, on the start that created it.
    pub admin_login: Option<(String, String)>,
    pub control: Arc<Control>,
    pub dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    /// Its node name, which a restart keeps.
    node: Option<String>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_on(Db::Sqlite)
            .await
            .expect("sqlite always works")
    }

    /// `None` when the backend is PostgreSQL and no test database is configured.
    pub async fn spawn_on(db: Db) -> Option<Self> {
        init_logs();
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(fresh_postgres().await?),
        };
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Some(Self::start(dir, database_url, None, None, |_| {}).await)
    }

    /// A server with a config of the test's own (quick tunnels, limits, …).
    pub async fn start_with(dir: Arc<tempfile::TempDir>, config: Config) -> Self {
        init_logs();
        Self::run(dir, config).await
    }

    async fn start(
        dir: Arc<tempfile::TempDir>,
        database_url: Option<String>,
        tunnel: Option<SocketAddr>,
        node: Option<String>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::ephemeral(dir.path().join("data"));
        config.database_url = database_url;
        if node.is_some() {
            config.node_name = node;
        }
        if let Some(addr) = tunnel {
            config.tunnel_addr = addr;
        }
        adjust(&mut config);
        Self::run(dir, config).await
    }

    async fn run(dir: Arc<tempfile::TempDir>, mut config: Config) -> Self {
        // The tests route hostnames under example.com.
        if config.zones.is_empty() {
            config.zones.push("example.com".into());
        }
        if config.ui_dir.is_none() {
            config.ui_dir = built_bundle();
        }
        let database_url = config.database_url.clone();
        let node = config.node_name.clone();
        // A restart binds the tunnel port it had (tokens name it); a connection another
        // test opened meanwhile may hold that port as its own for a moment.
        let app = eventually(Duration::from_secs(10), "the server's ports", || {
            let config = config.clone();
            async move {
                match App::build(config).await {
                    Ok(app) => Some(app),
                    Err(e) if e.to_string().contains("Address already in use") => None,
                    Err(e) => panic!("server builds: {e}"),
                }
            }
        })
        .await;
        let admin_token = match app.new_admin_token.clone() {
            Some(token) => token,
            None => std::fs::read_to_string(dir.path().join("data/admin-token"))
                .expect("admin token file"),
        };
        let admin_login = app
            .new_admin_password
            .clone()
            .map(|(email, password)| (email.to_string(), password.expose().to_owned()));
        let edge_tls = app.edge_tls_addr.expect("tests run the HTTPS edge");
        let (edge, tunnel, api, control) = (
            app.edge_addr,
            app.tunnel_addr,
            app.api_addr,
            app.control.clone(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { app.run(stop).await.expect("server runs") }
        });
        Self {
            edge,
            edge_tls,
            tunnel,
            api,
            admin_token,
            admin_login,
            control,
            dir,
            database_url,
            node,
            stop,
            task,
        }
    }

    /// Another node of this server's cluster (it must run on PostgreSQL), named `node`: its
    /// own data directory, given the files every node shares — the server key and the CA,
    /// as an operator copies them — and the admin token file the kit reads.
    pub async fn join(&self, node: &str) -> Self {
        self.join_with(node, |_| {}).await
    }

    /// [`join`](Self::join), with `adjust` changing the new node's configuration.
    pub async fn join_with(&self, node: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let url = self
            .database_url
            .clone()
            .expect("a cluster shares a PostgreSQL database");
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for file in ["server.key", "ca.pem", "ca.key", "admin-token"] {
            std::fs::copy(self.dir.path().join("data").join(file), data.join(file)).unwrap();
        }
        let mut config = Config::ephemeral(data);
        config.database_url = Some(url);
        config.node_name = Some(node.to_owned());
        adjust(&mut config);
        Self::start_with(dir, config).await
    }

    /// Stops the server and starts a new one on the same data directory, database and
    /// tunnel port, as an operator's restart does.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// [`restart`](Self::restart), running `meddle` on the data directory while the server
    /// is stopped (as an operator, an older release or a restored backup might leave it).
    pub async fn restart_with(self, meddle: impl FnOnce(&std::path::Path)) -> Self {
        self.restart_as(meddle, |_| {}).await
    }

    /// [`restart`](Self::restart) with flags of the test's own (`adjust` changes the
    /// configuration the new start gets).
    pub async fn restart_configured(self, adjust: impl FnOnce(&mut Config)) -> Self {
        self.restart_as(|_| {}, adjust).await
    }

    async fn restart_as(
        self,
        meddle: impl FnOnce(&std::path::Path),
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let (dir, url, tunnel) = (self.dir.clone(), self.database_url.clone(), self.tunnel);
        let node = self.node.clone();
        self.stop().await;
        meddle(&dir.path().join("data"));
        Self::start(dir, url, Some(tunnel), node, adjust).await
    }

    /// Stops the server gracefully, keeping its data directory and database.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }

    /// Stops the server and drops its PostgreSQL database, if it had one.
    pub async fn shutdown(self) {
        let database_url = self.database_url.clone();
        self.stop().await;
        if let (Some(url), Ok(base)) = (database_url, std::env::var("ADIT_TEST_DATABASE_URL")) {
            let name = url.rsplit('/').next().unwrap_or_default().to_owned();
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }

    /// The database the server runs on: its PostgreSQL URL, or its SQLite file's.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            adit_server::storage::Storage::sqlite_url(&self.dir.path().join("data/adit.db"))
        })
    }

    /// Creates a tunnel routed to `hostname`; returns its token.
    pub async fn tunnel_with_route(&self, name: &str, hostname: &str) -> TunnelToken {
        let account = self
            .control
            .storage
            .ensure_account("default")
            .await
            .unwrap();
        let tunnel = self
            .control
            .create_tunnel(account, name, ConfigSource::Local)
            .await
            .unwrap();
        self.control
            .create_route(account, &tunnel.id.to_string(), hostname)
            .await
            .unwrap();
        let token = self.control.tunnel_token(account, name).await.unwrap();
        TunnelToken::parse(&token).unwrap()
    }

    /// The server's CA, which the HTTPS edge's certificates chain to.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("data").join("ca.pem")
    }

    pub fn live_connections(&self, token: &TunnelToken) -> usize {
        self.control.registry.connections(token.tunnel_id).len()
    }

    pub async fn wait_connections(&self, token: &TunnelToken, n: usize) {
        eventually(
            Duration::from_secs(10),
            &format!("{n} live connections"),
            || async { (self.live_connections(token) == n).then_some(()) },
        )
        .await;
    }
}

/// The real `adit-server` binary with its data in `data`, every listener on a free
/// loopback port (the HTTPS edge off) and JSON logs on its stdout (piped; stderr dropped).
pub fn server_process(data: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_adit-server"));
    command
        .arg("--data-dir")
        .arg(data)
        .args(["--edge-addr", "127.0.0.1:0", "--tunnel-addr", "127.0.0.1:0"])
        .args(["--api-addr", "127.0.0.1:0", "--edge-tls-addr", "off"])
        .args(["--log-format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    command
}

/// `<target>/site`, when `cargo xtask ui` has built the dashboard's bundle there.
pub fn built_bundle() -> Option<std::path::PathBuf> {
    let site = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()?
        .join("site");
    site.join("pkg/dash_bg.wasm").is_file().then_some(site)
}

/// An admin API token of the account named `account` (made when missing), for a new admin
/// user `email` of it: the other tenant of isolation tests.
pub async fn admin_of_account(server: &TestServer, account: &str, email: &str) -> String {
    let account = server
        .control
        .storage
        .ensure_account(account)
        .await
        .unwrap();
    admin_token_in(server, account, email).await
}

/// An admin API token of `account`, for a new admin user `email` of it.
pub async fn admin_token_in(server: &TestServer, account: AccountId, email: &str) -> String {
    let user = server
        .control
        .create_user(account, email, Role::Admin, None)
        .await
        .unwrap()
        .user;
    let admin = adit_server::identity::auth::Principal {
        account,
        actor: adit_server::identity::auth::Actor::User {
            id: user.id,
            email: user.email,
        },
        scopes: Role::Admin.scopes(),
        role: Some(Role::Admin),
        renewed: None,
    };
    server
        .control
        .create_api_token(&admin, "admin-of-account", Role::Admin.scopes())
        .await
        .unwrap()
        .token
}

pub struct TestConnector {
    pub metrics: Arc<ConnectorMetrics>,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), adit_agent::Error>>,
}

impl TestConnector {
    pub fn spawn(token: &TunnelToken, ingress: Ingress) -> Self {
        Self::with_proxy(token, OriginProxy::new(ingress).expect("proxy"))
    }

    /// As `adit tunnel run --token T` with no config.yml and no `--url`: a remotely
    /// managed tunnel's rules come from the edge.
    pub fn token_only(token: &TunnelToken) -> Self {
        Self::with_proxy(token, OriginProxy::without_rules())
    }

    fn with_proxy(token: &TunnelToken, proxy: Arc<OriginProxy>) -> Self {
        Self::keeping(token, proxy, 4)
    }

    /// A connector keeping `ha_connections` data connections (`--ha-connections`).
    pub fn keeping(token: &TunnelToken, proxy: Arc<OriginProxy>, ha_connections: u8) -> Self {
        Self::start(token, None, proxy, ha_connections)
    }

    /// A connector of `service` keeping one connection, bootstrapped at `node` (`--edge`).
    /// In a cluster the connection goes to the first live node by name: tests name the
    /// node they want it on so that it sorts first (`edge-b` before the kit's `edge-test`).
    pub fn at_node(token: &TunnelToken, node: &TestServer, service: &str) -> Self {
        let proxy = OriginProxy::new(Ingress::single(service).expect("service")).expect("proxy");
        Self::dialing(token, node, proxy, 1)
    }

    /// A connector with `proxy` keeping `ha_connections`, bootstrapped at `node`.
    pub fn dialing(
        token: &TunnelToken,
        node: &TestServer,
        proxy: Arc<OriginProxy>,
        ha_connections: u8,
    ) -> Self {
        Self::start(token, Some(node.tunnel.to_string()), proxy, ha_connections)
    }

    fn start(
        token: &TunnelToken,
        endpoint: Option<String>,
        proxy: Arc<OriginProxy>,
        ha_connections: u8,
    ) -> Self {
        let connector = Connector::new(ConnectorConfig {
            token: token.clone(),
            endpoint,
            proxy,
            ha_connections,
            connector_id: ConnectorId::random(),
            grace_period: Duration::from_secs(30),
        })
        .expect("connector");
        let metrics = connector.metrics();
        let stop = CancellationToken::new();
        let task = tokio::spawn(connector.run(stop.clone()));
        Self {
            metrics,
            stop,
            task,
        }
    }

    /// A connector whose one catch-all rule sends everything to `service`.
    pub fn to(token: &TunnelToken, service: &str) -> Self {
        Self::spawn(token, Ingress::single(service).expect("service"))
    }

    pub fn ready(&self) -> usize {
        usize::try_from(self.metrics.ha_connections.get()).unwrap_or_default()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// `adit tunnel ARGS…` through the real CLI, with the server's admin API token; what it
/// printed.
pub async fn adit(server: &TestServer, args: &[&str]) -> Result<String, adit_agent::Error> {
    use clap::Parser;
    let api_url = format!("http://{}", server.api);
    let mut argv = vec![
        "adit",
        "tunnel",
        "--api-url",
        &api_url,
        "--api-token",
        &server.admin_token,
    ];
    argv.extend_from_slice(args);
    let cli = adit_agent::cli::Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    adit_agent::cli::run(cli, &mut out, CancellationToken::new()).await?;
    Ok(String::from_utf8(out).unwrap())
}

/// Serves `handler` on 127.0.0.1:0 (HTTP/1.1 with upgrades); returns the address.
pub async fn spawn_origin<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            stream.set_nodelay(true).unwrap();
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A client whose connections come from `local` (any of 127.0.0.0/8 reaches a server on
/// 127.0.0.1), so a test can speak as many addresses.
pub fn client_from(local: std::net::IpAddr) -> Client<HttpConnector, TestBody> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(local));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A request to the edge for `host`.
pub fn to_edge(edge: SocketAddr, host: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .uri(format!("http://{edge}{path}"))
        .header("host", host)
}

/// `GET path` through the edge for `host`.
pub async fn get(edge: SocketAddr, host: &str, path: &str) -> Response<Incoming> {
    client()
        .request(to_edge(edge, host, path).body(full("")).unwrap())
        .await
        .unwrap()
}

/// Writes `request` as raw bytes on a fresh connection (for requests no client library
/// would send) and returns everything the server answers until it closes.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_to_end(&mut stream).await
}

/// Reads until the peer closes (or resets) the connection, failing the test after 10 s.
pub async fn read_to_end(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server closes the connection within 10 s");
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn body_bytes(response: Response<Incoming>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// Deterministic pseudo-random bytes (xorshift), so both ends can agree without sharing.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// A REST call to `/api/v1{path}` with extra headers: (status, headers, JSON body or null).
pub async fn api_request(
    api: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<serde_json::Value>,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    api_request_with(&client(), api, method, path, headers, body).await
}

/// [`api_request`] through `client` (e.g. one from [`client_from`]).
pub async fn api_request_with(
    client: &Client<HttpConnector, TestBody>,
    api: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<serde_json::Value>,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{api}/api/v1{path}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r = client
        .request(builder.body(full(body)).unwrap())
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = body_bytes(r).await;
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    };
    (status, headers, value)
}

/// A writer that sends each complete line to a channel: lets a test read what a CLI
/// command prints while it runs.
pub struct Lines(pub tokio::sync::mpsc::UnboundedSender<String>, pub Vec<u8>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(i) = self.1.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=i).collect();
            let _ = self
                .0
                .send(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A REST call made with `token` as its Bearer credentials: the status and JSON answer.
pub async fn bearer(
    server: &TestServer,
    token: &str,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (http::StatusCode, serde_json::Value) {
    let (status, _, body) = api_request(
        server.api,
        method,
        path,
        &[("authorization", format!("Bearer {token}"))],
        body,
    )
    .await;
    (status, body)
}

/// Logs in through `POST /api/v1/auth/login`; the session cookie (`adit_session=…`).
pub async fn session_cookie(server: &TestServer, email: &str, password: &str) -> String {
    let (status, headers, body) = api_request(
        server.api,
        http::Method::POST,
        "/auth/login",
        &[],
        Some(serde_json::json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("adit_session="))
        .map(|v| format!("adit_session={}", v.split(';').next().unwrap_or_default()))
        .expect("a session cookie")
}

/// The session cookie of the server's first admin.
pub async fn admin_session_cookie(server: &TestServer) -> String {
    let (email, password) = server
        .admin_login
        .clone()
        .expect("the first start made an admin");
    session_cookie(server, &email, &password).await
}

/// A dashboard page (or, with `form`, a form post) as a browser sends it, with the session
/// `cookie` if any: the status, headers and HTML.
pub async fn web(
    server: &TestServer,
    cookie: Option<&str>,
    method: http::Method,
    path_and_query: &str,
    form: Option<String>,
) -> (http::StatusCode, http::HeaderMap, String) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path_and_query}", server.api))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let r = client()
        .request(request.body(full(form.unwrap_or_default())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let html = String::from_utf8(body_bytes(r).await.to_vec()).unwrap();
    (status, headers, html)
}

/// Steady load on one hostname: `clients` clients each sending `GET /` through the edges
/// in `rotation` (in turn, as a load balancer would; a test takes a node out of it before
/// stopping it), expecting 200 with `body`. Failures are counted and printed; each client
/// stops at [`Load::finish`] or after 200,000 requests.
pub struct Load {
    pub rotation: Arc<std::sync::Mutex<Vec<SocketAddr>>>,
    done: Arc<std::sync::atomic::AtomicBool>,
    served: Arc<std::sync::atomic::AtomicUsize>,
    /// When each failed request was sent.
    failures: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(edges: &[SocketAddr], host: &str, body: &'static str, clients: usize) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let rotation = Arc::new(std::sync::Mutex::new(edges.to_vec()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|n| {
                let (rotation, done) = (rotation.clone(), done.clone());
                let (served, failures) = (served.clone(), failures.clone());
                let host = host.to_owned();
                tokio::spawn(async move {
                    let client = client();
                    for turn in n..n + 200_000 {
                        if done.load(Relaxed) {
                            break;
                        }
                        let edge = {
                            let edges = rotation.lock().unwrap();
                            edges[turn % edges.len()]
                        };
                        let request = to_edge(edge, &host, "/").body(full("")).unwrap();
                        let sent = tokio::time::Instant::now();
                        let failed = || failures.lock().unwrap().push(sent);
                        let answer = match client.request(request).await {
                            Ok(r) => {
                                let status = r.status();
                                // A body cut off (its node killed mid-answer) is a failed
                                // request like any other, counted by when it was sent.
                                let got = r.into_body().collect().await;
                                got.map(|b| (status, b.to_bytes()))
                                    .map_err(|e| e.to_string())
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        match answer {
                            Ok((http::StatusCode::OK, got)) => {
                                assert_eq!(got, body);
                                served.fetch_add(1, Relaxed);
                            }
                            Ok((status, got)) => {
                                eprintln!("failed: {status} {}", String::from_utf8_lossy(&got));
                                failed();
                            }
                            Err(e) => {
                                eprintln!("failed: {e}");
                                failed();
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            rotation,
            done,
            served,
            failures,
            clients,
        }
    }

    /// Waits until `more` requests have been served since it was called.
    pub async fn serves(&self, more: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let before = self.served.load(Relaxed);
        eventually(
            Duration::from_secs(30),
            &format!("{more} more requests served"),
            || async { (self.served.load(Relaxed) >= before + more).then_some(()) },
        )
        .await;
    }

    /// Stops the clients; (served, failed).
    pub async fn finish(self) -> (usize, usize) {
        let (served, failures) = self.finish_timed().await;
        (served, failures.len())
    }

    /// Stops the clients; how many were served, and when each failed one was sent.
    pub async fn finish_timed(self) -> (usize, Vec<tokio::time::Instant>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.done.store(true, Relaxed);
        for client in self.clients {
            client.await.expect("a load client panicked");
        }
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        (self.served.load(Relaxed), failures)
    }
}

/// An origin answering `ok` after a few milliseconds, so streams are in flight when a
/// connector stops; `/slow` answers after `slow` (announced on `started` first).
pub async fn slow_origin(
    slow: Duration,
    started: tokio::sync::mpsc::UnboundedSender<()>,
) -> String {
    let addr = spawn_origin(move |req| {
        let started = started.clone();
        async move {
            if req.uri().path() == "/slow" {
                let _ = started.send(());
                tokio::time::sleep(slow).await;
                return Response::new(full("slow and whole"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            Response::new(full("ok"))
        }
    })
    .await;
    format!("http://{addr}")
}
