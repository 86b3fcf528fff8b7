//! The connector's half of a stream: match it against the ingress rules and answer it —
//! from the origin (HTTP/1.1, or HTTP/2 over TLS), with a fixed status, or with the
//! built-in hello page. Bodies stream through untouched, trailers included.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use adit_core::{
    ingress::{Ingress, IngressConfig, OriginRequest, Rule, Service},
    wire::{HEADER_CLIENT_ADDR, HEADER_RESPONSE_SOURCE, HEADER_STREAM_KIND, StreamKind},
};
use adit_transport::headers::strip_hop_by_hop;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tracing::Instrument;

use crate::Error;

mod tcp;
pub use tcp::{NetworkSource, PrivateNetworks};

pub use adit_transport::relay::BoxError;
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
type OriginClient = Client<DialTimeout, ProxyBody>;

/// TCP connect, then TLS: the whole dial is bounded by connectTimeout + tlsTimeout, and
/// running out is a `TimedOut` I/O error like a slow TCP connect.
#[derive(Clone)]
struct DialTimeout {
    inner: HttpsConnector<HttpConnector>,
    limit: Duration,
}

impl tower::Service<Uri> for DialTimeout {
    type Response = <HttpsConnector<HttpConnector> as tower::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dial = self.inner.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, dial).await {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "origin dial timed out",
                )
                .into()),
            }
        })
    }
}

/// What a stream meets when the connector has no rules yet: the tunnel is remotely
/// managed and the edge has sent no configuration.
const AWAITING_REMOTE: &str = "This tunnel is managed remotely and has no configuration yet: add a public hostname to it in the dashboard (or PUT /api/v1/tunnels/{tunnel}/configurations).";

/// Where the rules in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provenance {
    /// config.yml or `--url`; also the state before registration says which kind the
    /// tunnel is.
    Local,
    /// The tunnel is remotely managed and no configuration has arrived yet.
    AwaitingRemote,
    /// This version of the tunnel's remote configuration.
    Remote(i64),
}

/// Ingress rules with one pooled origin client per HTTP rule: what one stream is served by,
/// from start to end, even if a new configuration replaces it meanwhile.
struct RuleSet {
    provenance: Provenance,
    /// `None` while there are no rules (see [`Provenance`]).
    ingress: Option<Ingress>,
    clients: Vec<Option<OriginClient>>,
}

impl RuleSet {
    fn build(provenance: Provenance, ingress: Option<Ingress>) -> Result<Self, Error> {
        let clients = ingress
            .iter()
            .flat_map(Ingress::rules)
            .map(|rule| match &rule.service {
                Service::Http { .. } => origin_client(&rule.origin_request).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            provenance,
            ingress,
            clients,
        })
    }
}

/// Answers the edge's streams by the rules in force, which a remote configuration can
/// replace at any time (new streams take the new rules; streams under way keep theirs).
pub struct OriginProxy {
    pub metrics: Arc<crate::metrics::ConnectorMetrics>,
    rules: RwLock<Arc<RuleSet>>,
    /// What private-network streams may reach.
    pub networks: tcp::PrivateNetworks,
}

impl OriginProxy {
    /// A proxy for local rules (config.yml or `--url`).
    pub fn new(ingress: Ingress) -> Result<Arc<Self>, Error> {
        Ok(Self::with(RuleSet::build(
            Provenance::Local,
            Some(ingress),
        )?))
    }

    /// A proxy with no rules of its own (`adit tunnel run --token T` alone): a remotely
    /// managed tunnel's arrive from the edge; a local tunnel answers every request with
    /// 503, cloudflared's implicit rule.
    pub fn without_rules() -> Arc<Self> {
        Self::with(RuleSet {
            provenance: Provenance::Local,
            ingress: None,
            clients: Vec::new(),
        })
    }

    fn with(rules: RuleSet) -> Arc<Self> {
        Arc::new(Self {
            metrics: Arc::default(),
            rules: RwLock::new(Arc::new(rules)),
            networks: tcp::PrivateNetworks::default(),
        })
    }

