//! Public TLS at the HTTPS edge: ACME certificates from a real ACME server (pebble, with
//! its DNS stand-in pebble-challtestsrv pointing every name at 127.0.0.1), zones' uploaded
//! certificates, and HTTPS-only zones. Visitors are real TLS clients that trust only the
//! root they should, reaching a real origin through a real connector.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use adit_server::Config;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::kit::{
    TestConnector, TestServer, bearer, body_bytes, client, eventually, fresh_postgres, full, get,
    missing_environment, sha256_hex, spawn_origin,
};

/// A CA of the test's own, for pebble's HTTPS and for uploaded certificates.
struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            params,
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
        }
    }

    /// A leaf for `names` valid from `from` to `until`: its chain and key, PEM.
    fn issue(
        &self,
        names: &[&str],
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> (String, String) {
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = from;
        params.not_after = until;
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &issuer).unwrap();
        (format!("{}{}", leaf.pem(), self.pem), key.serialize_pem())
    }

    fn valid(&self, names: &[&str]) -> (String, String) {
        let now = OffsetDateTime::now_utc();
        self.issue(
            names,
            now - time::Duration::days(1),
            now + time::Duration::days(90),
        )
    }
}

fn pem_roots(pem: &str) -> Vec<CertificateDer<'static>> {
    adit_transport::tls::parse_pem_chain(pem.as_bytes(), "roots").unwrap()
}

/// What an HTTPS `GET` got: status, headers, body and the server's certificate chain.
struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    chain: Vec<CertificateDer<'static>>,
}

/// `GET path` from `addr` over HTTPS for `host` (SNI and Host), trusting only `roots`.
async fn https_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    roots: &[CertificateDer<'static>],
) -> Result<Fetched, String> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(store)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap_or_default()
        .to_vec();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let response = sender
        .send_request(
            http::Request::get(path)
                .header("host", host)
                .body(full(""))
                .unwrap(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (status, headers) = (response.status(), response.headers().clone());
    Ok(Fetched {
        status,
        headers,
        body: body_bytes(response).await,
        chain,
    })
}

/// The server's own CA, which the private certificates chain to.
fn server_roots(server: &TestServer) -> Vec<CertificateDer<'static>> {
    pem_roots(&std::fs::read_to_string(server.ca_file()).unwrap())
}

/// An origin that says which path it was asked for.
async fn origin() -> SocketAddr {
    spawn_origin(|req: http::Request<hyper::body::Incoming>| async move {
        let path = req.uri().path().to_owned();
        Response::new(full(format!("hello from origin at {path}")))
    })
    .await
}

/// An origin and a tunnel routed to `app.example.com` with a connector running.
async fn routed(server: &TestServer, name: &str) -> TestConnector {
    let origin = origin().await;
    let token = server.tunnel_with_route(name, "app.example.com").await;
    let connector = TestConnector::to(&token, &format!("http://{origin}"));
    server.wait_connections(&token, 4).await;
    connector
}

