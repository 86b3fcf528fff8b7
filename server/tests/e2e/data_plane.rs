//! HTTP through the tunnel: bodies, streaming, concurrency, WebSocket, trailers, errors.

use std::{sync::Arc, time::Duration};

use adit_transport::relay::channel_body;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{Message, protocol::CloseFrame};

use crate::kit::*;

const BIG: usize = 32 * 1024 * 1024;

/// The origin every data-plane test talks to.
async fn origin(release_sse: Arc<Notify>) -> std::net::SocketAddr {
    spawn_origin(move |req: hyper::Request<Incoming>| {
        let release_sse = release_sse.clone();
        async move {
            match req.uri().path() {
                "/hello" => Response::new(full("hello from origin")),
                "/headers" => {
                    let mut map = serde_json::Map::new();
                    for (k, v) in req.headers() {
                        map.insert(k.to_string(), v.to_str().unwrap_or("").into());
                    }
                    map.insert("method".into(), req.method().as_str().into());
                    Response::new(full(serde_json::to_vec(&map).unwrap()))
                }
                "/sha256" => {
                    // Hashes the upload as it streams in.
                    let chunked = req.headers().get("transfer-encoding").is_some();
                    let mut body = req.into_body();
                    let mut hasher = Sha256::new();
                    let mut len = 0usize;
                    while let Some(frame) = body.frame().await {
                        if let Ok(data) = frame.unwrap().into_data() {
                            len += data.len();
                            hasher.update(&data);
                        }
                    }
                    let mut r = Response::new(full(hex::encode(hasher.finalize())));
                    r.headers_mut()
                        .insert("x-len", len.to_string().parse().unwrap());
                    r.headers_mut()
                        .insert("x-chunked", chunked.to_string().parse().unwrap());
                    r
                }
                "/big" => {
                    let data = pseudo_random(BIG, 7);
                    let mut r = Response::new(full(data));
                    r.headers_mut().insert(
                        "x-sha256",
                        sha256_hex(&pseudo_random(BIG, 7)).parse().unwrap(),
                    );
                    r
                }
                "/sse" => {
                    let (body, tx) = channel_body();
                    tokio::spawn(async move {
                        tx.send(Ok(Frame::data(Bytes::from("data: one\n\n"))))
                            .await
                            .ok();
                        release_sse.notified().await;
                        tx.send(Ok(Frame::data(Bytes::from("data: two\n\n"))))
                            .await
                            .ok();
                    });
                    let mut r = Response::new(body.boxed_unsync());
                    r.headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    r
                }
                "/trailers" => {
                    let (body, tx) = channel_body();
                    tokio::spawn(async move {
                        tx.send(Ok(Frame::data(Bytes::from("body")))).await.ok();
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("x-checksum", "abc123".parse().unwrap());
                        tx.send(Ok(Frame::trailers(trailers))).await.ok();
                    });
                    let mut r = Response::new(body.boxed_unsync());
                    r.headers_mut()
                        .insert("trailer", "x-checksum".parse().unwrap());
                    r
                }
                "/ws" => websocket_echo(req).await,
                _ => {
                    let mut r = Response::new(full("no such page"));
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    r
                }
            }
        }
    })
    .await
}

/// A WebSocket echo origin built on tungstenite.
pub(crate) async fn websocket_echo(mut req: hyper::Request<Incoming>) -> Response<TestBody> {
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    let key = req.headers().get("sec-websocket-key").cloned().unwrap();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = upgrade.await.unwrap();
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Text(_) | Message::Binary(_) => ws.send(message).await.unwrap(),
                // tungstenite answers Close (echoing its code) and pings by itself.
                _ => {}
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(full(Bytes::new()))
        .unwrap()
}

struct Setup {
    server: TestServer,
    connector: TestConnector,
    release_sse: Arc<Notify>,
}

