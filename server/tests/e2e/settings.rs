//! The dashboard's Settings pages over HTTP: each needs a session, shows the session's
//! account only, and tells roles other than admin what they cannot see instead of failing.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::kit::*;

const PAGES: [&str; 5] = [
    "/settings/zones",
    "/settings/tokens",
    "/settings/users",
    "/settings/audit",
    "/settings/nodes",
];

/// A REST call with an API token that must succeed; the answer's JSON.
async fn call(server: &TestServer, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = bearer(server, token, method, path, Some(body)).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_settings_page_needs_a_session() {
    let server = TestServer::spawn().await;
    for path in PAGES {
        for cookie in [None, Some("adit_session=forged")] {
            let (status, headers, _) = web(&server, cookie, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{path} {cookie:?}");
            let next = path.replace('/', "%2F");
            assert_eq!(headers["location"], format!("/login?next={next}").as_str());
        }
    }
    let cookie = admin_session_cookie(&server).await;
    let (status, headers, _) = web(&server, Some(&cookie), Method::GET, "/settings", None).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers["location"], "/settings/zones");
    let (status, _, _) = web(
        &server,
        Some(&cookie),
        Method::GET,
        "/settings/nothing-here",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in PAGES {
        let (status, _, html) = web(&server, Some(&cookie), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(html.contains(r#"aria-current="page""#), "{path}: {html}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_pages_show_the_sessions_account_and_nothing_of_another() {
    let server = TestServer::spawn().await;
    let cookie = admin_session_cookie(&server).await;
    let a = server.admin_token.clone();
    call(
        &server,
        &a,
        Method::POST,
        "/zones",
        json!({"name": "a-zone.dev"}),
    )
    .await;
    call(
        &server,
        &a,
        Method::POST,
        "/tokens",
        json!({"name": "a-robot", "scopes": ["read"]}),
    )
    .await;
    call(
        &server,
        &a,
        Method::POST,
        "/users",
        json!({"email": "a-user@example.com", "role": "member"}),
    )
    .await;

    // Another account with its own zone, token and user, and audit entries for them.
    let b = admin_of_account(&server, "other", "b-admin@example.net").await;
    call(
        &server,
        &b,
        Method::POST,
        "/zones",
        json!({"name": "b-zone.net"}),
    )
    .await;
    call(
        &server,
        &b,
        Method::POST,
        "/tokens",
        json!({"name": "b-robot", "scopes": ["read"]}),
    )
    .await;
    call(
        &server,
        &b,
        Method::POST,
        "/users",
        json!({"email": "b-user@example.net", "role": "viewer"}),
    )
    .await;
    let b_zone = call(&server, &b, Method::GET, "/zones", Value::Null).await;
    let b_zone_id = b_zone[0]["id"].as_str().unwrap().to_owned();

    let pages = [
        ("/settings/zones", vec!["a-zone.dev", "example.com"]),
        ("/settings/tokens", vec!["a-robot"]),
        ("/settings/users", vec!["a-user@example.com"]),
        ("/settings/audit", vec!["/api/v1/users", "/api/v1/tokens"]),
    ];
    for (path, own) in pages {
        let (status, _, html) = web(&server, Some(&cookie), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        for text in own {
            assert!(html.contains(text), "{path} lacks {text}: {html}");
        }
        for theirs in [
            "b-zone.net",
            &b_zone_id,
            "b-robot",
            "b-user@example.net",
            "b-admin@example.net",
        ] {
            assert!(
                !html.contains(theirs),
                "{path} shows {theirs} of another account: {html}"
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_roles_read_zones_and_are_told_what_needs_an_admin() {
    let server = TestServer::spawn().await;
    let a = server.admin_token.clone();
    call(
        &server,
        &a,
        Method::POST,
        "/tokens",
        json!({"name": "secret-robot", "scopes": ["read"]}),
    )
    .await;
    let user = call(
        &server,
        &a,
        Method::POST,
        "/users",
        json!({"email": "m@example.com", "role": "member"}),
    )
    .await;
    let cookie = session_cookie(&server, "m@example.com", user["password"].as_str().unwrap()).await;

    let (status, _, zones) =
        web(&server, Some(&cookie), Method::GET, "/settings/zones", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(zones.contains(">example.com</th>"), "{zones}");
    assert!(
        !zones.contains("Add a zone") && !zones.contains(">Delete<"),
        "{zones}"
    );
    // The navigation marks what needs an admin.
    assert_eq!(zones.matches(r#"data-needs="admin""#).count(), 3, "{zones}");
    for path in ["/settings/tokens", "/settings/users", "/settings/audit"] {
        let (status, _, html) = web(&server, Some(&cookie), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(html.contains("An admin role is needed"), "{path}: {html}");
        for hidden in ["secret-robot", "<table", "/api/v1/tokens"] {
            assert!(!html.contains(hidden), "{path} shows {hidden}: {html}");
        }
    }
    server.shutdown().await;
}
