//! REST under `/api/v1`. Every handler authenticates the caller's API token, then calls
//! `Control`; errors leave in one shape, `{code, message, details}`.

use std::sync::Arc;

use adit_core::{api, ids::AccountId};
use axum::{
    Json, Router,
    extract::{FromRequest, FromRequestParts, Path, Query, Request, State},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use serde::Deserialize;

use crate::{Error, auth, control::Control};

/// An error as REST callers see it.
pub struct ApiError {
    status: StatusCode,
    body: api::ApiError,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            status,
            body: api::ApiError {
                code: code.to_owned(),
                message: message.into(),
                details,
            },
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use serde_json::json;
        match &err {
            Error::NotFound { what, name } => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                err.to_string(),
                json!({ "resource": what, "name": name }),
            ),
            Error::Conflict(message) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                message.clone(),
                serde_json::Value::Null,
            ),
            Error::FailedPrecondition(message) => Self::new(
                StatusCode::CONFLICT,
                "failed_precondition",
                message.clone(),
                serde_json::Value::Null,
            ),
            Error::InvalidArgument { field, message } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                err.to_string(),
                json!({ "field": field, "reason": message }),
            ),
            Error::RateLimited(message) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message.clone(),
                serde_json::Value::Null,
            ),
            Error::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a valid API token is required (Authorization: Bearer …)",
                serde_json::Value::Null,
            ),
            _ => {
                tracing::error!(error = %err, "internal error serving the API");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details",
                    serde_json::Value::Null,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The caller's account, from the bearer API token.
pub struct Caller(pub AccountId);

impl FromRequestParts<Arc<Control>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        control: &Arc<Control>,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer);
        let account = auth::account_for_api_token(&control.storage, token).await?;
        Ok(Self(account))
    }
}

/// `Json` whose rejections speak our error shape.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "invalid_body",
                rejection.body_text(),
                serde_json::Value::Null,
            )),
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    name_prefix: String,
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/api/v1/tunnels", get(list_tunnels).post(create_tunnel))
        .route(
            "/api/v1/tunnels/{tunnel}",
            get(get_tunnel).patch(rename_tunnel).delete(delete_tunnel),
        )
        .route("/api/v1/tunnels/{tunnel}/token", get(tunnel_token))
        .route(
            "/api/v1/tunnels/{tunnel}/rotate-secret",
            axum::routing::post(rotate_secret),
        )
        .route(
            "/api/v1/tunnels/{tunnel}/routes",
            get(list_routes).post(create_route),
        )
        .route("/api/v1/tunnels/{tunnel}/connectors", get(list_connectors))
        .route("/api/v1/tunnels/{tunnel}/traffic", get(traffic))
        .route("/api/v1/routes/{route}", delete(delete_route))
        .route(
            "/api/v1/ip-routes",
            get(list_ip_routes).post(create_ip_route),
        )
        .route("/api/v1/ip-routes/match/{ip}", get(match_ip_route))
        .route("/api/v1/ip-routes/{route}", delete(delete_ip_route))
        .route(
            "/api/v1/quick-tunnels",
            axum::routing::post(create_quick_tunnel),
        )
        .route("/api/v1/private/connect", get(private_connect))
        .with_state(control)
}

/// The answer for any path no route serves.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint",
        serde_json::Value::Null,
    )
}

async fn list_tunnels(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<api::Tunnel>> {
    Ok(Json(c.list_tunnels(account, &q.name_prefix).await?))
}

async fn create_tunnel(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Body(body): Body<api::CreateTunnel>,
) -> Result<(StatusCode, Json<api::Tunnel>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(c.create_tunnel(account, &body.name).await?),
    ))
}

async fn get_tunnel(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
) -> ApiResult<api::Tunnel> {
    Ok(Json(c.get_tunnel(account, &tunnel).await?))
}

async fn rename_tunnel(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
    Body(body): Body<api::RenameTunnel>,
) -> ApiResult<api::Tunnel> {
    Ok(Json(c.rename_tunnel(account, &tunnel, &body.name).await?))
}

