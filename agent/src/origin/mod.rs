//! The connector's half of a stream: match it against the ingress rules in force and
//! answer it from the rule's service. Bodies stream through untouched, trailers included.
//!
//! * `mod.rs`, [`OriginProxy`]: counts each stream and dispatches it to its service.
//! * `rules`: the rules in force, replaced whole by a remote configuration or an edited
//!   config.yml.
//! * `http`: `http://` and `https://` origins (a pooled client per rule), WebSocket upgrades.
//! * `unix`: `unix:` and `unix+tls:` origins, a connection per request.
//! * `tcp`: TCP services (`tcp://`, `ssh://`, `rdp://`, …) bridged to a WebSocket.
//! * `private`: private-network destinations, dialled only inside the tunnel's networks.
//! * `builtin`: `http_status:NNN` and `hello_world`.
//! * `errors`: the answers the connector makes itself when it cannot serve a stream.
//! * `body`: the body type of every answer.
//!
//! The rule: origin/ names nothing of the crate but `bridge`, `metrics` and `Error`. It never
//! names the connector, which drives it; what it needs from the control plane (the private
//! networks) comes in through the [`NetworkSource`] it is handed. The crate's `layers`
//! tests check this.

use std::sync::Arc;

use ::http::{Request, Response, StatusCode};
use adit_core::wire::ConnectorError;
use adit_core::{
    ingress::{Ingress, IngressConfig, Service},
    wire::StreamKind,
};
use adit_transport::headers::{RESPONSE_SOURCE, STREAM_KIND};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;

use crate::{Error, metrics::ConnectorMetrics};

mod body;
mod builtin;
mod errors;
mod http;
mod pool;
mod private;
mod rules;
mod tcp;
mod unix;

pub use body::{BoxError, ProxyBody};
use errors::connector_error;
pub use private::{NetworkSource, PrivateNetworks};
use rules::Rules;

/// What a stream meets when the connector has no rules yet: the tunnel is remotely
/// managed and the edge has sent no configuration.
const AWAITING_REMOTE: &str = "This tunnel is managed remotely and has no configuration yet: add a public hostname to it in the dashboard (or PUT /api/v1/tunnels/{tunnel}/configurations).";

/// Answers the edge's streams by the rules in force, which a remote configuration or an
/// edited config.yml can replace at any time (new streams take the new rules; streams
/// under way keep theirs).
pub struct OriginProxy {
    pub metrics: Arc<ConnectorMetrics>,
    rules: Rules,
    /// What private-network streams may reach.
    pub networks: PrivateNetworks,
    /// The version of the local rules in force: 1 as started, one more for each edit of
    /// config.yml put in force. The connector watches it to report each new version.
    local_version: watch::Sender<i64>,
}

impl OriginProxy {
    /// A proxy for local rules (config.yml or `--url`).
    pub fn new(ingress: Ingress) -> Result<Arc<Self>, Error> {
        Ok(Self::with(Rules::local(ingress)?))
    }

    /// A proxy with no rules of its own (`adit tunnel run --token T` alone): a remotely
    /// managed tunnel's arrive from the edge; a local tunnel answers every request with
    /// 503, cloudflared's implicit rule.
    pub fn without_rules() -> Arc<Self> {
        Self::with(Rules::none())
    }

    fn with(rules: Rules) -> Arc<Self> {
        Arc::new(Self {
            metrics: Arc::default(),
            rules,
            networks: PrivateNetworks::default(),
            local_version: watch::Sender::new(1),
        })
    }

    /// The version of the remote configuration in force, if one is.
    pub fn remote_version(&self) -> Option<i64> {
        self.rules.remote_version()
    }

    /// The local rules in force, written out for the edge to show; `None` once the tunnel
    /// is known to be remotely managed.
    pub(crate) fn local_rules(&self) -> Option<IngressConfig> {
        self.rules.local_rules()
    }

    /// The edge says the tunnel is locally managed: keep the local rules, or without any
    /// answer 503 (cloudflared's implicit `http_status:503`).
    pub(crate) fn manage_locally(&self) -> Result<(), Error> {
        self.rules.manage_locally()
    }

    /// The edge says the tunnel is remotely managed: its configuration overrides the local
    /// rules, which are dropped. Until the first version arrives, requests get a 503 that
    /// says so.
    pub(crate) fn manage_remotely(&self) {
        if self.rules.manage_remotely() {
            self.metrics.config_version.set(0);
        }
    }

