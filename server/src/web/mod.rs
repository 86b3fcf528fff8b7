//! What people and programs call on the API listener: REST (`api`), gRPC (`grpc`), the
//! dashboard's pages and bundle (`pages`, `ui`), the connector download. The only layer
//! that turns errors into HTTP and gRPC answers.
//!
//! Rule: web/ may use every layer below it (control/, identity/, edge/, tunnel/, trust/,
//! observe/, storage/, ground), and none uses web/.

pub mod api;
pub(crate) mod download;
pub mod error;
pub(crate) mod grpc;
pub(crate) mod pages;
pub(crate) mod ui;

use std::sync::Arc;

use adit_proto::v1::tunnel_service_server::TunnelServiceServer;
use axum::{
    Router,
    extract::{MatchedPath, State},
    routing::get,
};
use http::{Request, StatusCode};
use tower_http::trace::TraceLayer;

use crate::{control::Control, edge::Edge, web::ui::Ui};

/// Everything the API listener serves: REST, gRPC `TunnelService`, the dashboard and
/// `/metrics`. Each request is traced in a span named by its route (`/api/v1/tunnels/{tunnel}`),
/// never by its path, query, headers or body, so no token or name of a caller's lands in
/// the log.
pub(crate) fn router(control: Arc<Control>, edge: Arc<Edge>, ui: Arc<Ui>) -> Router {
    let tunnel_service =
        tonic::service::Routes::new(TunnelServiceServer::new(grpc::TunnelApi(control.clone())))
            .into_axum_router();
    api::router(control.clone(), edge)
        .merge(tunnel_service)
        .merge(pages::router(control.clone(), ui))
        .merge(
            Router::new()
                .route("/metrics", get(metrics))
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .with_state(control),
        )
        .fallback(error::not_found)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
}

/// The span of one API request: its method and matched route.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", MatchedPath::as_str);
    tracing::info_span!("api", method = %req.method(), route)
}

/// The process is alive and serves HTTP.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Whether to send this node traffic (a load balancer's or orchestrator's check): its
/// listeners are bound (they are before anything is served), its database answers, and it
/// is not leaving the cluster.
async fn readyz(State(control): State<Arc<Control>>) -> (StatusCode, String) {
    match control.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Prometheus scrapes this (the API listener is loopback by default).
async fn metrics(State(control): State<Arc<Control>>) -> String {
    control.metrics.render()
}
