//! The tunnel list in pages, searched on the server: `GET /api/v1/tunnels?page=&per_page=&name=`
//! and gRPC `ListTunnels` with the same fields, counted within the caller's account only.

use adit_core::api::ConfigSource;
use adit_proto::v1::{self as pb, tunnel_service_client::TunnelServiceClient};
use http::{Method, StatusCode};
use serde_json::Value;

use crate::kit::*;

#[tokio::test]
async fn tunnels_list_in_pages_with_search_on_sqlite() {
    tunnels_list_in_pages(Db::Sqlite).await;
}

#[tokio::test]
async fn tunnels_list_in_pages_with_search_on_postgres() {
    tunnels_list_in_pages(Db::Postgres).await;
}

/// The names of a page's tunnels and its `result_info`.
fn page_of(body: &Value) -> (Vec<String>, Value) {
    let names = body["result"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    (names, body["result_info"].clone())
}

fn info(page: u32, per_page: u32, count: u32, total: u64) -> Value {
    serde_json::json!({"page": page, "per_page": per_page, "count": count, "total_count": total})
}

async fn tunnels_list_in_pages(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let admin = server.admin_token.clone();
    let mine = server
        .control
        .storage
        .ensure_account("default")
        .await
        .unwrap();
    // 45 tunnels: "t-00"…"t-41" and three web ones, one routed. (Names whose order is the
    // same by bytes and by a PostgreSQL locale's collation.)
    let mut names: Vec<String> = (0..42).map(|n| format!("t-{n:02}")).collect();
    names.extend(["old_web", "web-a", "web-b"].map(String::from));
    for name in &names {
        server
            .control
            .create_tunnel(mine, name, ConfigSource::Local)
            .await
            .unwrap();
    }
    server
        .control
        .create_route(mine, "t-01", "one.example.com")
        .await
        .unwrap();
    // Another account, with tunnels whose names would match the searches below.
    let theirs = server
        .control
        .storage
        .ensure_account("other")
        .await
        .unwrap();
    for name in ["t-99", "web-theirs", "zzz"] {
        server
            .control
            .create_tunnel(theirs, name, ConfigSource::Local)
            .await
            .unwrap();
    }
    let total = names.len() as u64;
    let mut sorted = names.clone();
    sorted.sort();
    let list = |query: &str| {
        let (server, admin) = (&server, admin.clone());
        let path = format!("/tunnels{query}");
        async move {
            let (status, body) = bearer(server, &admin, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };

    // The default page size, pages counted from 1 by name.
    let (first, first_info) = page_of(&list("?page=1").await);
    assert_eq!(first, sorted[..20]);
    assert_eq!(first_info, info(1, 20, 20, total));
    let (last, last_info) = page_of(&list("?page=3&per_page=20").await);
    assert_eq!(last, sorted[40..]);
    assert_eq!(last_info, info(3, 20, 5, total));
    let (beyond, beyond_info) = page_of(&list("?page=9").await);
    assert!(beyond.is_empty());
    assert_eq!(beyond_info, info(9, 20, 0, total));
    // Page 0 is the first; the page size is capped.
    let (_, capped) = page_of(&list("?page=0&per_page=5000").await);
    assert_eq!(capped, info(1, 1000, 45, total));
    // A page carries its tunnels' routes.
    let body = list("?per_page=3").await;
    assert_eq!(body["result"][2]["name"], "t-01");
    assert_eq!(body["result"][2]["routes"][0], "one.example.com");

    // Search: any case, anywhere in the name, within the account only.
    let (found, found_info) = page_of(&list("?name=WEB").await);
    assert_eq!(found, ["old_web", "web-a", "web-b"]);
    assert_eq!(found_info, info(1, 20, 3, 3));
    let (found, found_info) = page_of(&list("?name=web&per_page=2&page=2").await);
    assert_eq!(found, ["web-b"]);
    assert_eq!(found_info, info(2, 2, 1, 3));
    // LIKE's wildcards are searched for as themselves.
    let (found, _) = page_of(&list("?name=_").await);
    assert_eq!(found, ["old_web"]);
    let (found, found_info) = page_of(&list("?name=%25").await);
    assert!(found.is_empty());
    assert_eq!(found_info, info(1, 20, 0, 0));
    let (found, found_info) = page_of(&list("?name=zzz").await);
    assert!(found.is_empty(), "another account's tunnel: {found:?}");
    assert_eq!(found_info["total_count"], 0);

    // Without page, per_page or name: the whole list as before, an array.
    let all = list("").await;
    assert_eq!(all.as_array().map(Vec::len), Some(names.len()));

    // gRPC: the same pages.
    let mut grpc = TunnelServiceClient::connect(format!("http://{}", server.api))
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::ListTunnelsRequest {
        page: 2,
        per_page: 10,
        name: "t-".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let listed = grpc.list_tunnels(request).await.unwrap().into_inner();
    let got: Vec<_> = listed.tunnels.iter().map(|t| t.name.clone()).collect();
    let t_names: Vec<_> = sorted.iter().filter(|n| n.starts_with("t-")).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), t_names[10..20]);
    assert_eq!(
        listed.result_info,
        Some(pb::ResultInfo {
            page: 2,
            per_page: 10,
            count: 10,
            total_count: 42,
        })
    );
    let mut request = tonic::Request::new(pb::ListTunnelsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let whole = grpc.list_tunnels(request).await.unwrap().into_inner();
    assert_eq!(
        (whole.tunnels.len(), whole.result_info),
        (names.len(), None)
    );
}
