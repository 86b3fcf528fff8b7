//! Hot reload of a local config.yml: `adit tunnel --config config.yml run`, run in-process
//! as a user runs it, follows its file's edits (and a re-read at once through the handle
//! `main` forwards SIGHUP to) without dropping the streams under way, keeps its rules over
//! a broken edit, and reports each new version to the edge.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use adit_agent::config_watch::{Outcome, ReloadHandle, reload_channel};
use adit_core::token::TunnelToken;
use adit_transport::relay::channel_body;
use bytes::Bytes;
use clap::Parser;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::kit::*;

/// How much the slow origin sends once released.
const SLOW_LEN: usize = 256 * 1024;

/// `adit tunnel --config <file> run` in-process, and the handle SIGHUP would use.
struct Running {
    reload: ReloadHandle,
    stop: CancellationToken,
    task: JoinHandle<Result<(), adit_agent::Error>>,
}

impl Running {
    fn start(token: &TunnelToken, config: &Path) -> Self {
        Self::start_with_metrics(token, config, "127.0.0.1:0")
    }

    fn start_with_metrics(token: &TunnelToken, config: &Path, metrics: &str) -> Self {
        let config = config.display().to_string();
        let token = token.encode();
        let cli = adit_agent::cli::Cli::try_parse_from([
            "adit",
            "tunnel",
            "--config",
            &config,
            "run",
            "--token",
            &token,
            "--metrics",
            metrics,
            "--ha-connections",
            "2",
        ])
        .unwrap();
        let (reload, requests) = reload_channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { adit_agent::cli::run_with_reload(cli, &mut Vec::new(), stop, requests).await }
        });
        Self { reload, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the connector stops")
            .unwrap();
        result.unwrap();
    }
}

/// A config.yml routing `host` to `service`, everything else to 404.
fn rules(host: &str, service: &str) -> String {
    format!(
        "# written by the test\ningress:\n  - hostname: {host}\n    service: {service}\n  - service: http_status:404\n"
    )
}

