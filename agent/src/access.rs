//! `adit access`: the client side of non-HTTP services. Each TCP connection rides in its own
//! connection to the edge, asking for the service's hostname with an HTTP/1.1 upgrade to
//! `adit-tcp`, after which the bytes go as they are, half-close included; the connector on
//! the far side joins them to the origin socket. An edge or connector of an earlier release
//! takes a WebSocket instead (see `bridge` for its framing and half-close), and so does a
//! private-network stream (`adit access socks`).

use std::{net::SocketAddr, path::PathBuf};

use http::{HeaderValue, header};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_tungstenite::{WebSocketStream, tungstenite::client::IntoClientRequest};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Error, api_client::ApiCredentials, bridge::bridge};
use adit_core::wire::{ConnectorError, UPGRADE_RAW_TCP};
use adit_transport::workers::{self, Spread, Workers};
use http_body_util::BodyExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

/// Each read of the WebSocket is a read of the socket to the edge: 16 KiB, a TLS record.
const WEBSOCKET_READ_BUFFER: usize = 16 * 1024;
/// Each direction of a raw stream copies through a buffer of this size: a TLS record.
const RAW_BUFFER: usize = 16 * 1024;

/// Any byte stream a WebSocket can run over (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where WebSockets go: the edge's address, and the hostname asked for there.
#[derive(Debug, Clone)]
pub struct EdgeTarget {
    edge: url::Url,
    hostname: String,
    ca_file: Option<PathBuf>,
}

impl EdgeTarget {
    /// `edge` defaults to `https://HOSTNAME`, as when the hostname resolves to the edge.
    /// With TLS the edge must prove it is HOSTNAME, verified against `ca_file` (PEM, e.g.
    /// the server's `ca.pem`) or the system roots.
    pub fn new(
        hostname: &str,
        edge: Option<&str>,
        ca_file: Option<PathBuf>,
    ) -> Result<Self, Error> {
        let edge = edge.map_or_else(|| format!("https://{hostname}"), str::to_owned);
        let edge = url::Url::parse(&edge)
            .map_err(|e| Error::Usage(format!("--edge {edge:?} is not a URL: {e}")))?;
        if !matches!(edge.scheme(), "http" | "https" | "ws" | "wss") || edge.host_str().is_none() {
            return Err(Error::Usage(format!(
                "--edge {edge} must be an http:// or https:// URL"
            )));
        }
        Ok(Self {
            edge,
            hostname: hostname.to_owned(),
            ca_file,
        })
    }

    fn tls(&self) -> bool {
        matches!(self.edge.scheme(), "https" | "wss")
    }

    /// The edge's host and port.
    fn host_port(&self) -> (&str, u16) {
        let host = self
            .edge
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = self
            .edge
            .port_or_known_default()
            .unwrap_or(if self.tls() { 443 } else { 80 });
        (host, port)
    }

    fn unreachable(&self, message: String) -> Error {
        Error::Unreachable {
            url: self.edge.to_string(),
            message,
        }
    }

    /// A connection to the edge, in TLS for an `https://` edge.
    async fn connect(&self) -> Result<Box<dyn Io>, Error> {
        let (host, port) = self.host_port();
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        tcp.set_nodelay(true)?;
        if !self.tls() {
            return Ok(Box::new(tcp));
        }
        let config = adit_transport::tls::origin_client_config(self.ca_file.as_deref(), false)?;
        // The service's name, not the edge's address: the edge serves each routed hostname
        // its own certificate.
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(adit_transport::tls::server_name(&self.hostname)?, tcp)
            .await
            .map_err(|e| self.unreachable(format!("TLS handshake failed: {e}")))?;
        Ok(Box::new(tls))
    }

    fn host_header(&self) -> Result<HeaderValue, Error> {
        HeaderValue::from_str(&self.hostname)
            .map_err(|_| Error::Usage(format!("{:?} is not a hostname", self.hostname)))
    }