    /// Puts a remote configuration in force if it is newer than the one in force; whether
    /// it did. An unusable one is refused and the rules in force stay.
    pub(crate) fn apply_remote(&self, version: i64, json: &[u8]) -> Result<bool, Error> {
        let applied = self.rules.apply_remote(version, json)?;
        if applied {
            self.metrics.config_version.set(version);
            tracing::info!(version, config = %String::from_utf8_lossy(json), "Updated to new configuration");
        }
        Ok(applied)
    }

    /// Puts a new version of the local rules (an edited config.yml) in force, as
    /// [`apply_remote`](Self::apply_remote) does a remote one; whether it did. It does not
    /// once the tunnel is known to be remotely managed; rules whose origin clients cannot
    /// be built are refused and the rules in force stay.
    pub(crate) fn apply_local(&self, ingress: Ingress) -> Result<bool, Error> {
        let config = IngressConfig::from_rules(&ingress);
        let applied = self.rules.apply_local(ingress)?;
        if applied {
            self.local_version.send_modify(|version| *version += 1);
            let version = *self.local_version.borrow();
            self.metrics.config_version.set(version);
            let config = serde_json::to_string(&config).unwrap_or_default();
            tracing::info!(version, %config, "Updated to new configuration");
        }
        Ok(applied)
    }

    /// Changes each time a new version of the local rules is put in force.
    pub(crate) fn local_versions(&self) -> watch::Receiver<i64> {
        self.local_version.subscribe()
    }

    /// Answers one stream from the edge, counting it.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let started = std::time::Instant::now();
        let kind = req
            .headers()
            .get(&STREAM_KIND)
            .and_then(|v| v.to_str().ok())
            .and_then(StreamKind::parse)
            .unwrap_or(StreamKind::Http);
        let active = self.metrics.stream(kind);
        let (parts, body) = req.into_parts();
        // A request whose stream already ended (a GET) has no bytes to count: it goes on
        // as the empty body, which costs no allocation.
        let body = if hyper::body::Body::is_end_stream(&body) {
            body::empty()
        } else {
            body.map_frame(counting(self.metrics.bytes_to_origin.clone()))
                .map_err(BoxError::from)
                .boxed_unsync()
        };
        let response = self.answer(Request::from_parts(parts, body), kind).await;
        let from_connector = response.headers().contains_key(&RESPONSE_SOURCE);
        self.metrics
            .answered(response.status(), from_connector, started.elapsed());
        let count = counting(self.metrics.bytes_from_origin.clone());
        response.map(|body| {
            body.map_frame(move |frame| {
                // The stream stays active until its response body is done.
                let _ = &active;
                count(frame)
            })
            .boxed_unsync()
        })
    }

    /// The dispatcher: from a stream to the service of the rule it matches. The services
    /// other than a pooled HTTP origin are boxed: a stream's future is moved (copied)
    /// several times on its way to a task, so the common case is kept small.
    async fn answer(&self, req: Request<ProxyBody>, kind: StreamKind) -> Response<ProxyBody> {
        if kind == StreamKind::Tcp {
            return Box::pin(private::serve(&self.networks, req)).await;
        }
        let rules = self.rules.current();
        let Some(ingress) = rules.ingress() else {
            return connector_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ConnectorError::NoConfiguration,
                AWAITING_REMOTE.into(),
            );
        };
        let host = req.uri().authority().map_or("", |a| a.as_str());
        let (index, rule) = ingress.find(host, req.uri().path());
        tracing::debug!(%host, path = req.uri().path(), rule = index, kind = kind.as_str(), "stream");
        match (&rule.service, kind) {
            (Service::HttpStatus(code), _) => builtin::status(*code),
            (Service::HelloWorld, _) => builtin::hello_world(&req),
            (Service::Tcp { .. }, StreamKind::WebSocket) => Box::pin(tcp::serve(rule, req)).await,
            (Service::Tcp { .. }, StreamKind::Raw) => Box::pin(tcp::serve_raw(rule, req)).await,
            (Service::Tcp { .. }, _) => connector_error(
                StatusCode::BAD_REQUEST,
                ConnectorError::TcpService,
                format!(
                    "{} serves {} over TCP: reach it with `adit access tcp --hostname {}` (or `adit access ssh`).",
                    host, rule.service, host
                ),
            ),
            (Service::Http { .. } | Service::Unix { .. }, StreamKind::Raw) => connector_error(
                StatusCode::BAD_REQUEST,
                ConnectorError::BadRequest,
                format!(
                    "{host} serves HTTP ({}), not a TCP service: open it with a browser or curl",
                    rule.service
                ),
            ),
            (Service::Http { url }, kind) => match rules.client(index) {
                Some(client) => {
                    let origin = http::Origin::Pooled { client, url };
                    http::forward(&origin, rule, req, kind).await
                }
                None => connector_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ConnectorError::ConnectorInternal,
                    "the connector has no client for this rule".into(),
                ),
            },
            (Service::Unix { path, tls }, kind) => {
                let origin = http::Origin::Unix {
                    path,
                    tls: *tls,
                    settings: &rule.origin_request,
                };
                Box::pin(http::forward(&origin, rule, req, kind)).await
            }
        }
    }
}

