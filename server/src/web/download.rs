//! `GET /download/adit`: the connector binary this server was shipped with, so the
//! dashboard's install commands can fetch a connector that speaks exactly this server's
//! protocol from the server itself.

use std::path::PathBuf;

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio_util::io::ReaderStream;

/// The connector's file name on this platform (`adit`, `adit.exe`).
fn file_name() -> String {
    format!("adit{}", std::env::consts::EXE_SUFFIX)
}

/// Where the `adit` binary is looked for: beside the running executable, then in its
/// parent directory (the same places the UI directory is looked for, so a cargo build's
/// `target/debug/deps/…` test binary finds `target/debug/adit`).
pub(crate) fn adit_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?;
    [Some(beside), beside.parent()]
        .into_iter()
        .flatten()
        .map(|dir| dir.join(file_name()))
        .find(|file| file.is_file())
}

/// Streams the `adit` binary as an attachment; 404 with what to do when the server was
/// installed without it.
pub(crate) async fn adit() -> Response {
    let missing = || {
        (
            StatusCode::NOT_FOUND,
            format!(
                "This server has no {} binary to offer: install it next to adit-server \
                 (cargo build --release -p adit-agent builds it), or build the connector \
                 from source.\n",
                file_name()
            ),
        )
            .into_response()
    };
    let Some(path) = adit_path() else {
        return missing();
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not open the adit binary");
            return missing();
        }
    };
    let length = file.metadata().await.ok().map(|m| m.len());
    let disposition = format!("attachment; filename=\"{}\"", file_name());
    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}
