//! `GET /download/adit[?arch=ARCH]`: the connector binary this server was shipped with
//! (for Linux on `arch`, as `uname -m` prints it), so the dashboard's install commands can
//! fetch a connector that speaks exactly this server's protocol from the server itself.

use std::path::{Path, PathBuf};

use axum::{
    body::Body,
    extract::Query,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

/// The connector's file name on this platform (`adit`, `adit.exe`).
fn file_name() -> String {
    format!("adit{}", std::env::consts::EXE_SUFFIX)
}

/// A connector build for another Linux machine: `adit-linux-<arch>`, put beside
/// adit-server by the release (e.g. `adit-linux-aarch64` next to an x86_64 server).
fn linux_file_name(arch: &str) -> String {
    format!("adit-linux-{arch}")
}

/// `?arch=` as `uname -m` prints it (or Debian's spelling), as Rust names it.
fn known_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "amd64" => Some("x86_64"),
        "aarch64" | "arm64" => Some("aarch64"),
        _ => None,
    }
}

/// The folders the binaries are looked for in: beside the running executable, then its
/// parent (the same places the UI directory is looked for, so a cargo build's
/// `target/debug/deps/…` test binary finds `target/debug/adit`).
fn folders() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    let Some(beside) = exe.parent() else {
        return Vec::new();
    };
    [Some(beside), beside.parent()]
        .into_iter()
        .flatten()
        .map(Path::to_path_buf)
        .collect()
}

/// The connector to offer: for Linux on `arch` when given (this server's own when it runs
/// there, else an `adit-linux-<arch>` beside it), else this server's own.
fn adit_path(arch: Option<&str>) -> Option<PathBuf> {
    let own = (arch.is_none()
        || (std::env::consts::OS == "linux" && arch == Some(std::env::consts::ARCH)))
    .then(file_name);
    let names = own.into_iter().chain(arch.map(linux_file_name));
    let names: Vec<String> = names.collect();
    folders()
        .into_iter()
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|file| file.is_file())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DownloadQuery {
    /// The machine's architecture, as `uname -m` prints it.
    arch: Option<String>,
}

/// Streams the `adit` binary as an attachment; 404 with what to do when the server was
/// installed without it (or without one for the architecture asked for).
pub(crate) async fn adit(Query(query): Query<DownloadQuery>) -> Response {
    let arch = match query.arch.as_deref().map(|a| (a, known_arch(a))) {
        None => None,
        Some((_, Some(arch))) => Some(arch),
        Some((asked, None)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "No connector is built for the architecture {asked:?}: x86_64 and aarch64 \
                     Linux are; elsewhere build it from source (cargo build --release -p adit-agent).\n"
                ),
            )
                .into_response();
        }
    };
    let missing = || {
        let what = arch.map_or_else(file_name, |arch| format!("connector for Linux on {arch}"));
        (
            StatusCode::NOT_FOUND,
            format!(
                "This server has no {what} to offer: build it from source on that machine \
                 (cargo build --release -p adit-agent), or put it next to adit-server{}.\n",
                arch.map(|a| format!(" as {}", linux_file_name(a)))
                    .unwrap_or_default()
            ),
        )
            .into_response()
    };
    let Some(path) = adit_path(arch) else {
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