    /// Opens one stream to the service: raw (`Upgrade: adit-tcp`, the connection's bytes
    /// as they are after the 101), or, where the edge or the connector is of a release
    /// before it, a WebSocket.
    pub async fn stream(&self) -> Result<AccessStream, Error> {
        match self.raw().await {
            Err(Error::Api { code, .. })
                if ConnectorError::parse(&code) == Some(ConnectorError::TcpService) =>
            {
                tracing::debug!("the edge or connector takes no raw streams; using a WebSocket");
                Ok(AccessStream::WebSocket(Box::new(
                    self.websocket("/", None).await?,
                )))
            }
            other => other.map(AccessStream::Raw),
        }
    }

    /// An HTTP/1.1 upgrade to `adit-tcp`, and the upgraded connection.
    async fn raw(&self) -> Result<TokioIo<Upgraded>, Error> {
        let io = self.connect().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        tokio::spawn(
            async move {
                if let Err(e) = connection.with_upgrades().await {
                    tracing::debug!(error = %e, "connection to the edge ended");
                }
            }
            .instrument(tracing::debug_span!("edge_connection")),
        );
        let request = http::Request::get("/")
            .header(header::HOST, self.host_header()?)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, UPGRADE_RAW_TCP)
            // Errors then come back as JSON, which we show as a sentence.
            .header(header::ACCEPT, "application/json")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| Error::Usage(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(response)
                .await
                .map_err(|e| self.unreachable(e.to_string()))?;
            return Ok(TokioIo::new(upgraded));
        }
        let status = response.status().as_u16();
        // An error page is small; a larger body is not ours to read whole.
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        Err(api_error(status, &body))
    }

    /// Opens one WebSocket at `path` (which may carry a query).
    pub async fn websocket(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<WebSocketStream<Box<dyn Io>>, Error> {
        let io = self.connect().await?;
        let (host, port) = self.host_port();
        let scheme = if self.tls() { "wss" } else { "ws" };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("{scheme}://{authority}{path}")
            .into_client_request()
            .map_err(|e| Error::Usage(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.host_header()?);
        // Errors then come back as JSON, which we show as a sentence.
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = bearer
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(header::AUTHORIZATION, value);
        }
        let config = crate::bridge::websocket_config(WEBSOCKET_READ_BUFFER);
        match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(api_error(
                response.status().as_u16(),
                response.body().as_deref().unwrap_or_default(),
            )),
            Err(e) => Err(self.unreachable(e.to_string())),
        }
    }
}

/// The edge's error answer (`status`, its JSON `body`) as an error that says it.
fn api_error(status: u16, body: &[u8]) -> Error {
    let error: adit_core::api::ApiError =
        serde_json::from_slice(body).unwrap_or(adit_core::api::ApiError {
            code: "http_error".into(),
            message: format!(
                "the edge answered {status}: {}",
                String::from_utf8_lossy(body)
            ),
            details: serde_json::Value::Null,
        });
    Error::Api {
        status,
        code: error.code,
        message: error.message,
    }
}

/// One stream to a TCP service, as the edge took it.
pub enum AccessStream {
    Raw(TokioIo<Upgraded>),
    // Boxed: the codec's state is large, and the raw stream is the common case.
    WebSocket(Box<WebSocketStream<Box<dyn Io>>>),
}

impl AccessStream {
    /// Joins the stream to `local` until both directions have ended; a half-close goes
    /// through either way.
    pub async fn join<T: AsyncRead + AsyncWrite + Unpin>(
        self,
        mut local: T,
    ) -> std::io::Result<()> {
        match self {
            Self::Raw(mut edge) => {
                tokio::io::copy_bidirectional_with_sizes(
                    &mut local, &mut edge, RAW_BUFFER, RAW_BUFFER,
                )
                .await?;
            }
            Self::WebSocket(ws) => {
                bridge(*ws, local).await?;
            }
        }
        Ok(())
    }
}