/// The certificate status of `app.example.com` (`GET /api/v1/certificates`).
async fn status_of_app(server: &TestServer) -> Value {
    let (status, list) = bearer(
        server,
        &server.admin_token,
        Method::GET,
        "/certificates",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["hostname"] == "app.example.com")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_zone_certificate_is_checked_served_and_removed() {
    let server = TestServer::spawn().await;
    let connector = routed(&server, "uploaded").await;
    let ca = TestCa::new("Adit upload test CA");
    let (chain, key) = ca.valid(&["*.example.com"]);
    let (_, other_key) = ca.valid(&["*.example.com"]);
    let (wrong_chain, wrong_key) = ca.valid(&["example.org", "*.example.org"]);
    let now = OffsetDateTime::now_utc();
    let (expired_chain, expired_key) = ca.issue(
        &["example.com"],
        now - time::Duration::days(90),
        now - time::Duration::days(1),
    );
    let admin = server.admin_token.clone();
    let path = "/zones/example.com/certificate";

    let refused = [
        (
            json!({"certificate": "not PEM", "private_key": key}),
            "certificate",
            "no certificate found",
        ),
        (
            json!({"certificate": chain, "private_key": "not PEM"}),
            "private_key",
            "no private key found",
        ),
        (
            json!({"certificate": chain, "private_key": other_key}),
            "private_key",
            "does not match",
        ),
        (
            json!({"certificate": wrong_chain, "private_key": wrong_key}),
            "certificate",
            "not example.com or *.example.com",
        ),
        (
            json!({"certificate": expired_chain, "private_key": expired_key}),
            "certificate",
            "expired",
        ),
    ];
    for (body, field, reason) in refused {
        let (status, answer) = bearer(&server, &admin, Method::PUT, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["details"]["field"], field, "{answer}");
        let said = answer["details"]["reason"].as_str().unwrap();
        assert!(said.contains(reason), "{field}: {said}");
    }
    let (status, _) = bearer(&server, &admin, Method::GET, path, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "refused uploads keep nothing"
    );

    let (status, uploaded) = bearer(
        &server,
        &admin,
        Method::PUT,
        path,
        Some(json!({"certificate": chain, "private_key": key})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{uploaded}");
    assert_eq!(uploaded["zone"], "example.com");
    assert_eq!(uploaded["names"], json!(["*.example.com"]));
    assert!(
        uploaded["issuer"]
            .as_str()
            .unwrap()
            .contains("Adit upload test CA")
    );
    let (status, got) = bearer(&server, &admin, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, uploaded);
    // The zone list (and so the dashboard's Zones page) shows it too.
    let (_, zones) = bearer(&server, &admin, Method::GET, "/zones", None).await;
    assert_eq!(zones[0]["certificate"], uploaded, "{zones}");
    for answer in [&uploaded, &got, &zones] {
        assert!(answer.get("private_key").is_none());
        assert!(!answer.to_string().contains("PRIVATE KEY"), "{answer}");
    }
    let status = status_of_app(&server).await;
    assert_eq!(status["source"], "uploaded", "{status}");

    // A visitor trusting the test CA reaches the origin with it; the served leaf is the
    // uploaded one.
    let fetched = https_get(
        server.edge_tls,
        "app.example.com",
        "/hi",
        std::slice::from_ref(&ca.der),
    )
    .await
    .expect("the uploaded certificate chains to the test CA");
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, "hello from origin at /hi");
    assert_eq!(
        sha256_hex(fetched.chain[0].as_ref()),
        uploaded["fingerprint"]
    );

    // Removed: the server's own CA serves the hostname again.
    let (status, _) = bearer(&server, &admin, Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let fetched = https_get(
        server.edge_tls,
        "app.example.com",
        "/",
        &server_roots(&server),
    )
    .await
    .expect("back to the private CA's certificate");
    assert_eq!(fetched.status, StatusCode::OK);
    assert!(
        https_get(
            server.edge_tls,
            "app.example.com",
            "/",
            std::slice::from_ref(&ca.der)
        )
        .await
        .is_err()
    );
    assert_eq!(status_of_app(&server).await["source"], "private");
    let (status, _) = bearer(&server, &admin, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, zones) = bearer(&server, &admin, Method::GET, "/zones", None).await;
    assert!(zones[0].get("certificate").is_none(), "{zones}");
    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_only_zone_redirects_plain_http_and_sends_hsts() {
    let server = TestServer::spawn().await;
    let connector = routed(&server, "https-only").await;
    let admin = server.admin_token.clone();
    let (status, zone) = bearer(
        &server,
        &admin,
        Method::PATCH,
        "/zones/example.com",
        Some(json!({"https_only": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{zone}");
    assert_eq!(zone["https_only"], true);
    let (_, zones) = bearer(&server, &admin, Method::GET, "/zones", None).await;
    assert_eq!(zones[0]["https_only"], true, "{zones}");

    let r = get(server.edge, "app.example.com:8080", "/a/b?x=1&y=2").await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"],
        format!(
            "https://app.example.com:{}/a/b?x=1&y=2",
            server.edge_tls.port()
        )
        .as_str()
    );
    // ACME's HTTP-01 path is never redirected (here no challenge is pending: the origin
    // answers).
    let r = get(
        server.edge,
        "app.example.com",
        "/.well-known/acme-challenge/abc",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let fetched = https_get(
        server.edge_tls,
        "app.example.com",
        "/",
        &server_roots(&server),
    )
    .await
    .unwrap();
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(
        fetched.headers["strict-transport-security"],
        "max-age=31536000"
    );

    let (status, answer) = bearer(
        &server,
        &admin,
        Method::PATCH,
        "/zones/example.com",
        Some(json!({"https_only": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("https_only"),
        "{answer}"
    );
    let (status, _) = bearer(
        &server,
        &admin,
        Method::PATCH,
        "/zones/example.com",
        Some(json!({"https_only": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        get(server.edge, "app.example.com", "/").await.status(),
        StatusCode::OK
    );
    let fetched = https_get(
        server.edge_tls,
        "app.example.com",
        "/",
        &server_roots(&server),
    )
    .await
    .unwrap();
    assert!(fetched.headers.get("strict-transport-security").is_none());
    connector.stop().await;
    server.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_acme_order_is_shown_and_nothing_else_breaks() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config::ephemeral(dir.path().join("data"));
    // Nothing listens there: every order fails.
    config.acme_directory = Some(format!("http://127.0.0.1:{}/directory", free_port()));
    config.acme_check_interval = Duration::from_millis(100);
    let server = TestServer::start_with(dir, config).await;
    let connector = routed(&server, "failing").await;
    let status = eventually(
        Duration::from_secs(20),
        "a recorded ACME failure",
        || async {
            let status = status_of_app(&server).await;
            status["last_error"].is_string().then_some(status)
        },
    )
    .await;
    assert_eq!(status["source"], "private", "{status}");
    assert!(status["next_attempt_at"].is_string(), "{status}");
    // The edge serves on, over HTTP and HTTPS (with the private CA's certificate).
    assert_eq!(
        get(server.edge, "app.example.com", "/").await.status(),
        StatusCode::OK
    );
    let fetched = https_get(
        server.edge_tls,
        "app.example.com",
        "/",
        &server_roots(&server),
    )
    .await
    .unwrap();
    assert_eq!(fetched.status, StatusCode::OK);
    connector.stop().await;
    server.shutdown().await;
}

// ---- a real ACME server ----

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// pebble and its DNS stand-in, planned before the server starts (the server's flags
/// name pebble's directory) and started once the edge has its ports.
struct Pebble {
    dir: tempfile::TempDir,
    pebble: PathBuf,
    challtestsrv: PathBuf,
    listen: u16,
    management: u16,
    /// Signs pebble's own HTTPS certificate: `--acme-directory-ca`.
    https_ca: TestCa,
    children: Vec<tokio::process::Child>,
}

impl Pebble {
    /// `None` (SKIPPED; a failure under CI) when pebble is not installed.
    fn plan() -> Option<Self> {
        let (Some(pebble), Some(challtestsrv)) =
            (on_path("pebble"), on_path("pebble-challtestsrv"))
        else {
            missing_environment(
                "pebble is not installed (apt-get install pebble; cargo xtask test installs it)",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let https_ca = TestCa::new("pebble HTTPS test CA");
        let (chain, key) = https_ca.valid(&["127.0.0.1", "localhost"]);
        std::fs::write(dir.path().join("cert.pem"), chain).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), &https_ca.pem).unwrap();
        Some(Self {
            dir,
            pebble,
            challtestsrv,
            listen: free_port(),
            management: free_port(),
            https_ca,
            children: Vec::new(),
        })
    }

    /// The server's flags for this pebble.
    fn configure(&self, config: &mut Config, challenge: &str) {
        config.acme_directory = Some(format!("https://127.0.0.1:{}/dir", self.listen));
        config.acme_directory_ca = Some(self.dir.path().join("ca.pem"));
        config.acme_email = Some("ops@example.com".into());
        config.acme_challenge = challenge.parse().unwrap();
        config.acme_check_interval = Duration::from_millis(200);
    }

    fn spawn(&mut self, program: &PathBuf, args: &[String]) {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .kill_on_drop(true);
        if std::env::var_os("TEST_LOG").is_none() {
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        self.children.push(command.spawn().unwrap());
    }

    /// Starts pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`, every
    /// name resolving to 127.0.0.1; returns once its management API answers.
    async fn start(&mut self, http_port: u16, tls_port: u16) {
        let dns = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dns_management = free_port();
        let challtestsrv = self.challtestsrv.clone();
        self.spawn(
            &challtestsrv,
            &[
                "-defaultIPv4".into(),
                "127.0.0.1".into(),
                "-defaultIPv6".into(),
                String::new(),
                "-dns01".into(),
                format!("127.0.0.1:{dns}"),
                "-http01".into(),
                String::new(),
                "-https01".into(),
                String::new(),
                "-tlsalpn01".into(),
                String::new(),
                "-management".into(),
                format!("127.0.0.1:{dns_management}"),
            ],
        );
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{}", self.listen),
            "managementListenAddress": format!("127.0.0.1:{}", self.management),
            "certificate": "cert.pem",
            "privateKey": "key.pem",
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(self.dir.path().join("pebble.json"), config.to_string()).unwrap();
        let pebble = self.pebble.clone();
        self.spawn(
            &pebble,
            &[
                "-config".into(),
                "pebble.json".into(),
                "-dnsserver".into(),
                format!("127.0.0.1:{dns}"),
            ],
        );
        eventually(
            Duration::from_secs(20),
            "pebble-challtestsrv to answer",
            || async {
                let request = http::Request::get(format!("http://127.0.0.1:{dns_management}/"))
                    .body(full(""))
                    .unwrap();
                client().request(request).await.ok().map(|_| ())
            },
        )
        .await;
        eventually(Duration::from_secs(20), "pebble to answer", || async {
            self.roots().await
        })
        .await;
    }

    /// The root pebble issues under (`/roots/0` of its management API).
    async fn roots(&self) -> Option<Vec<CertificateDer<'static>>> {
        Some(pem_roots(&self.roots_pem().await?))
    }

    /// The same root as PEM text.
    async fn roots_pem(&self) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.management));
        let fetched = https_get(
            addr,
            "127.0.0.1",
            "/roots/0",
            std::slice::from_ref(&self.https_ca.der),
        )
        .await
        .ok()?;
        if fetched.status != StatusCode::OK {
            return None;
        }
        String::from_utf8(fetched.body.to_vec()).ok()
    }
}

/// A server with ACME against a fresh pebble, and `app.example.com` routed to a real
/// origin; `None` when pebble is missing.
async fn with_pebble(challenge: &str) -> Option<(TestServer, Pebble, TestConnector)> {
    let mut pebble = Pebble::plan()?;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config::ephemeral(dir.path().join("data"));
    pebble.configure(&mut config, challenge);
    let server = TestServer::start_with(dir, config).await;
    pebble
        .start(server.edge.port(), server.edge_tls.port())
        .await;
    let connector = routed(&server, "acme").await;
    Some((server, pebble, connector))
}

/// Waits for the served certificate of `app.example.com` to chain to pebble's root and
/// differ from `not`: the fetch that saw it.
async fn served_by_pebble(server: &TestServer, pebble: &Pebble, not: Option<&str>) -> Fetched {
    let roots = pebble.roots().await.unwrap();
    eventually(
        Duration::from_secs(60),
        "a certificate from pebble",
        || async {
            let fetched = https_get(server.edge_tls, "app.example.com", "/public", &roots)
                .await
                .ok()?;
            let fingerprint = sha256_hex(fetched.chain[0].as_ref());
            (not != Some(fingerprint.as_str())).then_some(fetched)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_http_01_issues_renews_and_keeps_a_certificate_across_a_restart() {
    let Some((server, pebble, connector)) = with_pebble("http-01").await else {
        return;
    };
    let started = std::time::Instant::now();
    let fetched = served_by_pebble(&server, &pebble, None).await;
    eprintln!("HTTP-01: issued and served in {:?}", started.elapsed());
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, "hello from origin at /public");
    let first = sha256_hex(fetched.chain[0].as_ref());
    let status = status_of_app(&server).await;
    assert_eq!(status["source"], "acme", "{status}");
    assert!(
        status["issuer"].as_str().unwrap().contains("Pebble"),
        "{status}"
    );
    assert!(status["last_error"].is_null(), "{status}");

    // Close to expiry (as the database has it): the next look orders a new one.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database_url())
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let in_ten_days =
        i64::try_from((now + Duration::from_secs(10 * 24 * 3600)).as_millis()).unwrap();
    sqlx::query("UPDATE acme_certificates SET not_after = $1 WHERE hostname = 'app.example.com'")
        .bind(in_ten_days)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let started = std::time::Instant::now();
    let renewed = served_by_pebble(&server, &pebble, Some(&first)).await;
    eprintln!("HTTP-01: renewed in {:?}", started.elapsed());
    let second = sha256_hex(renewed.chain[0].as_ref());

    // A restart serves the stored certificate at once: no new order (pebble is told the
    // old edge ports, so one could not succeed anyway).
    let server = server
        .restart_configured(|config| pebble.configure(config, "http-01"))
        .await;
    let roots = pebble.roots().await.unwrap();
    let fetched = https_get(server.edge_tls, "app.example.com", "/", &roots)
        .await
        .expect("the stored certificate, read from the database");
    assert_eq!(sha256_hex(fetched.chain[0].as_ref()), second);
    assert_eq!(status_of_app(&server).await["source"], "acme");
    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_tls_alpn_01_issues_a_certificate() {
    let Some((server, pebble, connector)) = with_pebble("tls-alpn-01").await else {
        return;
    };
    let started = std::time::Instant::now();
    let fetched = served_by_pebble(&server, &pebble, None).await;
    eprintln!("TLS-ALPN-01: issued and served in {:?}", started.elapsed());
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, "hello from origin at /public");
    assert_eq!(status_of_app(&server).await["source"], "acme");

    // curl, trusting pebble's root and nothing else, as an operator would check it.
    match on_path("curl") {
        None => missing_environment("curl is not installed (apt-get install curl)"),
        Some(curl) => {
            let root = pebble.dir.path().join("pebble-root.pem");
            std::fs::write(&root, pebble.roots_pem().await.unwrap()).unwrap();
            let port = server.edge_tls.port();
            let output = tokio::process::Command::new(curl)
                .arg("--silent")
                .arg("--show-error")
                .arg("--fail")
                .arg("--max-time")
                .arg("10")
                .arg("--cacert")
                .arg(&root)
                .arg("--resolve")
                .arg(format!("app.example.com:{port}:127.0.0.1"))
                .arg(format!("https://app.example.com:{port}/public"))
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "curl: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(output.stdout, b"hello from origin at /public");
        }
    }
    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_a_cluster_answers_challenges_and_serves_public_tls() {
    let Some(mut pebble) = Pebble::plan() else {
        return;
    };
    let Some(url) = fresh_postgres().await else {
        return;
    };
    // A orders; the CA's validation reaches B only (as a balancer may send it).
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.database_url = Some(url);
    pebble.configure(&mut config, "http-01");
    let a = TestServer::start_with(dir, config).await;
    let b = a.join("edge-b").await;
    pebble.start(b.edge.port(), b.edge_tls.port()).await;
    let origin = origin().await;
    let token = a.tunnel_with_route("cluster", "app.example.com").await;
    // Its one connection goes to the first live node by name, B.
    let connector = TestConnector::at_node(&token, &b, &format!("http://{origin}"));
    b.wait_connections(&token, 1).await;

    let fetched = served_by_pebble(&b, &pebble, None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, "hello from origin at /public");
    assert_eq!(status_of_app(&b).await["source"], "acme");

    // An upload and an HTTPS-only setting made on A are served by B.
    let ca = TestCa::new("Adit cluster test CA");
    let (chain, key) = ca.valid(&["example.com", "*.example.com"]);
    let (status, uploaded) = bearer(
        &a,
        &a.admin_token,
        Method::PUT,
        "/zones/example.com/certificate",
        Some(json!({"certificate": chain, "private_key": key})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{uploaded}");
    let (status, _) = bearer(
        &a,
        &a.admin_token,
        Method::PATCH,
        "/zones/example.com",
        Some(json!({"https_only": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    eventually(
        Duration::from_secs(5),
        "B serving the uploaded certificate",
        || async {
            let fetched = https_get(
                b.edge_tls,
                "app.example.com",
                "/",
                std::slice::from_ref(&ca.der),
            )
            .await
            .ok()?;
            (sha256_hex(fetched.chain[0].as_ref()) == uploaded["fingerprint"]).then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(5), "B redirecting to HTTPS", || async {
        (get(b.edge, "app.example.com", "/").await.status() == StatusCode::PERMANENT_REDIRECT)
            .then_some(())
    })
    .await;
    connector.stop().await;
    b.stop().await;
    a.shutdown().await;
}
