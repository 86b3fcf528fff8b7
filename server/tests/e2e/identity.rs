//! Accounts, users, sessions, API tokens and the audit log, through the real REST and gRPC
//! front doors and the real `adit-server admin` binary: nobody reaches what is not theirs.

use adit_core::identity::{Role, Scope, Scopes};
use adit_proto::v1::{self as pb, tunnel_service_client::TunnelServiceClient};
use base64::Engine;
use http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::kit::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A logged-in browser: its session cookie and CSRF token.
#[derive(Clone)]
struct Browser {
    cookie: String,
    csrf: String,
}

fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("adit_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

async fn login(
    server: &TestServer,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Option<Browser>) {
    let (status, headers, body) = api_request(
        server.api,
        Method::POST,
        "/auth/login",
        &[],
        Some(json!({"email": email, "password": password})),
    )
    .await;
    let browser = set_cookie(&headers).map(|cookie| Browser {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap_or_default().to_owned(),
    });
    (status, body, browser)
}

async fn as_admin(server: &TestServer) -> Browser {
    let (email, password) = server
        .admin_login
        .clone()
        .expect("first start made an admin");
    let (status, body, browser) = login(server, &email, &password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    browser.expect("login sets the session cookie")
}

/// A call with a browser's cookie, and its CSRF token when `csrf`.
async fn browse(
    server: &TestServer,
    browser: &Browser,
    csrf: bool,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut headers = vec![("cookie", browser.cookie.clone())];
    if csrf {
        headers.push(("x-csrf-token", browser.csrf.clone()));
    }
    api_request(server.api, method, path, &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_logs_in_works_with_csrf_and_logs_out() {
    let server = TestServer::spawn().await;
    let browser = as_admin(&server).await;

    let (status, _, session) =
        browse(&server, &browser, false, Method::GET, "/auth/session", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["role"], "admin");
    assert_eq!(session["account"], "default");
    assert_eq!(session["csrf_token"], browser.csrf.as_str());

    let (status, _, tunnels) =
        browse(&server, &browser, false, Method::GET, "/tunnels", None).await;
    assert_eq!((status, tunnels), (StatusCode::OK, json!([])));

    // A state-changing request with the cookie alone is what a cross-site form would send.
    let (status, _, body) = browse(
        &server,
        &browser,
        false,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "web"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("CSRF"));
    let wrong = Browser {
        csrf: "not-the-token".into(),
        ..browser.clone()
    };
    let (status, _, _) = browse(
        &server,
        &wrong,
        true,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "web"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = browse(
        &server,
        &browser,
        true,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "web"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, headers, _) =
        browse(&server, &browser, true, Method::POST, "/auth/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let cleared = headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("HttpOnly"),
        "{cleared}"
    );
    // The JWT has not expired, but its session has ended.
    let (status, _, _) = browse(&server, &browser, false, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_http_only_lax_and_renewed_in_their_second_half() {
    let server = TestServer::spawn().await;
    let (email, password) = server.admin_login.clone().unwrap();
    let (_, headers, _) = api_request(
        server.api,
        Method::POST,
        "/auth/login",
        &[("x-forwarded-proto", "https".into())],
        Some(json!({"email": email, "password": password})),
    )
    .await;
    let cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
        "Max-Age=900",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }

    // The same session, as if logged in 10 of its 15 minutes ago: the answer renews it.
    let browser = as_admin(&server).await;
    let claims = jwt_claims(&browser);
    let aged = sign_with_server_key(
        &server,
        &with_claims(
            &claims,
            &[
                ("iat", json!(claims["iat"].as_u64().unwrap() - 600)),
                ("exp", json!(claims["exp"].as_u64().unwrap() - 600)),
            ],
        ),
    )
    .await;
    let old = Browser {
        cookie: format!("adit_session={aged}"),
        ..browser.clone()
    };
    let (status, headers, _) = browse(&server, &old, false, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::OK);
    let renewed = set_cookie(&headers).expect("a renewed cookie");
    assert_ne!(renewed, old.cookie);
    let fresh = Browser {
        cookie: renewed,
        ..browser.clone()
    };
    let (status, headers, _) = browse(&server, &fresh, false, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        set_cookie(&headers).is_none(),
        "a fresh token is not renewed again"
    );
}

fn jwt_claims(browser: &Browser) -> Value {
    let jwt = browser.cookie.trim_start_matches("adit_session=");
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

/// A copy of `claims` with some set to new values.
fn with_claims(claims: &Value, changes: &[(&str, Value)]) -> Value {
    let mut copy = claims.clone();
    for (name, value) in changes {
        copy[*name] = value.clone();
    }
    copy
}

/// The signing key's id and secret, derived as the server does: HMAC-SHA256 of the label
/// and the id under `server.key`, which the database never holds.
async fn signing_key(server: &TestServer) -> (String, Vec<u8>) {
    use hmac::Mac;
    let id = server
        .control
        .storage
        .signing_keys()
        .await
        .unwrap()
        .remove(0)
        .id;
    let server_key = std::fs::read(server.dir.path().join("data/server.key")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&server_key).unwrap();
    mac.update(b"adit session-signing key v1\0");
    mac.update(id.as_bytes());
    (id, mac.finalize().into_bytes().to_vec())
}

async fn sign_with_server_key(server: &TestServer, claims: &Value) -> String {
    let (kid, secret) = signing_key(server).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&secret)).unwrap()
}

/// A new admin of `account` (made through the control plane, as `adit-server admin` does)
/// and an admin API token created by that admin.
/// Two accounts with objects, and every kind of credential that must not get through.
struct Tenants {
    server: TestServer,
    /// Account A's tunnel, route and private network (A is the default account).
    tunnel: String,
    route: String,
    ip_route: String,
    /// Account B's admin token.
    other_admin: String,
    /// A viewer's token in account A, and its id.
    viewer: String,
    viewer_id: String,
    /// Account A's admin (its only user).
    user: String,
    /// Bad session cookies for account A's admin: expired, foreign key, `alg: none`.
    forged_cookies: Vec<(&'static str, String)>,
}

async fn tenants() -> Tenants {
    let server = TestServer::spawn().await;
    let admin = server.admin_token.clone();
    let (status, tunnel) = bearer(
        &server,
        &admin,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "a-tunnel"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let tunnel = tunnel["id"].as_str().unwrap().to_owned();
    let (status, route) = bearer(
        &server,
        &admin,
        Method::POST,
        &format!("/tunnels/{tunnel}/routes"),
        Some(json!({"hostname": "a.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{route}");
    let (status, ip_route) = bearer(
        &server,
        &admin,
        Method::POST,
        "/ip-routes",
        Some(json!({"tunnel": tunnel, "network": "10.1.0.0/16", "comment": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ip_route}");

    let other_admin = admin_of_account(&server, "other", "b@example.com").await;
    // B owns a tunnel too, so "not found" in A cannot be mistaken for an empty server.
    let (status, _) = bearer(
        &server,
        &other_admin,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "b-tunnel"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, viewer) = bearer(
        &server,
        &admin,
        Method::POST,
        "/tokens",
        Some(json!({"name": "viewer", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{viewer}");
    let viewer_id = viewer["id"].as_str().unwrap().to_owned();
    let viewer = viewer["token"].as_str().unwrap().to_owned();
    let (status, users) = bearer(&server, &admin, Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let user = users[0]["id"].as_str().unwrap().to_owned();

    let browser = as_admin(&server).await;
    let claims = jwt_claims(&browser);
    let now = claims["iat"].as_u64().unwrap();
    let expired = sign_with_server_key(
        &server,
        &with_claims(
            &claims,
            &[("exp", json!(now - 60)), ("iat", json!(now - 1000))],
        ),
    )
    .await;
    let (kid, _) = signing_key(&server).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let foreign = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(b"some other key of 32 bytes......"),
    )
    .unwrap();
    let alg_none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        B64.encode(claims.to_string())
    );
    let forged_cookies = vec![
        ("expired JWT", expired),
        ("JWT signed with another key", foreign),
        ("alg: none", alg_none),
        ("garbage cookie", "not.a.jwt".to_owned()),
    ];
    Tenants {
        server,
        tunnel,
        route: route["id"].as_str().unwrap().to_owned(),
        ip_route: ip_route["id"].as_str().unwrap().to_owned(),
        other_admin,
        viewer,
        viewer_id,
        user,
        forged_cookies,
    }
}

/// Every protected REST route, on account A's objects: (method, path, body, writes).
fn routes(t: &Tenants) -> Vec<(Method, String, Option<Value>, bool)> {
    let tunnel = &t.tunnel;
    let body = |v: Value| Some(v);
    vec![
        (Method::GET, "/tunnels".into(), None, false),
        (
            Method::POST,
            "/tunnels".into(),
            body(json!({"name": "intruder"})),
            true,
        ),
        (Method::GET, format!("/tunnels/{tunnel}"), None, false),
        (
            Method::PATCH,
            format!("/tunnels/{tunnel}"),
            body(json!({"name": "renamed"})),
            true,
        ),
        (
            Method::DELETE,
            format!("/tunnels/{tunnel}?force=true"),
            None,
            true,
        ),
        (Method::GET, format!("/tunnels/{tunnel}/token"), None, true),
        (
            Method::POST,
            format!("/tunnels/{tunnel}/rotate-secret"),
            None,
            true,
        ),
        (
            Method::GET,
            format!("/tunnels/{tunnel}/routes"),
            None,
            false,
        ),
        (
            Method::POST,
            format!("/tunnels/{tunnel}/routes"),
            body(json!({"hostname": "evil.example.com"})),
            true,
        ),
        (
            Method::GET,
            format!("/tunnels/{tunnel}/connectors"),
            None,
            false,
        ),
        (
            Method::GET,
            format!("/tunnels/{tunnel}/traffic"),
            None,
            false,
        ),
        (
            Method::GET,
            format!("/tunnels/{tunnel}/configurations"),
            None,
            false,
        ),
        (
            Method::PUT,
            format!("/tunnels/{tunnel}/configurations"),
            body(json!({"config": {"ingress": [
                {"hostname": "evil.example.com", "service": "http://127.0.0.1:1"},
                {"service": "http_status:404"}
            ]}})),
            true,
        ),
        (
            Method::DELETE,
            format!("/tunnels/{tunnel}/connections"),
            None,
            true,
        ),
        (Method::DELETE, format!("/routes/{}", t.route), None, true),
        (Method::GET, "/ip-routes".into(), None, false),
        (
            Method::POST,
            "/ip-routes".into(),
            body(json!({"tunnel": tunnel, "network": "10.9.0.0/16"})),
            true,
        ),
        (Method::GET, "/ip-routes/match/10.1.2.3".into(), None, false),
        (
            Method::DELETE,
            format!("/ip-routes/{}", t.ip_route),
            None,
            true,
        ),
        (
            Method::GET,
            "/private/connect?destination=10.1.2.3:22".into(),
            None,
            false,
        ),
        (Method::GET, "/auth/session".into(), None, false),
        (Method::POST, "/auth/logout".into(), None, false),
        (Method::GET, "/users".into(), None, true),
        (
            Method::POST,
            "/users".into(),
            body(json!({"email": "x@example.com", "role": "admin"})),
            true,
        ),
        (
            Method::PATCH,
            format!("/users/{}", t.user),
            body(json!({"role": "viewer"})),
            true,
        ),
        (Method::DELETE, format!("/users/{}", t.user), None, true),
        (Method::GET, "/tokens".into(), None, true),
        (
            Method::POST,
            "/tokens".into(),
            body(json!({"name": "x", "scopes": ["admin"]})),
            true,
        ),
        (
            Method::DELETE,
            format!("/tokens/{}", t.viewer_id),
            None,
            true,
        ),
        (Method::GET, "/audit".into(), None, true),
        (Method::GET, "/zones".into(), None, false),
        (
            Method::POST,
            "/zones".into(),
            body(json!({"name": "evil.example.com"})),
            true,
        ),
        (
            Method::PATCH,
            "/zones/example.com".into(),
            body(json!({"https_only": true})),
            true,
        ),
        (
            Method::GET,
            "/zones/example.com/certificate".into(),
            None,
            false,
        ),
        (
            Method::PUT,
            "/zones/example.com/certificate".into(),
            body(json!({"certificate": "x", "private_key": "y"})),
            true,
        ),
        (
            Method::DELETE,
            "/zones/example.com/certificate".into(),
            None,
            true,
        ),
        (Method::GET, "/certificates".into(), None, false),
        (Method::DELETE, "/zones/example.com".into(), None, true),
        (Method::GET, "/nodes".into(), None, false),
    ]
}

/// Whether `path` (from `/api/v1`, perhaps with a query) is the described `template`
/// (from the root, with `{name}` segments) filled in.
fn fills(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let template: Vec<&str> = template.trim_start_matches("/api/v1").split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t.starts_with('{') || t == p)
}

/// Every operation the API's description says needs a caller has a row in [`routes`], so
/// a route added later is in the matrix or the matrix fails. `GET /events` is left out:
/// an account may stream its own notices, and that answer never ends.
async fn assert_routes_cover_the_description(t: &Tenants) {
    let (status, _, document) =
        api_request(t.server.api, Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let rows = routes(t);
    for (template, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let needs_caller = operation["security"]
                .as_array()
                .is_some_and(|any_of| any_of.iter().any(|r| r != &json!({})));
            if !needs_caller || template == "/api/v1/events" {
                continue;
            }
            assert!(
                rows.iter().any(|(m, path, ..)| {
                    m.as_str().eq_ignore_ascii_case(method) && fills(template, path)
                }),
                "{method} {template} needs a caller but has no row in the isolation matrix"
            );
        }
    }
}

/// What account A's admin sees of A: must be the same before and after the attacks.
async fn snapshot(t: &Tenants) -> Value {
    let admin = &t.server.admin_token;
    let mut all = serde_json::Map::new();
    for path in [
        "/zones".to_owned(),
        "/tunnels".to_owned(),
        format!("/tunnels/{}/routes", t.tunnel),
        "/ip-routes".into(),
        "/users".into(),
        "/tokens".into(),
    ] {
        let (status, body) = bearer(&t.server, admin, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        all.insert(path, body);
    }
    let (_, token) = bearer(
        &t.server,
        admin,
        Method::GET,
        &format!("/tunnels/{}/token", t.tunnel),
        None,
    )
    .await;
    all.insert("token".into(), token);
    // Token use times move with every call; they are not data anyone changed.
    if let Some(tokens) = all.get_mut("/tokens").and_then(Value::as_array_mut) {
        for token in tokens {
            token["last_used_at"] = Value::Null;
        }
    }
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_isolation_matrix_refuses_every_foreign_or_forged_caller_on_every_route() {
    let t = tenants().await;
    assert_routes_cover_the_description(&t).await;
    let before = snapshot(&t).await;
    let refused = [
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
    ];
    for (method, path, body, writes) in routes(&t) {
        let mut attempts: Vec<(String, Vec<(&str, String)>)> = vec![
            ("no credentials".into(), vec![]),
            (
                "garbage bearer".into(),
                vec![("authorization", "Bearer adit_garbage".into())],
            ),
            (
                "malformed authorization".into(),
                vec![("authorization", "Basic YTpi".into())],
            ),
            (
                "another account's admin token".into(),
                vec![("authorization", format!("Bearer {}", t.other_admin))],
            ),
        ];
        for (what, cookie) in &t.forged_cookies {
            attempts.push((
                what.to_string(),
                vec![
                    ("cookie", format!("adit_session={cookie}")),
                    ("x-csrf-token", "x".into()),
                ],
            ));
        }
        if writes {
            attempts.push((
                "a viewer's token".into(),
                vec![("authorization", format!("Bearer {}", t.viewer))],
            ));
        }
        for (who, headers) in attempts {
            let (status, _, answer) =
                api_request(t.server.api, method.clone(), &path, &headers, body.clone()).await;
            let names_a = |text: &str| {
                [
                    t.tunnel.as_str(),
                    t.route.as_str(),
                    t.ip_route.as_str(),
                    t.user.as_str(),
                    t.viewer_id.as_str(),
                    "10.1.2.3",
                ]
                .iter()
                .any(|id| text.contains(id))
            };
            let mentions_a =
                names_a(&path) || body.as_ref().is_some_and(|b| names_a(&b.to_string()));
            let foreign_read_of_own_account = who == "another account's admin token" && !mentions_a;
            if foreign_read_of_own_account {
                // Account-wide routes answer for B's own account: they must show none of A.
                // (B's audit log names A's ids in the targets of B's own refused attempts;
                // what must not appear there is anything A did.)
                let text = answer.to_string();
                let leaked = if path == "/audit" {
                    text.contains("token:admin (") || text.contains("admin@localhost")
                } else {
                    names_a(&text)
                        || text.contains("a-tunnel")
                        || text.contains("a.example.com")
                        || text.contains("10.1.0.0")
                };
                assert!(!leaked, "{method} {path} as {who} leaked A: {text}");
                continue;
            }
            assert!(
                refused.contains(&status),
                "{method} {path} as {who}: {status} {answer}"
            );
        }
    }
    // Nothing of A changed, and B still sees only its own tunnel.
    assert_eq!(snapshot(&t).await, before);
    let (_, b_tunnels) = bearer(&t.server, &t.other_admin, Method::GET, "/tunnels", None).await;
    let names: Vec<&str> = b_tunnels
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"b-tunnel") && !names.contains(&"a-tunnel"),
        "{names:?}"
    );
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_foreign_forged_and_under_scoped_tokens() {
    let t = tenants().await;
    let before = snapshot(&t).await;
    let mut grpc = TunnelServiceClient::connect(format!("http://{}", t.server.api))
        .await
        .unwrap();
    let tunnel = || pb::TunnelRef {
        tunnel: t.tunnel.clone(),
    };
    for (who, token, reads_refused) in [
        ("none", None, true),
        ("garbage", Some("adit_garbage"), true),
        ("other account", Some(t.other_admin.as_str()), true),
        ("viewer", Some(t.viewer.as_str()), false),
    ] {
        let mut outcomes = vec![
            (
                "RenameTunnel",
                grpc.rename_tunnel(with_token(
                    pb::RenameTunnelRequest {
                        tunnel: t.tunnel.clone(),
                        name: "x".into(),
                    },
                    token,
                ))
                .await
                .err(),
            ),
            (
                "DeleteTunnel",
                grpc.delete_tunnel(with_token(
                    pb::DeleteTunnelRequest {
                        tunnel: t.tunnel.clone(),
                        force: true,
                    },
                    token,
                ))
                .await
                .err(),
            ),
            (
                "GetTunnelToken",
                grpc.get_tunnel_token(with_token(tunnel(), token))
                    .await
                    .err(),
            ),
            (
                "RotateTunnelSecret",
                grpc.rotate_tunnel_secret(with_token(tunnel(), token))
                    .await
                    .err(),
            ),
            (
                "CreateRoute",
                grpc.create_route(with_token(
                    pb::CreateRouteRequest {
                        tunnel: t.tunnel.clone(),
                        hostname: "evil.example.com".into(),
                    },
                    token,
                ))
                .await
                .err(),
            ),
            (
                "DeleteRoute",
                grpc.delete_route(with_token(
                    pb::DeleteRouteRequest {
                        route_id: t.route.clone(),
                    },
                    token,
                ))
                .await
                .err(),
            ),
            (
                "CreateIpRoute",
                grpc.create_ip_route(with_token(
                    pb::CreateIpRouteRequest {
                        tunnel: t.tunnel.clone(),
                        network: "10.9.0.0/16".into(),
                        comment: String::new(),
                    },
                    token,
                ))
                .await
                .err(),
            ),
            (
                "DeleteIpRoute",
                grpc.delete_ip_route(with_token(
                    pb::DeleteIpRouteRequest {
                        route: t.ip_route.clone(),
                    },
                    token,
                ))
                .await
                .err(),
            ),
            (
                "PutTunnelConfiguration",
                grpc.put_tunnel_configuration(with_token(
                    pb::PutTunnelConfigurationRequest {
                        tunnel: t.tunnel.clone(),
                        config_json: br#"{"ingress":[{"service":"http_status:404"}]}"#.to_vec(),
                    },
                    token,
                ))
                .await
                .err(),
            ),
        ];
        if who != "other account" {
            // Another account may create tunnels: in its own account (checked below).
            outcomes.push((
                "CreateTunnel",
                grpc.create_tunnel(with_token(
                    pb::CreateTunnelRequest {
                        name: "intruder".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .err(),
            ));
        }
        if reads_refused {
            outcomes.extend([
                (
                    "GetTunnel",
                    grpc.get_tunnel(with_token(tunnel(), token)).await.err(),
                ),
                (
                    "ListRoutes",
                    grpc.list_routes(with_token(tunnel(), token)).await.err(),
                ),
                (
                    "ListConnectors",
                    grpc.list_connectors(with_token(tunnel(), token))
                        .await
                        .err(),
                ),
                (
                    "GetTunnelConfiguration",
                    grpc.get_tunnel_configuration(with_token(tunnel(), token))
                        .await
                        .err(),
                ),
            ]);
        } else {
            assert!(
                grpc.get_tunnel(with_token(tunnel(), token)).await.is_ok(),
                "a viewer reads"
            );
        }
        for (method, error) in outcomes {
            let code = error.map(|s| s.code());
            assert!(
                matches!(
                    code,
                    Some(
                        tonic::Code::Unauthenticated
                            | tonic::Code::PermissionDenied
                            | tonic::Code::NotFound
                    )
                ),
                "{method} as {who}: {code:?}"
            );
        }
        let listed = grpc
            .list_tunnels(with_token(pb::ListTunnelsRequest::default(), token))
            .await;
        match who {
            "other account" => assert!(
                listed
                    .unwrap()
                    .into_inner()
                    .tunnels
                    .iter()
                    .all(|x| x.name != "a-tunnel")
            ),
            "viewer" => assert_eq!(listed.unwrap().into_inner().tunnels.len(), 1),
            _ => assert_eq!(listed.unwrap_err().code(), tonic::Code::Unauthenticated),
        }
    }
    assert_eq!(snapshot(&t).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_scopes_decide_what_a_caller_may_do() {
    let server = TestServer::spawn().await;
    let admin = server.admin_token.clone();
    // Users with each role, created by the admin through the API.
    let mut logins = Vec::new();
    for (email, role) in [("m@example.com", "member"), ("v@example.com", "viewer")] {
        let (status, user) = bearer(
            &server,
            &admin,
            Method::POST,
            "/users",
            Some(json!({"email": email, "role": role})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let password = user["password"]
            .as_str()
            .expect("a generated password, shown once")
            .to_owned();
        let (status, _, browser) = login(&server, email, &password).await;
        assert_eq!(status, StatusCode::OK);
        logins.push((user["id"].as_str().unwrap().to_owned(), browser.unwrap()));
    }
    let (member_id, member) = logins[0].clone();
    let (_, viewer) = logins[1].clone();

    let create = |name: &str| Some(json!({"name": name}));
    let (status, _, _) = browse(
        &server,
        &member,
        true,
        Method::POST,
        "/tunnels",
        create("m-tunnel"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "a member manages tunnels");
    let (status, _, _) = browse(
        &server,
        &member,
        true,
        Method::POST,
        "/tunnels/m-tunnel/routes",
        Some(json!({"hostname": "m.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "and routes");
    let (status, _, body) = browse(&server, &member, false, Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "but not users: {body}");
    let (status, _, _) = browse(&server, &viewer, false, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::OK, "a viewer reads");
    let (status, _, body) = browse(
        &server,
        &viewer,
        true,
        Method::POST,
        "/tunnels",
        create("v-tunnel"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer cannot write");
    assert!(
        body["message"].as_str().unwrap().contains("viewer"),
        "{body}"
    );

    // A role change applies at the next request of a live session.
    let (status, _) = bearer(
        &server,
        &admin,
        Method::PATCH,
        &format!("/users/{member_id}"),
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = browse(
        &server,
        &member,
        true,
        Method::POST,
        "/tunnels",
        create("m-two"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The last admin cannot be demoted or removed.
    let (_, users) = bearer(&server, &admin, Method::GET, "/users", None).await;
    let first_admin = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = bearer(
        &server,
        &admin,
        Method::PATCH,
        &format!("/users/{first_admin}"),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = bearer(
        &server,
        &admin,
        Method::DELETE,
        &format!("/users/{first_admin}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Token scopes: tunnels:write may create a tunnel, not a route; a token never holds
    // more than its creator; a revoked token stops at once.
    let (status, scoped) = bearer(
        &server,
        &admin,
        Method::POST,
        "/tokens",
        Some(json!({"name": "ci", "scopes": ["tunnels:write"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(scoped["scopes"], json!(["tunnels:write"]));
    let ci = scoped["token"].as_str().unwrap().to_owned();
    let (status, _) = bearer(&server, &ci, Method::POST, "/tunnels", create("ci-tunnel")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = bearer(
        &server,
        &ci,
        Method::POST,
        "/tunnels/ci-tunnel/routes",
        Some(json!({"hostname": "ci.example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("routes:write"),
        "{body}"
    );
    let (_, tokens) = bearer(&server, &admin, Method::GET, "/tokens", None).await;
    assert!(
        !tokens.to_string().contains(&ci),
        "a token is shown once, never listed"
    );
    let scopes: Scopes = Scopes::from_iter([Scope::Read]);
    let viewer_principal = adit_server::identity::auth::Principal {
        account: server
            .control
            .storage
            .account_by_name("default")
            .await
            .unwrap()
            .unwrap(),
        actor: adit_server::identity::auth::Actor::Token {
            id: adit_core::ids::ApiTokenId::random(),
            name: "v".into(),
        },
        scopes,
        role: None,
        renewed: None,
    };
    let err = server
        .control
        .create_api_token(&viewer_principal, "escalate", Role::Admin.scopes())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than its creator"), "{err}");
    let (status, _) = bearer(
        &server,
        &admin,
        Method::DELETE,
        &format!("/tokens/{}", scoped["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = bearer(&server, &ci, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_look_alike_and_are_rate_limited() {
    let server = TestServer::spawn().await;
    let (email, password) = server.admin_login.clone().unwrap();
    let (s1, unknown, c1) = login(&server, "nobody@example.com", "whatever-password").await;
    let (s2, wrong, c2) = login(&server, &email, "wrong-password-123").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        unknown, wrong,
        "the same answer for an unknown user and a wrong password"
    );
    assert!(c1.is_none() && c2.is_none());
    for _ in 0..4 {
        login(&server, &email, "wrong-password-123").await;
    }
    let (status, body, _) = login(&server, &email, &password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    // Other users are not locked out by someone guessing this one's password.
    let (status, created) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/users",
        Some(json!({"email": "other@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = login(
        &server,
        "other@example.com",
        created["password"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_says_who_did_what_from_where_and_holds_no_secret() {
    let server = TestServer::spawn().await;
    let admin = server.admin_token.clone();
    let browser = as_admin(&server).await;
    let (_, _, tunnel) = browse(
        &server,
        &browser,
        true,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "audited"})),
    )
    .await;
    let (_, token) = bearer(
        &server,
        &admin,
        Method::POST,
        "/tunnels/audited/rotate-secret",
        None,
    )
    .await;
    let (_, created) = bearer(
        &server,
        &admin,
        Method::POST,
        "/tokens",
        Some(json!({"name": "ci", "scopes": ["read"]})),
    )
    .await;
    login(&server, "admin@localhost", "wrong-password-123").await;
    let (status, _) = bearer(&server, &admin, Method::DELETE, "/tunnels/audited", None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, log) = bearer(&server, &admin, Method::GET, "/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<(String, String, String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["source_ip"], "127.0.0.1");
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, outcome: &str| {
        lines
            .iter()
            .any(|(a, x, _, o)| a.starts_with(actor) && x == action && o == outcome)
    };
    assert!(
        has("user:admin@localhost", "POST /api/v1/auth/login", "200"),
        "{lines:?}"
    );
    assert!(
        has("user:admin@localhost", "POST /api/v1/tunnels", "201"),
        "{lines:?}"
    );
    assert!(
        has(
            "token:admin",
            "POST /api/v1/tunnels/{tunnel}/rotate-secret",
            "200"
        ),
        "{lines:?}"
    );
    assert!(
        has("token:admin", "POST /api/v1/tokens", "201"),
        "{lines:?}"
    );
    assert!(
        has("user:admin@localhost", "POST /api/v1/auth/login", "401"),
        "{lines:?}"
    );
    assert!(
        has("token:admin", "DELETE /api/v1/tunnels/{tunnel}", "200"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(_, _, target, _)| target == "/api/v1/tunnels/audited"),
        "{lines:?}"
    );
    let text = log.to_string();
    for secret in [
        token["token"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
        &admin,
        &browser.csrf,
        "wrong-password-123",
    ] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
    assert!(tunnel["id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_command_creates_lists_and_resets_users_on_a_running_server() {
    use std::io::Write;
    let server = TestServer::spawn().await;
    let data_dir = server.dir.path().join("data");
    let admin = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_adit-server"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("admin")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = admin(
        &[
            "create",
            "--email",
            "Ops@Example.com",
            "--role",
            "member",
            "--account",
            "ops",
            "--password-stdin",
        ],
        "a long enough password\n",
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ops@example.com (member) in account ops"),
        "{out}"
    );
    assert!(!out.contains("a long enough password"));
    let (ok, _, err) = admin(
        &["create", "--email", "ops@example.com", "--account", "ops"],
        "",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    // Emails are unique per account: in another account it is another user.
    let (ok, out, err) = admin(&["create", "--email", "ops@example.com"], "");
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ops@example.com (admin) in account default"),
        "{out}"
    );
    let (ok, _, err) = admin(
        &["create", "--email", "x@example.com", "--role", "root"],
        "",
    );
    assert!(!ok && err.contains("root"), "{err}");
    let (ok, _, err) = admin(
        &["create", "--email", "weak@example.com", "--password-stdin"],
        "short\n",
    );
    assert!(!ok && err.contains("12 characters"), "{err}");

    let (ok, out, _) = admin(&["list"], "");
    assert!(ok);
    assert!(out.contains("admin@localhost\tdefault\tadmin"), "{out}");
    assert!(out.contains("ops@example.com\tops\tmember"), "{out}");
    assert!(out.contains("ops@example.com\tdefault\tadmin"), "{out}");

    let (status, session, browser) =
        login(&server, "ops@example.com", "a long enough password").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["account"], "ops");
    let browser = browser.unwrap();
    let (ok, _, err) = admin(&["reset-password", "--email", "ops@example.com"], "");
    assert!(!ok && err.contains("--account"), "{err}");
    let (ok, _, err) = admin(
        &[
            "reset-password",
            "--email",
            "ops@example.com",
            "--account",
            "nowhere",
        ],
        "",
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, err) = admin(
        &[
            "reset-password",
            "--email",
            "ops@example.com",
            "--account",
            "ops",
        ],
        "",
    );
    assert!(ok, "{out}{err}");
    let new_password = out
        .lines()
        .find_map(|l| l.strip_prefix("New password (shown once): "))
        .unwrap()
        .to_owned();
    let (status, _, _) = browse(&server, &browser, false, Method::GET, "/tunnels", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a reset ends the user's sessions"
    );
    let (status, _, _) = login(&server, "ops@example.com", "a long enough password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, session, _) = login(&server, "ops@example.com", &new_password).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["account"], "ops");

    // Rotating with --end-sessions logs everyone out; the new key signs new sessions.
    let browser = as_admin(&server).await;
    let (ok, out, err) = admin(&["rotate-keys", "--end-sessions"], "");
    assert!(ok, "{out}{err}");
    let (status, _, _) = browse(&server, &browser, false, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let browser = as_admin(&server).await;
    let (status, _, _) = browse(&server, &browser, false, Method::GET, "/tunnels", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_stay_inside_their_accounts_zones_and_zones_belong_to_one_account() {
    let server = TestServer::spawn().await;
    let a = server.admin_token.clone();
    let b = admin_of_account(&server, "other", "b@example.org").await;
    for (token, name) in [(&a, "a-tunnel"), (&b, "b-tunnel"), (&a, "a-two")] {
        let (status, _) = bearer(
            &server,
            token,
            Method::POST,
            "/tunnels",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let route = |token: &str, tunnel: &str, hostname: &str| {
        let (token, path, body) = (
            token.to_owned(),
            format!("/tunnels/{tunnel}/routes"),
            json!({"hostname": hostname}),
        );
        let server = &server;
        async move { bearer(server, &token, Method::POST, &path, Some(body)).await }
    };
    let zone = |token: &str, name: &str| {
        let (token, body) = (token.to_owned(), json!({"name": name}));
        let server = &server;
        async move { bearer(server, &token, Method::POST, "/zones", Some(body)).await }
    };

    // A serves example.com (the test server's --zone). Nobody else can claim it, a part of
    // it, or a domain above it.
    let (_, zones) = bearer(&server, &a, Method::GET, "/zones", None).await;
    assert_eq!(zones[0]["name"], "example.com");
    for taken in ["example.com", "shop.example.com", "com"] {
        let (status, body) = zone(&b, taken).await;
        assert_eq!(status, StatusCode::CONFLICT, "{taken}: {body}");
        assert!(!body.to_string().contains("a-tunnel"));
    }
    let (status, body) = zone(&b, "*.example.org").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = zone(&b, "example.org").await;
    assert_eq!(status, StatusCode::CREATED);

    // Routes only inside the account's own zones, wildcards included.
    assert_eq!(
        route(&b, "b-tunnel", "app.example.org").await.0,
        StatusCode::CREATED
    );
    let (status, body) = route(&b, "b-tunnel", "app.example.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not inside any zone"),
        "{body}"
    );
    assert_eq!(
        route(&b, "b-tunnel", "*.example.com").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        route(&a, "a-tunnel", "*.example.org").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        route(&a, "a-tunnel", "example.org").await.0,
        StatusCode::FORBIDDEN
    );

    // A hostname, or an overlapping wildcard, belongs to one tunnel only.
    assert_eq!(
        route(&a, "a-tunnel", "*.app.example.com").await.0,
        StatusCode::CREATED
    );
    let (status, body) = route(&a, "a-two", "x.app.example.com").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        route(&a, "a-two", "*.example.com").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        route(&a, "a-two", "www.example.com").await.0,
        StatusCode::CREATED
    );

    // Deleting a tunnel removes its routes: the hostname is free again.
    let (status, _) = bearer(&server, &a, Method::DELETE, "/tunnels/a-two", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        route(&a, "a-tunnel", "www.example.com").await.0,
        StatusCode::CREATED
    );

    // A zone is removed by its owner only; its routes stay until deleted.
    let (status, _) = bearer(&server, &a, Method::DELETE, "/zones/example.org", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = bearer(&server, &b, Method::DELETE, "/zones/example.org", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        route(&b, "b-tunnel", "more.example.org").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, routes) = bearer(&server, &b, Method::GET, "/tunnels/b-tunnel/routes", None).await;
    assert_eq!(routes[0]["hostname"], "app.example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adit_login_gets_a_token_with_the_approving_users_role_by_device_authorisation() {
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt;

    let server = TestServer::spawn().await;
    let (status, user) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/users",
        Some(json!({"email": "m@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (_, _, member) = login(&server, "m@example.com", user["password"].as_str().unwrap()).await;
    let member = member.unwrap();

    // The real CLI, as a user runs it; it prints a link and waits.
    let home = tempfile::tempdir().unwrap();
    let credentials = home.path().join(".adit").join("credentials");
    let cli = adit_agent::cli::Cli::try_parse_from([
        "adit".to_owned(),
        "login".into(),
        "--server".into(),
        format!("http://{}/", server.api),
        "--credentials-file".into(),
        credentials.display().to_string(),
    ])
    .unwrap();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let mut printed = Lines(tx, Vec::new());
    let cli = tokio::spawn(async move {
        let outcome = adit_agent::cli::run(cli, &mut printed, CancellationToken::new()).await;
        outcome.map_err(|e| e.to_string())
    });
    let link = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
            .await
            .expect("the CLI prints a link")
            .expect("the CLI runs");
        if let Some(link) = line.trim().strip_prefix(&format!("http://{}", server.api)) {
            break link.to_owned();
        }
    };
    let code = link.strip_prefix("/device?code=").expect(&link).to_owned();
    assert_eq!(code.len(), 9, "XXXX-XXXX: {code}");

    // Without a session the link leads to the log-in page, which comes back to it.
    let (status, headers, _) = web(&server, None, Method::GET, &link, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to_login = headers["location"].to_str().unwrap().to_owned();
    assert_eq!(to_login, format!("/login?next=%2Fdevice%3Fcode%3D{code}"));
    let (_, _, html) = web(&server, None, Method::GET, &to_login, None).await;
    assert!(
        html.contains(&format!(r#"name="next" value="/device?code={code}""#)),
        "{html}"
    );
    // A login may only send the browser on to this server's own pages.
    let (_, _, html) = web(
        &server,
        None,
        Method::GET,
        "/login?next=//evil.example",
        None,
    )
    .await;
    assert!(!html.contains("evil.example"), "{html}");

    // Logged in, the page shows the code and who asks.
    let (status, _, html) = web(&server, Some(&member.cookie), Method::GET, &link, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&code) && html.contains("adit on "), "{html}");
    assert!(html.contains(r#"value="approve""#), "{html}");

    // Approving without the session's CSRF token is refused, and nothing is issued.
    let form = |csrf: &str, decision: &str| {
        Some(format!("csrf_token={csrf}&code={code}&decision={decision}"))
    };
    let (status, _, _) = web(
        &server,
        Some(&member.cookie),
        Method::POST,
        "/device",
        form("forged", "approve"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!cli.is_finished());

    let (status, _, html) = web(
        &server,
        Some(&member.cookie),
        Method::POST,
        "/device",
        form(&member.csrf, "approve"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Approved"), "{html}");
    tokio::time::timeout(Duration::from_secs(20), cli)
        .await
        .expect("the CLI finishes once approved")
        .unwrap()
        .expect("adit login succeeds");
    let mut done = String::new();
    while let Ok(line) = lines.try_recv() {
        done.push_str(&line);
    }
    assert!(
        done.contains("logged in as m@example.com in the account default (role member)"),
        "{done}"
    );

    // The credentials: owner-only, in a private directory, naming this server.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&credentials), 0o600);
    assert_eq!(mode(credentials.parent().unwrap()), 0o700);
    let saved: Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    assert_eq!(saved["api_url"], format!("http://{}", server.api));
    let token = saved["api_token"].as_str().unwrap().to_owned();

    // The token acts as the member: it manages tunnels, but administers nothing.
    let (status, _) = bearer(
        &server,
        &token,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "from-cli"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = bearer(&server, &token, Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, tokens) = bearer(&server, &server.admin_token, Method::GET, "/tokens", None).await;
    let minted = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["name"]
                .as_str()
                .unwrap()
                .starts_with("adit login: adit on ")
        })
        .expect("the token is listed, so an admin can revoke it");
    assert_eq!(
        minted["scopes"],
        json!(["read", "tunnels:write", "routes:write"])
    );

    // The approval and the token are in the audit log, as the member, with no secret.
    let (_, audit) = bearer(&server, &server.admin_token, Method::GET, "/audit", None).await;
    let entries = audit.as_array().unwrap();
    for action in ["device_login.approve", "device_login.token"] {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == action && e["actor"] == "user:m@example.com"),
            "{action} missing: {audit}"
        );
    }
    assert!(!audit.to_string().contains(&token));
}

/// Starts a device login through the API, as the CLI does.
async fn start_device_login(server: &TestServer) -> (StatusCode, Value) {
    let (status, _, body) = api_request(
        server.api,
        Method::POST,
        "/auth/device",
        &[],
        Some(json!({"client": "test client"})),
    )
    .await;
    (status, body)
}

async fn poll_device_login(server: &TestServer, device_code: &str) -> (StatusCode, String) {
    let (status, _, body) = api_request(
        server.api,
        Method::POST,
        "/auth/device/token",
        &[],
        Some(json!({"device_code": device_code})),
    )
    .await;
    (status, body["code"].as_str().unwrap_or("token").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logins_answer_once_refuse_fast_polls_denials_and_floods_on_sqlite() {
    device_login_rules(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logins_answer_once_refuse_fast_polls_denials_and_floods_on_postgres() {
    device_login_rules(Db::Postgres).await;
}

async fn device_login_rules(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let admin = as_admin(&server).await;

    let (status, started) = start_device_login(&server).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        poll_device_login(&server, &device_code).await,
        (StatusCode::BAD_REQUEST, "authorization_pending".into())
    );
    assert_eq!(
        poll_device_login(&server, &device_code).await,
        (StatusCode::BAD_REQUEST, "slow_down".into()),
        "a poll right after another is told to slow down"
    );
    assert_eq!(
        poll_device_login(&server, "not-a-device-code").await,
        (StatusCode::BAD_REQUEST, "expired_token".into())
    );

    // Denied: the CLI learns it, and the code is gone.
    let deny = format!("csrf_token={}&code={user_code}&decision=deny", admin.csrf);
    let (status, _, html) = web(
        &server,
        Some(&admin.cookie),
        Method::POST,
        "/device",
        Some(deny),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Denied"), "{html}");
    assert_eq!(
        poll_device_login(&server, &device_code).await,
        (StatusCode::BAD_REQUEST, "access_denied".into())
    );
    assert_eq!(
        poll_device_login(&server, &device_code).await,
        (StatusCode::BAD_REQUEST, "expired_token".into())
    );
    let approve = format!(
        "csrf_token={}&code={user_code}&decision=approve",
        admin.csrf
    );
    let (status, _, html) = web(
        &server,
        Some(&admin.cookie),
        Method::POST,
        "/device",
        Some(approve),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("No login is waiting with this code"),
        "{html}"
    );

    // Approved: the token is handed out once; a second poll gets nothing.
    let (_, started) = start_device_login(&server).await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let approve = format!(
        "csrf_token={}&code={}&decision=approve",
        admin.csrf,
        started["user_code"].as_str().unwrap().to_lowercase()
    );
    let (status, _, html) = web(
        &server,
        Some(&admin.cookie),
        Method::POST,
        "/device",
        Some(approve),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Approved"), "codes are typed loosely: {html}");
    let (status, _, token) = api_request(
        server.api,
        Method::POST,
        "/auth/device/token",
        &[],
        Some(json!({"device_code": device_code})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["role"], "admin");
    assert_eq!(token["api_token"]["scopes"], json!(["admin"]));
    assert_eq!(
        poll_device_login(&server, &device_code).await,
        (StatusCode::BAD_REQUEST, "expired_token".into())
    );

    // One address cannot fill the table: ten pending logins, then 429.
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(start_device_login(&server).await.0);
    }
    assert_eq!(statuses[..10], [StatusCode::OK; 10]);
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
}

/// A login naming the account to enter: (status, answer).
async fn login_to(
    server: &TestServer,
    email: &str,
    password: &str,
    account: &str,
) -> (StatusCode, Value) {
    let (status, _, body) = api_request(
        server.api,
        Method::POST,
        "/auth/login",
        &[],
        Some(json!({"email": email, "password": password, "account": account})),
    )
    .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_are_unique_per_account_and_reveal_nothing_of_others_on_sqlite() {
    emails_unique_per_account(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_are_unique_per_account_and_reveal_nothing_of_others_on_postgres() {
    emails_unique_per_account(Db::Postgres).await;
}

async fn emails_unique_per_account(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let create = |token: String, email: &'static str| {
        let server = &server;
        async move {
            bearer(
                server,
                &token,
                Method::POST,
                "/users",
                Some(json!({"email": email, "role": "member"})),
            )
            .await
        }
    };
    let (status, in_a) = create(server.admin_token.clone(), "shared@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{in_a}");
    let other = server
        .control
        .storage
        .ensure_account("other")
        .await
        .unwrap();
    let b_admin = admin_token_in(&server, other, "b-admin@example.com").await;

    // To B's admin, an email of account A is answered exactly as a brand-new one.
    let (new_status, new) = create(b_admin.clone(), "fresh@example.com").await;
    let (status, in_b) = create(b_admin.clone(), "shared@example.com").await;
    assert_eq!(
        (new_status, status),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{in_b}"
    );
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (
            keys,
            v["role"].clone(),
            v["password"].as_str().unwrap().len(),
        )
    };
    assert_eq!(shape(&new), shape(&in_b));
    assert_eq!(in_b["email"], "shared@example.com");
    assert_ne!(in_b["id"], in_a["id"], "a separate user");
    let (status, listed) = bearer(&server, &b_admin, Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["id"])
        .collect();
    assert!(
        ids.contains(&&in_b["id"]) && !ids.contains(&&in_a["id"]),
        "{listed}"
    );

    // Within one account the email stays unique.
    let (status, again) = create(b_admin.clone(), "shared@example.com").await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(again.to_string().contains("already exists"), "{again}");
    let (status, again) = create(server.admin_token.clone(), "SHARED@example.com").await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    // Also when created at the same moment: one wins, the others are refused. Several
    // rounds, as the first one mostly waits for the pool to open connections.
    let storage = &server.control.storage;
    for round in 0..5 {
        let racing = (0..8).map(|_| async move {
            let user = adit_server::storage::UserRow {
                id: adit_core::ids::UserId::random(),
                email: format!("race-{round}@example.com").parse().unwrap(),
                password_hash: "not a hash".into(),
                created_at: 0,
            };
            storage.insert_user(&user, other, Role::Viewer).await
        });
        let results = futures_util::future::join_all(racing).await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(adit_server::Error::Conflict(_))))
            .count();
        assert_eq!((won, refused), (1, 7), "round {round}: {results:?}");
    }

    // Each user logs in with its own password, into its own account, with or without
    // naming it; one account's password opens nothing in the other.
    let password_a = in_a["password"].as_str().unwrap();
    let password_b = in_b["password"].as_str().unwrap();
    for (password, account, id) in [
        (password_a, "default", &in_a["id"]),
        (password_b, "other", &in_b["id"]),
    ] {
        let (status, session, _) = login(&server, "shared@example.com", password).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        assert_eq!(
            (&session["account"], &session["user_id"]),
            (&json!(account), id)
        );
        let (status, session) = login_to(&server, "shared@example.com", password, account).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        assert_eq!(
            (&session["account"], &session["user_id"]),
            (&json!(account), id)
        );
    }
    let (status, crossed) = login_to(&server, "shared@example.com", password_a, "other").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{crossed}");
    let (_, unknown, _) = login(&server, "nobody@example.com", "whatever-password").await;
    let (status, wrong, _) = login(&server, "shared@example.com", "wrong-password-123").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (&crossed, &wrong),
        (&unknown, &unknown),
        "failures look alike"
    );
}