    fn current(&self) -> Arc<RuleSet> {
        // Every write replaces the whole Arc, so a poisoned lock still holds a valid set.
        self.rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The version of the remote configuration in force, if one is.
    pub fn remote_version(&self) -> Option<i64> {
        match self.current().provenance {
            Provenance::Remote(version) => Some(version),
            Provenance::Local | Provenance::AwaitingRemote => None,
        }
    }

    /// The local rules in force, written out for the edge to show; `None` once the tunnel
    /// is known to be remotely managed.
    pub(crate) fn local_rules(&self) -> Option<IngressConfig> {
        let rules = self.current();
        match (&rules.provenance, &rules.ingress) {
            (Provenance::Local, Some(ingress)) => Some(IngressConfig::from_rules(ingress)),
            _ => None,
        }
    }

    /// The edge says the tunnel is locally managed: keep the local rules, or without any
    /// answer 503 (cloudflared's implicit `http_status:503`).
    pub(crate) fn manage_locally(&self) -> Result<(), Error> {
        if self.current().ingress.is_some() {
            return Ok(());
        }
        tracing::warn!(
            "No ingress rules were defined in provided config (if any) nor from the cli, adit will return 503 for all incoming HTTP requests"
        );
        let fallback =
            RuleSet::build(Provenance::Local, Some(Ingress::single("http_status:503")?))?;
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fallback);
        Ok(())
    }

    /// The edge says the tunnel is remotely managed: its configuration overrides the local
    /// rules, which are dropped (loudly: silently ignored local rules confuse cloudflared's
    /// users, #843). Until the first version arrives, requests get a 503 that says so.
    pub(crate) fn manage_remotely(&self) {
        let mut slot = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        if slot.provenance != Provenance::Local {
            return;
        }
        if slot.ingress.is_some() {
            tracing::warn!(
                "This tunnel is managed remotely: its configuration from the edge replaces the local ingress rules (config.yml or --url), which are ignored"
            );
        }
        *slot = Arc::new(RuleSet {
            provenance: Provenance::AwaitingRemote,
            ingress: None,
            clients: Vec::new(),
        });
        self.metrics.config_version.set(0);
    }

    /// Puts a remote configuration in force if it is newer than the one in force; whether
    /// it did. An unusable one is refused and the rules in force stay.
    pub(crate) fn apply_remote(&self, version: i64, json: &[u8]) -> Result<bool, Error> {
        if self
            .remote_version()
            .is_some_and(|current| version <= current)
        {
            return Ok(false);
        }
        let unusable = |message: String| Error::RemoteConfig { version, message };
        let config: IngressConfig =
            serde_json::from_slice(json).map_err(|e| unusable(e.to_string()))?;
        let ingress = config.parse().map_err(|e| unusable(e.to_string()))?;
        let rules = RuleSet::build(Provenance::Remote(version), Some(ingress))?;
        {
            let mut slot = self.rules.write().unwrap_or_else(PoisonError::into_inner);
            // Another task may have put a newer one in force while this one was built.
            if let Provenance::Remote(current) = slot.provenance
                && version <= current
            {
                return Ok(false);
            }
            *slot = Arc::new(rules);
        }
        self.metrics.config_version.set(version);
        tracing::info!(version, config = %String::from_utf8_lossy(json), "Updated to new configuration");
        Ok(true)
    }

