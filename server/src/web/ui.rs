//! The dashboard's browser bundle (`cargo xtask ui` builds it): its files are served as
//! `/pkg/*` from the UI directory, and pages load it only when it is there.

use std::{
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use axum::{
    extract::Path as UrlPath,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// The files a page loads: wasm-bindgen's JavaScript glue, which fetches the wasm.
const BUNDLE: [&str; 2] = ["dash.js", "dash_bg.wasm"];

#[derive(Debug, Clone)]
pub(crate) struct Ui {
    /// `<ui dir>/pkg`, when there is a UI directory at all.
    pkg: Option<PathBuf>,
}

impl Ui {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self {
            pkg: dir.map(|dir| dir.join("pkg")),
        }
    }

    /// Whether the bundle is there now. Asked for every page, so a bundle built while the
    /// server runs is used from the next page on.
    pub(crate) fn has_bundle(&self) -> bool {
        self.pkg
            .as_deref()
            .is_some_and(|pkg| BUNDLE.iter().all(|file| pkg.join(file).is_file()))
    }

    /// Says once, at start, when pages will have no client behaviour.
    pub(crate) fn warn_if_missing(&self) {
        if self.has_bundle() {
            tracing::info!(dir = %self.pkg_display(), "serving the dashboard's browser bundle");
        } else {
            tracing::warn!(
                dir = %self.pkg_display(),
                "no dashboard bundle (dash.js, dash_bg.wasm) found: pages are served \
                 server-rendered only, without live updates; build it with `cargo xtask ui` \
                 or point --ui-dir at one"
            );
        }
    }

    fn pkg_display(&self) -> String {
        self.pkg
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string())
    }

    /// `GET /pkg/{path}`: a bundle file with its content type, revalidated on every use
    /// (the names carry no hash, so a rebuilt bundle must not be taken from a cache).
    pub(crate) async fn serve(&self, path: &str, request: &HeaderMap) -> Response {
        let Some((file, content_type)) = self
            .pkg
            .as_deref()
            .and_then(|pkg| Some((pkg.join(relative(path)?), content_type(path)?)))
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let Ok(meta) = tokio::fs::metadata(&file).await else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let etag = etag(&meta);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, value);
        }
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        match tokio::fs::read(&file).await {
            Ok(bytes) => (headers, bytes).into_response(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "could not read a bundle file");
                StatusCode::NOT_FOUND.into_response()
            }
        }
    }
}

/// The handler for `/pkg/{*path}`.
pub(crate) async fn pkg(
    axum::Extension(ui): axum::Extension<std::sync::Arc<Ui>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    ui.serve(&path, &headers).await
}

/// `path` as a path under `pkg/`, when every segment is a plain name: no `..`, no hidden
/// files, no separators or drive letters of any platform.
fn relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for segment in path.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

/// Only what wasm-bindgen writes is served: the glue (and snippets), the wasm, CSS.
fn content_type(path: &str) -> Option<&'static str> {
    match Path::new(path).extension()?.to_str()? {
        "js" => Some("text/javascript; charset=utf-8"),
        "wasm" => Some("application/wasm"),
        "css" => Some("text/css; charset=utf-8"),
        _ => None,
    }
}

/// Size and modification time: a rebuilt file gets a new tag.
fn etag(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{modified:x}\"", meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_under_pkg_are_served() {
        assert_eq!(relative("dash.js"), Some(PathBuf::from("dash.js")));
        assert_eq!(
            relative("snippets/leptos-1a2b/inline0.js"),
            Some(PathBuf::from("snippets/leptos-1a2b/inline0.js"))
        );
        for bad in [
            "",
            "../secret.js",
            "a/../../b.js",
            ".hidden.js",
            "a//b.js",
            "/etc/passwd",
            "a\\b.js",
            "c:x.js",
            "dash%2e.js",
        ] {
            assert_eq!(relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("dash_bg.wasm"), Some("application/wasm"));
        assert_eq!(
            content_type("dash.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type("dash.css"), Some("text/css; charset=utf-8"));
        assert_eq!(content_type("dash.d.ts"), None);
        assert_eq!(content_type("README"), None);
    }

    #[tokio::test]
    async fn serves_the_bundle_and_revalidates_by_etag() {
        let dir = tempfile::tempdir().unwrap();
        let ui = Ui::new(Some(dir.path().to_path_buf()));
        assert!(!ui.has_bundle());
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/dash.js"), "export default 1;").unwrap();
        std::fs::write(dir.path().join("pkg/dash_bg.wasm"), b"\0asm").unwrap();
        assert!(ui.has_bundle());

        let first = ui.serve("dash_bg.wasm", &HeaderMap::new()).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let second = ui.serve("dash_bg.wasm", &again).await;
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);

        for missing in ["nope.js", "../pkg/dash.js", "dash.txt"] {
            let r = ui.serve(missing, &HeaderMap::new()).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
        }
        let none = Ui::new(None);
        assert!(!none.has_bundle());
        let r = none.serve("dash.js", &HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
