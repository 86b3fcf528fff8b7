//! The public edge under hostile visitors: oversized and slow requests, smuggling shapes,
//! stream floods and forged internal headers each get their error, and a normal visitor
//! of the same tunnel keeps being served.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use adit_server::Config;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::watch};

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
    let stream = TcpStream::connect(s.server.edge).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(format!("GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    // The response comes, then, with nothing more sent, the edge closes the connection
    // long before the 30 s header timeout would.
    let answer = read_to_end(&mut reader).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
    assert!(answer.ends_with("hello from origin"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_served(&s).await;
    bystander.finish().await;
    s.connector.stop().await;
}