    /// Answers one stream from the edge.
    /// Answers one stream from the edge, counting it.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let started = std::time::Instant::now();
        let kind = req
            .headers()
            .get(HEADER_STREAM_KIND)
            .and_then(|v| v.to_str().ok())
            .and_then(StreamKind::parse)
            .unwrap_or(StreamKind::Http);
        let active = self.metrics.stream(kind);
        let (parts, body) = req.into_parts();
        let to_origin = self.metrics.bytes_to_origin.clone();
        let body = body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                to_origin.inc_by(data.len() as u64);
            }
            frame
        });
        let response = self
            .answer(
                Request::from_parts(parts, body.map_err(BoxError::from).boxed_unsync()),
                kind,
            )
            .await;
        let from_connector = response.headers().contains_key(HEADER_RESPONSE_SOURCE);
        self.metrics
            .answered(response.status(), from_connector, started.elapsed());
        let from_origin = self.metrics.bytes_from_origin.clone();
        response.map(|body| {
            body.map_frame(move |frame| {
                // The stream stays active until its response body is done.
                let _ = &active;
                if let Some(data) = frame.data_ref() {
                    from_origin.inc_by(data.len() as u64);
                }
                frame
            })
            .boxed_unsync()
        })
    }

    async fn answer(&self, req: Request<ProxyBody>, kind: StreamKind) -> Response<ProxyBody> {
        if kind == StreamKind::Tcp {
            return tcp::private_network(&self.networks, req).await;
        }
        let rules = self.current();
        let Some(ingress) = &rules.ingress else {
            return connector_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_configuration",
                AWAITING_REMOTE.into(),
            );
        };
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let (index, rule) = ingress.find(&host, req.uri().path());
        tracing::debug!(%host, path = req.uri().path(), rule = index, kind = kind.as_str(), "stream");
        let client = rules.clients.get(index).and_then(Option::as_ref);
        match (&rule.service, kind, client) {
            (Service::HttpStatus(code), _, _) => status_response(*code),
            (Service::HelloWorld, _, _) => hello_world(&req),
            (Service::Tcp { .. }, StreamKind::WebSocket, _) => {
                tcp::tcp_service(rule, req).await
            }
            (Service::Tcp { .. }, _, _) => connector_error(
                StatusCode::BAD_REQUEST,
                "tcp_service",
                format!(
                    "{} serves {} over TCP: reach it with `adit access tcp --hostname {}` (or `adit access ssh`).",
                    host, rule.service, host
                ),
            ),
            (Service::Http { url }, kind, Some(client)) => {
                let origin = Origin::Pooled { client, url };
                match kind {
                    StreamKind::WebSocket => proxy_websocket(&origin, rule, req).await,
                    _ => proxy_http(&origin, rule, req).await,
                }
            }
            (Service::Unix { path, tls }, kind, _) => {
                let origin = Origin::Unix {
                    path,
                    tls: *tls,
                    settings: &rule.origin_request,
                };
                match kind {
                    StreamKind::WebSocket => proxy_websocket(&origin, rule, req).await,
                    _ => proxy_http(&origin, rule, req).await,
                }
            }
            (Service::Http { .. }, _, None) => connector_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "connector_internal",
                "the connector has no client for this rule".into(),
            ),
        }
    }
}

pub(crate) fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

fn status_response(code: u16) -> Response<ProxyBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    response
}

/// An answer the connector made itself; the edge renders it for the visitor.
pub(crate) fn connector_error(
    status: StatusCode,
    code: &'static str,
    message: String,
) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        HEADER_RESPONSE_SOURCE,
        HeaderValue::from_static("connector"),
    );
    headers.insert("adit-error-code", HeaderValue::from_static(code));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn hello_world(req: &Request<ProxyBody>) -> Response<ProxyBody> {
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
        .get(HEADER_CLIENT_ADDR)
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
    let mut response = Response::new(
        Full::new(Bytes::from(page))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Where an HTTP rule's requests go.
enum Origin<'a> {
    /// `http://` / `https://`: a pooled client.
    Pooled {
        client: &'a OriginClient,
        url: &'a url::Url,
    },
    /// `unix:` / `unix+tls:`: a fresh connection per request (a local socket is cheap).
    Unix {
        path: &'a str,
        tls: bool,
        settings: &'a OriginRequest,
    },
}

impl Origin<'_> {
    /// How messages name the origin.
    fn describe(&self) -> String {
        match self {
            Self::Pooled { url, .. } => url.as_str().trim_end_matches('/').to_owned(),
            Self::Unix {
                path, tls: false, ..
            } => format!("unix:{path}"),
            Self::Unix {
                path, tls: true, ..
            } => format!("unix+tls:{path}"),
        }
    }

    /// The request URI: absolute for the pooled client, origin-form on a unix socket.
    fn uri(&self, path: &str) -> Result<Uri, String> {
        match self {
            Self::Pooled { url, .. } => {
                let host = url.host_str().unwrap_or_default();
                let authority = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                };
                Uri::builder()
                    .scheme(url.scheme())
                    .authority(authority.as_str())
                    .path_and_query(path)
                    .build()
                    .map_err(|e| e.to_string())
            }
            Self::Unix { .. } => path
                .parse()
                .map_err(|e: http::uri::InvalidUri| e.to_string()),
        }
    }

    async fn send(&self, request: Request<ProxyBody>) -> Result<Response<Incoming>, BoxError> {
        match self {
            Self::Pooled { client, .. } => Ok(client.request(request).await?),
            Self::Unix {
                path,
                tls,
                settings,
            } => {
                let dial = tokio::net::UnixStream::connect(path);
                let stream = tokio::time::timeout(settings.connect_timeout, dial)
                    .await
                    .map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "unix socket connect timed out",
                        )
                    })??;
                if *tls {
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
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "TLS handshake timed out",
                            )
                        })??;
                    send_on(stream, request).await
                } else {
                    send_on(stream, request).await
                }
            }
        }
    }
}

