//! What an outside security probe of the server broke, each now refused: a dashboard
//! session opening private-network streams, an account capturing quick hostnames, framing
//! of the dashboard, origin details on visitors' error pages, and first-start secrets
//! printed where a log collector keeps them.

use std::{sync::Arc, time::Duration};

use adit_server::Config;
use http::{Method, StatusCode};

use crate::kit::*;

fn websocket_headers() -> Vec<(&'static str, String)> {
    vec![
        ("connection", "upgrade".into()),
        ("upgrade", "websocket".into()),
        ("sec-websocket-version", "13".into()),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_network_streams_need_an_api_token_not_a_session() {
    let server = TestServer::spawn().await;
    let cookie = admin_session_cookie(&server).await;
    let path = "/private/connect?destination=10.1.2.3:22";

    let mut with_cookie = websocket_headers();
    with_cookie.push(("cookie", cookie.clone()));
    // What a page on a sibling host can make a browser send: the cookie, an Origin of its
    // own, no CSRF token.
    with_cookie.push(("origin", "http://evil.example.com".into()));
    let (status, _, body) = api_request(server.api, Method::GET, path, &with_cookie, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("API token"),
        "{body}"
    );

    // The same call with an API token gets past authentication (and finds no route).
    let mut with_token = websocket_headers();
    with_token.push(("authorization", format!("Bearer {}", server.admin_token)));
    let (status, _, body) = api_request(server.api, Method::GET, path, &with_token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The session itself still works for the dashboard's own API calls.
    let (status, _, _) = api_request(
        server.api,
        Method::GET,
        "/tunnels",
        &[("cookie", cookie)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}

/// A server whose default account has the zone `example.com`, with quick tunnels under
/// `quick.example.com` when `quick` is set.
fn config(dir: &tempfile::TempDir, quick: bool) -> Config {
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.zones = vec!["example.com".into()];
    if quick {
        config.quick_tunnel_domain = Some("quick.example.com".into());
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_zone_or_wildcard_above_the_quick_domain_takes_quick_hostnames() {
    // Before quick tunnels were offered, the account routed `*.example.com`.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = TestServer::start_with(dir.clone(), config(&dir, false)).await;
    server.tunnel_with_route("catch-all", "*.example.com").await;
    server.shutdown().await;
    let server = TestServer::start_with(dir.clone(), config(&dir, true)).await;
    // The token names the new tunnel port.
    let account = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    let token = server
        .control
        .tunnel_token(account, "catch-all")
        .await
        .unwrap();
    let token = adit_core::token::TunnelToken::parse(&token).unwrap();
    let origin = spawn_origin(|_req: hyper::Request<hyper::body::Incoming>| async {
        http::Response::new(full("captured"))
    })
    .await;
    let connector = TestConnector::to(&token, &format!("http://{origin}"));
    server.wait_connections(&token, 4).await;
    let body = |r| async { String::from_utf8_lossy(&body_bytes(r).await).into_owned() };

    // A quick tunnel is still handed out, and its hostname is its own.
    let (status, _, quick) = api_request(
        server.api,
        Method::POST,
        "/quick-tunnels",
        &[],
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{quick}");
    let hostname = quick["hostname"].as_str().unwrap().to_owned();
    assert!(hostname.ends_with(".quick.example.com"), "{hostname}");
    let r = get(server.edge, &hostname, "/").await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_GATEWAY,
        "no connector runs it yet"
    );
    assert!(!body(r).await.contains("captured"));
    // Names below the quick domain that no quick tunnel holds reach nobody.
    let r = get(server.edge, "never-given.quick.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!body(r).await.contains("captured"));
    // The wildcard still serves the rest of its zone.
    let r = get(server.edge, "app.example.com", "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, "captured");

    // No new route may cover quick hostnames, and no zone may hold the quick domain.
    let routes = format!("/tunnels/{}/routes", token.tunnel_id);
    let (_, listed) = bearer(&server, &server.admin_token, Method::GET, &routes, None).await;
    let route_id = listed[0]["id"].as_str().unwrap().to_owned();
    let (status, _) = bearer(
        &server,
        &server.admin_token,
        Method::DELETE,
        &format!("/routes/{route_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for hostname in ["*.example.com", "*.quick.example.com", "quick.example.com"] {
        let (status, body) = bearer(
            &server,
            &server.admin_token,
            Method::POST,
            &routes,
            Some(serde_json::json!({ "hostname": hostname })),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{hostname}: {body}");
    }
    let other_admin = admin_of_account(&server, "other", "admin@other.example").await;
    for zone in ["com", "quick.example.com", "x.quick.example.com"] {
        let (status, body) = bearer(
            &server,
            &other_admin,
            Method::POST,
            "/zones",
            Some(serde_json::json!({ "name": zone })),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{zone}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("quick-tunnel domain"),
            "{zone}: {body}"
        );
    }
    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_cannot_be_framed_and_allow_only_their_own_code() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let server = TestServer::spawn().await;
    let cookie = admin_session_cookie(&server).await;
    for (cookie, path) in [
        (None, "/login"),
        (Some(cookie.as_str()), "/tunnels"),
        (Some(cookie.as_str()), "/device?code=ABCD-EFGH"),
        (Some(cookie.as_str()), "/settings/tokens"),
    ] {
        let (status, headers, html) = web(&server, cookie, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        // Every inline script that runs and every inline style is allowed by its hash.
        for (open, close) in [
            ("<script type=\"module\">", "</script>"),
            ("<style>", "</style>"),
        ] {
            let mut rest = html.as_str();
            while let Some(start) = rest.find(open) {
                let text = &rest[start + open.len()..];
                let end = text.find(close).unwrap();
                let hash = base64::engine::general_purpose::STANDARD
                    .encode(sha2::Sha256::digest(&text.as_bytes()[..end]));
                assert!(
                    policy.contains(&format!("'sha256-{hash}'")),
                    "{path}: {open} not allowed by {policy}"
                );
                rest = &text[end..];
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_error_pages_name_no_origin() {
    let server = TestServer::spawn().await;
    // A port nothing listens on: the origin refuses.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let token = server
        .tunnel_with_route("refusing", "refusing.example.com")
        .await;
    let connector = TestConnector::to(&token, &format!("http://{closed}"));
    server.wait_connections(&token, 4).await;
    for accept in ["text/html", "application/json"] {
        let r = client()
            .request(
                to_edge(server.edge, "refusing.example.com", "/")
                    .header("accept", accept)
                    .body(full(""))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let body = String::from_utf8_lossy(&body_bytes(r).await).into_owned();
        assert!(body.contains("origin_refused"), "{body}");
        assert!(!body.contains(&closed.to_string()), "{body}");
        assert!(!body.contains("127.0.0.1"), "{body}");
        if accept == "application/json" {
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["details"]["request_id"].as_str().unwrap().len(), 16);
        } else {
            assert!(body.contains("request "), "{body}");
        }
    }
    // The operator still learns why, from the connectors table.
    let (_, connectors) = bearer(
        &server,
        &server.admin_token,
        Method::GET,
        &format!("/tunnels/{}/connectors", token.tunnel_id),
        None,
    )
    .await;
    assert!(
        connectors.to_string().contains("origin_refused"),
        "{connectors}"
    );
    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_off_a_terminal_prints_where_the_secrets_are_not_the_secrets() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = server_process(&data).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read on a thread until the server says it listens (or gives up), then stop it.
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("adit-server listening") {
                break;
            }
        }
        seen
    });
    let printed = tokio::task::spawn_blocking(move || reader.join().unwrap());
    let printed = tokio::time::timeout(Duration::from_secs(60), printed)
        .await
        .expect("the server starts within 60 s")
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let password = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    assert!(token.starts_with("adit_") && password.len() >= 12);
    assert!(!printed.contains(token.trim()), "{printed}");
    assert!(!printed.contains(password.trim()), "{printed}");
    assert!(printed.contains("initial-admin-password"), "{printed}");
    assert!(printed.contains("admin-token"), "{printed}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["admin-token", "initial-admin-password"] {
            let mode = std::fs::metadata(data.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
}
