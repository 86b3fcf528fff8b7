//! Several connectors (replicas) of one tunnel: stopping one loses no request, the status
//! counts the connections each keeps, a replica whose origin fails is passed over, and
//! stale connectors can be cleaned up.

use std::time::Duration;

use adit_agent::origin::OriginProxy;
use adit_core::{ingress::Ingress, token::TunnelToken};
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::kit::*;

fn replica(token: &TunnelToken, origin: &str) -> TestConnector {
    TestConnector::to(token, origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_three_replicas_under_load_fails_no_request() {
    let server = TestServer::spawn().await;
    let host = "rolling.example.com";
    let token = server.tunnel_with_route("rolling", host).await;
    let (started, _) = mpsc::unbounded_channel();
    let origin = slow_origin(Duration::ZERO, started).await;
    let mut replicas: Vec<TestConnector> = (0..3).map(|_| replica(&token, &origin)).collect();
    server.wait_connections(&token, 12).await;

    let load = Load::start(&[server.edge], host, "ok", 16);

    // Each replica in turn: stopped as SIGTERM stops it (drain, then GOAWAY), then a new one
    // started and connected before the next goes.
    for _ in 0..3 {
        load.serves(300).await;
        replicas.remove(0).stop().await;
        server.wait_connections(&token, 8).await;
        replicas.push(replica(&token, &origin));
        server.wait_connections(&token, 12).await;
    }
    let (served, failed) = load.finish().await;
    assert_eq!(failed, 0, "of {served} requests");
    assert!(served > 100, "the load ran ({served} requests)");
    for replica in replicas {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_connector_finishes_its_streams_and_takes_no_new_ones() {
    let server = TestServer::spawn().await;
    let host = "drain.example.com";
    let token = server.tunnel_with_route("drain", host).await;
    let (started, mut slow_started) = mpsc::unbounded_channel();
    let origin = slow_origin(Duration::from_millis(600), started).await;
    let connector = replica(&token, &origin);
    server.wait_connections(&token, 4).await;

    let slow = tokio::spawn(get(server.edge, host, "/slow"));
    slow_started.recv().await.unwrap();
    connector.stop.cancel();
    // The edge takes no new stream on a draining connector, long before the slow one ends.
    eventually(
        Duration::from_secs(5),
        "new requests refused while the slow one runs",
        || async {
            let r = get(server.edge, host, "/").await;
            (r.status() == StatusCode::BAD_GATEWAY).then_some(())
        },
    )
    .await;
    assert!(!slow.is_finished(), "the slow request is still in flight");
    let slow = slow.await.unwrap();
    assert_eq!(slow.status(), StatusCode::OK);
    assert_eq!(body_bytes(slow).await, "slow and whole");
    tokio::time::timeout(Duration::from_secs(10), connector.task)
        .await
        .expect("the connector stops once its streams are done")
        .unwrap()
        .unwrap();
    server.wait_connections(&token, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_keeping_two_connections_is_healthy() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("two", "two.example.com").await;
    let proxy = OriginProxy::new(Ingress::single("hello_world").unwrap()).unwrap();
    let connector = TestConnector::keeping(&token, proxy, 2);
    server.wait_connections(&token, 2).await;
    let auth = [("authorization", format!("Bearer {}", server.admin_token))];
    let path = format!("/tunnels/{}", token.tunnel_id);
    let (status, _, tunnel) = api_request(server.api, Method::GET, &path, &auth, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tunnel["status"], "healthy", "{tunnel}");
    assert_eq!(tunnel["connections"], 2);
    let (_, _, list) = api_request(server.api, Method::GET, "/tunnels", &auth, None).await;
    assert_eq!(list[0]["status"], "healthy", "{list}");
    let (_, _, connectors) = api_request(
        server.api,
        Method::GET,
        &format!("{path}/connectors"),
        &auth,
        None,
    )
    .await;
    assert_eq!(connectors[0]["ha_connections"], 2, "{connectors}");

    // One of its two down is degraded. The connector dials again at once (its backoff
    // starts anywhere from 0 ms), so a poll can miss the moment: each poll that still finds
    // both up closes one again.
    let close_one = || {
        let live = server.control.registry.connections(token.tunnel_id);
        if live.len() == 2 {
            live[0].close.cancel();
        }
    };
    close_one();
    eventually(
        Duration::from_secs(30),
        "degraded with one of two connections down",
        || async {
            let (_, _, t) = api_request(server.api, Method::GET, &path, &auth, None).await;
            let degraded = t["status"] == "degraded";
            if !degraded {
                close_one();
            }
            degraded.then_some(())
        },
    )
    .await;
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_origin_is_down_gets_no_new_requests_while_another_answers() {
    let server = TestServer::spawn().await;
    let host = "mixed.example.com";
    let token = server.tunnel_with_route("mixed", host).await;
    let dead = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (started, _) = mpsc::unbounded_channel();
    let alive = slow_origin(Duration::ZERO, started).await;
    let broken = replica(&token, &dead);
    let healthy = replica(&token, &alive);
    server.wait_connections(&token, 8).await;

    // Until a request has gone to the broken replica, the edge cannot know.
    let mut first_failure = None;
    for attempt in 0..64 {
        let r = get(server.edge, host, "/").await;
        if r.status() == StatusCode::BAD_GATEWAY {
            first_failure = Some(attempt);
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(
        first_failure.is_some(),
        "some request reached the broken replica"
    );
    for _ in 0..100 {
        let r = get(server.edge, host, "/").await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "the healthy replica takes them all"
        );
        assert_eq!(body_bytes(r).await, "ok");
    }
    let auth = [("authorization", format!("Bearer {}", server.admin_token))];
    let path = format!("/tunnels/{}/connectors", token.tunnel_id);
    let (_, _, connectors) = api_request(server.api, Method::GET, &path, &auth, None).await;
    let reachable: Vec<Value> = connectors
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["origin_health"]["reachable"].clone())
        .collect();
    assert!(reachable.contains(&Value::Bool(false)), "{connectors}");
    assert!(reachable.contains(&Value::Bool(true)), "{connectors}");
    broken.stop().await;
    healthy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_drops_connectors_and_running_ones_come_back() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("tidy", "tidy.example.com").await;
    let a = TestConnector::to(&token, "hello_world");
    let b = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 8).await;
    let auth = [("authorization", format!("Bearer {}", server.admin_token))];
    let tunnel = token.tunnel_id.to_string();
    let connectors_path = format!("/tunnels/{tunnel}/connectors");
    let (_, _, connectors) =
        api_request(server.api, Method::GET, &connectors_path, &auth, None).await;
    let one = connectors[0]["id"].as_str().unwrap().to_owned();

    // A malformed or unknown connector is refused, and nothing is dropped.
    let cleanup = |query: String| {
        let path = format!("/tunnels/{tunnel}/connections{query}");
        let auth = auth.clone();
        async move { api_request(server.api, Method::DELETE, &path, &auth, None).await }
    };
    let (status, _, body) = cleanup("?connector_id=nope".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let unknown = adit_core::ids::ConnectorId::random();
    let (status, _, _) = cleanup(format!("?client_id={unknown}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.live_connections(&token), 8);

    // One connector: its connections close, the other's stay; it registers again.
    let (status, _, body) = cleanup(format!("?connector_id={one}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connectors"], 1);
    // The CLI, for all of them.
    let out = adit(&server, &["cleanup", "tidy"]).await.unwrap();
    assert!(out.contains("connector(s) of tunnel tidy"), "{out}");
    eventually(Duration::from_secs(15), "both connectors back", || async {
        let (_, _, list) =
            api_request(server.api, Method::GET, &connectors_path, &auth, None).await;
        (server.live_connections(&token) == 8 && list.as_array().map(Vec::len) == Some(2))
            .then_some(())
    })
    .await;
    let r = get(server.edge, "tidy.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    a.stop().await;
    b.stop().await;
}
