//! Connectors over time: rotation, deletion, dropped connections, server restarts, bad tokens.

use std::time::Duration;

use adit_core::{
    ids::ConnectorId,
    wire::{self, DataHello, HelloReply, RejectCode},
};
use http::StatusCode;

use crate::kit::*;

async fn hello_ok(server: &TestServer, host: &str) -> bool {
    match client()
        .request(to_edge(server.edge, host, "/").body(full("")).unwrap())
        .await
    {
        Ok(r) => r.status() == StatusCode::OK,
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_secret_disconnects_and_refuses_the_old_token() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("rot", "rot.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;
    assert!(hello_ok(&server, "rot.example.com").await);

    let account = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let new_token = server.control.rotate_secret(account, "rot").await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), connector.task)
        .await
        .expect("the connector stops within 2 s of rotation")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let err = result.expect_err("the old token is refused");
    assert_eq!(err.to_string(), "Provided Tunnel token is not valid.");
    assert_eq!(server.live_connections(&token), 0);

    // The new token works.
    let fresh = TestConnector::to(
        &adit_core::token::TunnelToken::parse(&new_token).unwrap(),
        "hello_world",
    );
    server.wait_connections(&token, 4).await;
    assert!(hello_ok(&server, "rot.example.com").await);
    fresh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_tunnel_disconnects_its_connectors() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("del", "del.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;
    let account = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    let refused = server
        .control
        .delete_tunnel(account, "del", false)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("active connection"),
        "{refused}"
    );
    server
        .control
        .delete_tunnel(account, "del", true)
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), connector.task)
        .await
        .expect("the connector stops within 2 s of deletion")
        .unwrap();
    assert!(result.is_err());
    let r = get(server.edge, "del.example.com", "/").await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the route went with the tunnel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_stops_the_connector_with_a_clear_error() {
    let server = TestServer::spawn().await;
    let mut token = server.tunnel_with_route("bad", "bad.example.com").await;
    token.secret = adit_core::token::TunnelSecret::from_bytes(vec![1; 32]).unwrap();
    let connector = TestConnector::to(&token, "hello_world");
    let result = tokio::time::timeout(Duration::from_secs(5), connector.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result.unwrap_err().to_string(),
        "Provided Tunnel token is not valid."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_one_connection_loses_no_new_request_and_heals() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("ha", "ha.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;

    let load = {
        let edge = server.edge;
        tokio::spawn(async move {
            let client = client();
            let mut ok = 0;
            for _ in 0..300 {
                let r = client
                    .request(to_edge(edge, "ha.example.com", "/").body(full("")).unwrap())
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                body_bytes(r).await;
                ok += 1;
            }
            ok
        })
    };
    // Close one connection's socket while the load runs.
    let victim = server.control.registry.connections(token.tunnel_id)[0].clone();
    victim.close.cancel();
    assert_eq!(
        load.await.unwrap(),
        300,
        "every request after the drop succeeded"
    );
    eventually(
        Duration::from_secs(10),
        "the connector restoring 4 connections",
        || async { (server.live_connections(&token) == 4 && connector.ready() == 4).then_some(()) },
    )
    .await;
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_server_keeps_state_and_connectors_come_back() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("keep", "keep.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;

    let server = server.restart().await;
    let account = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    let tunnel = server.control.get_tunnel(account, "keep").await.unwrap();
    assert_eq!(tunnel.routes, vec!["keep.example.com".to_owned()]);
    let started = tokio::time::Instant::now();
    eventually(
        Duration::from_secs(5),
        "the connector reconnecting after the restart",
        || async { hello_ok(&server, "keep.example.com").await.then_some(()) },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_hellos_are_refused_and_harm_nobody() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("calm", "calm.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;

    let dial = || async {
        let pin = token.ca_pin.clone().unwrap();
        let config = adit_transport::tls::client_config(
            &adit_transport::tls::EdgeTrust::Pinned(pin),
            wire::ALPN_DATA,
        )
        .unwrap();
        let tcp = tokio::net::TcpStream::connect(server.tunnel).await.unwrap();
        tokio_rustls::TlsConnector::from(config)
            .connect(adit_transport::tls::server_name("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap()
    };
    // A length far beyond the limit.
    let mut tls = dial().await;
    tls.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let reply: HelloReply = adit_transport::frame::read_frame(&mut tls, 1 << 16)
        .await
        .unwrap();
    assert!(
        matches!(
            reply,
            HelloReply::Rejected {
                code: RejectCode::Malformed,
                ..
            }
        ),
        "{reply:?}"
    );
    // Garbage JSON.
    let mut tls = dial().await;
    tls.write_all(&5u32.to_be_bytes()).await.unwrap();
    tls.write_all(b"{{{{{").await.unwrap();
    let reply: HelloReply = adit_transport::frame::read_frame(&mut tls, 1 << 16)
        .await
        .unwrap();
    assert!(matches!(
        reply,
        HelloReply::Rejected {
            code: RejectCode::Malformed,
            ..
        }
    ));
    // A well-formed hello for a connector that never registered.
    let mut tls = dial().await;
    let hello = DataHello {
        versions: vec![1],
        token: token.encode().into(),
        connector_id: ConnectorId::random(),
        index: 0,
    };
    adit_transport::frame::write_frame(&mut tls, &hello)
        .await
        .unwrap();
    let reply: HelloReply = adit_transport::frame::read_frame(&mut tls, 1 << 16)
        .await
        .unwrap();
    assert!(matches!(
        reply,
        HelloReply::Rejected {
            code: RejectCode::UnknownConnector,
            ..
        }
    ));
    // Only an unsupported version.
    let mut tls = dial().await;
    adit_transport::frame::write_frame(
        &mut tls,
        &DataHello {
            versions: vec![99],
            ..hello
        },
    )
    .await
    .unwrap();
    let reply: HelloReply = adit_transport::frame::read_frame(&mut tls, 1 << 16)
        .await
        .unwrap();
    assert!(matches!(
        reply,
        HelloReply::Rejected {
            code: RejectCode::UnsupportedVersion,
            ..
        }
    ));
    // Plain TCP garbage on the TLS port.
    let mut raw = tokio::net::TcpStream::connect(server.tunnel).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut sink)).await;

    assert_eq!(server.live_connections(&token), 4);
    assert!(hello_ok(&server, "calm.example.com").await);
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_reports_readiness_and_metrics() {
    let server = TestServer::spawn().await;
    let token = server
        .tunnel_with_route("watched", "watched.example.com")
        .await;
    let connector = TestConnector::to(&token, "hello_world");
    let listener = adit_agent::metrics::bind(Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(adit_agent::metrics::serve(
        listener,
        connector.metrics.clone(),
        ConnectorId::random(),
        stop.clone(),
    ));
    server.wait_connections(&token, 4).await;
    eventually(Duration::from_secs(5), "the connector ready", || {
        let addr = addr.clone();
        async move { adit_agent::metrics::check_ready(&addr).await.ok() }
    })
    .await;
    let get = |path: &'static str| {
        let addr = addr.clone();
        async move {
            let r = client()
                .request(
                    http::Request::get(format!("http://{addr}{path}"))
                        .body(full(""))
                        .unwrap(),
                )
                .await
                .unwrap();
            (
                r.status(),
                String::from_utf8(body_bytes(r).await.to_vec()).unwrap(),
            )
        }
    };
    let (status, body) = get("/ready").await;
    assert_eq!(status, StatusCode::OK);
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["readyConnections"], 4);
    assert_eq!(ready["status"], 200);
    assert_eq!(
        get("/healthcheck").await,
        (StatusCode::OK, "OK\n".to_owned())
    );
    for _ in 0..3 {
        assert!(hello_ok(&server, "watched.example.com").await);
    }
    let (_, metrics) = get("/metrics").await;
    for line in [
        "adit_tunnel_ha_connections 4",
        "adit_tunnel_requests_total{status_class=\"2xx\",error_source=\"none\"} 3",
        "adit_tunnel_registrations_total{result=\"success\"} 4",
        "adit_build_info",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in:\n{metrics}");
    }

    // The edge goes away: not ready any more, and `adit tunnel ready` says so.
    server.shutdown().await;
    eventually(Duration::from_secs(10), "the connector not ready", || {
        let addr = addr.clone();
        async move { adit_agent::metrics::check_ready(&addr).await.err() }
    })
    .await;
    let (status, _) = get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    stop.cancel();
    connector.stop().await;
}