/// Replaces the file as editors do: write a new one beside it, then rename it over.
fn replace(path: &Path, text: &str) {
    let next = path.with_extension("yml.new");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// An origin that answers `<name> <path>`; `/slow` sends `slow ` at once and, when
/// `release` is notified, [`SLOW_LEN`] bytes more.
async fn named_origin(name: &'static str, seed: u64, release: Arc<Notify>) -> String {
    let addr = spawn_origin(move |req: hyper::Request<Incoming>| {
        let release = release.clone();
        async move {
            if req.uri().path() == "/slow" {
                let (body, tx) = channel_body();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(Frame::data(Bytes::from("slow ")))).await;
                    release.notified().await;
                    for chunk in pseudo_random(SLOW_LEN, seed).chunks(16 * 1024) {
                        let frame = Frame::data(Bytes::copy_from_slice(chunk));
                        if tx.send(Ok(frame)).await.is_err() {
                            return;
                        }
                    }
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

/// Waits until `GET /` for `host` answers `status` with `body`.
async fn answers(server: &TestServer, host: &str, status: StatusCode, body: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{host} to answer {status} {body:?}"),
        || async { (fetch(server, host, "/").await == (status, body.to_owned())).then_some(()) },
    )
    .await;
}

/// Waits until the API shows local configuration `version` whose first rule's service is
/// `service`.
async fn reported(server: &TestServer, tunnel: &str, version: i64, service: &str) -> Value {
    let path = format!("/tunnels/{tunnel}/configurations");
    eventually(
        Duration::from_secs(10),
        &format!("the edge to show version {version} with {service}"),
        || async {
            let (status, config) =
                bearer(server, &server.admin_token, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{config}");
            (config["version"] == version
                && config["source"] == "local"
                && config["config"]["ingress"][0]["service"] == service)
                .then_some(config)
        },
    )
    .await
}

fn config_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("config.yml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_yml_serves_new_requests_while_a_stream_under_way_finishes() {
    const HOST: &str = "reload.example.com";
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("reload", HOST).await;
    let release = Arc::new(Notify::new());
    let first = named_origin("first", 7, release.clone()).await;
    let second = named_origin("second", 8, Arc::new(Notify::new())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir);
    std::fs::write(&path, rules(HOST, &first)).unwrap();

    let connector = Running::start(&token, &path);
    answers(&server, HOST, StatusCode::OK, "first /").await;
    reported(&server, "reload", 1, &first).await;

    // A slow stream starts under the first rules...
    let slow = client()
        .request(to_edge(server.edge, HOST, "/slow").body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(slow.status(), StatusCode::OK);
    let mut slow = slow.into_body();
    let mut received = Vec::new();
    while received.len() < "slow ".len() {
        let frame = slow.frame().await.unwrap().unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }
    assert_eq!(received, b"slow ");

    // ...the file is edited in place, and new requests go by the new rules...
    std::fs::write(&path, rules(HOST, &second)).unwrap();
    answers(&server, HOST, StatusCode::OK, "second /").await;
    let config = reported(&server, "reload", 2, &second).await;
    assert_eq!(
        config["config"]["ingress"][1],
        json!({"service": "http_status:404"})
    );

    // ...while the stream under way finishes whole from the first origin.
    release.notify_one();
    let rest = slow.collect().await.unwrap().to_bytes();
    assert_eq!(rest.len(), SLOW_LEN);
    assert_eq!(sha256_hex(&rest), sha256_hex(&pseudo_random(SLOW_LEN, 7)));

    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_keeps_the_rules_in_force_and_a_later_good_one_applies() {
    const HOST: &str = "broken.example.com";
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("broken", HOST).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir);
    std::fs::write(&path, rules(HOST, "http_status:201")).unwrap();

    let connector = Running::start(&token, &path);
    answers(&server, HOST, StatusCode::CREATED, "").await;
    reported(&server, "broken", 1, "http_status:201").await;

    let broken = [
        // Not YAML.
        format!("ingress:\n  - hostname: {HOST}\n    service: [\n"),
        // The catch-all first: the rule after it could never match.
        format!(
            "ingress:\n  - service: http_status:404\n  - hostname: {HOST}\n    service: http_status:202\n"
        ),
        // A slip for a key config.yml has (a key nobody has is only a warning).
        format!("ha-conections: 2\n{}", rules(HOST, "http_status:202")),
    ];
    for text in &broken {
        replace(&path, text);
        // Re-read at once (what SIGHUP does), so the test knows it was seen.
        assert_eq!(
            connector.reload.reload_and_wait().await,
            Some(Outcome::Refused),
            "{text}"
        );
        assert_eq!(
            fetch(&server, HOST, "/").await.0,
            StatusCode::CREATED,
            "{text}"
        );
    }

    // A good edit, noticed by the watcher on its own.
    replace(&path, &rules(HOST, "http_status:202"));
    answers(&server, HOST, StatusCode::ACCEPTED, "").await;
    reported(&server, "broken", 2, "http_status:202").await;

    connector.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_request_as_sighup_sends_applies_the_file_at_once() {
    const HOST: &str = "hup.example.com";
    let server = TestServer::spawn().await;
    let token = server.tunnel_with_route("hup", HOST).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir);
    std::fs::write(&path, rules(HOST, "http_status:201")).unwrap();

    let connector = Running::start(&token, &path);
    answers(&server, HOST, StatusCode::CREATED, "").await;

    replace(&path, &rules(HOST, "http_status:203"));
    assert_eq!(
        connector.reload.reload_and_wait().await,
        Some(Outcome::Applied)
    );
    // In force as the request returns: no waiting.
    assert_eq!(
        fetch(&server, HOST, "/").await.0,
        StatusCode::from_u16(203).unwrap()
    );
    reported(&server, "hup", 2, "http_status:203").await;

    let reload = connector.reload.clone();
    connector.stop().await;
    assert!(
        !reload.reload(),
        "nothing follows the file once the connector stopped"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_cannot_start_stops_following_its_file() {
    let server = TestServer::spawn().await;
    let token = server
        .tunnel_with_route("unstarted", "unstarted.example.com")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir);
    std::fs::write(&path, rules("unstarted.example.com", "http_status:201")).unwrap();
    // The metrics address is taken: the command fails, and must not wait on its watcher.
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = taken.local_addr().unwrap().to_string();
    let connector = Running::start_with_metrics(&token, &path, &metrics);
    let outcome = tokio::time::timeout(Duration::from_secs(10), connector.task)
        .await
        .expect("the command ends")
        .unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(!connector.reload.reload(), "nothing follows the file");
    server.shutdown().await;
}
