//! The answers the connector makes itself when it cannot serve a stream. Each carries
//! `adit-response-source: connector` and an `adit-error-code`, which the edge turns into its
//! own error page (and `adit access` into a message or a SOCKS reply code).

use adit_core::{
    ingress::OriginRequest,
    wire::{ConnectorError, HEADER_ERROR_CODE},
};
use adit_transport::headers::RESPONSE_SOURCE;
use http::{HeaderValue, Response, StatusCode, header};

use super::body::{ProxyBody, full};
use crate::Error;

/// An answer the connector made itself; the edge renders it for the visitor.
pub(super) fn connector_error(
    status: StatusCode,
    code: ConnectorError,
    message: String,
) -> Response<ProxyBody> {
    let mut response = Response::new(full(message));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(&RESPONSE_SOURCE, HeaderValue::from_static("connector"));
    headers.insert(HEADER_ERROR_CODE, HeaderValue::from_static(code.as_str()));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Names what went wrong reaching the origin, for the visitor's 502.
pub(super) fn origin_failure(
    origin: &str,
    settings: &OriginRequest,
    err: &(dyn std::error::Error + 'static),
) -> Response<ProxyBody> {
    let mut source = Some(err);
    let mut io_kind = None;
    let mut connecting = false;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
            connecting = true;
            break;
        }
        if matches!(e.downcast_ref::<Error>(), Some(Error::OriginDial(_)))
            || e.downcast_ref::<hyper_util::client::legacy::Error>()
                .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            connecting = true;
        }
        source = e.source();
    }
    let (code, message) = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => (
            ConnectorError::OriginRefused,
            format!("The origin {origin} refused the connection."),
        ),
        Some(std::io::ErrorKind::TimedOut) => (
            ConnectorError::OriginTimeout,
            format!(
                "The origin {origin} did not complete the connection within {:?} (connectTimeout + tlsTimeout).",
                settings.connect_timeout + settings.tls_timeout
            ),
        ),
        _ if connecting => (
            ConnectorError::OriginUnreachable,
            format!("Unable to reach the origin {origin}: {err}"),
        ),
        _ => (
            ConnectorError::OriginError,
            format!("The origin {origin} failed while answering: {err}"),
        ),
    };
    tracing::warn!(origin, %code, error = %err, "Unable to reach the origin service");
    connector_error(StatusCode::BAD_GATEWAY, code, message)
}
