//! The public edge under hostile visitors: oversized and slow requests, smuggling shapes,
//! stream floods and forged internal headers each get their error, and a normal visitor
//! of the same tunnel keeps being served. Every listener (edge, HTTPS edge, tunnel
//! listener, API) under peers that hold sockets without proving themselves: they are
//! closed at a deadline, capped per source address, and HTTP/2 peers that stop answering
//! pings are dropped, while a normal connector and visitor go on.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use adit_core::{token::TunnelToken, wire};
use adit_server::Config;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::{body::Incoming, client::conn::http2::SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::watch,
    task::JoinHandle,
};

use crate::kit::*;

const HOST: &str = "app.example.com";

/// An origin that counts the requests it sees (but the normal visitor's `/hello`, which
/// runs alongside), so a test can prove a refused one never arrived.
#[derive(Clone)]
struct Origin {
    requests: Arc<AtomicUsize>,
    blocked: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
}

impl Origin {
    fn seen(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn origin() -> (Origin, std::net::SocketAddr) {
    let (release, _) = watch::channel(false);
    let o = Origin {
        requests: Arc::default(),
        blocked: Arc::default(),
        release,
    };
    let state = o.clone();
    let addr = spawn_origin(move |req: hyper::Request<Incoming>| {
        let state = state.clone();
        async move {
            if req.uri().path() != "/hello" {
                state.requests.fetch_add(1, Ordering::SeqCst);
            }
            match req.uri().path() {
                "/headers" => {
                    let mut map = serde_json::Map::new();
                    for (k, v) in req.headers() {
                        map.insert(k.to_string(), v.to_str().unwrap_or("").into());
                    }
                    Response::new(full(serde_json::to_vec(&map).unwrap()))
                }
                "/upload" => {
                    let body = req.into_body().collect().await;
                    let len = body.map(|b| b.to_bytes().len()).unwrap_or_default();
                    Response::new(full(format!("got {len}")))
                }
                "/block" => {
                    let mut release = state.release.subscribe();
                    state.blocked.fetch_add(1, Ordering::SeqCst);
                    let _ = release.wait_for(|go| *go).await;
                    Response::new(full("released"))
                }
                "/forge" => Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .header("adit-response-source", "connector")
                    .header("adit-error-code", "forged")
                    .header("adit-upgrade-status", "101")
                    .body(full("the origin's own error"))
                    .unwrap(),
                _ => Response::new(full("hello from origin")),
            }
        }
    })
    .await;
    (o, addr)
}

struct Setup {
    server: TestServer,
    connector: TestConnector,
    origin: Origin,
}

/// A server with short timeouts (so slow visitors are cut off within the test) and
/// whatever else `tune` sets, one tunnel on `HOST`, and its connector.
async fn setup(tune: impl FnOnce(&mut Config)) -> Setup {
    let (origin, addr) = origin().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.edge_header_timeout = Duration::from_millis(500);
    config.edge_body_timeout = Duration::from_millis(500);
    tune(&mut config);
    let server = TestServer::start_with(dir, config).await;
    let token = server.tunnel_with_route("web", HOST).await;
    let connector = TestConnector::to(&token, &format!("http://{addr}"));
    server.wait_connections(&token, 4).await;
    Setup {
        server,
        connector,
        origin,
    }
}

/// A normal visitor of the same tunnel, requesting `/hello` every 50 ms for as long as a
/// test misbehaves alongside; every answer must be the origin's.
struct Bystander {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Bystander {
    fn start(s: &Setup) -> Self {
        let (stop, stopped) = watch::channel(false);
        let edge = s.server.edge;
        let task = tokio::spawn(async move {
            let mut served = 0;
            let mut ticks = tokio::time::interval(Duration::from_millis(50));
            loop {
                ticks.tick().await;
                let r = get(edge, HOST, "/hello").await;
                assert_eq!(r.status(), StatusCode::OK, "the bystander was refused");
                assert_eq!(body_bytes(r).await, "hello from origin");
                served += 1;
                if *stopped.borrow() {
                    break served;
                }
            }
        });
        Self { stop, task }
    }

    /// Stops it after one more request; it must have been served throughout.
    async fn finish(self) {
        self.stop.send_replace(true);
        let served = self
            .task
            .await
            .expect("the bystander was served every time");
        assert!(served >= 1);
    }
}

/// A normal visitor's request through the same tunnel still works.
async fn assert_served(s: &Setup) {
    let r = get(s.server.edge, HOST, "/hello").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_bytes(r).await, "hello from origin");
}

/// Asserts the raw exchange was answered `status`, and that the origin never saw it.
async fn assert_refused(s: &Setup, request: &[u8], status: u16) {
    let before = s.origin.seen();
    let answer = raw_exchange(s.server.edge, request).await;
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "wanted {status} for {:?}, got {answer:?}",
        String::from_utf8_lossy(&request[..request.len().min(120)])
    );
    assert_eq!(
        s.origin.seen(),
        before,
        "the origin must not see {answer:?}"
    );
}

/// An HTTP/2 (prior knowledge) connection to the edge. Its requests name the host in
/// `:authority` (the URI), as browsers do; a pooled client would look that name up in DNS.
async fn h2c_connection(s: &Setup) -> hyper::client::conn::http2::SendRequest<TestBody> {
    let stream = TcpStream::connect(s.server.edge).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_named_twice_or_two_ways_is_refused() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let two_hosts =
        format!("GET /probe HTTP/1.1\r\nHost: {HOST}\r\nHost: other.example.com\r\n\r\n");
    tokio::join!(
        assert_refused(&s, two_hosts.as_bytes(), 400),
        assert_served(&s)
    );
    // The absolute form names the host the origin would read; Host the one we route by.
    let absolute = format!("GET http://other.example.com/probe HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    assert_refused(&s, absolute.as_bytes(), 400).await;
    // The same host both ways (any case, with a port) is one host.
    let agreeing = format!(
        "GET http://APP.example.com:80/hello HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_exchange(s.server.edge, agreeing.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    // HTTP/2: `:authority` against a Host header.
    let mut h2 = h2c_connection(&s).await;
    let before = s.origin.seen();
    let r = h2
        .send_request(
            http::Request::builder()
                .uri("http://other.example.com/probe")
                .header("host", HOST)
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.origin.seen(), before);
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_the_visitors_fault() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"
    );
    let (answer, ()) = tokio::join!(
        raw_exchange(s.server.edge, request.as_bytes()),
        assert_served(&s)
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("malformed_body"), "{answer}");
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_uris_are_refused() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let big = "a".repeat(70 * 1024);
    let request = format!("GET /probe HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {big}\r\n\r\n");
    tokio::join!(
        assert_refused(&s, request.as_bytes(), 431),
        assert_served(&s)
    );

    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /probe HTTP/1.1\r\nHost: {HOST}\r\n{many}Connection: close\r\n\r\n");
    assert_refused(&s, request.as_bytes(), 431).await;

    // HTTP/2 (h2c) has only a byte limit in hyper; the edge counts header fields itself.
    let mut h2c = h2c_connection(&s).await;
    let mut request = http::Request::builder().uri(format!("http://{HOST}/probe"));
    for i in 0..150 {
        request = request.header(format!("x-h{i}"), "v");
    }
    let before = s.origin.seen();
    let r = h2c
        .send_request(request.body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(s.origin.seen(), before);
    let r = h2c
        .send_request(
            http::Request::builder()
                .uri(format!("http://{HOST}/hello"))
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the same h2c connection goes on"
    );

    let long = "a".repeat(10 * 1024);
    let request = format!("GET /{long} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    assert_refused(&s, request.as_bytes(), 414).await;
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let mut slow = TcpStream::connect(s.server.edge).await.unwrap();
    slow.write_all(format!("GET /hello HTTP/1.1\r\nHost: {HOST}\r\n").as_bytes())
        .await
        .unwrap();
    let (mut reader, mut writer) = slow.into_split();
    let started = Instant::now();
    // One more header line every 100 ms, never the blank line that ends the head.
    let drip = tokio::spawn(async move {
        for i in 0..100 {
            if writer
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_served(&s).await;
    let answer = read_to_end(&mut reader).await;
    let took = started.elapsed();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a slow head is closed, not answered: {answer:?}"
    );
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    drip.abort();
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_gets_408() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let mut slow = TcpStream::connect(s.server.edge).await.unwrap();
    slow.write_all(
        format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n0123456789")
            .as_bytes(),
    )
    .await
    .unwrap();
    // The rest of the body never comes; the socket stays open.
    let (mut reader, _writer) = slow.into_split();
    let started = Instant::now();
    let (answer, ()) = tokio::join!(read_to_end(&mut reader), assert_served(&s));
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body that keeps coming, however slowly, is not cut off.
    let r = client()
        .request(
            to_edge(s.server.edge, HOST, "/upload")
                .method("POST")
                .body(full(vec![7u8; 1000]))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body_bytes(r).await, "got 1000");
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_shapes_get_400_and_never_reach_the_origin() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let cases: [(&str, &str); 7] = [
        (
            "CL then TE",
            "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        ),
        (
            "TE then CL",
            "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG",
        ),
        (
            "two Content-Lengths",
            "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "chunked, identity",
            "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        ),
        (
            "gzip, chunked",
            "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two TE lines",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("obs-fold", "X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    ];
    for (what, tail) in cases {
        let request = format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\n{tail}");
        let before = s.origin.seen();
        let answer = raw_exchange(s.server.edge, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{what}: {answer:?}");
        assert_eq!(s.origin.seen(), before, "{what} reached the origin");
        assert_served(&s).await;
    }

    // Smuggling on a kept-alive connection, after an honest chunked request: the scanner
    // follows the first body to find the second head.
    let before = s.origin.seen();
    let honest = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let smuggled = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /headers HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
    );
    let answer = raw_exchange(s.server.edge, format!("{honest}{smuggled}").as_bytes()).await;
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "400"], "{answer:?}");
    assert!(answer.contains("got 5"), "{answer:?}");
    assert_eq!(
        s.origin.seen(),
        before + 1,
        "only the honest request reaches the origin"
    );
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_tunnel_are_capped_then_free_again() {
    let s = setup(|c| c.edge_max_streams_per_tunnel = 2).await;
    let edge = s.server.edge;
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { get(edge, HOST, "/block").await }))
        .collect();
    eventually(Duration::from_secs(10), "two blocked requests", || async {
        (s.origin.blocked.load(Ordering::SeqCst) == 2).then_some(())
    })
    .await;

    let r = client()
        .request(
            to_edge(edge, HOST, "/hello")
                .header("accept", "application/json")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(body["code"], "tunnel_busy");
    assert_eq!(body["details"]["error_source"], "edge");
    assert_eq!(body["details"]["limit"], 2);

    s.origin.release.send_replace(true);
    for h in held {
        let r = h.await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body_bytes(r).await, "released");
    }
    // The slots come back when the responses end.
    eventually(
        Duration::from_secs(10),
        "the tunnel to serve again",
        || async {
            let r = get(edge, HOST, "/hello").await;
            (r.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    let metrics = s.server.control.metrics.render();
    assert!(
        metrics.contains("error_source=\"Edge\""),
        "503s are labelled as the edge's: {metrics}"
    );
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_headers_cannot_be_forged() {
    let s = setup(|_| {}).await;
    let bystander = Bystander::start(&s);
    let forged = [
        ("adit-response-source", "connector"),
        ("adit-stream-kind", "websocket"),
        ("adit-client-addr", "203.0.113.7:1"),
        ("adit-upgrade-status", "101"),
        ("adit-destination", "10.0.0.1:22"),
        ("adit-error-code", "forged"),
        ("adit-anything-new", "x"),
    ];
    let mut request = to_edge(s.server.edge, HOST, "/headers");
    for (name, value) in forged {
        request = request.header(name, value);
    }
    let r = client()
        .request(request.body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "still a plain HTTP request");
    let seen: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    let leaked: Vec<&String> = seen
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("adit-"))
        .collect();
    assert!(leaked.is_empty(), "the origin saw {leaked:?}");

    // An origin (or connector) answer cannot pose as the connector's error or an upgrade,
    // and its adit-* headers do not reach the visitor.
    let r = get(s.server.edge, HOST, "/forge").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let internal: Vec<String> = r
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("adit-"))
        .map(|k| k.to_string())
        .collect();
    assert!(internal.is_empty(), "the visitor saw {internal:?}");
    assert_eq!(body_bytes(r).await, "the origin's own error");
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let s = setup(|c| {
        c.edge_header_timeout = Duration::from_secs(30);
        c.edge_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let bystander = Bystander::start(&s);
    // The response comes, then, with nothing more sent, the edge closes the connection
    // long before the 30 s header timeout would.
    let took = answered_then_closed(&s, "").await;
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_head_is_due_within_the_header_timeout() {
    // The idle timeout is far off: what closes the kept-alive connection is the header
    // timeout, counted from the end of the first response.
    let s = setup(|c| c.edge_idle_timeout = Duration::from_secs(30)).await;
    let took = answered_then_closed(&s, "GET /hel").await;
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    s.connector.stop().await;
}

/// Sends one request for /hello on a kept-alive connection, then `more`, and waits for the
/// edge to close it: the answer must be the origin's, whole. How long that took.
async fn answered_then_closed(s: &Setup, more: &str) -> Duration {
    let stream = TcpStream::connect(s.server.edge).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(format!("GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n{more}").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_to_end(&mut reader).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
    assert!(answer.ends_with("hello from origin"), "{answer:?}");
    started.elapsed()
}

/// The HTTP/2 client preface and an empty SETTINGS frame: what a client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// TLS to the tunnel listener with `alpn`, as a connector's connections start.
async fn tunnel_tls(
    s: &Setup,
    token: &TunnelToken,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let trust = adit_transport::tls::EdgeTrust::Pinned(token.ca_pin.clone().unwrap());
    let config = adit_transport::tls::client_config(&trust, alpn).unwrap();
    let tcp = TcpStream::connect(s.server.tunnel).await.unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(adit_transport::tls::server_name("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// A gRPC channel on the tunnel listener, and the task driving it (it ends when the server
/// closes the connection).
async fn grpc_channel(s: &Setup, token: &TunnelToken) -> (SendRequest<TestBody>, JoinHandle<()>) {
    let tls = tunnel_tls(s, token, wire::ALPN_GRPC).await;
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    (
        sender,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

/// A `ConnectorService.ListIpRoutes` call with `token`; its `grpc-status`.
async fn list_ip_routes(sender: &mut SendRequest<TestBody>, token: &str) -> String {
    let request = http::Request::post("https://127.0.0.1/adit.v1.ConnectorService/ListIpRoutes")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        // One uncompressed, empty message.
        .body(full(vec![0u8; 5]))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    if let Some(status) = response.headers().get("grpc-status") {
        return status.to_str().unwrap().to_owned();
    }
    let body = response.into_body().collect().await.unwrap();
    let trailers = body.trailers().expect("a gRPC answer ends in trailers");
    trailers["grpc-status"].to_str().unwrap().to_owned()
}

/// Reads until the server closes the connection; how long that took (at most `limit`).
async fn closed_within(
    what: impl std::fmt::Display,
    limit: Duration,
    reader: &mut (impl AsyncRead + Unpin),
) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open after {limit:?}");
    started.elapsed()
}

/// Whether the server still holds the connection open after `wait`.
async fn still_open(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    tokio::time::timeout(wait, stream.read(&mut buf))
        .await
        .is_err()
}

/// A TCP connection from another loopback address than the test's normal clients
/// (127.0.0.1), so the per-source cap it runs into is not theirs.
async fn connect_from(source: &str, to: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_peers_that_never_authenticate_are_closed_at_the_deadline() {
    let auth = Duration::from_millis(500);
    let s = setup(|c| c.tunnel_auth_timeout = auth).await;
    let bystander = Bystander::start(&s);
    let token = s
        .server
        .tunnel_with_route("probe", "probe.example.com")
        .await;

    // A connection that proves itself with a first accepted call outlives the deadline.
    let (mut proven, _proven_task) = grpc_channel(&s, &token).await;
    let opened = Instant::now();
    assert_eq!(list_ip_routes(&mut proven, &token.encode()).await, "0");
    // A connection whose calls are all refused does not.
    let (mut refused, refused_task) = grpc_channel(&s, &token).await;
    assert_eq!(list_ip_routes(&mut refused, "not-a-token").await, "16");

    // HTTP/2 (gRPC) that sends its preface and then nothing, TLS that says nothing, a data
    // connection with no hello, and TCP that never starts TLS.
    let mut h2 = tunnel_tls(&s, &token, wire::ALPN_GRPC).await;
    h2.write_all(H2_PREFACE).await.unwrap();
    let mut data = tunnel_tls(&s, &token, wire::ALPN_DATA).await;
    let mut silent = tunnel_tls(&s, &token, wire::ALPN_GRPC).await;
    let mut tcp = TcpStream::connect(s.server.tunnel).await.unwrap();
    let limit = Duration::from_secs(3);
    let (h2, data, silent, tcp) = tokio::join!(
        closed_within("gRPC, preface only", limit, &mut h2),
        closed_within("data, no hello", limit, &mut data),
        closed_within("gRPC, nothing sent", limit, &mut silent),
        closed_within("TCP, no TLS", limit, &mut tcp),
    );
    eprintln!("closed after: h2 preface {h2:?}, data {data:?}, TLS only {silent:?}, TCP {tcp:?}");
    tokio::time::timeout(limit, refused_task)
        .await
        .expect("a gRPC connection with only refused calls is closed")
        .unwrap();

    eventually(Duration::from_secs(5), "the deadline to pass", || async {
        (opened.elapsed() > 3 * auth).then_some(())
    })
    .await;
    assert_eq!(
        list_ip_routes(&mut proven, &token.encode()).await,
        "0",
        "the authenticated connection is still served"
    );
    assert_eq!(
        s.connector.ready(),
        4,
        "the tunnel's connector kept its connections"
    );
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unproven_connections_are_capped_per_source_on_every_listener() {
    const CAP: usize = 4;
    let s = setup(|c| {
        c.max_pending_per_source = CAP as u32;
        // Long deadlines, so the held connections stay pending throughout.
        c.tunnel_auth_timeout = Duration::from_secs(30);
        c.edge_header_timeout = Duration::from_secs(30);
        c.api_header_timeout = Duration::from_secs(30);
    })
    .await;
    let bystander = Bystander::start(&s);
    let flooder = "127.0.0.2";
    let listeners = [
        ("tunnel", s.server.tunnel),
        ("edge", s.server.edge),
        ("edge-tls", s.server.edge_tls),
        ("api", s.server.api),
    ];
    let mut held = Vec::new();
    for (name, addr) in listeners {
        for _ in 0..CAP {
            held.push(connect_from(flooder, addr).await);
        }
        // Accepted in order, so these come after the held ones and find the cap reached.
        for i in 0..CAP {
            let mut excess = connect_from(flooder, addr).await;
            let took = closed_within(
                format!("{name}: excess #{i}"),
                Duration::from_secs(2),
                &mut excess,
            )
            .await;
            if i == 0 {
                eprintln!("{name}: an excess connection was closed after {took:?}");
            }
        }
    }
    for stream in &mut held {
        assert!(
            still_open(stream, Duration::from_millis(50)).await,
            "the first {CAP} per listener are served as usual until their deadline"
        );
    }

    // Meanwhile a new connector and its visitors, from their own address, get in as usual.
    let token = s
        .server
        .tunnel_with_route("newcomer", "newcomer.example.com")
        .await;
    let connector = TestConnector::to(&token, "hello_world");
    s.server.wait_connections(&token, 4).await;
    let r = get(s.server.edge, "newcomer.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = bearer(
        &s.server,
        &s.server.admin_token,
        http::Method::GET,
        "/tunnels",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the API serves its normal clients");

    // The places come back when the held connections go.
    drop(held);
    for (name, addr) in listeners {
        eventually(
            Duration::from_secs(5),
            &format!("{name} to admit the flooding source again"),
            || async {
                let mut retry = connect_from(flooder, addr).await;
                still_open(&mut retry, Duration::from_millis(200))
                    .await
                    .then_some(())
            },
        )
        .await;
    }
    assert_served(&s).await;
    bystander.finish().await;
    connector.stop().await;
    s.connector.stop().await;
}

/// Frame types in raw HTTP/2 bytes from the server (after its connection preface).
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_peers_that_stop_answering_pings_are_closed() {
    let s = setup(|c| {
        c.http2_keep_alive_interval = Duration::from_millis(200);
        c.http2_keep_alive_timeout = Duration::from_millis(200);
        // Neither the deadline for a first request nor the edge's idle timer may be what
        // closes these connections.
        c.edge_idle_timeout = Duration::from_secs(30);
    })
    .await;
    let bystander = Bystander::start(&s);
    for (name, addr, authority) in [
        ("api", s.server.api, "localhost"),
        ("edge", s.server.edge, HOST),
    ] {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        // One request (GET /hello, HPACK: indexed :method GET, :scheme http, a literal
        // :path and :authority), which proves the connection; then nothing more, not even
        // the acknowledgements a live peer sends.
        let mut block = vec![0x82, 0x86, 0x44, 6];
        block.extend_from_slice(b"/hello");
        block.extend_from_slice(&[0x41, u8::try_from(authority.len()).unwrap()]);
        block.extend_from_slice(authority.as_bytes());
        let mut request = H2_PREFACE.to_vec();
        let len = u32::try_from(block.len()).unwrap().to_be_bytes();
        // HEADERS, END_STREAM | END_HEADERS, stream 1.
        request.extend_from_slice(&[len[1], len[2], len[3], 0x1, 0x5, 0, 0, 0, 1]);
        request.extend_from_slice(&block);
        conn.write_all(&request).await.unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut seen))
            .await
            .unwrap_or_else(|_| panic!("{name}: a peer that answers no ping is still connected"))
            .unwrap_or_default();
        let types = h2_frame_types(&seen);
        eprintln!(
            "{name}: closed after {:?}; frame types {types:?}",
            started.elapsed()
        );
        assert!(
            types.contains(&0x1),
            "{name}: the request was answered: {types:?}"
        );
        assert!(types.contains(&0x6), "{name}: the server pinged: {types:?}");
    }
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_no_request_head_are_closed() {
    let s = setup(|c| c.api_header_timeout = Duration::from_millis(500)).await;
    let bystander = Bystander::start(&s);
    let limit = Duration::from_secs(3);
    for (name, addr) in [("api", s.server.api), ("edge", s.server.edge)] {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut h2c = TcpStream::connect(addr).await.unwrap();
        h2c.write_all(H2_PREFACE).await.unwrap();
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        let (silent, h2c, partial) = tokio::join!(
            closed_within(format!("{name}: nothing sent"), limit, &mut silent),
            closed_within(format!("{name}: HTTP/2 preface only"), limit, &mut h2c),
            closed_within(format!("{name}: half a head"), limit, &mut partial),
        );
        eprintln!(
            "{name}: closed after: silent {silent:?}, h2c preface {h2c:?}, half a head {partial:?}"
        );
    }
    // A kept-alive HTTP/1 API connection must send its next head in time too.
    let mut kept = TcpStream::connect(s.server.api).await.unwrap();
    kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    closed_within("api: kept alive, no next request", limit, &mut kept).await;
    let (status, _) = bearer(
        &s.server,
        &s.server.admin_token,
        http::Method::GET,
        "/tunnels",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the API serves its normal clients");
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_raises_its_open_file_limit_to_the_hard_limit() {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let soft = (hard / 2).min(512);
    let dir = tempfile::tempdir().unwrap();
    let any = "127.0.0.1:0";
    // The shell lowers the soft limit and then becomes the server (same pid).
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -Sn {soft} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_adit-server"))
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--edge-addr", any, "--edge-tls-addr", "off"])
        .args(["--tunnel-addr", any, "--api-addr", any])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let api_url = dir.path().join("api-url");
    let api = eventually(Duration::from_secs(30), "the server to listen", || async {
        std::fs::read_to_string(&api_url).ok()
    })
    .await;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    eprintln!("started with soft {soft}; now {numbers:?}");
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
    assert_ne!(numbers[0], soft.to_string());

    // The binary serves as usual.
    let addr: std::net::SocketAddr = api.trim().trim_start_matches("http://").parse().unwrap();
    let answer = raw_exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
    child.kill().await.unwrap();
}