/// One HTTP/1.1 exchange on a connection of our own (upgrades allowed).
async fn send_on<IO>(io: IO, request: Request<ProxyBody>) -> Result<Response<Incoming>, BoxError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "origin connection ended with an error");
        }
    });
    Ok(sender.send_request(request).await?)
}

fn origin_request(
    rule: &Rule,
    origin: &Origin<'_>,
    parts: &http::request::Parts,
) -> Result<http::request::Builder, String> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = origin.uri(path)?;
    let host = rule
        .origin_request
        .http_host_header
        .clone()
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host).map_err(|e| e.to_string())?,
    );
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(Version::HTTP_11);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    Ok(builder)
}

/// Names what went wrong reaching the origin, for the visitor's 502.
pub(crate) fn origin_failure(
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
        if e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            connecting = true;
        }
        source = e.source();
    }
    let (code, message) = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => (
            "origin_refused",
            format!("The origin {origin} refused the connection."),
        ),
        Some(std::io::ErrorKind::TimedOut) => (
            "origin_timeout",
            format!(
                "The origin {origin} did not complete the connection within {:?} (connectTimeout + tlsTimeout).",
                settings.connect_timeout + settings.tls_timeout
            ),
        ),
        _ if connecting => (
            "origin_unreachable",
            format!("Unable to reach the origin {origin}: {err}"),
        ),
        _ => (
            "origin_error",
            format!("The origin {origin} failed while answering: {err}"),
        ),
    };
    tracing::warn!(origin, code, error = %err, "Unable to reach the origin service");
    connector_error(StatusCode::BAD_GATEWAY, code, message)
}

async fn proxy_http(
    origin: &Origin<'_>,
    rule: &Rule,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    let request = origin_request(rule, origin, &parts).and_then(|b| {
        b.body(body.map_err(BoxError::from).boxed_unsync())
            .map_err(|e| e.to_string())
    });
    let request = match request {
        Ok(r) => r,
        Err(e) => return connector_error(StatusCode::BAD_GATEWAY, "bad_request", e),
    };
    match origin.send(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            parts.version = Version::HTTP_2;
            Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync())
        }
        Err(e) => origin_failure(&origin.describe(), &rule.origin_request, &*e),
    }
}

/// Upgrades at the origin, then joins the stream's two directions to the upgraded socket.
/// HTTP/2 cannot say 101, so the answer is 200 with the real status in a header.
async fn proxy_websocket(
    origin: &Origin<'_>,
    rule: &Rule,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let (parts, from_edge) = req.into_parts();
    let request = origin_request(rule, origin, &parts).and_then(|mut builder| {
        if let Some(h) = builder.headers_mut() {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        builder.body(empty()).map_err(|e| e.to_string())
    });
    let request = match request {
        Ok(r) => r,
        Err(e) => return connector_error(StatusCode::BAD_GATEWAY, "bad_request", e),
    };
    let response = match origin.send(request).await {
        Ok(r) => r,
        Err(e) => return origin_failure(&origin.describe(), &rule.origin_request, &*e),
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        return Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync());
    }
    let mut headers = response.headers().clone();
    strip_hop_by_hop(&mut headers);
    let upgraded = match hyper::upgrade::on(response).await {
        Ok(u) => u,
        Err(e) => {
            return connector_error(
                StatusCode::BAD_GATEWAY,
                "origin_upgrade_failed",
                e.to_string(),
            );
        }
    };
    let (body, to_edge) = tcp::answer_body();
    tokio::spawn(
        async move {
            adit_transport::relay::splice(TokioIo::new(upgraded), from_edge, to_edge).await;
        }
        .instrument(tracing::debug_span!("websocket")),
    );
    tcp::switched(headers, body)
}

