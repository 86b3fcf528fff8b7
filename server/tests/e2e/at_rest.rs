//! Secrets at rest: the data directory is the owner's alone.

use std::{os::unix::fs::PermissionsExt, path::Path};

use http::{Method, StatusCode};

use crate::kit::*;

/// Every file and directory under `dir` (itself included) with its permission bits.
fn modes(dir: &Path) -> Vec<(String, bool, u32)> {
    let mut out = vec![(dir.display().to_string(), true, mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(modes(&path));
        } else {
            out.push((path.display().to_string(), false, mode(&path)));
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn assert_private(dir: &Path) {
    let wide: Vec<_> = modes(dir)
        .into_iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(path, _, mode)| format!("{path} {mode:o}"))
        .collect();
    assert!(wide.is_empty(), "not owner-only: {wide:?}");
}

async fn session_status(server: &TestServer, cookie: &str) -> StatusCode {
    api_request(
        server.api,
        Method::GET,
        "/auth/session",
        &[("cookie", cookie.to_owned())],
        None,
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_every_file_in_it_are_owner_only_from_the_first_start() {
    let server = TestServer::spawn().await;
    // A login writes to the database, so its -wal and -shm exist while it runs.
    admin_session_cookie(&server).await;
    let data = server.dir.path().join("data");
    for companion in ["adit.db-wal", "adit.db-shm", "server.key", "admin-token", "api-url"] {
        assert!(data.join(companion).exists(), "{companion} missing");
    }
    assert_private(&data);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_data_directory_is_tightened_at_start() {
    let server = TestServer::spawn().await;
    let cookie = admin_session_cookie(&server).await;
    let server = server
        .restart_with(|data| {
            // As an older release (or a restored copy) left it, with a backup beside.
            std::fs::write(data.join("adit.db.before-migration-1"), "a copy").unwrap();
            std::fs::create_dir(data.join("old")).unwrap();
            std::fs::write(data.join("old/admin-token"), "a copy").unwrap();
            for (path, is_dir, _) in modes(data) {
                let wide = if is_dir { 0o755 } else { 0o644 };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wide)).unwrap();
            }
        })
        .await;
    assert_private(&server.dir.path().join("data"));
    assert_eq!(
        session_status(&server, &cookie).await,
        StatusCode::OK,
        "a session outlives a restart"
    );
    server.shutdown().await;
}