/// Passes a body's frames on, adding the bytes of each data frame to `counter`.
fn counting(counter: Counter) -> impl Fn(Frame<Bytes>) -> Frame<Bytes> {
    move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.inc_by(data.len() as u64);
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::{body::empty, *};

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

    /// One stream of `kind` to `host` and `path`, with `headers`.
    async fn dispatch(
        proxy: &OriginProxy,
        kind: StreamKind,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response<ProxyBody> {
        let mut req = Request::builder().uri(format!("http://{host}{path}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        proxy.answer(req.body(empty()).unwrap(), kind).await
    }

    #[tokio::test]
    async fn the_dispatcher_takes_each_stream_to_its_rules_service() {
        let config: IngressConfig = serde_json::from_value(serde_json::json!({"ingress": [
            {"hostname": "hello.example.com", "service": "hello_world"},
            {"hostname": "ssh.example.com", "service": "ssh://localhost:22"},
            {"hostname": "api.example.com", "path": "^/health$", "service": "http_status:204"},
            {"service": "http_status:404"},
        ]}))
        .unwrap();
        let proxy = OriginProxy::new(config.parse().unwrap()).unwrap();
        let http = StreamKind::Http;

        let hello = dispatch(&proxy, http, "hello.example.com", "/x&y", &[]).await;
        assert_eq!(hello.status(), StatusCode::OK);
        assert_eq!(hello.headers()["content-type"], "text/html; charset=utf-8");
        let page = hello.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&page).contains("Path: /x&amp;y"));

        let health = dispatch(&proxy, http, "api.example.com", "/health", &[]).await;
        assert_eq!(health.status(), StatusCode::NO_CONTENT);
        let other = dispatch(&proxy, http, "api.example.com", "/other", &[]).await;
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        assert!(!other.headers().contains_key("adit-error-code"));

        // A browser at a TCP service is told which command reaches it.
        let browser = dispatch(&proxy, http, "ssh.example.com", "/", &[]).await;
        assert_eq!(browser.status(), StatusCode::BAD_REQUEST);
        assert_eq!(browser.headers()["adit-error-code"], "tcp_service");
        assert_eq!(browser.headers()["adit-response-source"], "connector");

        // Private-network streams go by their destination, not by the rules.
        let tcp = StreamKind::Tcp;
        let nowhere = dispatch(&proxy, tcp, "hello.example.com", "/", &[]).await;
        assert_eq!(nowhere.headers()["adit-error-code"], "bad_destination");
        let unrouted = [("adit-destination", "127.0.0.1:1")];
        let refused = dispatch(&proxy, tcp, "private.adit.internal", "/", &unrouted).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            refused.headers()["adit-error-code"],
            "destination_not_routed"
        );
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

    #[tokio::test]
    async fn edited_local_rules_serve_new_streams_while_streams_under_way_keep_theirs() {
        let proxy = OriginProxy::new(Ingress::single("http_status:201").unwrap()).unwrap();
        let mut versions = proxy.local_versions();
        let under_way = proxy.rules.current();
        assert!(
            proxy
                .apply_local(Ingress::single("http_status:202").unwrap())
                .unwrap()
        );
        assert_eq!(status_of(&proxy).await, StatusCode::ACCEPTED);
        let held = under_way.ingress().unwrap().find("app.example.com", "/").1;
        assert_eq!(held.service.to_string(), "http_status:201");
        assert!(versions.has_changed().unwrap());
        assert_eq!(*versions.borrow_and_update(), 2);
        assert_eq!(proxy.metrics.config_version.get(), 2);

        // A remotely managed tunnel's rules come from the edge only.
        proxy.manage_remotely();
        assert!(
            !proxy
                .apply_local(Ingress::single("http_status:203").unwrap())
                .unwrap()
        );
        assert!(!versions.has_changed().unwrap());
    }
}
