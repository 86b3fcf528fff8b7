//! HTTP origins: `http://` and `https://` through pooled connections per rule (HTTP/1.1 in
//! our own pool, see `pool`; with `http2Origin` HTTP/2 through hyper-util's client: over TLS
//! as ALPN agrees, in clear text on `http://` — gRPC servers without TLS), and `unix:`
//! sockets (see `unix`). A request and its
//! answer stream through with hop-by-hop headers removed, trailers included; a WebSocket
//! is upgraded at the origin and then spliced to the stream.

use std::{sync::Arc, time::Duration};

use adit_core::wire::ConnectorError;
use adit_core::{
    ingress::{OriginRequest, Rule},
    wire::StreamKind,
};
use adit_transport::headers::{add_forwarded, strip_hop_by_hop};
use http::{
    HeaderValue, Request, Response, StatusCode, Uri, Version, header,
    uri::{self, PathAndQuery},
};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tracing::Instrument;

use super::{
    body::{BoxError, ProxyBody, answer_body, empty, incoming, switched},
    errors::{connector_error, origin_failure},
    pool::Http1Pool,
    unix,
};
use crate::Error;

/// The pooled connections of one `http://` or `https://` rule.
pub(super) enum OriginClient {
    Http1(Arc<Http1Pool>),
    /// `http2Origin`: one multiplexed connection (or HTTP/1.1 where ALPN says so).
    Http2(Box<Client<DialTimeout, ProxyBody>>),
}

/// TCP connect, then TLS: the whole dial is bounded by connectTimeout + tlsTimeout, and
/// running out is a `TimedOut` I/O error like a slow TCP connect.
#[derive(Clone)]
pub(super) struct DialTimeout {
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

/// The TLS settings of an HTTP rule to `url`, made once for all its workers' clients. An
/// `http://` rule never speaks TLS to its origin: its config trusts nothing, so no roots
/// are read for it.
pub(super) fn tls_config(
    url: &url::Url,
    origin: &OriginRequest,
) -> Result<rustls::ClientConfig, Error> {
    if url.scheme() != "https" {
        return Ok(adit_transport::tls::clear_text_client_config()?);
    }
    Ok(adit_transport::tls::origin_client_config(
        origin.ca_pool.as_deref().map(std::path::Path::new),
        origin.no_tls_verify,
    )?)
}

/// The pooled client for an HTTP rule to `url` with these settings (`tls` from
/// [`tls_config`]).
pub(super) fn client(
    url: &url::Url,
    origin: &OriginRequest,
    tls: rustls::ClientConfig,
) -> Result<OriginClient, Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(origin.connect_timeout));
    http.set_keepalive(Some(origin.tcp_keep_alive));
    http.set_happy_eyeballs_timeout(
        (!origin.no_happy_eyeballs).then_some(Duration::from_millis(300)),
    );

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
    if !origin.http2_origin {
        return Ok(OriginClient::Http1(Arc::new(Http1Pool::new(
            connector,
            authority_uri(url).map_err(|e| Error::Usage(format!("{url}: {e}")))?,
            origin.keep_alive_connections,
            origin.keep_alive_timeout,
        ))));
    }
    // In clear text nothing negotiates HTTP/2: the origin is spoken to in it from the
    // first byte (h2c with prior knowledge, as gRPC servers expect).
    let clear_h2 = url.scheme() == "http";
    Ok(OriginClient::Http2(Box::new(
        Client::builder(TokioExecutor::new())
            .http2_only(clear_h2)
            .pool_idle_timeout(origin.keep_alive_timeout)
            .pool_max_idle_per_host(origin.keep_alive_connections)
            .build(connector),
    )))
}

/// `scheme://host[:port]` of `url`, what a connection to it is dialled by.
fn authority_uri(url: &url::Url) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme(url.scheme())
        .authority(authority(url).to_owned())
        .path_and_query("/")
        .build()
}

/// `host[:port]` of `url` (the port only when it is not the scheme's default).
fn authority(url: &url::Url) -> &str {
    &url[url::Position::BeforeHost..url::Position::AfterPort]
}