async fn setup() -> Setup {
    let release_sse = Arc::new(Notify::new());
    let origin = origin(release_sse.clone()).await;
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("web", "app.example.com").await;
    let connector = TestConnector::to(&token, &format!("http://{origin}"));
    server.wait_connections(&token, 4).await;
    Setup {
        server,
        connector,
        release_sse,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_head_and_forwarded_headers() {
    let s = setup().await;
    let client = client();
    let r = client
        .request(
            to_edge(s.server.edge, "App.Example.com.", "/hello")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_bytes(r).await, "hello from origin");

    let r = client
        .request(
            to_edge(s.server.edge, "app.example.com", "/hello")
                .method(Method::HEAD)
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(body_bytes(r).await.is_empty());

    let r = client
        .request(
            to_edge(s.server.edge, "app.example.com", "/headers")
                .header("x-forwarded-for", "203.0.113.9")
                .header("adit-stream-kind", "tcp")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "app.example.com");
    assert_eq!(seen["host"], "app.example.com");
    assert!(
        seen.get("adit-stream-kind").is_none(),
        "a visitor must not set stream metadata: {seen}"
    );
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_upload_and_download_keep_their_checksums() {
    let s = setup().await;
    let client = client();
    let upload = pseudo_random(BIG, 42);
    let want = sha256_hex(&upload);
    let r = client
        .request(
            to_edge(s.server.edge, "app.example.com", "/sha256")
                .method(Method::POST)
                .body(full(upload))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.headers()["x-len"], BIG.to_string().as_str());
    assert_eq!(body_bytes(r).await, want.as_bytes());

    let r = client
        .request(
            to_edge(s.server.edge, "app.example.com", "/big")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let expected = r.headers()["x-sha256"].to_str().unwrap().to_owned();
    let body = body_bytes(r).await;
    assert_eq!(body.len(), BIG);
    assert_eq!(sha256_hex(&body), expected);

    // The connector counted each body's bytes, the GET's empty one as none.
    let metrics = &s.connector.metrics;
    assert_eq!(metrics.bytes_to_origin.get(), BIG as u64);
    assert_eq!(metrics.bytes_from_origin.get(), (want.len() + BIG) as u64);
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_streams_through() {
    let s = setup().await;
    let (body, tx) = channel_body();
    let mut hasher = Sha256::new();
    let chunks: Vec<Bytes> = (0..64)
        .map(|i| Bytes::from(pseudo_random(10_000 + i, i as u64)))
        .collect();
    for c in &chunks {
        hasher.update(c);
    }
    tokio::spawn(async move {
        for c in chunks {
            tx.send(Ok(Frame::data(c))).await.unwrap();
        }
    });
    let body = body.boxed_unsync();
    let r = client()
        .request(
            to_edge(s.server.edge, "app.example.com", "/sha256")
                .method(Method::POST)
                .body(body)
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        body_bytes(r).await,
        hex::encode(hasher.finalize()).as_bytes()
    );
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_requests_all_succeed() {
    let s = setup().await;
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500u32 {
        let client = client.clone();
        let edge = s.server.edge;
        tasks.spawn(async move {
            let body = format!("request {i}");
            let r = client
                .request(
                    to_edge(edge, "app.example.com", "/sha256")
                        .method(Method::POST)
                        .body(full(body.clone()))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(body_bytes(r).await, sha256_hex(body.as_bytes()).as_bytes());
        });
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
        done += 1;
    }
    assert_eq!(done, 500);
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_arrive_before_the_origin_finishes() {
    let s = setup().await;
    let r = get(s.server.edge, "app.example.com", "/sse").await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut body = r.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first event must arrive while the origin still holds the stream open")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: one\n\n");
    s.release_sse.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "data: two\n\n");
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_trailers_pass_through() {
    let s = setup().await;
    let r = client()
        .request(
            to_edge(s.server.edge, "app.example.com", "/trailers")
                .header("te", "trailers")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let collected = r.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers reach the visitor");
    assert_eq!(trailers["x-checksum"], "abc123");
    assert_eq!(collected.to_bytes(), "body");
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echoes_a_thousand_mixed_messages() {
    let s = setup().await;
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws", s.server.edge),
    )
    .map(|mut r| {
        r.headers_mut()
            .insert("host", "app.example.com".parse().unwrap());
        r
    })
    .unwrap();
    let (mut ws, response) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..1000u32 {
        let message = match i % 3 {
            0 => Message::text(format!("text {i}")),
            1 => Message::binary(pseudo_random(1 + (i as usize * 37) % 70_000, u64::from(i))),
            _ => Message::Ping(Bytes::from(i.to_string())),
        };
        ws.send(message.clone()).await.unwrap();
        let reply = loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Pong(payload) if matches!(&message, Message::Ping(p) if *p == payload) => {
                    break None;
                }
                Message::Pong(_) => continue,
                other => break Some(other),
            }
        };
        if let Some(reply) = reply {
            assert_eq!(reply, message, "message {i}");
        }
    }
    ws.send(Message::Close(Some(CloseFrame {
        code: 4001u16.into(),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let closing = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(closing.unwrap().code), 4001);
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_what_went_wrong() {
    let server = TestServer::spawn().await;
    let client = client();

    let r = client
        .request(
            to_edge(server.edge, "nobody.example.com", "/")
                .header("accept", "application/json")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(body["code"], "host_not_routed");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not routed to any tunnel")
    );

    let offline = server
        .tunnel_with_route("offline", "offline.example.com")
        .await;
    let r = client
        .request(
            to_edge(server.edge, "offline.example.com", "/")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let html = String::from_utf8(body_bytes(r).await.to_vec()).unwrap();
    assert!(html.contains("no connector online"), "{html}");
    drop(offline);

    // An origin port nobody listens on: bind, learn the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let token = server.tunnel_with_route("dead", "dead.example.com").await;
    let connector = TestConnector::to(&token, &format!("http://{dead}"));
    server.wait_connections(&token, 4).await;
    let r = client
        .request(
            to_edge(server.edge, "dead.example.com", "/")
                .header("accept", "application/json")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(body["code"], "origin_refused");
    assert!(body["message"].as_str().unwrap().contains("refused"));
    // The connectors table shows it: this connector's origin is unreachable.
    let health = connector_origin_health(&server, "dead").await;
    assert_eq!(health["reachable"], false, "{health}");
    assert_eq!(health["error"], "origin_refused");
    assert!(health["checked_at"].as_str().unwrap().ends_with('Z'));
    connector.stop().await;

    // A connector whose origin answers (any status) is healthy; none is unknown yet.
    let token = server.tunnel_with_route("alive", "alive.example.com").await;
    let connector = TestConnector::to(&token, "http_status:418");
    server.wait_connections(&token, 4).await;
    assert_eq!(
        connector_origin_health(&server, "alive").await,
        serde_json::Value::Null
    );
    let r = client
        .request(
            to_edge(server.edge, "alive.example.com", "/")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
    let health = connector_origin_health(&server, "alive").await;
    assert_eq!(health["reachable"], true, "{health}");
    assert!(health.get("error").is_none());
    connector.stop().await;
}

/// `origin_health` of the tunnel's one connector, as `GET …/connectors` shows it.
async fn connector_origin_health(server: &TestServer, tunnel: &str) -> serde_json::Value {
    let (status, connectors) = bearer(
        server,
        &server.admin_token,
        http::Method::GET,
        &format!("/tunnels/{tunnel}/connectors"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{connectors}");
    connectors[0]["origin_health"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giant_headers_are_refused_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup().await;
    let mut raw = tokio::net::TcpStream::connect(s.server.edge).await.unwrap();
    let giant = "a".repeat(200 * 1024);
    let head = format!("GET /hello HTTP/1.1\r\nHost: app.example.com\r\nX-Giant: {giant}\r\n\r\n");
    // The edge may answer and close before it has read everything we send.
    let _ = raw.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let r = get(s.server.edge, "app.example.com", "/hello").await;
    assert_eq!(r.status(), StatusCode::OK);
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_leaving_mid_download_harms_no_one() {
    let s = setup().await;
    for _ in 0..5 {
        let r = get(s.server.edge, "app.example.com", "/big").await;
        let mut body = r.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        drop(body);
    }
    let r = get(s.server.edge, "app.example.com", "/hello").await;
    assert_eq!(body_bytes(r).await, "hello from origin");
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_many_requests_on_one_connection() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let s = setup().await;
    let stream = tokio::net::TcpStream::connect(s.server.edge).await.unwrap();
    let mut stream = BufReader::new(stream);
    for i in 0..20 {
        let request = "GET /hello HTTP/1.1\r\nHost: app.example.com\r\n\r\n";
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "request {i}: {status}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        assert_eq!(body, b"hello from origin");
    }
    s.connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_edge_serves_each_routed_hostname_its_own_certificate() {
    let s = setup().await;
    let config =
        adit_transport::tls::origin_client_config(Some(&s.server.ca_file()), false).unwrap();
    let tcp = tokio::net::TcpStream::connect(s.server.edge_tls)
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            adit_transport::tls::server_name("app.example.com").unwrap(),
            tcp,
        )
        .await
        .expect("the certificate for app.example.com chains to the server's CA");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let r = sender
        .send_request(
            hyper::Request::get("/headers")
                .header("host", "app.example.com")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(seen["x-forwarded-proto"], "https");
    s.connector.stop().await;
}