/// `adit access ssh` without `--url`: one connection on stdin/stdout, for OpenSSH's
/// `ProxyCommand`.
pub async fn stdio(target: &EdgeTarget) -> Result<(), Error> {
    let stream = target.stream().await?;
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    stream.join(stdio).await?;
    Ok(())
}

/// `adit access tcp --url ADDR`: every connection accepted on `listener` becomes its own
/// stream to the service.
pub async fn serve_tcp(
    listener: TcpListener,
    target: EdgeTarget,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    tracing::info!(listen = %listener.local_addr()?, hostname = %target.hostname, "Start Websocket listener");
    // Each connection and its stream to the edge run on one worker thread, the one with
    // the fewest connections.
    let workers = Workers::start_configured("adit-access")?;
    let spread = Spread::new(&workers);
    loop {
        let (local, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let _ = local.set_nodelay(true);
        let target = target.clone();
        let session = workers::moved(local, |local| async move {
            match target.stream().await {
                Ok(stream) => {
                    if let Err(e) = stream.join(local).await {
                        tracing::debug!(error = %e, "stream ended with an error");
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not open a stream to the service"),
            }
        })?;
        let placed = spread.place();
        workers.handle(placed.worker()).spawn(
            async move {
                let _placed = placed;
                if let Err(e) = session.await {
                    tracing::debug!(error = %e, "could not hand a connection to its worker");
                }
            }
            .instrument(tracing::info_span!("access", %peer)),
        );
    }
}

/// SOCKS5 reply codes (RFC 1928 §6).
mod reply {
    pub(super) const SUCCEEDED: u8 = 0x00;
    pub(super) const GENERAL_FAILURE: u8 = 0x01;
    pub(super) const NOT_ALLOWED: u8 = 0x02;
    pub(super) const NETWORK_UNREACHABLE: u8 = 0x03;
    pub(super) const HOST_UNREACHABLE: u8 = 0x04;
    pub(super) const CONNECTION_REFUSED: u8 = 0x05;
    pub(super) const TTL_EXPIRED: u8 = 0x06;
    pub(super) const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub(super) const ADDRESS_NOT_SUPPORTED: u8 = 0x08;
}

/// `adit access socks`: a SOCKS5 proxy (CONNECT, no authentication — bind it to loopback)
/// whose connections go to the tunnel that routes their destination.
pub async fn serve_socks(
    listener: TcpListener,
    api: ApiCredentials,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    tracing::info!(listen = %listener.local_addr()?, "SOCKS5 proxy listening");
    let api_url =
        url::Url::parse(&api.url).map_err(|e| Error::Usage(format!("{}: {e}", api.url)))?;
    let api_host = api_url.host_str().unwrap_or_default().to_owned();
    let target = EdgeTarget::new(&api_host, Some(&api.url), None)?;
    loop {
        let (local, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let _ = local.set_nodelay(true);
        let (target, token) = (target.clone(), api.token.clone());
        tokio::spawn(
            async move {
                if let Err(e) = socks_session(local, &target, &token).await {
                    tracing::info!(error = %e, "SOCKS session failed");
                }
            }
            .instrument(tracing::info_span!("socks", %peer)),
        );
    }
}

async fn socks_reply(local: &mut TcpStream, code: u8) -> std::io::Result<()> {
    local.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await
}

/// Reads the destination of one SOCKS5 CONNECT, answering the greeting on the way.
async fn socks_destination(local: &mut TcpStream) -> Result<Result<String, u8>, Error> {
    let mut head = [0u8; 2];
    local.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(Error::Usage("not a SOCKS5 client".into()));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    local.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        local.write_all(&[5, 0xFF]).await?;
        return Err(Error::Usage(
            "the SOCKS client offers no method we speak (no authentication)".into(),
        ));
    }
    local.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    local.read_exact(&mut request).await?;
    if request[1] != 1 {
        return Ok(Err(reply::COMMAND_NOT_SUPPORTED));
    }
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            local.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let len = local.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            local.read_exact(&mut name).await?;
            String::from_utf8(name)
                .map_err(|_| Error::Usage("the destination name is not UTF-8".into()))?
        }
        4 => {
            let mut ip = [0u8; 16];
            local.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return Ok(Err(reply::ADDRESS_NOT_SUPPORTED)),
    };
    let port = local.read_u16().await?;
    Ok(Ok(format!("{host}:{port}")))
}

async fn socks_session(
    mut local: TcpStream,
    target: &EdgeTarget,
    token: &str,
) -> Result<(), Error> {
    let destination = match socks_destination(&mut local).await? {
        Ok(d) => d,
        Err(code) => {
            socks_reply(&mut local, code).await?;
            return Ok(());
        }
    };
    let path = format!(
        "/api/v1/private/connect?destination={}",
        url::form_urlencoded::byte_serialize(destination.as_bytes()).collect::<String>()
    );
    match target.websocket(&path, Some(token)).await {
        Ok(ws) => {
            socks_reply(&mut local, reply::SUCCEEDED).await?;
            tracing::info!(%destination, "SOCKS connection opened");
            bridge(ws, local).await?;
            Ok(())
        }
        Err(e) => {
            let code = match &e {
                Error::Api { code, status, .. } => match ConnectorError::parse(code) {
                    Some(ConnectorError::DestinationNotRouted) => reply::NOT_ALLOWED,
                    _ if *status == 404 => reply::NETWORK_UNREACHABLE,
                    Some(ConnectorError::OriginRefused) => reply::CONNECTION_REFUSED,
                    Some(ConnectorError::OriginTimeout) => reply::TTL_EXPIRED,
                    Some(
                        ConnectorError::DestinationUnresolved | ConnectorError::OriginUnreachable,
                    ) => reply::HOST_UNREACHABLE,
                    _ => reply::GENERAL_FAILURE,
                },
                _ => reply::GENERAL_FAILURE,
            };
            tracing::warn!(%destination, error = %e, "SOCKS connection refused");
            socks_reply(&mut local, code).await?;
            Ok(())
        }
    }
}

/// What `adit access ssh-config` prints.
pub fn ssh_config(hostname: &str, edge: Option<&str>, program: &str) -> String {
    let edge = edge.map(|e| format!(" --edge {e}")).unwrap_or_default();
    format!(
        "Add to your {{$HOME}}/.ssh/config:\n\nHost {hostname}\n  ProxyCommand {program} access ssh --hostname %h{edge}\n"
    )
}

/// The address a listener flag names (`127.0.0.1:2222`, or a bare port on loopback).
pub fn listen_address(text: &str) -> Result<SocketAddr, Error> {
    let text = text.trim_start_matches("tcp://");
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<u16>()
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        })
        .or_else(|_| {
            text.strip_prefix("localhost:")
                .and_then(|p| p.parse::<u16>().ok())
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
                .ok_or(())
        })
        .map_err(|()| {
            Error::Usage(format!(
                "{text:?} is not a listen address like 127.0.0.1:2222"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_address("127.0.0.1:2222").unwrap().port(), 2222);
        assert_eq!(listen_address("localhost:3389").unwrap().port(), 3389);
        assert_eq!(listen_address("tcp://127.0.0.1:5").unwrap().port(), 5);
        assert_eq!(
            listen_address("8080").unwrap().ip().to_string(),
            "127.0.0.1"
        );
        assert!(listen_address("nope").is_err());
    }

    #[test]
    fn ssh_config_block() {
        let text = ssh_config("ssh.example.com", Some("http://127.0.0.1:8080"), "adit");
        assert!(text.contains("Host ssh.example.com\n  ProxyCommand adit access ssh --hostname %h --edge http://127.0.0.1:8080"));
    }

    #[test]
    fn edge_defaults_to_https_hostname() {
        let t = EdgeTarget::new("ssh.example.com", None, None).unwrap();
        assert!(t.tls());
        assert!(EdgeTarget::new("x", Some("ftp://x"), None).is_err());
    }
}
