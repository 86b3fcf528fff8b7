//! The node registry: `GET /api/v1/nodes` lists every `adit-server` sharing the database
//! with its addresses, version, connections and whether it is alive. On PostgreSQL, nodes
//! of one cluster see each other; one that shuts down is dead at once, and one that
//! vanishes is dead after three missed heartbeats, its connections closed by the others.

use std::{sync::Arc, time::Duration};

use adit_core::{api::Node, token::TunnelToken};
use adit_proto::v1::{self as pb, tunnel_service_client::TunnelServiceClient};
use adit_server::Config;
use http::{Method, StatusCode};

use crate::kit::*;

/// The nodes as `server` lists them to its admin.
async fn nodes(server: &TestServer) -> Vec<Node> {
    let (status, body) = bearer(server, &server.admin_token, Method::GET, "/nodes", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

/// The node `name` in `server`'s list, once `check` holds for it.
async fn node_where(
    server: &TestServer,
    name: &str,
    what: &str,
    check: impl Fn(&Node) -> bool,
) -> Node {
    eventually(Duration::from_secs(20), what, || async {
        nodes(server)
            .await
            .into_iter()
            .find(|n| n.name == name && check(n))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_lists_itself_alive_with_its_addresses_and_connections() {
    let server = TestServer::spawn().await;
    let (status, _) = bearer(&server, "adit_not-a-token", Method::GET, "/nodes", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = server.tunnel_with_route("t", "app.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;
    let me = node_where(&server, "edge-test", "this node with 4 connections", |n| {
        n.alive && n.connections == 4
    })
    .await;
    assert_eq!(me.tunnel_addr, server.tunnel.to_string());
    assert_eq!(me.edge_addr, server.edge.to_string());
    assert_eq!(me.api_addr, server.api.to_string());
    assert_eq!(me.version, env!("CARGO_PKG_VERSION"));
    assert!(me.started_at <= me.last_seen_at, "{me:?}");
    assert_eq!(nodes(&server).await.len(), 1);

    // A read-only token reads them too.
    let (_, created) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/tokens",
        Some(serde_json::json!({"name": "reader", "scopes": ["read"]})),
    )
    .await;
    let reader = created["token"].as_str().unwrap();
    let (status, body) = bearer(&server, reader, Method::GET, "/nodes", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["name"], "edge-test");

    let metrics = body_bytes(
        client()
            .get(format!("http://{}/metrics", server.api).parse().unwrap())
            .await
            .unwrap(),
    )
    .await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(&format!(
            "adit_node_info{{node=\"edge-test\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );

    // gRPC lists the same.
    let mut grpc = TunnelServiceClient::connect(format!("http://{}", server.api))
        .await
        .unwrap();
    let denied = grpc
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(pb::ListNodesRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {reader}").parse().unwrap());
    let listed = grpc.list_nodes(request).await.unwrap().into_inner().nodes;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "edge-test");
    assert_eq!(listed[0].api_addr, server.api.to_string());
    assert!(listed[0].alive && listed[0].started_at_ms > 0, "{listed:?}");

    connector.stop().await;
    node_where(&server, "edge-test", "no connections left", |n| {
        n.connections == 0
    })
    .await;
    server.shutdown().await;
}

/// A node named `name` on `database_url`, whose data directory holds copies of `first`'s
/// server key, CA and admin token, so tokens and sessions agree across the cluster.
fn second_node(
    first: &TestServer,
    name: &str,
    database_url: &str,
) -> (Arc<tempfile::TempDir>, Config) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for file in ["server.key", "ca.pem", "ca.key", "admin-token"] {
        std::fs::copy(first.dir.path().join("data").join(file), data.join(file)).unwrap();
    }
    let mut config = Config::ephemeral(data);
    config.database_url = Some(database_url.to_owned());
    config.node_name = Some(name.to_owned());
    (dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_a_cluster_see_each_other_and_the_dead() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.database_url = Some(url.clone());
    config.node_name = Some("node-a".into());
    let a = TestServer::start_with(dir, config).await;
    // Node b runs on a runtime of its own, so that it can vanish as a killed process
    // does: every task of it stops at once, and nothing of it shuts down.
    let b_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (b_dir, b_config) = second_node(&a, "node-b", &url);
    // Started from a thread outside this test's runtime, as a runtime cannot be entered
    // from inside another.
    let b = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            s.spawn(|| b_runtime.block_on(TestServer::start_with(b_dir, b_config)))
                .join()
                .unwrap()
        })
    });
    let (c_dir, c_config) = second_node(&a, "node-c", &url);
    let c = TestServer::start_with(c_dir, c_config).await;

    for server in [&a, &b, &c] {
        eventually(Duration::from_secs(20), "three live nodes", || async {
            let listed = nodes(server).await;
            let names: Vec<&str> = listed.iter().map(|n| n.name.as_str()).collect();
            (names == ["node-a", "node-b", "node-c"] && listed.iter().all(|n| n.alive))
                .then_some(())
        })
        .await;
    }
    let listed = nodes(&a).await;
    assert_eq!(listed[1].tunnel_addr, b.tunnel.to_string());
    assert_eq!(listed[2].api_addr, c.api.to_string());

    // A graceful shutdown is seen at once: no waiting for missed beats.
    c.stop().await;
    let listed = nodes(&a).await;
    assert!(!listed[2].alive, "{listed:?}");
    assert!(listed[..2].iter().all(|n| n.alive), "{listed:?}");

    // A connector on node b: node a counts its connections there.
    a.tunnel_with_route("t", "app.example.com").await;
    let account = b.control.storage.ensure_account("default").await.unwrap();
    let token = TunnelToken::parse(&b.control.tunnel_token(account, "t").await.unwrap()).unwrap();
    // Two connections over the live nodes a and b: one on each.
    let proxy = adit_agent::origin::OriginProxy::new(
        adit_core::ingress::Ingress::single("hello_world").unwrap(),
    )
    .unwrap();
    let connector = TestConnector::dialing(&token, &b, proxy, 2);
    node_where(&a, "node-b", "node b's connection", |n| {
        n.alive && n.connections == 1
    })
    .await;

    // Node b vanishes: after three missed beats it is dead, and node a closes the
    // connection rows it left open; the connector moves that connection to node a.
    b_runtime.shutdown_background();
    node_where(&a, "node-b", "node b dead, its connections closed", |n| {
        !n.alive && n.connections == 0
    })
    .await;
    a.wait_connections(&token, 2).await;
    let (status, tunnel) = bearer(&a, &a.admin_token, Method::GET, "/tunnels/t", None).await;
    assert_eq!(status, StatusCode::OK, "{tunnel}");
    assert_eq!(tunnel["connections"], 2, "{tunnel}");
    assert!(nodes(&a).await[0].alive);

    // A node dead for more than a day leaves the list at the next sweep.
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let day_and_more = adit_server::control::nodes::FORGET_DEAD_AFTER_MS + 60_000;
    let storage = &a.control.storage;
    assert!(
        storage
            .set_node_heartbeat("node-c", now - day_and_more)
            .await
            .unwrap()
    );
    eventually(Duration::from_secs(10), "node-c forgotten", || async {
        let listed = nodes(&a).await;
        let names: Vec<&str> = listed.iter().map(|n| n.name.as_str()).collect();
        (names == ["node-a", "node-b"]).then_some(())
    })
    .await;

    connector.stop().await;
    drop(b);
    a.shutdown().await;
}

/// `adit-server health --url URL`, the real binary: its exit status and what it printed.
fn health_check(url: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adit-server"))
        .args(["health", "--url", url])
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_says_it_is_alive_and_ready_and_not_ready_while_it_leaves() {
    let server = TestServer::spawn().await;
    let r = get(server.api, "localhost", "/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(server.api, "localhost", "/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_bytes(r).await, "ready\n");
    let url = format!("http://{}", server.api);
    let (ready, printed) = tokio::task::block_in_place(|| health_check(&url));
    assert!(ready, "{printed}");
    assert_eq!(printed.trim(), "ready");

    // Leaving (as SIGTERM starts it in a cluster): a balancer must stop sending traffic.
    server.control.registry.release_all();
    let r = get(server.api, "localhost", "/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_bytes(r).await, "not ready: leaving the cluster\n");
    let (ready, printed) = tokio::task::block_in_place(|| health_check(&url));
    assert!(
        !ready && printed.contains("503: not ready: leaving the cluster"),
        "{printed}"
    );
    let r = get(server.api, "localhost", "/healthz").await;
    assert_eq!(r.status(), StatusCode::OK, "alive all the same");

    server.stop().await;
    let (ready, printed) = tokio::task::block_in_place(|| health_check(&url));
    assert!(!ready && printed.contains(&url), "{printed}");
}
