//! `unix:` and `unix+tls:` origins: HTTP over a unix socket. Each request opens a new
//! connection (no pool: a local socket is cheap) within `connectTimeout`, then, with TLS,
//! a handshake within `tlsTimeout`, then one HTTP/1.1 exchange with upgrades allowed.

use std::sync::Arc;

use super::{
    body::{BoxError, ProxyBody},
    pool,
};
use adit_core::ingress::OriginRequest;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

/// Sends `request` to the socket at `path`.
pub(super) async fn send(
    path: &str,
    tls: bool,
    settings: &OriginRequest,
    request: Request<ProxyBody>,
) -> Result<Response<Incoming>, BoxError> {
    let dial = tokio::net::UnixStream::connect(path);
    let stream = tokio::time::timeout(settings.connect_timeout, dial)
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "unix socket connect timed out",
            )
        })??;
    if !tls {
        return exchange(stream, request).await;
    }
    let config = adit_transport::tls::origin_client_config(
        settings.ca_pool.as_deref().map(std::path::Path::new),
        settings.no_tls_verify,
    )?;
    let name = settings
        .origin_server_name
        .as_deref()
        .unwrap_or("localhost");
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(adit_transport::tls::server_name(name)?, stream);
    let stream = tokio::time::timeout(settings.tls_timeout, handshake)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
        })??;
    exchange(stream, request).await
}

/// One HTTP/1.1 exchange on a connection of our own (upgrades allowed).
async fn exchange<IO>(io: IO, request: Request<ProxyBody>) -> Result<Response<Incoming>, BoxError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut sender = pool::handshake(TokioIo::new(io)).await?;
    Ok(sender.send_request(request).await?)
}
