//! Several `adit-server` nodes on one PostgreSQL database: a change made through one node
//! reaches what every other node holds in memory within a second.

use std::time::Duration;

use adit_core::{api::ChangeKind, token::TunnelToken};
use http::{Method, StatusCode};
use serde_json::json;

use crate::{dashboard::Events, kit::*};

/// What a change made on one node may take to show on another.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Creates a tunnel (`body`, e.g. `{"name": "t"}`) through `node`'s REST API as its admin;
/// its token.
async fn create_tunnel(node: &TestServer, body: serde_json::Value) -> TunnelToken {
    let admin = &node.admin_token;
    let name = body["name"].as_str().unwrap().to_owned();
    let (status, tunnel) = bearer(node, admin, Method::POST, "/tunnels", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{tunnel}");
    let (_, token) = bearer(
        node,
        admin,
        Method::GET,
        &format!("/tunnels/{name}/token"),
        None,
    )
    .await;
    TunnelToken::parse(token["token"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_on_one_node_reach_the_other_within_a_second() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let admin = a.admin_token.clone();

    // A tunnel made on A, run by a connector connected to B only.
    let token = create_tunnel(&a, json!({"name": "spread"})).await;
    let connector = TestConnector::at_node(&token, &b, "hello_world");
    b.wait_connections(&token, 1).await;
    assert_eq!(a.live_connections(&token), 0);

    // B's dashboard streams hear of a route added on A; B's edge serves it.
    let mut events = Events::open(&b, ("authorization", &format!("Bearer {admin}"))).await;
    let (status, route) = bearer(
        &a,
        &admin,
        Method::POST,
        "/tunnels/spread/routes",
        Some(json!({"hostname": "spread.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{route}");
    let notice = events.next(PROPAGATION).await.expect("a notice on B");
    assert_eq!(
        (notice.kind, notice.tunnel),
        (ChangeKind::Route, Some(token.tunnel_id))
    );
    eventually(PROPAGATION, "B routing the hostname added on A", || async {
        (get(b.edge, "spread.example.com", "/").await.status() == StatusCode::OK).then_some(())
    })
    .await;

    // An API token revoked on A is refused by B at once.
    let (status, made) = bearer(
        &a,
        &admin,
        Method::POST,
        "/tokens",
        Some(json!({"name": "ci", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let ci = made["token"].as_str().unwrap().to_owned();
    assert_eq!(
        bearer(&b, &ci, Method::GET, "/tunnels", None).await.0,
        StatusCode::OK
    );
    let revoke = format!("/tokens/{}", made["id"].as_str().unwrap());
    assert_eq!(
        bearer(&a, &admin, Method::DELETE, &revoke, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bearer(&b, &ci, Method::GET, "/tunnels", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A secret rotated on A: B closes the connections of the old token within a second.
    let (status, _) = bearer(
        &a,
        &admin,
        Method::POST,
        "/tunnels/spread/rotate-secret",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    eventually(
        PROPAGATION,
        "B closing the rotated tunnel's connections",
        || async { (b.live_connections(&token) == 0).then_some(()) },
    )
    .await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), connector.task)
        .await
        .expect("the connector stops: its token is refused now");
    assert!(
        matches!(stopped, Ok(Err(adit_agent::Error::InvalidToken))),
        "{stopped:?}"
    );

    // A route removed on A is gone from B's table.
    let route_id = route["id"].as_str().unwrap();
    let (status, _) = bearer(
        &a,
        &admin,
        Method::DELETE,
        &format!("/routes/{route_id}"),
        None,
    )
    .await;
    assert!(status.is_success(), "{status}");
    eventually(
        PROPAGATION,
        "B forgetting the hostname removed on A",
        || async {
            (get(b.edge, "spread.example.com", "/").await.status() == StatusCode::NOT_FOUND)
                .then_some(())
        },
    )
    .await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_changes_reach_the_other_node_as_changes_not_reloads() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let admin = a.admin_token.clone();
    // The edge answers 502 (no connector) for a routed hostname, 404 for another.
    let routed_on_b = |host: &'static str, routed: bool| {
        let edge = b.edge;
        async move {
            let want = if routed {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::NOT_FOUND
            };
            eventually(PROPAGATION, host, || async {
                (get(edge, host, "/").await.status() == want).then_some(())
            })
            .await;
        }
    };
    let route = |tunnel: &'static str, hostname: &'static str| {
        let (a, admin) = (&a, admin.clone());
        async move {
            let (status, body) = bearer(
                a,
                &admin,
                Method::POST,
                &format!("/tunnels/{tunnel}/routes"),
                Some(json!({ "hostname": hostname })),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    create_tunnel(&a, json!({"name": "plain"})).await;
    create_tunnel(&a, json!({"name": "managed", "config_src": "remote"})).await;
    // B read every route when it started and again when it began listening for A's
    // notices; from there on it only applies A's changes.
    let reloads = eventually(PROPAGATION * 10, "B listening", || async {
        let n = b.control.routes.full_reloads();
        (n >= 2).then_some(n)
    })
    .await;

    route("plain", "plain.example.com").await;
    route("plain", "*.wild.example.com").await;
    routed_on_b("plain.example.com", true).await;
    routed_on_b("x.wild.example.com", true).await;

    // A remote configuration routes its hostnames, and a new version drops one.
    let put = |hosts: &[&str]| {
        let mut ingress: Vec<_> = hosts
            .iter()
            .map(|h| json!({"hostname": h, "service": "http_status:200"}))
            .collect();
        ingress.push(json!({"service": "http_status:404"}));
        json!({"config": {"ingress": ingress}})
    };
    let path = "/tunnels/managed/configurations";
    let (status, body) = bearer(
        &a,
        &admin,
        Method::PUT,
        path,
        Some(put(&["one.example.com", "two.example.com"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    routed_on_b("one.example.com", true).await;
    routed_on_b("two.example.com", true).await;
    let (status, body) = bearer(
        &a,
        &admin,
        Method::PUT,
        path,
        Some(put(&["two.example.com"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    routed_on_b("one.example.com", false).await;
    routed_on_b("two.example.com", true).await;

    // Deleting a tunnel removes its routes, the wildcard among them.
    let (status, _) = bearer(&a, &admin, Method::DELETE, "/tunnels/plain", None).await;
    assert!(status.is_success(), "{status}");
    routed_on_b("plain.example.com", false).await;
    routed_on_b("x.wild.example.com", false).await;

    assert_eq!(
        b.control.routes.full_reloads(),
        reloads,
        "B never re-read all routes"
    );
    assert_eq!(b.control.routes.len(), a.control.routes.len());
    assert_eq!(b.control.routes.len(), 1, "two.example.com");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_configuration_saved_on_one_node_reaches_connectors_on_another() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let admin = a.admin_token.clone();
    let token = create_tunnel(&a, json!({"name": "managed", "config_src": "remote"})).await;
    let connector = TestConnector::dialing(
        &token,
        &b,
        adit_agent::origin::OriginProxy::without_rules(),
        1,
    );
    b.wait_connections(&token, 1).await;

    let put = |status: u16| {
        json!({"config": {"ingress": [
            {"hostname": "managed.example.com", "service": format!("http_status:{status}")},
            {"service": "http_status:404"}
        ]}})
    };
    let (status, body) = bearer(
        &a,
        &admin,
        Method::PUT,
        "/tunnels/managed/configurations",
        Some(put(203)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(
        PROPAGATION,
        "the connector on B serving A's configuration",
        || async {
            (get(b.edge, "managed.example.com", "/")
                .await
                .status()
                .as_u16()
                == 203)
                .then_some(())
        },
    )
    .await;
    let (status, _) = bearer(
        &a,
        &admin,
        Method::PUT,
        "/tunnels/managed/configurations",
        Some(put(202)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    eventually(PROPAGATION, "the next version too", || async {
        (get(b.edge, "managed.example.com", "/")
            .await
            .status()
            .as_u16()
            == 202)
            .then_some(())
    })
    .await;
    connector.stop().await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_the_database_catches_up_when_it_returns() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let admin = a.admin_token.clone();
    let token = create_tunnel(&a, json!({"name": "gap"})).await;
    let connector = TestConnector::at_node(&token, &b, "hello_world");
    b.wait_connections(&token, 1).await;

    // Cut every node's listening connection, then change something at once: whether B
    // hears the notice or re-reads everything when it listens again, it serves the route.
    let database = a.database_url();
    let name = database.rsplit('/').next().unwrap().to_owned();
    let admin_db = sqlx::PgPool::connect(&database).await.unwrap();
    let cut = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&name)
    .fetch_all(&admin_db)
    .await
    .unwrap();
    assert!(
        cut.len() >= 2,
        "both nodes were listening ({} cut)",
        cut.len()
    );
    admin_db.close().await;
    let (status, body) = bearer(
        &a,
        &admin,
        Method::POST,
        "/tunnels/gap/routes",
        Some(json!({"hostname": "gap.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually(
        Duration::from_secs(10),
        "B serving the route made during its gap",
        || async {
            (get(b.edge, "gap.example.com", "/").await.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    connector.stop().await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_tunnels_connection_forwards_http_websocket_and_tcp() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let admin = a.admin_token.clone();
    let token = create_tunnel(&a, json!({"name": "far"})).await;
    for host in ["far.example.com", "ws.example.com", "tcp.example.com"] {
        let (status, body) = bearer(
            &a,
            &admin,
            Method::POST,
            "/tunnels/far/routes",
            Some(json!({"hostname": host})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let web = spawn_origin(crate::data_plane::websocket_echo).await;
    let (tcp, mut hashes) = crate::protocols::echo_origin("127.0.0.1:0").await;
    let yaml = format!(
        "- hostname: far.example.com\n  service: hello_world\n\
         - hostname: ws.example.com\n  service: http://{web}\n\
         - hostname: tcp.example.com\n  service: tcp://{tcp}\n\
         - service: http_status:404\n"
    );
    let raw: Vec<adit_core::ingress::RawIngressRule> = serde_yaml::from_str(&yaml).unwrap();
    let rules = adit_core::ingress::Ingress::parse(&raw, None).unwrap();
    let proxy = adit_agent::origin::OriginProxy::new(rules).unwrap();
    // The connector's one connection is on B; visitors come to A.
    let connector = TestConnector::dialing(&token, &b, proxy, 1);
    b.wait_connections(&token, 1).await;
    assert_eq!(a.live_connections(&token), 0);

    // HTTP, in the visitor's own error format too.
    let r = get(a.edge, "far.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(&body_bytes(r).await).contains("Adit"));

    // WebSocket.
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/echo", a.edge),
    )
    .map(|mut r| {
        r.headers_mut()
            .insert("host", "ws.example.com".parse().unwrap());
        r
    })
    .unwrap();
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..50 {
        let message = Message::text(format!("hello {i}"));
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), message);
    }
    drop(ws);

    // TCP through `adit access tcp`, 8 MiB both ways with checksums.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let target = adit_agent::access::EdgeTarget::new(
        "tcp.example.com",
        Some(&format!("http://{}", a.edge)),
        None,
    )
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(adit_agent::access::serve_tcp(
        listener,
        target,
        stop.clone(),
    ));
    let (sent, received, len) = crate::protocols::round_trip(local, 8 << 20, 7).await;
    assert_eq!((sent.clone(), len), (received, 8 << 20));
    assert_eq!(hashes.recv().await.unwrap(), (8 << 20, sent));
    stop.cancel();

    // The connector gone, A answers as B would: the tunnel is offline.
    connector.stop().await;
    b.wait_connections(&token, 0).await;
    let r = get(a.edge, "far.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body_bytes(r).await).contains("tunnel_offline"));
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_spreads_over_the_nodes_and_leaves_one_that_stops() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let c = a.join("edge-c").await;
    let token = a.tunnel_with_route("spread", "spread.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    let on = |nodes: &[&TestServer]| {
        nodes
            .iter()
            .map(|n| n.live_connections(&token))
            .collect::<Vec<_>>()
    };
    // Bootstrapped at A, its four connections reach all three nodes.
    eventually(
        Duration::from_secs(20),
        "4 connections over 3 nodes",
        || async {
            let counts = on(&[&a, &b, &c]);
            (counts.iter().sum::<usize>() == 4 && counts.iter().all(|n| *n >= 1)).then_some(())
        },
    )
    .await;
    for node in [&a, &b, &c] {
        let r = get(node.edge, "spread.example.com", "/").await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // C stops: its connection moves to A or B, and both serve.
    c.stop().await;
    eventually(
        Duration::from_secs(20),
        "the 4 connections on A and B",
        || async { (on(&[&a, &b]).iter().sum::<usize>() == 4).then_some(()) },
    )
    .await;
    for node in [&a, &b] {
        let r = get(node.edge, "spread.example.com", "/").await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    connector.stop().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// Waits until the tunnel's connections (4) are spread over all of `nodes`.
async fn spread_over(nodes: &[&TestServer], token: &TunnelToken) {
    eventually(
        Duration::from_secs(30),
        "4 connections over every node",
        || async {
            let counts: Vec<usize> = nodes.iter().map(|n| n.live_connections(token)).collect();
            (counts.iter().sum::<usize>() == 4 && counts.iter().all(|n| *n >= 1)).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_the_nodes_under_load_fails_no_request() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let c = a.join("edge-c").await;
    let host = "rolling-nodes.example.com";
    let token = a.tunnel_with_route("rolling-nodes", host).await;
    let (started, _) = tokio::sync::mpsc::unbounded_channel();
    let origin = slow_origin(Duration::ZERO, started).await;
    let connector = TestConnector::to(&token, &origin);
    spread_over(&[&a, &b, &c], &token).await;
    let load = Load::start(&[a.edge, b.edge, c.edge], host, "ok", 16);

    // Each node in turn, as an operator's rolling restart goes: out of the load balancer,
    // SIGTERM (it leaves: its connections move while their streams finish), started again,
    // back in once the connector has spread over it again.
    let mut nodes = vec![a, b, c];
    for _ in 0..3 {
        load.serves(300).await;
        let node = nodes.remove(0);
        load.rotation
            .lock()
            .unwrap()
            .retain(|edge| *edge != node.edge);
        // Requests already sent to it finish before it goes, as behind a balancer.
        load.serves(100).await;
        let node = node.restart().await;
        nodes.push(node);
        spread_over(&nodes.iter().collect::<Vec<_>>(), &token).await;
        load.rotation.lock().unwrap().push(nodes[2].edge);
    }
    load.serves(300).await;
    let (served, failed) = load.finish().await;
    assert_eq!(failed, 0, "of {served} requests");
    connector.stop().await;
    let last = nodes.pop().unwrap();
    for node in nodes {
        node.stop().await;
    }
    last.shutdown().await;
}

/// A node of `of`'s cluster run as the real `adit-server` binary (so it can be killed),
/// named `name`, in `dir` (given the shared files on its first start).
struct NodeProcess {
    child: std::process::Child,
    edge: std::net::SocketAddr,
}

impl NodeProcess {
    async fn start(of: &TestServer, name: &str, dir: &std::path::Path) -> Self {
        use std::io::{BufRead, BufReader};
        let data = dir.join("data");
        if !data.exists() {
            std::fs::create_dir_all(&data).unwrap();
            for file in ["server.key", "ca.pem", "ca.key"] {
                std::fs::copy(of.dir.path().join("data").join(file), data.join(file)).unwrap();
            }
        }
        let mut child = server_process(&data)
            .args(["--database-url", &of.database_url(), "--node-name", name])
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Reads the log on a thread: the edge address from the line saying it listens, then
        // the rest (unread, a full pipe would stall the server).
        let (found, listening) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(found) = found.take_if(|_| line.contains("adit-server listening")) {
                    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let _ = found.send(line["fields"]["edge"].as_str().unwrap().to_owned());
                }
            }
        });
        let edge = tokio::time::timeout(Duration::from_secs(60), listening)
            .await
            .expect("the node starts within 60 s")
            .expect("the node says where it listens");
        Self {
            child,
            edge: edge.parse().unwrap(),
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_fails_no_request_that_starts_two_seconds_later_and_rejoins() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let b = a.join("edge-b").await;
    let dir = tempfile::tempdir().unwrap();
    let killed = NodeProcess::start(&a, "edge-c", dir.path()).await;
    let host = "killed.example.com";
    let token = a.tunnel_with_route("killed", host).await;
    let (started, _) = tokio::sync::mpsc::unbounded_channel();
    let origin = slow_origin(Duration::ZERO, started).await;
    let connector = TestConnector::to(&token, &origin);
    // One of the 4 connections lands on the process, the others on A and B.
    let on_a_and_b = || a.live_connections(&token) + b.live_connections(&token);
    let spread = || async {
        (on_a_and_b() == 3 && a.live_connections(&token) >= 1 && b.live_connections(&token) >= 1)
            .then_some(())
    };
    eventually(
        Duration::from_secs(30),
        "one connection on each node",
        spread,
    )
    .await;
    assert_eq!(get(killed.edge, host, "/").await.status(), StatusCode::OK);

    let load = Load::start(&[a.edge, b.edge, killed.edge], host, "ok", 16);
    load.serves(300).await;
    // SIGKILL: no leaving, no goodbye. The balancer notices only afterwards.
    let killed_edge = killed.edge;
    killed.kill();
    let at = tokio::time::Instant::now();
    load.rotation
        .lock()
        .unwrap()
        .retain(|edge| *edge != killed_edge);
    eventually(
        Duration::from_secs(30),
        "the connection on A or B",
        || async { (on_a_and_b() == 4).then_some(()) },
    )
    .await;
    load.serves(300).await;
    let (served, failures) = load.finish_timed().await;
    let late: Vec<_> = failures
        .iter()
        .filter(|sent| **sent >= at + Duration::from_secs(2))
        .map(|sent| sent.duration_since(at))
        .collect();
    assert!(
        late.is_empty(),
        "requests sent this long after the kill failed: {late:?} (of {served})"
    );

    // Started again, it takes its row back and the connector spreads onto it.
    let back = NodeProcess::start(&a, "edge-c", dir.path()).await;
    eventually(
        Duration::from_secs(30),
        "one connection on each node",
        spread,
    )
    .await;
    assert_eq!(get(back.edge, host, "/").await.status(), StatusCode::OK);
    back.kill();
    connector.stop().await;
    b.stop().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_naming_the_cluster_starts_a_connector_while_its_issuing_node_is_down() {
    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    // "localhost" stands for a DNS name in front of every node (here: only A's port).
    let front = format!("localhost:{}", a.tunnel.port());
    let b = a
        .join_with("edge-b", |config| {
            config.token_endpoint = Some(front.clone())
        })
        .await;
    let token = create_tunnel(&b, json!({"name": "fronted"})).await;
    assert_eq!(token.endpoint.as_deref(), Some(front.as_str()));
    let (status, route) = bearer(
        &b,
        &b.admin_token,
        Method::POST,
        "/tunnels/fronted/routes",
        Some(json!({"hostname": "fronted.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{route}");

    b.stop().await;
    let connector = TestConnector::to(&token, "hello_world");
    a.wait_connections(&token, 4).await;
    let r = get(a.edge, "fronted.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    connector.stop().await;
    a.shutdown().await;
}

/// Dials `node`'s tunnel listener as another node would, showing `proof`; whether an
/// HTTP/2 link then opens.
async fn node_link_opens(node: &TestServer, pin: &str, proof: &str) -> bool {
    use adit_core::wire::{ALPN_NODE, NodeHello};
    use adit_transport::tls::{EdgeTrust, client_config, server_name};
    let tcp = tokio::net::TcpStream::connect(node.tunnel).await.unwrap();
    let config = client_config(&EdgeTrust::Pinned(pin.to_owned()), ALPN_NODE).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(server_name("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let hello = NodeHello {
        proof: proof.to_owned().into(),
    };
    adit_transport::frame::write_frame(&mut tls, &hello)
        .await
        .unwrap();
    let close = tokio_util::sync::CancellationToken::new();
    let Ok((sender, driver)) = adit_server::tunnel::link::handshake(tls, close).await else {
        return false;
    };
    tokio::spawn(driver);
    let request = http::Request::get("http://x/").body(full("")).unwrap();
    tokio::time::timeout(Duration::from_secs(5), sender.send(request))
        .await
        .is_ok_and(|sent| sent.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_node_of_the_cluster_may_open_a_node_link() {
    // A lone SQLite server takes no node links at all.
    let lone = TestServer::spawn().await;
    let token = lone.tunnel_with_route("lone", "lone.example.com").await;
    let pin = token.ca_pin.clone().unwrap();
    assert!(!node_link_opens(&lone, &pin, "anything").await);

    let Some(a) = TestServer::spawn_on(Db::Postgres).await else {
        return;
    };
    let token = a.tunnel_with_route("linked", "linked.example.com").await;
    let pin = token.ca_pin.clone().unwrap();
    // A connector's token, or a guess, is no node's proof.
    assert!(!node_link_opens(&a, &pin, &token.encode()).await);
    assert!(!node_link_opens(&a, &pin, "0123456789abcdef").await);
    a.shutdown().await;
}
