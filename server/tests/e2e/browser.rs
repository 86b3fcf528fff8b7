//! The dashboard in a real browser: Debian's headless Chromium, driven by the
//! playwright-core scripts in `dashboard/e2e`, against a real server, real connectors and
//! real origins started here. A script asks this side (over its stdin/stdout) to do what a
//! person would do outside the browser — start a connector with the token the page showed,
//! request a hostname through the edge — and checks the page's reaction. Screenshots land
//! in `target/browser-screenshots/<script>/`.

use std::{path::PathBuf, process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::kit::*;

/// The longest one script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ lives in the workspace")
        .to_owned()
}

/// A running browser script.
struct Script {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    summary: Option<String>,
}

impl Script {
    /// Starts `dashboard/e2e/<name>.mjs` against `server`, logged in as its first admin.
    /// `None` (SKIPPED; a failure under CI) when the dashboard's bundle was not built: `cargo xtask
    /// test` builds it whenever the wasm32 target can be installed.
    fn start(server: &TestServer, name: &str) -> Option<Self> {
        if built_bundle().is_none() {
            missing_environment(&format!(
                "browser test {name} has no dashboard bundle (`cargo xtask ui` builds it, \
                 which needs the wasm32-unknown-unknown target)"
            ));
            return None;
        }
        let e2e = workspace().join("dashboard/e2e");
        let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
        assert!(
            PathBuf::from(&chromium).exists() && e2e.join("node_modules/playwright-core").exists(),
            "the browser tests need Chromium and playwright-core: run `cargo xtask test`, which \
             installs them (or: apt-get install chromium && (cd dashboard/e2e && npm ci))"
        );
        let (email, password) = server
            .admin_login
            .clone()
            .expect("the first start made an admin");
        let screenshots = workspace().join("target/browser-screenshots").join(name);
        let mut child = Command::new("node")
            .arg(e2e.join(format!("{name}.mjs")))
            .current_dir(&e2e)
            .env("ADIT_URL", format!("http://{}", server.api))
            .env("ADIT_EMAIL", email)
            .env("ADIT_PASSWORD", password)
            .env("ADIT_SCREENSHOTS", &screenshots)
            .env("CHROMIUM", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (install nodejs)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Some(Self {
            child,
            stdin,
            stdout,
            summary: None,
        })
    }

    /// The script's next request, or `None` once it has finished.
    async fn next_ask(&mut self) -> Option<Value> {
        loop {
            let line = tokio::time::timeout(SCRIPT_TIMEOUT, self.stdout.next_line())
                .await
                .expect("the browser script keeps making progress")
                .expect("read the script's output")?;
            eprintln!("browser: {line}");
            if let Some(ask) = line.strip_prefix("@@ask ") {
                return Some(serde_json::from_str(ask).expect("an ask is JSON"));
            }
            if let Some(summary) = line.strip_prefix("@@done ") {
                self.summary = Some(summary.to_owned());
            }
        }
    }

    async fn reply(&mut self, answer: Value) {
        let mut line = answer.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("the script reads its answers");
    }

    /// Waits for the script to exit and asserts that every step passed.
    async fn finish(mut self) {
        if let Some(ask) = self.next_ask().await {
            panic!("the script asked for {ask} after the test stopped answering");
        }
        let status = tokio::time::timeout(SCRIPT_TIMEOUT, self.child.wait())
            .await
            .expect("the script exits")
            .expect("wait for node");
        let summary = self.summary.unwrap_or_default();
        assert!(
            status.success() && summary.ends_with(" 0 failed"),
            "browser steps failed ({status}): {summary}; see the output above and target/browser-screenshots"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnels_page_follows_connectors_live_without_a_reload() {
    let server = TestServer::spawn().await;
    let Some(mut script) = Script::start(&server, "live_tunnels") else {
        return;
    };
    let mut tunnels = std::collections::HashMap::new();
    let mut connectors = std::collections::HashMap::new();
    while let Some(ask) = script.next_ask().await {
        let name = ask["name"].as_str().unwrap_or_default().to_owned();
        let answer = match ask["event"].as_str() {
            Some("create_tunnel") => {
                let hostname = ask["hostname"].as_str().unwrap_or_default();
                let token = server.tunnel_with_route(&name, hostname).await;
                let id = token.tunnel_id.to_string();
                tunnels.insert(name, token);
                json!({ "id": id })
            }
            Some("start_connector") => {
                let token = &tunnels[&name];
                connectors.insert(name.clone(), TestConnector::to(token, "hello_world"));
                server.wait_connections(token, 4).await;
                json!({})
            }
            Some("stop_connector") => {
                if let Some(connector) = connectors.remove(&name) {
                    connector.stop().await;
                }
                server.wait_connections(&tunnels[&name], 0).await;
                json!({})
            }
            other => json!({ "error": format!("unknown request {other:?}") }),
        };
        script.reply(answer).await;
    }
    script.finish().await;
}

/// The origin behind the wizard's hostname: says who it is and what it was asked.
const ORIGIN_REPLY: &str = "hello from the wizard's origin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_is_created_run_routed_refreshed_and_deleted_from_the_dashboard() {
    let server = TestServer::spawn().await;
    let origin = spawn_origin(|req: hyper::Request<hyper::body::Incoming>| async move {
        hyper::Response::new(full(format!("{ORIGIN_REPLY} {}", req.uri().path())))
    })
    .await;
    let Some(mut script) = Script::start(&server, "wizard") else {
        return;
    };
    let mut connector = None;
    while let Some(ask) = script.next_ask().await {
        let answer = match ask["event"].as_str() {
            // The page's command holds the token; run it as `adit tunnel run --token` does.
            Some("start_connector") => {
                match adit_core::token::TunnelToken::parse(
                    ask["token"].as_str().unwrap_or_default(),
                ) {
                    Ok(token) => {
                        connector = Some(TestConnector::token_only(&token));
                        json!({ "origin": origin.to_string() })
                    }
                    Err(e) => json!({ "error": format!("the page's token does not parse: {e}") }),
                }
            }
            Some("request") => {
                let host = ask["hostname"].as_str().unwrap_or_default().to_owned();
                // The new rule reaches the connector moments after the page saved it.
                let body = eventually(Duration::from_secs(10), "the origin answers", || {
                    let host = host.clone();
                    let edge = server.edge;
                    async move {
                        let response = get(edge, &host, "/via-edge").await;
                        if response.status() != http::StatusCode::OK {
                            return None;
                        }
                        Some(String::from_utf8_lossy(&body_bytes(response).await).into_owned())
                    }
                })
                .await;
                json!({ "body": body })
            }
            Some("stop_connector") => {
                if let Some(connector) = connector.take() {
                    connector.stop().await;
                }
                json!({})
            }
            other => json!({ "error": format!("unknown request {other:?}") }),
        };
        script.reply(answer).await;
    }
    script.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_pages_manage_zones_tokens_users_and_show_the_audit_log() {
    use http::Method;

    let server = TestServer::spawn().await;
    let Some(mut script) = Script::start(&server, "settings") else {
        return;
    };
    // What each use of the page's token got: (GET /tunnels, POST /tunnels).
    let mut uses = Vec::new();
    while let Some(ask) = script.next_ask().await {
        let answer = match ask["event"].as_str() {
            Some("use_token") => {
                let token = ask["token"].as_str().unwrap_or_default();
                let (get, _) = bearer(&server, token, Method::GET, "/tunnels", None).await;
                let (post, _) = bearer(
                    &server,
                    token,
                    Method::POST,
                    "/tunnels",
                    Some(json!({"name": "made-by-a-read-token"})),
                )
                .await;
                uses.push((get.as_u16(), post.as_u16()));
                json!({ "get": get.as_u16(), "post": post.as_u16() })
            }
            Some("log_in") => {
                let (status, _, _) = api_request(
                    server.api,
                    Method::POST,
                    "/auth/login",
                    &[],
                    Some(json!({"email": ask["email"], "password": ask["password"]})),
                )
                .await;
                json!({ "status": status.as_u16() })
            }
            other => json!({ "error": format!("unknown request {other:?}") }),
        };
        script.reply(answer).await;
    }
    script.finish().await;
    assert_eq!(
        uses,
        [(200, 403), (401, 401)],
        "the token before and after revoking"
    );
}