/// Where an HTTP rule's requests go.
pub(super) enum Origin<'a> {
    /// `http://` / `https://`: a pooled client.
    Pooled {
        client: &'a OriginClient,
        url: &'a url::Url,
    },
    /// `unix:` / `unix+tls:`: a fresh connection per request.
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

    /// `host[:port]` of an `http(s)://` origin.
    fn authority(&self) -> Option<&str> {
        match self {
            Self::Pooled { url, .. } => Some(authority(url)),
            Self::Unix { .. } => None,
        }
    }

    /// The request URI: absolute for hyper-util's client (HTTP/2), origin-form on a
    /// connection of our own.
    fn uri(&self, path: PathAndQuery) -> Result<Uri, String> {
        let mut parts = match self {
            Self::Pooled {
                client: OriginClient::Http2(_),
                url,
            } => authority_uri(url).map_err(|e| e.to_string())?.into_parts(),
            Self::Pooled { .. } | Self::Unix { .. } => uri::Parts::default(),
        };
        parts.path_and_query = Some(path);
        Uri::from_parts(parts).map_err(|e| e.to_string())
    }

    async fn send(&self, request: Request<ProxyBody>) -> Result<Response<ProxyBody>, BoxError> {
        let response = match self {
            Self::Pooled {
                client: OriginClient::Http1(pool),
                ..
            } => return pool.send(request).await,
            Self::Pooled {
                client: OriginClient::Http2(client),
                ..
            } => client.request(request).await?,
            // Boxed: its dial and handshake would otherwise size every pooled request's
            // future, which is moved (copied) several times per stream.
            Self::Unix {
                path,
                tls,
                settings,
            } => Box::pin(unix::send(path, *tls, settings, request)).await?,
        };
        Ok(response.map(incoming))
    }
}

/// Answers a stream from `origin`: a WebSocket is upgraded there, anything else is one
/// request and its answer.
pub(super) async fn forward(
    origin: &Origin<'_>,
    rule: &Rule,
    req: Request<ProxyBody>,
    kind: StreamKind,
) -> Response<ProxyBody> {
    match kind {
        StreamKind::WebSocket => websocket(origin, rule, req).await,
        StreamKind::Http | StreamKind::Tcp | StreamKind::Raw => exchange(origin, rule, req).await,
    }
}

fn origin_request(
    rule: &Rule,
    origin: &Origin<'_>,
    parts: http::request::Parts,
) -> Result<http::request::Builder, String> {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = origin.uri(path)?;
    let host = rule
        .origin_request
        .http_host_header
        .as_deref()
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .or_else(|| origin.authority())
        .unwrap_or("localhost");
    let host = HeaderValue::from_str(host).map_err(|e| e.to_string())?;
    let mut headers = parts.headers;
    // Before the strip, which takes `adit-client-addr` away.
    add_forwarded(&mut headers, &parts.uri);
    strip_hop_by_hop(&mut headers);
    headers.insert(header::HOST, host);
    let mut builder = Request::builder()
        .method(parts.method)
        .uri(uri)
        .version(Version::HTTP_11);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    Ok(builder)
}

async fn exchange(
    origin: &Origin<'_>,
    rule: &Rule,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    let request =
        origin_request(rule, origin, parts).and_then(|b| b.body(body).map_err(|e| e.to_string()));
    let request = match request {
        Ok(r) => r,
        Err(e) => return connector_error(StatusCode::BAD_GATEWAY, ConnectorError::BadRequest, e),
    };
    match origin.send(request).await {
        Ok(mut response) => {
            strip_hop_by_hop(response.headers_mut());
            *response.version_mut() = Version::HTTP_2;
            response
        }
        Err(e) => origin_failure(&origin.describe(), &rule.origin_request, &*e),
    }
}

/// Upgrades at the origin, then joins the stream's two directions to the upgraded socket.
/// HTTP/2 cannot say 101, so the answer is 200 with the real status in a header.
async fn websocket(
    origin: &Origin<'_>,
    rule: &Rule,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let (parts, from_edge) = req.into_parts();
    let request = origin_request(rule, origin, parts).and_then(|mut builder| {
        if let Some(h) = builder.headers_mut() {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        builder.body(empty()).map_err(|e| e.to_string())
    });
    let request = match request {
        Ok(r) => r,
        Err(e) => return connector_error(StatusCode::BAD_GATEWAY, ConnectorError::BadRequest, e),
    };
    let response = match origin.send(request).await {
        Ok(r) => r,
        Err(e) => return origin_failure(&origin.describe(), &rule.origin_request, &*e),
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let mut response = response;
        strip_hop_by_hop(response.headers_mut());
        return response;
    }
    let mut headers = response.headers().clone();
    strip_hop_by_hop(&mut headers);
    let upgraded = match hyper::upgrade::on(response).await {
        Ok(u) => u,
        Err(e) => {
            return connector_error(
                StatusCode::BAD_GATEWAY,
                ConnectorError::OriginUpgradeFailed,
                e.to_string(),
            );
        }
    };
    let (body, to_edge) = answer_body();
    tokio::spawn(
        async move {
            adit_transport::relay::splice(TokioIo::new(upgraded), from_edge, to_edge).await;
        }
        .instrument(tracing::debug_span!("websocket")),
    );
    switched(headers, body)
}
