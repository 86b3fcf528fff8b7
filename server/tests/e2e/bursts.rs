//! Limits under concurrent bursts: each is counted atomically, so a burst gets exactly what
//! one request at a time would. Clients speak from addresses in 127.0.0.0/8 (all reach the
//! server on 127.0.0.1).

use std::net::IpAddr;

use futures_util::future::join_all;
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
    join_all(calls).await.into_iter().map(|(s, _, _)| s).collect()
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
