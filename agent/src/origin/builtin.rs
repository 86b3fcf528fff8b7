//! The services the connector answers from its rules alone, without an origin:
//! `http_status:NNN` and the `hello_world` page.

use adit_transport::headers::CLIENT_ADDR;
use http::{HeaderValue, Request, Response, StatusCode, header};

use super::body::{ProxyBody, empty, full};

/// `http_status:NNN`: that status and an empty body.
pub(super) fn status(code: u16) -> Response<ProxyBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    response
}

/// `hello_world`: a page that names the host, the path and the visitor.
pub(super) fn hello_world(req: &Request<ProxyBody>) -> Response<ProxyBody> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let client = req
        .headers()
        .get(&CLIENT_ADDR)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Adit: hello world</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto\">\
         <h1>Congrats! Your Adit tunnel works.</h1>\
         <p>This page is served by the connector's built-in <code>hello_world</code> service.</p>\
         <ul><li>Host: {}</li><li>Path: {}</li><li>Visitor: {}</li></ul></body></html>",
        escape(&host),
        escape(req.uri().path()),
        escape(client)
    );
    let mut response = Response::new(full(page));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