fn origin_client(origin: &OriginRequest) -> Result<OriginClient, Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(origin.connect_timeout));
    http.set_keepalive(Some(origin.tcp_keep_alive));
    http.set_happy_eyeballs_timeout(
        (!origin.no_happy_eyeballs).then_some(Duration::from_millis(300)),
    );

    let tls = adit_transport::tls::origin_client_config(
        origin.ca_pool.as_deref().map(std::path::Path::new),
        origin.no_tls_verify,
    )?;
    // hyper-rustls sets ALPN itself from the enabled versions below.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let https = match &origin.origin_server_name {
        Some(name) => https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
            adit_transport::tls::server_name(name)?,
        )),
        None => https,
    };
    let https = if origin.http2_origin {
        https.enable_all_versions().wrap_connector(http)
    } else {
        https.enable_http1().wrap_connector(http)
    };
    let connector = DialTimeout {
        inner: https,
        limit: origin.connect_timeout + origin.tls_timeout,
    };
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(origin.keep_alive_timeout)
        .pool_max_idle_per_host(origin.keep_alive_connections)
        .build(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str) -> Request<ProxyBody> {
        Request::builder()
            .uri(format!("http://{host}/"))
            .body(empty())
            .unwrap()
    }

    async fn status_of(proxy: &OriginProxy) -> StatusCode {
        proxy
            .answer(request("app.example.com"), StreamKind::Http)
            .await
            .status()
    }

    /// A configuration whose one rule answers `status`.
    fn answering(status: u16) -> Vec<u8> {
        serde_json::json!({"ingress": [{"service": format!("http_status:{status}")}]})
            .to_string()
            .into_bytes()
    }

    #[tokio::test]
    async fn a_remote_tunnel_waits_for_its_configuration_then_takes_only_newer_ones() {
        let proxy = OriginProxy::new(Ingress::single("http_status:200").unwrap()).unwrap();
        assert_eq!(status_of(&proxy).await, StatusCode::OK);
        proxy.manage_remotely();
        let waiting = proxy
            .answer(request("app.example.com"), StreamKind::Http)
            .await;
        assert_eq!(waiting.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(waiting.headers()["adit-error-code"], "no_configuration");
        assert_eq!(
            (proxy.remote_version(), proxy.metrics.config_version.get()),
            (None, 0)
        );

        assert!(proxy.apply_remote(2, &answering(201)).unwrap());
        assert_eq!(status_of(&proxy).await, StatusCode::CREATED);
        for stale in [2, 1] {
            assert!(!proxy.apply_remote(stale, &answering(202)).unwrap());
        }
        // Unusable versions are refused; the rules in force stay.
        assert!(matches!(
            proxy.apply_remote(3, br#"{"ingress": []}"#),
            Err(Error::RemoteConfig { version: 3, .. })
        ));
        assert!(proxy.apply_remote(3, b"not json").is_err());
        assert_eq!(status_of(&proxy).await, StatusCode::CREATED);
        // Registering again (a connection was refused as unknown) keeps them too.
        proxy.manage_remotely();
        assert_eq!(
            (proxy.remote_version(), proxy.metrics.config_version.get()),
            (Some(2), 2)
        );

        assert!(proxy.apply_remote(3, &answering(203)).unwrap());
        assert_eq!(status_of(&proxy).await, StatusCode::from_u16(203).unwrap());
        assert_eq!(proxy.metrics.config_version.get(), 3);
    }

    #[tokio::test]
    async fn a_local_tunnel_keeps_its_rules_or_answers_503_without_any() {
        let bare = OriginProxy::without_rules();
        bare.manage_locally().unwrap();
        let response = bare
            .answer(request("a.example.com"), StreamKind::Http)
            .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !response.headers().contains_key("adit-error-code"),
            "cloudflared's implicit http_status:503, not an error"
        );
        let ruled = OriginProxy::new(Ingress::single("http_status:204").unwrap()).unwrap();
        ruled.manage_locally().unwrap();
        assert_eq!(status_of(&ruled).await, StatusCode::NO_CONTENT);
        assert_eq!(ruled.remote_version(), None);
        let reported = ruled.local_rules().unwrap();
        assert_eq!(reported.ingress[0].service, "http_status:204");
        ruled.manage_remotely();
        assert_eq!(ruled.local_rules(), None, "remote tunnels report nothing");
    }
}
