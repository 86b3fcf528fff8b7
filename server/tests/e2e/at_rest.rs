//! Secrets at rest: the data directory is the owner's alone, and the database holds nothing
//! that signs a session (the keys are derived from `server.key`).

use std::{os::unix::fs::PermissionsExt, path::Path};

use base64::Engine;
use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use sqlx::{Column, Row};

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
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
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
    for companion in [
        "adit.db-wal",
        "adit.db-shm",
        "server.key",
        "admin-token",
        "api-url",
    ] {
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

/// Every value the signing-key table holds, as it is and decoded every way a key might
/// have been stored (base64, hex).
async fn stored_key_material(server: &TestServer) -> (Vec<String>, Vec<Vec<u8>>) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database_url())
        .await
        .unwrap();
    let rows = sqlx::query("SELECT * FROM signing_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(!rows.is_empty());
    let (mut ids, mut material) = (Vec::new(), Vec::new());
    for row in &rows {
        ids.push(row.try_get::<String, _>("id").unwrap());
        for column in row.columns() {
            let text = match row.try_get::<Option<String>, _>(column.ordinal()) {
                Ok(text) => text,
                Err(_) => row
                    .try_get::<Option<i64>, _>(column.ordinal())
                    .unwrap()
                    .map(|n| n.to_string()),
            };
            let Some(text) = text else { continue };
            material.push(text.as_bytes().to_vec());
            for engine in [
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                &base64::engine::general_purpose::STANDARD,
            ] {
                material.extend(engine.decode(&text).ok());
            }
            material.extend(hex::decode(&text).ok());
        }
    }
    (ids, material)
}

async fn a_copy_of_the_database_signs_no_session(db: Db) {
    let Some(server) = TestServer::spawn_on(db).await else {
        return;
    };
    let cookie = admin_session_cookie(&server).await;
    assert_eq!(session_status(&server, &cookie).await, StatusCode::OK);
    let payload = cookie
        .trim_start_matches("adit_session=")
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let (ids, material) = stored_key_material(&server).await;
    for kid in &ids {
        for key in &material {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.clone());
            let forged =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap();
            assert_eq!(
                session_status(&server, &format!("adit_session={forged}")).await,
                StatusCode::UNAUTHORIZED,
                "a session signed with {:?} from the database got in",
                String::from_utf8_lossy(key)
            );
        }
    }
    // The real session, signed with a key derived from server.key, survives a restart.
    let server = server.restart().await;
    assert_eq!(session_status(&server, &cookie).await, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_database_signs_no_session_on_sqlite() {
    a_copy_of_the_database_signs_no_session(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_database_signs_no_session_on_postgres() {
    a_copy_of_the_database_signs_no_session(Db::Postgres).await;
}