async fn delete_tunnel(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<api::Tunnel> {
    Ok(Json(c.delete_tunnel(account, &tunnel, q.force).await?))
}

async fn tunnel_token(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
) -> ApiResult<api::TunnelTokenBody> {
    let token = c.tunnel_token(account, &tunnel).await?;
    Ok(Json(api::TunnelTokenBody { token }))
}

async fn rotate_secret(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
) -> ApiResult<api::TunnelTokenBody> {
    let token = c.rotate_secret(account, &tunnel).await?;
    Ok(Json(api::TunnelTokenBody { token }))
}

async fn list_routes(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
) -> ApiResult<Vec<api::Route>> {
    Ok(Json(c.list_routes(account, &tunnel).await?))
}

async fn create_route(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
    Body(body): Body<api::CreateRoute>,
) -> Result<(StatusCode, Json<api::Route>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(c.create_route(account, &tunnel, &body.hostname).await?),
    ))
}

async fn delete_route(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(route): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_route(account, &route).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_connectors(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
) -> ApiResult<Vec<api::Connector>> {
    Ok(Json(c.list_connectors(account, &tunnel).await?))
}

async fn list_ip_routes(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
) -> ApiResult<Vec<api::IpRoute>> {
    Ok(Json(c.list_ip_routes(account).await?))
}

async fn create_ip_route(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Body(body): Body<api::CreateIpRoute>,
) -> Result<(StatusCode, Json<api::IpRoute>), ApiError> {
    let route = c
        .create_ip_route(account, &body.tunnel, &body.network, &body.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(route)))
}

/// The route `cidr` is a network, percent-encoded by the caller (`10.0.0.0%2F8`) or its id.
async fn delete_ip_route(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(route): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_ip_route(account, &route).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn match_ip_route(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(ip): Path<String>,
) -> ApiResult<api::IpRoute> {
    let addr: std::net::IpAddr = ip.parse().map_err(|e| Error::invalid("ip", e))?;
    let route = c
        .match_ip_route(account, addr)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "route matching IP",
            name: ip.clone(),
        })?;
    Ok(Json(route))
}

/// Unauthenticated by design (quick tunnels need no account); bounded per client address.
async fn create_quick_tunnel(
    State(c): State<Arc<Control>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Result<(StatusCode, Json<api::QuickTunnel>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(c.create_quick_tunnel(peer.ip()).await?),
    ))
}

#[derive(Deserialize)]
struct ConnectQuery {
    /// `ip:port`, `[v6]:port` or `name:port` (names are resolved by the connector).
    destination: String,
}

/// A WebSocket carrying one TCP connection to a private-network destination, for
/// `adit access socks`. The route whose network holds the address picks the tunnel; for a
/// name, every tunnel with private routes is asked in turn.
async fn private_connect(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Query(q): Query<ConnectQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let (host, port) = q
        .destination
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
        .ok_or_else(|| Error::invalid("destination", "expected host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tunnels: Vec<_> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => c
            .match_ip_route(account, ip.to_canonical())
            .await?
            .map(|r| vec![r.tunnel_id])
            .unwrap_or_default(),
        Err(_) => {
            let mut ids = Vec::new();
            for route in c.list_ip_routes(account).await? {
                if !ids.contains(&route.tunnel_id) {
                    ids.push(route.tunnel_id);
                }
            }
            ids
        }
    };
    if tunnels.is_empty() {
        return Err(Error::NotFound {
            what: "private-network route for",
            name: q.destination.clone(),
        }
        .into());
    }
    let destination = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // Private-network streams come through the API, not the public edge: the edge's
    // visitor limits do not apply and their streams are not counted with the tunnel's.
    let edge = crate::edge::Edge::new(&c, false, crate::config::EdgeLimits::DEFAULT);
    let response = edge
        .private_connect(&tunnels, req, peer, &destination)
        .await;
    Ok(response.map(axum::body::Body::new))
}

#[derive(Deserialize)]
struct TrafficQuery {
    /// How far back, in minutes (default an hour, at most seven days).
    #[serde(default = "an_hour")]
    minutes: u32,
}

fn an_hour() -> u32 {
    60
}

async fn traffic(
    State(c): State<Arc<Control>>,
    Caller(account): Caller,
    Path(tunnel): Path<String>,
    Query(q): Query<TrafficQuery>,
) -> ApiResult<Vec<api::TrafficPoint>> {
    let minutes = q.minutes.clamp(1, 7 * 24 * 60);
    Ok(Json(c.traffic(account, &tunnel, minutes).await?))
}
