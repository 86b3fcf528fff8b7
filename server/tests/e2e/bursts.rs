//! Limits under concurrent bursts: each is counted atomically, so a burst gets exactly what
//! one request at a time would, and one network cannot take a server-wide quota. Clients
//! speak from addresses in 127.0.0.0/8 (all reach the server on 127.0.0.1).

use std::{net::IpAddr, sync::Arc};

use futures_util::{StreamExt, future::join_all, stream};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::kit::*;

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// `n` concurrent identical POSTs to `/api/v1{path}` from `from`: their statuses.
async fn burst(
    server: &TestServer,
    from: IpAddr,
    n: usize,
    path: &str,
    body: &Value,
) -> Vec<StatusCode> {
    let client = client_from(from);
    let calls = (0..n).map(|_| {
        api_request_with(
            &client,
            server.api,
            Method::POST,
            path,
            &[],
            Some(body.clone()),
        )
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|(s, _, _)| s)
        .collect()
}

fn count(statuses: &[StatusCode], wanted: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == wanted).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_gets_no_more_checks_than_the_limit() {
    let server = TestServer::spawn().await;
    let (email, password) = server.admin_login.clone().unwrap();
    let wrong = json!({"email": email, "password": "wrong-password-123"});
    let statuses = burst(&server, addr("127.0.0.2"), 60, "/auth/login", &wrong).await;
    // Five checked (and failed), the user's limit; every other attempt refused unchecked.
    assert_eq!(
        (
            count(&statuses, StatusCode::UNAUTHORIZED),
            count(&statuses, StatusCode::TOO_MANY_REQUESTS)
        ),
        (5, 55),
        "{statuses:?}"
    );
    // As documented: the user is locked out for the window, from any address...
    let right = json!({"email": email, "password": password});
    let (status, _, body) = api_request_with(
        &client_from(addr("127.0.0.3")),
        server.api,
        Method::POST,
        "/auth/login",
        &[],
        Some(right),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // ...and other users are not.
    let (status, created) = bearer(
        &server,
        &server.admin_token,
        Method::POST,
        "/users",
        Some(json!({"email": "other@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let other = json!({"email": "other@example.com", "password": created["password"]});
    let (status, _, body) = api_request_with(
        &client_from(addr("127.0.0.3")),
        server.api,
        Method::POST,
        "/auth/login",
        &[],
        Some(other),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.shutdown().await;
}

async fn quick_tunnel_burst(db: Db) {
    let database_url = match db {
        Db::Sqlite => None,
        Db::Postgres => match fresh_postgres().await {
            Some(url) => Some(url),
            None => return,
        },
    };
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = adit_server::Config::ephemeral(dir.path().join("data"));
    config.database_url = database_url;
    config.quick_tunnel_domain = Some("quick.example.com".into());
    // No zone may hold the quick-tunnel domain (the kit's default is example.com).
    config.zones = vec!["apps.example.com".into()];
    config.quick_tunnel_limit = 4;
    let server = TestServer::start_with(dir, config).await;
    let statuses = burst(&server, addr("127.0.0.2"), 40, "/quick-tunnels", &json!({})).await;
    assert_eq!(
        (
            count(&statuses, StatusCode::CREATED),
            count(&statuses, StatusCode::TOO_MANY_REQUESTS)
        ),
        (4, 36),
        "{statuses:?}"
    );
    let statuses = burst(&server, addr("127.0.0.3"), 1, "/quick-tunnels", &json!({})).await;
    assert_eq!(
        statuses,
        [StatusCode::CREATED],
        "another address has its own limit"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_quick_tunnel_requests_makes_exactly_the_limit_on_sqlite() {
    quick_tunnel_burst(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_quick_tunnel_requests_makes_exactly_the_limit_on_postgres() {
    quick_tunnel_burst(Db::Postgres).await;
}

async fn device_login_bursts(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let start = json!({"client": "burst"});
    let statuses = burst(&server, addr("127.0.0.2"), 30, "/auth/device", &start).await;
    assert_eq!(
        (
            count(&statuses, StatusCode::OK),
            count(&statuses, StatusCode::TOO_MANY_REQUESTS)
        ),
        (10, 20),
        "one address holds ten pending logins: {statuses:?}"
    );

    // A hundred addresses of one network, each asking until refused, together hold no
    // more than the network's share, and leave the rest of the server to everyone else.
    let held: usize = stream::iter(3..=102)
        .map(|host| {
            let (server, start) = (&server, &start);
            async move {
                let from = addr(&format!("127.0.0.{host}"));
                let statuses = burst(server, from, 11, "/auth/device", start).await;
                count(&statuses, StatusCode::OK)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(held, 30 - 10, "127.0.0.0/24 holds 30 pending logins in all");
    let statuses = burst(&server, addr("127.0.1.1"), 1, "/auth/device", &start).await;
    assert_eq!(
        statuses,
        [StatusCode::OK],
        "another network is not locked out"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_limits_hold_under_bursts_on_sqlite() {
    device_login_bursts(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_limits_hold_under_bursts_on_postgres() {
    device_login_bursts(Db::Postgres).await;
}
