//! The dashboard's plumbing: the browser bundle under `/pkg`, the pages that load it, and
//! the account-scoped change notices (`/api/v1/events`) its live pages follow.

use std::{sync::Arc, time::Duration};

use adit_core::{
    api::{ChangeKind, ChangeNotice, TunnelStatus},
    ids::TunnelId,
};
use adit_server::Config;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use crate::kit::*;

/// How long to wait for a notice: they leave as the change is stored (milliseconds), but
/// some follow slower work here (a connector starting) on a busy test machine.
const NOTICE: Duration = Duration::from_secs(10);

async fn get(
    api: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::response::Parts, bytes::Bytes) {
    let mut request = http::Request::get(format!("http://{api}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client()
        .request(request.body(full("")).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts, bytes)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_is_served_from_the_ui_dir_and_pages_load_it() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let wasm = b"\0asm\x01\0\0\0 not really".to_vec();
    std::fs::write(site.join("pkg/dash_bg.wasm"), &wasm).unwrap();
    std::fs::write(
        site.join("pkg/dash.js"),
        "export default function init() {}",
    )
    .unwrap();
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.ui_dir = Some(site);
    let server = TestServer::start_with(dir.clone(), config).await;

    let (head, body) = get(server.api, "/pkg/dash_bg.wasm", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-type"], "application/wasm");
    assert_eq!(head.headers["cache-control"], "no-cache");
    assert_eq!(body.to_vec(), wasm);
    let etag = head.headers["etag"].to_str().unwrap().to_owned();
    let (head, body) = get(server.api, "/pkg/dash_bg.wasm", &[("if-none-match", &etag)]).await;
    assert_eq!(head.status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (head, _) = get(server.api, "/pkg/dash.js", &[]).await;
    assert_eq!(
        head.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    for missing in ["/pkg/nope.js", "/pkg/%2e%2e/data/adit.db", "/pkg/.profile"] {
        let (head, _) = get(server.api, missing, &[]).await;
        assert_eq!(head.status, StatusCode::NOT_FOUND, "{missing}");
    }

    // The log-in page needs no session: it loads the bundle, its data is in the page.
    let (head, body) = get(server.api, "/login", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    let html = text(&body);
    assert!(
        html.contains(r#"<link rel="modulepreload" href="/pkg/dash.js">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"import init, { hydrate } from "/pkg/dash.js""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<script type="application/json" id="adit-page">"#),
        "{html}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bundle_pages_are_served_server_rendered_only() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.ui_dir = Some(dir.path().join("no-site-here"));
    let server = TestServer::start_with(dir.clone(), config).await;
    let (head, body) = get(server.api, "/login", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    let html = text(&body);
    assert!(html.contains(r#"action="/login""#), "{html}");
    assert!(!html.contains("/pkg/"), "{html}");
    let (head, _) = get(server.api, "/pkg/dash.js", &[]).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

/// An open `GET /api/v1/events`: its notices, read as they arrive.
pub(crate) struct Events {
    body: Incoming,
    buffer: String,
}

impl Events {
    pub(crate) async fn open(server: &TestServer, credentials: (&str, &str)) -> Self {
        let request = http::Request::get(format!("http://{}/api/v1/events", server.api))
            .header("accept", "text/event-stream")
            .header(credentials.0, credentials.1)
            .body(full(""))
            .unwrap();
        let response = client().request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next notice, failing the test after `limit`; `None` when the stream ended.
    pub(crate) async fn next(&mut self, limit: Duration) -> Option<ChangeNotice> {
        let read = async {
            loop {
                // One event is a block of lines ended by a blank line; comments (keep-alives)
                // and the `retry:` field carry no data.
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let data: Vec<&str> = block
                        .lines()
                        .filter_map(|line| line.strip_prefix("data:"))
                        .map(str::trim)
                        .collect();
                    if !data.is_empty() {
                        return Some(serde_json::from_str(&data.join("\n")).unwrap());
                    }
                }
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buffer.push_str(&String::from_utf8_lossy(&data));
                        }
                    }
                    _ => return None,
                }
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .unwrap_or_else(|_| panic!("no notice within {limit:?}"))
    }

    /// Reads notices until one about `tunnel` satisfies `wanted`; returns those passed over.
    async fn until(
        &mut self,
        tunnel: TunnelId,
        wanted: impl Fn(&ChangeNotice) -> bool,
    ) -> Vec<ChangeNotice> {
        let mut before = Vec::new();
        loop {
            let notice = self.next(NOTICE).await.expect("the stream stays open");
            if notice.tunnel == Some(tunnel) && wanted(&notice) {
                return before;
            }
            before.push(notice);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_announce_an_accounts_changes_to_that_account_only() {
    let server = TestServer::spawn().await;
    // Account A follows with a browser session, account B with an API token.
    let cookie = admin_session_cookie(&server).await;
    let b_token = admin_of_account(&server, "other", "b@example.com").await;
    let mut a_events = Events::open(&server, ("cookie", &cookie)).await;
    let mut b_events = Events::open(&server, ("authorization", &format!("Bearer {b_token}"))).await;

    // A connector of A's tunnel registers, opens its connections, and goes away.
    let token = server.tunnel_with_route("live", "live.example.com").await;
    let tunnel = token.tunnel_id;
    a_events
        .until(tunnel, |n| n.kind == ChangeKind::Tunnel)
        .await;
    a_events
        .until(tunnel, |n| n.kind == ChangeKind::Route)
        .await;
    let connector = TestConnector::to(&token, "hello_world");
    a_events
        .until(tunnel, |n| n.kind == ChangeKind::Connector)
        .await;
    a_events
        .until(tunnel, |n| n.kind == ChangeKind::Connection)
        .await;
    // What a page re-reads on a notice is current: all four connections arrive as notices,
    // and after the last one the list says so.
    server.wait_connections(&token, 4).await;
    let healthy = eventually(NOTICE, "the list to show the tunnel healthy", || async {
        let (_, _, list) = api_request(
            server.api,
            Method::GET,
            "/tunnels",
            &[("cookie", cookie.clone())],
            None,
        )
        .await;
        (list[0]["status"] == "healthy").then_some(list)
    })
    .await;
    assert_eq!(healthy[0]["connectors"], 1, "{healthy}");
    assert!(healthy[0]["connected_since"].is_string(), "{healthy}");
    connector.stop().await;
    loop {
        a_events
            .until(tunnel, |n| n.kind == ChangeKind::Connection)
            .await;
        let t = server
            .control
            .get_tunnel(
                server
                    .control
                    .storage
                    .ensure_account("default")
                    .await
                    .unwrap(),
                "live",
            )
            .await
            .unwrap();
        if t.connections == 0 {
            assert_eq!(t.status, TunnelStatus::Down);
            assert_eq!(t.connected_since, None);
            break;
        }
    }

    // B changes something of its own. Notices go out in order on one channel, so had any
    // of A's reached B, they would arrive before B's own.
    let (status, b_tunnel) = bearer(
        &server,
        &b_token,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "b-tunnel"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let b_tunnel: TunnelId = b_tunnel["id"].as_str().unwrap().parse().unwrap();
    let leaked = b_events
        .until(b_tunnel, |n| n.kind == ChangeKind::Tunnel)
        .await;
    assert!(leaked.is_empty(), "B was told of A's changes: {leaked:?}");
    // Nor does A hear of B's tunnel: its next notice is about its own.
    server
        .control
        .rename_tunnel(
            server
                .control
                .storage
                .ensure_account("default")
                .await
                .unwrap(),
            "live",
            "renamed",
        )
        .await
        .unwrap();
    let passed = a_events
        .until(tunnel, |n| n.kind == ChangeKind::Tunnel)
        .await;
    assert!(
        passed.iter().all(|n| n.tunnel != Some(b_tunnel)),
        "A was told of B's changes: {passed:?}"
    );

    // Stopping the server ends the streams rather than waiting on them.
    server.shutdown().await;
    assert_eq!(a_events.next(Duration::from_secs(10)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_need_credentials_that_may_read() {
    let server = TestServer::spawn().await;
    for headers in [
        vec![],
        vec![("authorization", "Bearer adit_garbage".to_owned())],
        vec![("cookie", "adit_session=forged".to_owned())],
    ] {
        let (status, _, body) =
            api_request(server.api, Method::GET, "/events", &headers, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(body["code"], "unauthenticated");
    }
    // Reading is enough: a read-only token follows the account.
    let (status, viewer) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/tokens",
        Some(json!({"name": "viewer", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{viewer}");
    let viewer = format!("Bearer {}", viewer["token"].as_str().unwrap());
    let mut events = Events::open(&server, ("authorization", &viewer)).await;
    let token = server.tunnel_with_route("seen", "seen.example.com").await;
    events
        .until(token.tunnel_id, |n| n.kind == ChangeKind::Tunnel)
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wizard_and_tunnel_pages_need_a_session_and_show_the_accounts_data() {
    let server = TestServer::spawn().await;
    // Without a session: to the log-in page, coming back afterwards.
    for (path, next) in [
        ("/tunnels/new", "%2Ftunnels%2Fnew"),
        ("/tunnels/web", "%2Ftunnels%2Fweb"),
    ] {
        let (head, _) = get(server.api, path, &[]).await;
        assert_eq!(head.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(head.headers["location"], format!("/login?next={next}"));
    }
    let cookie = admin_session_cookie(&server).await;
    let token = server.tunnel_with_route("web", "web.example.com").await;

    let (head, body) = get(server.api, "/tunnels/new", &[("cookie", &cookie)]).await;
    assert_eq!(head.status, StatusCode::OK);
    let html = text(&body);
    assert!(
        html.contains("<title>Create a tunnel · Adit</title>"),
        "{html}"
    );
    // The names already taken and the zones travel with the page for the browser.
    assert!(html.contains(r#""taken":["web"]"#), "{html}");
    assert!(html.contains(r#""zones":["example.com"]"#), "{html}");

    // By name and by id: a locally managed tunnel, never run, read-only rules.
    for key in ["web".to_owned(), token.tunnel_id.to_string()] {
        let (head, body) = get(
            server.api,
            &format!("/tunnels/{key}"),
            &[("cookie", &cookie)],
        )
        .await;
        assert_eq!(head.status, StatusCode::OK, "{key}");
        let html = text(&body);
        assert!(
            html.contains("<title>web · Tunnels · Adit</title>"),
            "{html}"
        );
        assert!(html.contains(&token.tunnel_id.to_string()), "{html}");
        assert!(html.contains("badge-inactive"), "{html}");
        assert!(html.contains("managed locally"), "{html}");
    }
    let (head, _) = get(server.api, "/tunnels/nope", &[("cookie", &cookie)]).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_binary_is_served_from_beside_the_server() {
    let server = TestServer::spawn().await;
    // The same places the server looks: beside the (test) executable, then its parent.
    let exe = std::env::current_exe().unwrap();
    let beside = exe.parent().unwrap();
    let name = format!("adit{}", std::env::consts::EXE_SUFFIX);
    let binary = [beside.join(&name), beside.parent().unwrap().join(&name)]
        .into_iter()
        .find(|p| p.is_file());
    let (head, body) = get(server.api, "/download/adit", &[]).await;
    match binary {
        Some(path) => {
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(head.headers["content-type"], "application/octet-stream");
            assert!(
                head.headers["content-disposition"]
                    .to_str()
                    .unwrap()
                    .contains(&name)
            );
            assert_eq!(body.len(), std::fs::metadata(path).unwrap().len() as usize);
            // Asked for by `uname -m`: this machine's is this server's own.
            let own = format!("/download/adit?arch={}", std::env::consts::ARCH);
            let (head, same) = get(server.api, &own, &[]).await;
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(same.len(), body.len());
        }
        None => {
            assert_eq!(head.status, StatusCode::NOT_FOUND);
            let message = text(&body);
            assert!(
                message.contains("cargo build --release -p adit-agent"),
                "{message}"
            );
        }
    }
    // Another architecture, which no release put beside this server: said honestly.
    let other = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let (head, body) = get(server.api, &format!("/download/adit?arch={other}"), &[]).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    let message = text(&body);
    assert!(
        message.contains(&format!("no connector for Linux on {other}"))
            && message.contains(&format!("adit-linux-{other}")),
        "{message}"
    );
    let (head, body) = get(server.api, "/download/adit?arch=sparc64", &[]).await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("x86_64 and aarch64"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_remote_configuration_is_announced_as_a_route_change() {
    let server = TestServer::spawn().await;
    let admin = format!("Bearer {}", server.admin_token);
    let (status, tunnel) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/tunnels",
        Some(json!({"name": "managed", "config_src": "remote"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{tunnel}");
    let id: TunnelId = tunnel["id"].as_str().unwrap().parse().unwrap();
    let mut events = Events::open(&server, ("authorization", &admin)).await;
    let (status, body) = bearer(
        &server,
        &server.admin_token,
        Method::PUT,
        "/tunnels/managed/configurations",
        Some(json!({"config": {"ingress": [
            {"hostname": "managed.example.com", "service": "http_status:204"},
            {"service": "http_status:404"}
        ]}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Pages showing the tunnel's hostnames (the Tunnels table, its page) are told.
    events.until(id, |n| n.kind == ChangeKind::Route).await;
    server.shutdown().await;
}
