//! The answers the edge makes itself: an HTML page for people, `{code, message, details}`
//! JSON for programs that ask for it, and the sentence a visitor is told when the
//! connector could not reach its origin.

use adit_core::{
    api::ApiError,
    wire::{ConnectorError, HEADER_ERROR_CODE},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::tunnel::{link::LinkBody, registry::TunnelBody};

/// Largest connector-made error body the edge reads to render its own page.
const MAX_ERROR_BODY: usize = 4096;

/// The code a connector gave its own error answer; one this build does not know (or none)
/// counts as `origin_error`.
pub(super) fn connector_error_code<B>(response: &Response<B>) -> ConnectorError {
    response
        .headers()
        .get(HEADER_ERROR_CODE)
        .and_then(|v| v.to_str().ok())
        .and_then(ConnectorError::parse)
        .unwrap_or(ConnectorError::OriginError)
}

pub(super) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"))
}

/// An error page the edge makes itself: JSON when asked for, HTML otherwise.
pub(super) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    json: bool,
) -> Response<TunnelBody> {
    error_response_with(status, code, message, serde_json::Value::Null, json)
}

/// An error page with JSON `details` (the HTML page shows only the message).
pub(super) fn error_response_with(
    status: StatusCode,
    code: &str,
    message: &str,
    details: serde_json::Value,
    json: bool,
) -> Response<TunnelBody> {
    let (content_type, body) = if json {
        let body = ApiError {
            code: code.to_owned(),
            message: message.to_owned(),
            details,
        };
        (
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    } else {
        let escape = |text: &str| {
            text.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let escaped = escape(message);
        let request = details
            .get("request_id")
            .and_then(serde_json::Value::as_str)
            .map(|id| format!(" · request {}", escape(id)))
            .unwrap_or_default();
        let title = status.canonical_reason().unwrap_or("Error");
        (
            "text/html; charset=utf-8",
            format!(
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{code} · {title}</title></head>\
                 <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;color:#1f2328\">\
                 <h1>{} {title}</h1><p>{escaped}</p><p style=\"color:#656d76\">Error code: {code}{request} · served by the Adit edge</p></body></html>",
                status.as_u16()
            )
            .into_bytes(),
        )
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn full(bytes: impl Into<Bytes>) -> TunnelBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The connector's own error answer, as the visitor sees it: its code, a request id and a
/// plain sentence. What the connector said (the origin's internal address, hints for the
/// operator) goes to the log under the same request id; the dashboard shows the code as
/// the connector's origin health.
pub(super) async fn connector_error(
    response: Response<LinkBody>,
    json: bool,
    host: &str,
) -> Response<TunnelBody> {
    let status = response.status();
    let code = connector_error_code(&response);
    let limited = http_body_util::Limited::new(response.into_body(), MAX_ERROR_BODY);
    let detail = match limited.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let request_id = format!("{:016x}", rand::random::<u64>());
    tracing::info!(%request_id, host, %code, detail, "the connector answered with an error");
    error_response_with(
        status,
        code.as_str(),
        &visitor_sentence(code, host),
        serde_json::json!({ "request_id": request_id }),
        json,
    )
}

/// What a visitor is told about a connector's error, for the name they asked for (a
/// hostname, or a private destination): nothing about the origin behind it.
fn visitor_sentence(code: ConnectorError, host: &str) -> String {
    match code {
        ConnectorError::OriginRefused => {
            format!("The service behind {host} refused the connection.")
        }
        ConnectorError::OriginTimeout => {
            format!("The service behind {host} did not answer in time.")
        }
        ConnectorError::OriginUnreachable
        | ConnectorError::OriginError
        | ConnectorError::OriginUpgradeFailed => {
            format!("The service behind {host} could not be reached.")
        }
        ConnectorError::TcpService => format!(
            "{host} serves a TCP service: reach it with `adit access tcp --hostname {host}` (or `adit access ssh`)."
        ),
        ConnectorError::NoConfiguration => "This tunnel has no configuration yet.".into(),
        ConnectorError::BadRequest
        | ConnectorError::WebsocketRequired
        | ConnectorError::BadDestination
        | ConnectorError::DestinationUnresolved
        | ConnectorError::DestinationNotRouted
        | ConnectorError::ConnectorInternal => "The tunnel could not serve this request.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_escape_and_speak_json() {
        let html = error_response(StatusCode::NOT_FOUND, "x", "<b>", false);
        assert_eq!(
            html.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let json = error_response(StatusCode::NOT_FOUND, "x", "m", true);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
    }
}
