//! Remotely managed tunnels, as the dashboard's wizard uses them: a tunnel created with
//! `config_src: remote`, a connector started with nothing but the token, then public
//! hostnames added through `PUT …/configurations` and followed without a restart.

use std::{sync::Arc, time::Duration};

use adit_proto::v1::{self as pb, tunnel_service_client::TunnelServiceClient};
use adit_transport::relay::channel_body;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::kit::*;

async fn put_config(server: &TestServer, tunnel: &str, ingress: Value) -> (StatusCode, Value) {
    bearer(
        server,
        &server.admin_token,
        Method::PUT,
        &format!("/tunnels/{tunnel}/configurations"),
        Some(json!({"config": {"ingress": ingress}})),
    )
    .await
}

async fn create_tunnel(server: &TestServer, name: &str, config_src: &str) -> Value {
    let (status, tunnel) = bearer(
        server,
        &server.admin_token,
        Method::POST,
        "/tunnels",
        Some(json!({"name": name, "config_src": config_src})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{tunnel}");
    tunnel
}

async fn tunnel_token(server: &TestServer, tunnel: &str) -> adit_core::token::TunnelToken {
    let (status, body) = bearer(
        server,
        &server.admin_token,
        Method::GET,
        &format!("/tunnels/{tunnel}/token"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    adit_core::token::TunnelToken::parse(body["token"].as_str().unwrap()).unwrap()
}

async fn routes_of(server: &TestServer, tunnel: &str) -> Vec<String> {
    let (status, tunnel) = bearer(
        server,
        &server.admin_token,
        Method::GET,
        &format!("/tunnels/{tunnel}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tunnel}");
    let mut routes: Vec<String> = tunnel["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    routes.sort();
    routes
}

/// An origin that answers `<name> <path>`; `/slow` sends its head and the start of its
/// body at once and the rest only when `release` is notified.
async fn named_origin(name: &'static str, release: Arc<Notify>) -> String {
    let addr = spawn_origin(move |req: hyper::Request<Incoming>| {
        let release = release.clone();
        async move {
            if req.uri().path() == "/slow" {
                let (body, tx) = channel_body();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(Frame::data(Bytes::from("slow ")))).await;
                    release.notified().await;
                    let _ = tx.send(Ok(Frame::data(Bytes::from(name)))).await;
                });
                return Response::new(body.boxed_unsync());
            }
            Response::new(full(format!("{name} {}", req.uri().path())))
        }
    })
    .await;
    format!("http://{addr}")
}

/// `(status, body)` of `GET path` through the edge for `host`.
async fn fetch(server: &TestServer, host: &str, path: &str) -> (StatusCode, String) {
    let response = get(server.edge, host, path).await;
    let status = response.status();
    let body = body_bytes(response).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn serves(server: &TestServer, host: &str, path: &str, want: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{host}{path} to answer {want:?}"),
        || async {
            (fetch(server, host, path).await == (StatusCode::OK, want.to_owned())).then_some(())
        },
    )
    .await;
}

async fn wait_version(connector: &TestConnector, version: i64) {
    eventually(
        Duration::from_secs(10),
        &format!("the connector to run configuration version {version}"),
        || async { (connector.metrics.config_version.get() == version).then_some(()) },
    )
    .await;
}

async fn the_wizard_flow(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let release = Arc::new(Notify::new());
    let a = named_origin("A", release.clone()).await;
    let b = named_origin("B", release.clone()).await;

    // The wizard's first steps: a remote tunnel, its token, a connector run with it alone.
    let tunnel = create_tunnel(&server, "wizard", "remote").await;
    assert_eq!(tunnel["config_src"], "remote");
    let (status, config) = bearer(
        &server,
        &server.admin_token,
        Method::GET,
        "/tunnels/wizard/configurations",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(
        (
            &config["version"],
            &config["config"],
            &config["source"],
            &config["tunnel_id"]
        ),
        (&json!(0), &Value::Null, &json!("remote"), &tunnel["id"])
    );
    let token = tunnel_token(&server, "wizard").await;
    let connector = TestConnector::token_only(&token);
    server.wait_connections(&token, 4).await;
    wait_version(&connector, 0).await;

    // A hand-made route reaches the connector before any configuration: a clear 503.
    let (status, body) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/tunnels/wizard/routes",
        Some(json!({"hostname": "early.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = fetch(&server, "early.example.com", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("no configuration yet"), "{body}");

    // Version 1: one public hostname, routed by the PUT itself.
    let (status, v1) = put_config(
        &server,
        "wizard",
        json!([
            {"hostname": "app.example.com", "service": a},
            {"service": "http_status:404"}
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(
        (&v1["version"], &v1["source"]),
        (&json!(1), &json!("remote"))
    );
    assert_eq!(v1["config"]["ingress"][0]["service"], a.as_str());
    assert!(v1["created_at"].is_string());
    assert_eq!(
        routes_of(&server, "wizard").await,
        ["app.example.com", "early.example.com"]
    );
    serves(&server, "app.example.com", "/x", "A /x").await;
    wait_version(&connector, 1).await;
    assert_eq!(
        fetch(&server, "early.example.com", "/").await.0,
        StatusCode::NOT_FOUND,
        "the catch-all answers a hostname with no rule"
    );

    // A slow response under way when version 2 arrives finishes from where it started.
    let slow = get(server.edge, "app.example.com", "/slow").await;
    assert_eq!(slow.status(), StatusCode::OK);

    // Version 2: a path to another origin, a second hostname with origin settings.
    let (status, v2) = put_config(
        &server,
        "wizard",
        json!([
            {"hostname": "app.example.com", "path": "^/v2/", "service": b},
            {"hostname": "api.example.com", "service": b,
             "originRequest": {"connectTimeout": 5, "httpHostHeader": "internal.api"}},
            {"hostname": "app.example.com", "service": a},
            {"service": "http_status:404"}
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(
        v2["config"]["ingress"][1]["originRequest"]["connectTimeout"],
        5
    );
    wait_version(&connector, 2).await;
    release.notify_one();
    assert_eq!(body_bytes(slow).await, "slow A");
    serves(&server, "app.example.com", "/v2/x", "B /v2/x").await;
    serves(&server, "app.example.com", "/v1", "A /v1").await;
    serves(&server, "api.example.com", "/", "B /").await;
    assert_eq!(
        routes_of(&server, "wizard").await,
        ["api.example.com", "app.example.com", "early.example.com"]
    );

    // Version 3 drops a hostname: its route goes with it; the hand-made one stays.
    let (status, v3) = put_config(
        &server,
        "wizard",
        json!([
            {"hostname": "app.example.com", "path": "^/v2/", "service": b},
            {"hostname": "app.example.com", "service": a},
            {"service": "http_status:404"}
        ]),
    )
    .await;
    assert_eq!((status, &v3["version"]), (StatusCode::OK, &json!(3)));
    assert_eq!(
        routes_of(&server, "wizard").await,
        ["app.example.com", "early.example.com"]
    );
    assert_eq!(
        fetch(&server, "api.example.com", "/").await.0,
        StatusCode::NOT_FOUND
    );
    wait_version(&connector, 3).await;

    // The change is in the audit log, naming the tunnel.
    let (_, log) = bearer(&server, &server.admin_token, Method::GET, "/audit", None).await;
    let puts = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "PUT /api/v1/tunnels/{tunnel}/configurations")
        .filter(|e| e["target"] == "/api/v1/tunnels/wizard/configurations")
        .filter(|e| e["outcome"] == "200")
        .count();
    assert_eq!(puts, 3, "{log}");

    // A restart keeps the configuration; the connector comes back and follows new ones.
    let server = server.restart().await;
    let (status, kept) = bearer(
        &server,
        &server.admin_token,
        Method::GET,
        "/tunnels/wizard/configurations",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&kept["version"], &kept["config"]),
        (&json!(3), &v3["config"])
    );
    serves(&server, "app.example.com", "/v2/y", "B /v2/y").await;
    let (status, _) = put_config(
        &server,
        "wizard",
        json!([
            {"hostname": "app.example.com", "service": b},
            {"service": "http_status:404"}
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_version(&connector, 4).await;
    serves(&server, "app.example.com", "/z", "B /z").await;

    // A connector started with local rules serves the remote configuration instead.
    let stray = TestConnector::to(&token, "http_status:418");
    wait_version(&stray, 4).await;
    eventually(
        Duration::from_secs(10),
        "the second connector's connections",
        || async { (stray.ready() == 4).then_some(()) },
    )
    .await;
    for i in 0..16 {
        let path = format!("/{i}");
        assert_eq!(
            fetch(&server, "app.example.com", &path).await,
            (StatusCode::OK, format!("B {path}"))
        );
    }

    stray.stop().await;
    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_tunnel_runs_on_its_token_alone_and_follows_each_new_configuration() {
    the_wizard_flow(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_tunnel_runs_on_its_token_alone_and_follows_each_new_configuration_on_postgres() {
    the_wizard_flow(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_tunnels_connector_reports_the_rules_it_runs() {
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("yaml", "yaml.example.com").await;
    let rules = |status: u16| {
        let yaml = format!(
            "ingress:\n  - hostname: yaml.example.com\n    path: ^/api\n    service: http_status:{status}\n    originRequest:\n      connectTimeout: 5s\n  - service: http_status:404\n"
        );
        let config: adit_core::ingress::IngressConfig = serde_yaml::from_str(&yaml).unwrap();
        config.parse().unwrap()
    };
    let reported = || async {
        let (status, config) = bearer(
            &server,
            &server.admin_token,
            Method::GET,
            "/tunnels/yaml/configurations",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        config
    };
    let up = |connector: &TestConnector| {
        let ready = connector.metrics.clone();
        async move {
            eventually(
                Duration::from_secs(10),
                "the connector's connections",
                || async { (ready.ha_connections.get() == 4).then_some(()) },
            )
            .await;
        }
    };

    // Connections open only after registration, which reports the rules.
    let first = TestConnector::spawn(&token, rules(201));
    up(&first).await;
    let config = reported().await;
    assert_eq!(
        (&config["version"], &config["source"]),
        (&json!(1), &json!("local"))
    );
    assert_eq!(
        config["config"],
        json!({"ingress": [
            {"hostname": "yaml.example.com", "path": "^/api", "service": "http_status:201",
             "originRequest": {"connectTimeout": 5}},
            {"service": "http_status:404"}
        ]})
    );
    first.stop().await;

    // Changed rules are a new version; the same rules again are not.
    let second = TestConnector::spawn(&token, rules(202));
    up(&second).await;
    assert_eq!(reported().await["version"], 2);
    second.stop().await;
    let third = TestConnector::spawn(&token, rules(202));
    up(&third).await;
    let config = reported().await;
    assert_eq!(config["version"], 2);
    assert_eq!(config["config"]["ingress"][0]["service"], "http_status:202");
    third.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_is_refused_whole_with_the_field_at_fault() {
    let server = TestServer::spawn().await;
    create_tunnel(&server, "remote", "remote").await;
    create_tunnel(&server, "neighbour", "remote").await;
    let ok = |host: &str| json!({"hostname": host, "service": "http://127.0.0.1:9"});
    let catch_all = json!({"service": "http_status:404"});
    let (status, body) = put_config(
        &server,
        "neighbour",
        json!([ok("taken.example.com"), ok("*.shop.example.com"), catch_all]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let invalid = [
        (
            json!([]),
            "config.ingress",
            "doesn't contain any ingress rules",
        ),
        (
            json!([ok("a.example.com"), {"hostname": "b.example.com", "service": "ftp//x"}, catch_all]),
            "config.ingress[1].service",
            "Rule #2: ftp//x is an invalid address",
        ),
        (
            json!([ok("a.example.com"), {"hostname": "b.example.com", "service": "http_status:42"}, catch_all]),
            "config.ingress[1].service",
            "invalid HTTP status code: 42",
        ),
        (
            json!([ok("a.example.com")]),
            "config.ingress[0]",
            "The last ingress rule must match all URLs",
        ),
        (
            json!([catch_all, ok("a.example.com"), catch_all]),
            "config.ingress[0].hostname",
            "will match every hostname",
        ),
        (
            json!([{"hostname": "a.example.com", "path": "(", "service": "http://x"}, catch_all]),
            "config.ingress[0].path",
            "invalid regex",
        ),
        (
            json!([ok("a.example.com:8080"), catch_all]),
            "config.ingress[0].hostname",
            "Hostname cannot contain a port",
        ),
    ];
    for (ingress, field, message) in invalid {
        let (status, body) = put_config(&server, "remote", ingress.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ingress}: {body}");
        assert_eq!(body["code"], "invalid_argument", "{body}");
        assert_eq!(body["details"]["field"], field, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    // Unknown keys and wrong types are refused before validation, with their JSON path.
    let (status, body) = bearer(
        &server,
        &server.admin_token,
        Method::PUT,
        "/tunnels/remote/configurations",
        Some(json!({"config": {"ingress": [{"servce": "http://x"}]}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("config.ingress[0]"),
        "{body}"
    );

    // Hostnames outside the account's zones, or routed to another tunnel, refuse the whole
    // change: the good hostname before them is not routed either.
    let refused = [
        (
            json!([ok("fine.example.com"), ok("app.example.org"), catch_all]),
            StatusCode::FORBIDDEN,
            "config.ingress[1].hostname: app.example.org is not inside any zone",
        ),
        (
            json!([ok("fine.example.com"), ok("taken.example.com"), catch_all]),
            StatusCode::CONFLICT,
            "config.ingress[1].hostname: hostname taken.example.com overlaps taken.example.com",
        ),
        (
            json!([ok("fine.example.com"), ok("a.shop.example.com"), catch_all]),
            StatusCode::CONFLICT,
            "config.ingress[1].hostname: hostname a.shop.example.com overlaps *.shop.example.com",
        ),
    ];
    for (ingress, want, message) in refused {
        let (status, body) = put_config(&server, "remote", ingress.clone()).await;
        assert_eq!(status, want, "{ingress}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with(message),
            "{body}"
        );
    }
    let (_, config) = bearer(
        &server,
        &server.admin_token,
        Method::GET,
        "/tunnels/remote/configurations",
        None,
    )
    .await;
    assert_eq!(
        (&config["version"], &config["config"]),
        (&json!(0), &Value::Null)
    );
    assert!(routes_of(&server, "remote").await.is_empty());

    // A locally managed tunnel's rules live in its connector's config.yml.
    create_tunnel(&server, "local", "local").await;
    let (status, body) =
        put_config(&server, "local", json!([ok("l.example.com"), catch_all])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "failed_precondition");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("locally managed")
    );
    let (status, config) = bearer(
        &server,
        &server.admin_token,
        Method::GET,
        "/tunnels/local/configurations",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&config["source"], &config["config"]),
        (&json!("local"), &Value::Null)
    );
    let (status, body) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "odd", "config_src": "dashboard"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_accounts_route_writers_change_a_configuration() {
    let server = TestServer::spawn().await;
    create_tunnel(&server, "guarded", "remote").await;
    let good = json!({"config": {"ingress": [
        {"hostname": "guarded.example.com", "service": "http://127.0.0.1:9"},
        {"service": "http_status:404"}
    ]}});
    let token_with = |scopes: Value| {
        let server = &server;
        async move {
            let (status, body) = bearer(
                server,
                &server.admin_token,
                Method::POST,
                "/tokens",
                Some(json!({"name": "scoped", "scopes": scopes})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let viewer = token_with(json!(["read"])).await;
    let tunnel_writer = token_with(json!(["tunnels:write"])).await;
    let route_writer = token_with(json!(["read", "routes:write"])).await;
    let path = "/tunnels/guarded/configurations";
    for (who, token) in [("viewer", &viewer), ("tunnels:write", &tunnel_writer)] {
        let (status, body) = bearer(&server, token, Method::PUT, path, Some(good.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
    }
    let (status, _) = bearer(&server, &viewer, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "a viewer reads it");
    let (status, body) = bearer(
        &server,
        &route_writer,
        Method::PUT,
        path,
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Another account sees no such tunnel, by name or by id.
    let other = server
        .control
        .storage
        .ensure_account("other")
        .await
        .unwrap();
    let other_admin = server
        .control
        .create_api_token(
            &adit_server::identity::auth::Principal {
                account: other,
                actor: adit_server::identity::auth::Actor::Token {
                    id: adit_core::ids::ApiTokenId::random(),
                    name: "bootstrap".into(),
                },
                scopes: adit_core::identity::Role::Admin.scopes(),
                role: Some(adit_core::identity::Role::Admin),
                renewed: None,
            },
            "other-admin",
            adit_core::identity::Role::Admin.scopes(),
        )
        .await
        .unwrap()
        .token;
    let (_, guarded) = bearer(
        &server,
        &server.admin_token,
        Method::GET,
        "/tunnels/guarded",
        None,
    )
    .await;
    let by_id = format!(
        "/tunnels/{}/configurations",
        guarded["id"].as_str().unwrap()
    );
    for path in [path, by_id.as_str()] {
        let (status, body) = bearer(&server, &other_admin, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) =
            bearer(&server, &other_admin, Method::PUT, path, Some(good.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (_, config) = bearer(&server, &server.admin_token, Method::GET, path, None).await;
    assert_eq!(config["version"], 1, "untouched by the refused calls");
    server.shutdown().await;
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_creates_and_configures_remote_tunnels() {
    let server = TestServer::spawn().await;
    let mut grpc = TunnelServiceClient::connect(format!("http://{}", server.api))
        .await
        .unwrap();
    let create = |name: &str, config_src: i32| {
        authed(
            pb::CreateTunnelRequest {
                name: name.into(),
                config_src,
            },
            &server.admin_token,
        )
    };
    let local = grpc
        .create_tunnel(create("g-local", pb::ConfigSource::Unspecified.into()))
        .await
        .unwrap();
    assert_eq!(local.into_inner().config_src(), pb::ConfigSource::Local);
    let remote = grpc
        .create_tunnel(create("g-remote", pb::ConfigSource::Remote.into()))
        .await
        .unwrap();
    assert_eq!(remote.into_inner().config_src(), pb::ConfigSource::Remote);
    let odd = grpc.create_tunnel(create("g-odd", 7)).await.unwrap_err();
    assert_eq!(odd.code(), tonic::Code::InvalidArgument);

    let put = |config: Value| {
        authed(
            pb::PutTunnelConfigurationRequest {
                tunnel: "g-remote".into(),
                config_json: config.to_string().into_bytes(),
            },
            &server.admin_token,
        )
    };
    let empty = grpc
        .get_tunnel_configuration(authed(
            pb::TunnelRef {
                tunnel: "g-remote".into(),
            },
            &server.admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (empty.version, empty.config_json.len(), empty.source()),
        (0, 0, pb::ConfigSource::Remote)
    );
    let config = json!({"ingress": [
        {"hostname": "grpc.example.com", "service": "http://127.0.0.1:9"},
        {"service": "http_status:404"}
    ]});
    let written = grpc
        .put_tunnel_configuration(put(config.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.version, 1);
    assert!(written.created_at_ms > 0);
    let back: Value = serde_json::from_slice(&written.config_json).unwrap();
    assert_eq!(back, config);
    assert_eq!(routes_of(&server, "g-remote").await, ["grpc.example.com"]);
    let bad = grpc
        .put_tunnel_configuration(put(json!({"ingress": [{"service": "nope"}]})))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().contains("config.ingress[0].service"),
        "{bad:?}"
    );

    let (_, log) = bearer(&server, &server.admin_token, Method::GET, "/audit", None).await;
    let targets: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "gRPC PutTunnelConfiguration")
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["/adit.v1.TunnelService/PutTunnelConfiguration?tunnel=g-remote"; 2]
    );
    server.shutdown().await;
}
