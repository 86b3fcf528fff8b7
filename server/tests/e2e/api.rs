//! The control plane through its real front doors: REST, gRPC and the `adit` CLI, on
//! SQLite always and on PostgreSQL when ADIT_TEST_DATABASE_URL is set.

use adit_proto::v1::{self as pb, tunnel_service_client::TunnelServiceClient};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::kit::*;

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let auth = token.map(|t| ("authorization", format!("Bearer {t}")));
    let (status, _, value) = api_request(server.api, method, path, auth.as_slice(), body).await;
    (status, value)
}

async fn rest_crud(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let t = Some(server.admin_token.as_str());

    let (status, created) = call(
        &server,
        Method::POST,
        "/tunnels",
        t,
        Some(json!({"name": "alpha"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "inactive");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, dup) = call(
        &server,
        Method::POST,
        "/tunnels",
        t,
        Some(json!({"name": "alpha"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["code"], "conflict");
    assert!(dup["message"].as_str().unwrap().contains("already exists"));

    let (status, bad) = call(
        &server,
        Method::POST,
        "/tunnels",
        t,
        Some(json!({"name": "no spaces"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["code"], "invalid_argument");
    assert_eq!(bad["details"]["field"], "name");

    let (status, malformed) = call(
        &server,
        Method::POST,
        "/tunnels",
        t,
        Some(json!({"nome": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(malformed["code"], "invalid_body");

    let (status, list) = call(&server, Method::GET, "/tunnels", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (status, renamed) = call(
        &server,
        Method::PATCH,
        &format!("/tunnels/{id}"),
        t,
        Some(json!({"name": "beta"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "beta");
    let (status, by_name) = call(&server, Method::GET, "/tunnels/beta", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_name["id"], id.as_str());

    let (_, token1) = call(&server, Method::GET, "/tunnels/beta/token", t, None).await;
    let (_, token2) = call(
        &server,
        Method::POST,
        "/tunnels/beta/rotate-secret",
        t,
        None,
    )
    .await;
    assert_ne!(token1["token"], token2["token"]);
    let (_, token3) = call(&server, Method::GET, "/tunnels/beta/token", t, None).await;
    assert_eq!(token2["token"], token3["token"]);

    let (status, route) = call(
        &server,
        Method::POST,
        "/tunnels/beta/routes",
        t,
        Some(json!({"hostname": "*.Apps.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{route}");
    assert_eq!(route["hostname"], "*.apps.example.com");
    let (status, overlap) = call(
        &server,
        Method::POST,
        "/tunnels/beta/routes",
        t,
        Some(json!({"hostname": "x.apps.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{overlap}");
    let (status, _) = call(
        &server,
        Method::POST,
        "/tunnels/beta/routes",
        t,
        Some(json!({"hostname": "bad host"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, routes) = call(&server, Method::GET, "/tunnels/beta/routes", t, None).await;
    assert_eq!(routes.as_array().unwrap().len(), 1);
    let (_, connectors) = call(&server, Method::GET, "/tunnels/beta/connectors", t, None).await;
    assert_eq!(connectors, json!([]));

    let route_id = route["id"].as_str().unwrap();
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/routes/{route_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = call(
        &server,
        Method::DELETE,
        &format!("/routes/{route_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["code"], "not_found");

    let (status, _) = call(&server, Method::DELETE, "/tunnels/beta", t, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, missing) = call(&server, Method::GET, "/tunnels/beta", t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["details"]["resource"], "tunnel");

    // Survives a restart: what was committed is still there.
    call(
        &server,
        Method::POST,
        "/tunnels",
        t,
        Some(json!({"name": "durable"})),
    )
    .await;
    let token = server.admin_token.clone();
    let server = server.restart().await;
    let (status, list) = call(&server, Method::GET, "/tunnels", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "durable");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_crud_on_sqlite() {
    rest_crud(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_crud_on_postgres() {
    rest_crud(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_refused() {
    let server = TestServer::spawn().await;
    for token in [
        None,
        Some("garbage"),
        Some("adit_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let (status, body) = call(&server, Method::GET, "/tunnels", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["code"], "unauthenticated");
        let (status, _) = call(
            &server,
            Method::POST,
            "/tunnels",
            token,
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = call(
        &server,
        Method::GET,
        "/nope",
        Some(&server.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn grpc_crud(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let mut grpc = TunnelServiceClient::connect(format!("http://{}", server.api))
        .await
        .unwrap();
    let t = server.admin_token.clone();

    let denied = grpc
        .list_tunnels(pb::ListTunnelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);

    let created = grpc
        .create_tunnel(authed(
            pb::CreateTunnelRequest {
                name: "g1".into(),
                ..Default::default()
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.status(), pb::TunnelStatus::Inactive);
    let dup = grpc
        .create_tunnel(authed(
            pb::CreateTunnelRequest {
                name: "g1".into(),
                ..Default::default()
            },
            &t,
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);

    let renamed = grpc
        .rename_tunnel(authed(
            pb::RenameTunnelRequest {
                tunnel: created.id.clone(),
                name: "g2".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "g2");
    let token = grpc
        .get_tunnel_token(authed(
            pb::TunnelRef {
                tunnel: "g2".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let rotated = grpc
        .rotate_tunnel_secret(authed(
            pb::TunnelRef {
                tunnel: "g2".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    assert_ne!(token, rotated);

    let route = grpc
        .create_route(authed(
            pb::CreateRouteRequest {
                tunnel: "g2".into(),
                hostname: "g.example.com".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner();
    let routes = grpc
        .list_routes(authed(
            pb::TunnelRef {
                tunnel: "g2".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert_eq!(routes, vec![route.clone()]);
    grpc.delete_route(authed(pb::DeleteRouteRequest { route_id: route.id }, &t))
        .await
        .unwrap();
    let connectors = grpc
        .list_connectors(authed(
            pb::TunnelRef {
                tunnel: "g2".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner()
        .connectors;
    assert!(connectors.is_empty());
    let ip = grpc
        .create_ip_route(authed(
            pb::CreateIpRouteRequest {
                tunnel: "g2".into(),
                network: "192.168.7.0/24".into(),
                comment: "lab".into(),
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ip.network.as_str(), ip.tunnel_name.as_str()),
        ("192.168.7.0/24", "g2")
    );
    let ips = grpc
        .list_ip_routes(authed(pb::ListIpRoutesRequest {}, &t))
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert_eq!(ips, vec![ip]);
    grpc.delete_ip_route(authed(
        pb::DeleteIpRouteRequest {
            route: "192.168.7.0/24".into(),
        },
        &t,
    ))
    .await
    .unwrap();
    let listed = grpc
        .list_tunnels(authed(pb::ListTunnelsRequest::default(), &t))
        .await
        .unwrap()
        .into_inner()
        .tunnels;
    assert_eq!(listed.len(), 1);
    grpc.delete_tunnel(authed(
        pb::DeleteTunnelRequest {
            tunnel: "g2".into(),
            force: false,
        },
        &t,
    ))
    .await
    .unwrap();
    let missing = grpc
        .get_tunnel(authed(
            pb::TunnelRef {
                tunnel: "g2".into(),
            },
            &t,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_crud_on_sqlite() {
    grpc_crud(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_crud_on_postgres() {
    grpc_crud(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_tunnels_and_runs_one_end_to_end() {
    let server = TestServer::spawn().await;
    let creds = server.dir.path().join("creds.json");
    let out = adit(
        &server,
        &["create", "cli-demo", "--cred-file", creds.to_str().unwrap()],
    )
    .await
    .unwrap();
    assert!(out.contains("Created tunnel cli-demo with id"), "{out}");
    assert!(out.contains("Tunnel credentials written to"), "{out}");
    let out = adit(&server, &["route", "dns", "cli-demo", "cli.example.com"])
        .await
        .unwrap();
    assert!(out.contains("Added route cli.example.com"), "{out}");
    let out = adit(&server, &["route", "dns", "cli-demo", "cli.example.com"])
        .await
        .unwrap();
    assert!(
        out.contains("already configured to route to your tunnel"),
        "{out}"
    );

    // `adit tunnel run --cred-file … --url hello_world`, as a user runs it.
    use clap::Parser;
    let cli = adit_agent::cli::Cli::try_parse_from([
        "adit",
        "tunnel",
        "run",
        "--cred-file",
        creds.to_str().unwrap(),
        "--url",
        "hello_world",
    ])
    .unwrap();
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { adit_agent::cli::run(cli, &mut Vec::new(), stop).await }
    });
    eventually(
        std::time::Duration::from_secs(10),
        "the tunnel serving",
        || async {
            let r = client()
                .request(
                    to_edge(server.edge, "cli.example.com", "/")
                        .body(full(""))
                        .unwrap(),
                )
                .await
                .ok()?;
            (r.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    // The first request can pass on the first connection while the other three are
    // still registering; the list is checked once all four are.
    let out = eventually(
        std::time::Duration::from_secs(10),
        "all four connections listed",
        || async {
            let out = adit(&server, &["list"]).await.ok()?;
            out.contains("4xedge-test").then_some(out)
        },
    )
    .await;
    assert!(out.contains("cli-demo") && out.contains("healthy"), "{out}");
    let out = adit(&server, &["info", "cli-demo"]).await.unwrap();
    assert!(
        out.contains("CONNECTOR ID") && out.contains("4xedge-test"),
        "{out}"
    );
    let refused = adit(&server, &["delete", "cli-demo"]).await.unwrap_err();
    assert!(
        refused.to_string().contains("active connection"),
        "{refused}"
    );
    stop.cancel();
    run.await.unwrap().unwrap();
    let account = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    eventually(
        std::time::Duration::from_secs(10),
        "the edge seeing the connector gone",
        || async {
            let t = server.control.get_tunnel(account, "cli-demo").await.ok()?;
            (t.connections == 0).then_some(())
        },
    )
    .await;
    let out = adit(&server, &["delete", "cli-demo"]).await.unwrap();
    assert!(out.contains("Deleted tunnel cli-demo"), "{out}");
    let err = adit(&server, &["info", "cli-demo"]).await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_a_login_then_lists_the_accounts_tunnels() {
    let server = TestServer::spawn().await;
    let page = |path: &str, cookie: Option<&str>| {
        let mut request = http::Request::get(format!("http://{}{path}", server.api));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        client().request(request.body(full("")).unwrap())
    };
    let form = |path: &str, cookie: Option<&str>, body: String| {
        let mut request = http::Request::post(format!("http://{}{path}", server.api))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        client().request(request.body(full(body)).unwrap())
    };
    let location = |r: &http::Response<_>| {
        r.headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };

    let anonymous = page("/", None).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login");
    let login_page = page("/login", None).await.unwrap();
    let html = String::from_utf8(body_bytes(login_page).await.to_vec()).unwrap();
    assert!(html.contains(r#"action="/login""#), "{html}");

    let (email, password) = server.admin_login.clone().unwrap();
    let wrong = form("/login", None, format!("email={email}&password=nope"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let html = String::from_utf8(body_bytes(wrong).await.to_vec()).unwrap();
    assert!(
        html.contains("invalid email or password") && html.contains(&email),
        "{html}"
    );

    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let ok = form("/login", None, format!("email={email}&password={encoded}"))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/");
    let cookie = ok
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let empty = page("/", Some(&cookie)).await.unwrap();
    assert_eq!(empty.status(), StatusCode::OK);
    let html = String::from_utf8(body_bytes(empty).await.to_vec()).unwrap();
    assert!(
        html.contains("adit tunnel create"),
        "the empty state invites a first tunnel"
    );
    assert!(html.contains(&email));

    let token = server.tunnel_with_route("shown", "shown.example.com").await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;
    let html = String::from_utf8(
        body_bytes(page("/tunnels", Some(&cookie)).await.unwrap())
            .await
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains("shown") && html.contains("shown.example.com"),
        "{html}"
    );
    assert!(html.contains(&token.tunnel_id.to_string()));
    assert!(html.contains("Healthy"));
    connector.stop().await;

    // Log out: without the CSRF token the form is refused; with it the session ends.
    let refused = form("/logout", Some(&cookie), "csrf_token=forged".into())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let csrf = html
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let out = form("/logout", Some(&cookie), format!("csrf_token={csrf}"))
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(location(&page("/", Some(&cookie)).await.unwrap()), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_network_routes_resolve_by_longest_prefix() {
    let server = TestServer::spawn().await;
    adit(
        &server,
        &[
            "create",
            "wide",
            "--cred-file",
            server.dir.path().join("w.json").to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    adit(
        &server,
        &[
            "create",
            "narrow",
            "--cred-file",
            server.dir.path().join("n.json").to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    let out = adit(
        &server,
        &["route", "ip", "add", "10.0.0.0/8", "wide", "office"],
    )
    .await
    .unwrap();
    assert!(
        out.contains("Successfully added route for 10.0.0.0/8"),
        "{out}"
    );
    // Host bits are cleared, as the network is stored.
    let out = adit(&server, &["route", "ip", "add", "10.1.2.3/16", "narrow"])
        .await
        .unwrap();
    assert!(out.contains("10.1.0.0/16"), "{out}");
    let dup = adit(&server, &["route", "ip", "add", "10.0.0.0/8", "narrow"])
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    let bad = adit(&server, &["route", "ip", "add", "10.0.0.0/33", "narrow"])
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("network"), "{bad}");

    let out = adit(&server, &["route", "ip", "get", "10.1.200.7"])
        .await
        .unwrap();
    assert!(
        out.contains("10.1.0.0/16") && out.contains("narrow"),
        "{out}"
    );
    let out = adit(&server, &["route", "ip", "get", "10.2.0.1"])
        .await
        .unwrap();
    assert!(out.contains("10.0.0.0/8") && out.contains("wide"), "{out}");
    let out = adit(&server, &["route", "ip", "get", "192.168.1.1"])
        .await
        .unwrap();
    assert!(out.contains("No route matches the IP 192.168.1.1"), "{out}");
    let out = adit(&server, &["route", "ip", "show"]).await.unwrap();
    assert!(
        out.contains("office") && out.contains("10.1.0.0/16"),
        "{out}"
    );

    let out = adit(&server, &["route", "ip", "delete", "10.1.0.0/16"])
        .await
        .unwrap();
    assert!(out.contains("Successfully deleted"), "{out}");
    let out = adit(&server, &["route", "ip", "get", "10.1.200.7"])
        .await
        .unwrap();
    assert!(out.contains("wide"), "{out}");
    // Deleting the tunnel takes its routes with it.
    adit(&server, &["delete", "wide"]).await.unwrap();
    let out = adit(&server, &["route", "ip", "show"]).await.unwrap();
    assert!(out.contains("No routes were found"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_traffic_history_count_what_went_through() {
    let server = TestServer::spawn().await;
    let token = server
        .tunnel_with_route("counted", "counted.example.com")
        .await;
    let connector = TestConnector::to(&token, "hello_world");
    server.wait_connections(&token, 4).await;
    for _ in 0..7 {
        let r = get(server.edge, "counted.example.com", "/").await;
        assert_eq!(r.status(), StatusCode::OK);
        body_bytes(r).await;
    }
    let r = get(server.edge, "nobody.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let page = client()
        .request(
            http::Request::get(format!("http://{}/metrics", server.api))
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(body_bytes(page).await.to_vec()).unwrap();
    let id = token.tunnel_id;
    for line in [
        format!("adit_tunnel_requests_total{{tunnel=\"{id}\"}} 7"),
        format!("adit_edge_requests_total{{tunnel=\"{id}\",status_class=\"2xx\",error_source=\"None\"}} 7"),
        "adit_edge_requests_total{tunnel=\"none\",status_class=\"4xx\",error_source=\"Downstream\"} 1".to_owned(),
        "adit_tunnel_ha_connections 4".to_owned(),
        "adit_tunnel_connection_registrations_total{result=\"accepted\"} 4".to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }

    // Before any flush, the minute in progress already shows what happened (live pages).
    let (status, live) = call(
        &server,
        Method::GET,
        "/tunnels/counted/traffic?minutes=5",
        Some(&server.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let requests: u64 = live
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 7, "{live}");

    // Flushed, the same requests are counted once.
    server.control.flush_traffic().await.unwrap();
    let (status, points) = call(
        &server,
        Method::GET,
        "/tunnels/counted/traffic?minutes=5",
        Some(&server.admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0]["requests"], 7);
    assert_eq!(points[0]["errors"], 0);
    assert!(
        points[0]["bytes_out"].as_u64().unwrap() > 7 * 100,
        "{points:?}"
    );
    assert!(points[0]["p99_ms"].as_f64().unwrap() > 0.0);
    // A second flush with nothing new adds nothing.
    server.control.flush_traffic().await.unwrap();
    let (_, again) = call(
        &server,
        Method::GET,
        "/tunnels/counted/traffic",
        Some(&server.admin_token),
        None,
    )
    .await;
    assert_eq!(again[0]["requests"], 7);
    connector.stop().await;
}

/// The OpenAPI description, fetched as a caller would: without a token.
async fn openapi_document(server: &TestServer) -> Value {
    let (status, document) = call(server, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    document
}

/// The methods a path item can hold that the API could serve.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_is_served_without_a_token() {
    let server = TestServer::spawn().await;
    let document = openapi_document(&server).await;
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1"), "OpenAPI {version}");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_token"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["Tunnel"]["properties"]["created_at"]["$ref"],
        "#/components/schemas/Timestamp"
    );
    assert_eq!(schemas["Timestamp"]["format"], "date-time");
    let create = &document["paths"]["/api/v1/tunnels"]["post"];
    assert_eq!(
        create["security"],
        json!([{"api_token": ["tunnels:write"]}, {"session": ["tunnels:write"]}])
    );
    assert_eq!(
        create["responses"]["default"]["$ref"],
        "#/components/responses/Error"
    );
    assert_eq!(
        document["components"]["responses"]["Error"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ApiError"
    );
}

/// The router registers routes only with their descriptions (`routes!` in web/api.rs), so
/// the description lists what is served; this checks the other way round, that each method
/// of each described path is served and every other method of it refused with 405. A
/// placeholder id gets the handler's own answer (a 404 naming the missing tunnel, a 422
/// for the empty body…), never the 404 of a path no route serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_described_route_is_served_and_nothing_else_on_its_paths() {
    let server = TestServer::spawn().await;
    let document = openapi_document(&server).await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "{} paths", paths.len());
    for (path, item) in paths {
        let concrete = with_placeholders(path);
        for method in METHODS {
            let described = item.get(method.as_str().to_ascii_lowercase()).is_some();
            let response = probe(&server, &method, &concrete, Some(&server.admin_token)).await;
            let status = response.status();
            // Bodies are read only for the answers checked: `/events` streams for minutes.
            let unknown_route = status == StatusCode::NOT_FOUND && {
                let body: Value =
                    serde_json::from_slice(&body_bytes(response).await).unwrap_or_default();
                body["message"] == "no such API endpoint"
            };
            if described {
                assert!(
                    !unknown_route && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is described, but {concrete} answered {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not described, but {concrete} answered it"
                );
            }
        }
    }
}

/// Each operation's `security` says what the handler enforces: without credentials an
/// operation that names a scheme answers 401 and one that names none does not, and a token
/// with only `read` gets 403 exactly where the scope named is another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_described_security_is_what_is_enforced() {
    let server = TestServer::spawn().await;
    let (status, reader) = call(
        &server,
        Method::POST,
        "/tokens",
        Some(&server.admin_token),
        Some(json!({"name": "reader", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reader}");
    let reader = reader["token"].as_str().unwrap();
    let document = openapi_document(&server).await;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = with_placeholders(path);
        for method in METHODS {
            let Some(operation) = item.get(method.as_str().to_ascii_lowercase()) else {
                continue;
            };
            // Each requirement names one scheme and the scope it needs; `{}` needs none.
            let scopes: Vec<&str> = operation["security"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|requirement| requirement.as_object().unwrap().values())
                .flat_map(|scopes| scopes.as_array().unwrap())
                .map(|scope| scope.as_str().unwrap())
                .collect();
            let anonymous = probe(&server, &method, &concrete, None).await.status();
            assert_eq!(
                anonymous == StatusCode::UNAUTHORIZED,
                !scopes.is_empty(),
                "{method} {path} without credentials answered {anonymous}; described: {scopes:?}"
            );
            let Some(scope) = scopes.first() else {
                continue;
            };
            assert!(
                scopes.iter().all(|s| s == scope),
                "{method} {path}: {scopes:?}"
            );
            let as_reader = probe(&server, &method, &concrete, Some(reader))
                .await
                .status();
            assert_eq!(
                as_reader == StatusCode::FORBIDDEN,
                *scope != "read",
                "{method} {path} with a read-only token answered {as_reader}; described: {scope}"
            );
        }
    }
}

/// `method` on `path` (from the root) with an empty JSON body and, when given, a Bearer
/// token; the answer's body is left unread.
async fn probe(
    server: &TestServer,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> http::Response<hyper::body::Incoming> {
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(format!("http://{}{path}", server.api))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = if method == Method::GET { "" } else { "{}" };
    client()
        .request(request.body(full(body)).unwrap())
        .await
        .unwrap()
}

/// `{name}` placeholders filled with a UUID nobody has (or an address, for `{ip}`).
fn with_placeholders(path: &str) -> String {
    let mut concrete = String::new();
    let mut rest = path;
    while let Some((before, after)) = rest.split_once('{') {
        let (name, after) = after.split_once('}').unwrap();
        concrete.push_str(before);
        concrete.push_str(if name == "ip" {
            "192.0.2.1"
        } else {
            "00000000-0000-4000-8000-000000000000"
        });
        rest = after;
    }
    concrete + rest
}

/// The description is valid OpenAPI, as `openapi-spec-validator` (PyPI) judges it;
/// `cargo xtask test` installs the validator when it is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_validates() {
    let has_validator = tokio::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .await
        .is_ok_and(|out| out.status.success());
    if !has_validator {
        missing_environment(
            "python3 with openapi-spec-validator is missing (`cargo xtask test` installs it; \
             or: python3 -m pip install openapi-spec-validator)",
        );
        return;
    }
    let server = TestServer::spawn().await;
    let document = openapi_document(&server).await;
    let file = server.dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let out = tokio::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the description:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
