//! REST under `/api/v1`. Every handler authenticates the caller's API token, then calls
//! `Control`; errors leave in one shape, `{code, message, details}`.

use std::{marker::PhantomData, net::SocketAddr, sync::Arc, time::Duration};

use adit_core::{
    api,
    identity::{Email, Scope},
    ids::AccountId,
};
use axum::{
    Extension, Json, Router,
    extract::{
        ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State,
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{
    IntoParams, Modify, OpenApi, ToSchema,
    openapi::{
        ContentBuilder, Ref, RefOr, ResponseBuilder,
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    Error,
    clock::now_ms,
    control::Control,
    edge::Edge,
    identity::auth::{self, Principal},
    storage::AuditRow,
    web::error::ApiError,
};

/// What a handler needs the caller to be allowed to do.
pub trait Needs {
    const SCOPE: Scope;
}

/// Reading the account's objects.
pub struct Read;
/// Creating, changing and deleting tunnels (and reading their tokens).
pub struct WriteTunnels;
/// Adding and removing public hostnames and private networks.
pub struct WriteRoutes;
/// Users, API tokens and the audit log.
pub struct Administer;

impl Needs for Read {
    const SCOPE: Scope = Scope::Read;
}
impl Needs for WriteTunnels {
    const SCOPE: Scope = Scope::TunnelsWrite;
}
impl Needs for WriteRoutes {
    const SCOPE: Scope = Scope::RoutesWrite;
}
impl Needs for Administer {
    const SCOPE: Scope = Scope::Admin;
}

/// The caller's account, when the caller (authenticated by [`authenticate`]) may do `N`.
pub struct Can<N>(pub AccountId, pub Principal, PhantomData<N>);

impl<N: Needs> FromRequestParts<Arc<Control>> for Can<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<Control>) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(Error::Unauthenticated)?;
        let account = principal.require(N::SCOPE)?;
        Ok(Self(account, principal, PhantomData))
    }
}

/// Whether cookies must be `Secure`: the operator says so, or the request came over TLS
/// through a proxy.
fn secure_cookies(control: &Control, headers: &HeaderMap) -> bool {
    control.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Authenticates every protected request (API token or session cookie, with its CSRF
/// token on state-changing requests), renews the session cookie when due, and writes each
/// state-changing request to the audit log with who, from where, what and the outcome.
async fn authenticate(
    State(c): State<Arc<Control>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = req.headers();
    let resolved = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
    {
        Some(token) => c.auth.api_token(token).await.map(|p| (p, None)),
        None => match headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| auth::cookie(v, auth::SESSION_COOKIE))
        {
            Some(jwt) => {
                let csrf = headers.get(auth::CSRF_HEADER).and_then(|v| v.to_str().ok());
                c.auth
                    .session(jwt, csrf, changes_state)
                    .await
                    .map(|cookie| (cookie.principal.clone(), Some(cookie)))
            }
            None => Err(Error::Unauthenticated),
        },
    };
    let (principal, cookie) = match resolved {
        Ok(found) => found,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let secure = secure_cookies(&c, req.headers());
    let action = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path(), MatchedPath::as_str)
    );
    let target = req.uri().path().to_owned();
    req.extensions_mut().insert(principal.clone());
    if let Some(cookie) = cookie {
        req.extensions_mut().insert(cookie);
    }
    let mut response = next.run(req).await;
    if let Some(jwt) = &principal.renewed
        && let Ok(cookie) = HeaderValue::from_str(&auth::session_cookie(Some(jwt), secure))
        && !response.headers().contains_key(header::SET_COOKIE)
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    if changes_state {
        c.audit(AuditRow {
            account_id: principal.account,
            at: now_ms(),
            actor: principal.actor.to_string(),
            action,
            target,
            source_ip: peer.ip().to_string(),
            outcome: response.status().as_u16().to_string(),
        })
        .await;
    }
    response
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Without paging: only tunnels whose name starts with this.
    #[serde(default)]
    name_prefix: String,
    // Not a flattened `TunnelListQuery`: serde_urlencoded cannot read numbers through
    // `flatten`.
    /// The page, from 1; asks for one page.
    page: Option<u32>,
    /// Tunnels per page (20 by default, at most 1000); asks for one page.
    per_page: Option<u32>,
    /// Only tunnels whose name contains this (any case) or whose id starts with it; asks
    /// for one page.
    name: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Delete even while connectors are connected.
    #[serde(default)]
    force: bool,
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The REST API and its OpenAPI description, served at `/api/v1/openapi.json`. Routes are
/// registered only through `routes!`, which takes each handler's `#[utoipa::path]`, so the
/// router cannot serve a route the description leaves out. Private-network connects go
/// through `edge`, the one public edge, so their streams count toward the same per-tunnel
/// limit as visitors'.
pub fn router(control: Arc<Control>, edge: Arc<Edge>) -> Router {
    let (schemas, paths, connect) = routes!(private_connect);
    let protected = OpenApiRouter::new()
        .routes(routes!(list_tunnels, create_tunnel))
        .routes(routes!(get_tunnel, rename_tunnel, delete_tunnel))
        .routes(routes!(tunnel_token))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_routes, create_route))
        .routes(routes!(list_connectors))
        .routes(routes!(cleanup_connections))
        .routes(routes!(traffic))
        .routes(routes!(tunnel_configuration, put_tunnel_configuration))
        .routes(routes!(delete_route))
        .routes(routes!(list_ip_routes, create_ip_route))
        .routes(routes!(match_ip_route))
        .routes(routes!(delete_ip_route))
        .routes((schemas, paths, connect.layer(Extension(edge))))
        .routes(routes!(session))
        .routes(routes!(logout))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, remove_user))
        .routes(routes!(list_api_tokens, create_api_token))
        .routes(routes!(revoke_api_token))
        .routes(routes!(audit_log))
        .routes(routes!(list_zones, create_zone))
        .routes(routes!(update_zone, delete_zone))
        .routes(routes!(
            zone_certificate,
            put_zone_certificate,
            delete_zone_certificate
        ))
        .routes(routes!(list_certificates))
        .routes(routes!(list_nodes))
        .routes(routes!(events))
        .route_layer(middleware::from_fn_with_state(
            control.clone(),
            authenticate,
        ));
    let (router, mut description) = OpenApiRouter::with_openapi(Description::openapi())
        .routes(routes!(login))
        .routes(routes!(start_device_login))
        .routes(routes!(redeem_device_code))
        .routes(routes!(create_quick_tunnel))
        .routes(routes!(openapi_json))
        .merge(protected)
        .split_for_parts();
    describe_errors(&mut description);
    // The description is whole only once every route is in, so its own route gets it now.
    router
        .layer(Extension(Arc::new(description)))
        .with_state(control)
}

/// The parts of the description no handler states: who the API is, how callers
/// authenticate, and the error shape.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Adit",
        description = "The REST API of an Adit server. A call needs the scope its operation's \
            security names (an API token's scopes, or a session's role); `admin` implies every \
            scope and either write scope implies `read`. Errors always have the shape \
            `{code, message, details}`."
    ),
    modifiers(&AuthSchemes),
    components(schemas(api::ChangeNotice))
)]
struct Description;

/// The two ways to authenticate, named by each operation's `security`.
struct AuthSchemes;

impl Modify for AuthSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`Authorization: Bearer …`); the first admin's is in \
                         `<data-dir>/admin-token`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                &format!(
                    "The session cookie `POST /api/v1/auth/login` sets; state-changing requests \
                     also send the session's `csrf_token` in `{}`.",
                    auth::CSRF_HEADER
                ),
            ))),
        );
    }
}

/// Name of the error response every operation refers to.
const ERROR_RESPONSE: &str = "Error";

/// Gives every operation the error answer it can get besides those its handler names:
/// any status with the one error body, and 401/403 where it needs a caller. The handlers
/// name only the errors particular to them.
fn describe_errors(openapi: &mut utoipa::openapi::OpenApi) {
    let error = ResponseBuilder::new()
        .description("An error: `code` is stable and machine-readable, `message` is for people.")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build();
    openapi
        .components
        .get_or_insert_with(Default::default)
        .responses
        .insert(ERROR_RESPONSE.to_owned(), RefOr::T(error));
    let error = || RefOr::Ref(Ref::from_response_name(ERROR_RESPONSE));
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let needs_caller = operation
                .security
                .as_ref()
                .is_some_and(|any_of| any_of.iter().any(|r| *r != SecurityRequirement::default()));
            let responses = &mut operation.responses.responses;
            if needs_caller {
                responses.entry("401".to_owned()).or_insert_with(error);
                responses.entry("403".to_owned()).or_insert_with(error);
            }
            responses.entry("default".to_owned()).or_insert_with(error);
        }
    }
}

/// This description, as JSON. Open to all: it describes the API and holds no data.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = OK, description = "this document (OpenAPI 3.1)", body = Object))
)]
async fn openapi_json(
    Extension(description): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<Arc<utoipa::openapi::OpenApi>> {
    Json(description)
}

/// `GET /api/v1/tunnels`: the whole list (what clients before paging read) or one page.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum TunnelList {
    All(Vec<api::Tunnel>),
    Page(api::TunnelPage),
}

/// The whole list as an array when no page is asked for (what clients before paging
/// read); with `page`, `per_page` or `name`, one page with its `result_info`.
#[utoipa::path(
    get, path = "/api/v1/tunnels", tag = "tunnels", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(ListQuery),
    responses((status = OK, description = "every tunnel (an array), or one page of them when `page`, `per_page` or `name` is given", body = TunnelList))
)]
async fn list_tunnels(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<TunnelList> {
    let page = api::TunnelListQuery {
        page: q.page,
        per_page: q.per_page,
        name: q.name,
    };
    if page == api::TunnelListQuery::default() {
        let all = c.list_tunnels(account, &q.name_prefix).await?;
        return Ok(Json(TunnelList::All(all)));
    }
    Ok(Json(TunnelList::Page(
        c.list_tunnels_page(account, &page).await?,
    )))
}

#[utoipa::path(
    post, path = "/api/v1/tunnels", tag = "tunnels", security(("api_token" = ["tunnels:write"]), ("session" = ["tunnels:write"])),
    request_body = api::CreateTunnel,
    responses(
        (status = CREATED, description = "the new tunnel", body = api::Tunnel),
        (status = CONFLICT, description = "the account has a tunnel of that name", body = api::ApiError),
    )
)]
async fn create_tunnel(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteTunnels>,
    Body(body): Body<api::CreateTunnel>,
) -> Result<(StatusCode, Json<api::Tunnel>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            c.create_tunnel(account, &body.name, body.config_src)
                .await?,
        ),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/tunnels/{tunnel}", tag = "tunnels", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    responses((status = OK, description = "the tunnel", body = api::Tunnel))
)]
async fn get_tunnel(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Path(tunnel): Path<String>,
) -> ApiResult<api::Tunnel> {
    Ok(Json(c.get_tunnel(account, &tunnel).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/tunnels/{tunnel}", tag = "tunnels", security(("api_token" = ["tunnels:write"]), ("session" = ["tunnels:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    request_body = api::RenameTunnel,
    responses((status = OK, description = "the renamed tunnel", body = api::Tunnel))
)]
async fn rename_tunnel(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteTunnels>,
    Path(tunnel): Path<String>,
    Body(body): Body<api::RenameTunnel>,
) -> ApiResult<api::Tunnel> {
    Ok(Json(c.rename_tunnel(account, &tunnel, &body.name).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/tunnels/{tunnel}", tag = "tunnels", security(("api_token" = ["tunnels:write"]), ("session" = ["tunnels:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name"), DeleteQuery),
    responses(
        (status = OK, description = "the deleted tunnel", body = api::Tunnel),
        (status = CONFLICT, description = "connected, and `force` not given", body = api::ApiError),
    )
)]
async fn delete_tunnel(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteTunnels>,
    Path(tunnel): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<api::Tunnel> {
    Ok(Json(c.delete_tunnel(account, &tunnel, q.force).await?))
}

#[utoipa::path(
    get, path = "/api/v1/tunnels/{tunnel}/token", tag = "tunnels", security(("api_token" = ["tunnels:write"]), ("session" = ["tunnels:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    responses((status = OK, description = "the token a connector runs the tunnel with", body = api::TunnelTokenBody))
)]
async fn tunnel_token(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteTunnels>,
    Path(tunnel): Path<String>,
) -> ApiResult<api::TunnelTokenBody> {
    let token = c.tunnel_token(account, &tunnel).await?;
    Ok(Json(api::TunnelTokenBody { token }))
}

#[utoipa::path(
    post, path = "/api/v1/tunnels/{tunnel}/rotate-secret", tag = "tunnels", security(("api_token" = ["tunnels:write"]), ("session" = ["tunnels:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    responses((status = OK, description = "the new token; running connectors are disconnected and the old token refused", body = api::TunnelTokenBody))
)]
async fn rotate_secret(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteTunnels>,
    Path(tunnel): Path<String>,
) -> ApiResult<api::TunnelTokenBody> {
    let token = c.rotate_secret(account, &tunnel).await?;
    Ok(Json(api::TunnelTokenBody { token }))
}

#[utoipa::path(
    get, path = "/api/v1/tunnels/{tunnel}/routes", tag = "routes", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    responses((status = OK, description = "the tunnel's hostname routes", body = Vec<api::Route>))
)]
async fn list_routes(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Path(tunnel): Path<String>,
) -> ApiResult<Vec<api::Route>> {
    Ok(Json(c.list_routes(account, &tunnel).await?))
}

#[utoipa::path(
    post, path = "/api/v1/tunnels/{tunnel}/routes", tag = "routes", security(("api_token" = ["routes:write"]), ("session" = ["routes:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    request_body = api::CreateRoute,
    responses(
        (status = CREATED, description = "the new route", body = api::Route),
        (status = FORBIDDEN, description = "the hostname lies outside the account's zones", body = api::ApiError),
        (status = CONFLICT, description = "another tunnel has the hostname", body = api::ApiError),
    )
)]
async fn create_route(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteRoutes>,
    Path(tunnel): Path<String>,
    Body(body): Body<api::CreateRoute>,
) -> Result<(StatusCode, Json<api::Route>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(c.create_route(account, &tunnel, &body.hostname).await?),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/routes/{route}", tag = "routes", security(("api_token" = ["routes:write"]), ("session" = ["routes:write"])),
    params(("route" = String, Path, description = "the route's id")),
    responses((status = NO_CONTENT, description = "removed"))
)]
async fn delete_route(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteRoutes>,
    Path(route): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_route(account, &route).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/tunnels/{tunnel}/connectors", tag = "tunnels", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    responses((status = OK, description = "the live connectors and their connections", body = Vec<api::Connector>))
)]
async fn list_connectors(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Path(tunnel): Path<String>,
) -> ApiResult<Vec<api::Connector>> {
    Ok(Json(c.list_connectors(account, &tunnel).await?))
}

/// Which connector `DELETE …/connections` drops; cloudflared's API calls it `client_id`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CleanupQuery {
    /// Only this connector (cloudflared's `client_id` is read too); all when absent.
    #[serde(alias = "client_id")]
    connector_id: Option<String>,
}

#[utoipa::path(
    delete, path = "/api/v1/tunnels/{tunnel}/connections", tag = "tunnels", security(("api_token" = ["tunnels:write"]), ("session" = ["tunnels:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name"), CleanupQuery),
    responses((status = OK, description = "how many connectors were forgotten (their connections on this node closed)", body = api::CleanupConnections))
)]
async fn cleanup_connections(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteTunnels>,
    Path(tunnel): Path<String>,
    Query(q): Query<CleanupQuery>,
) -> ApiResult<api::CleanupConnections> {
    let connectors = c
        .cleanup_connections(account, &tunnel, q.connector_id.as_deref())
        .await?;
    Ok(Json(api::CleanupConnections { connectors }))
}

#[utoipa::path(
    get, path = "/api/v1/ip-routes", tag = "private networks", security(("api_token" = ["read"]), ("session" = ["read"])),
    responses((status = OK, description = "the private-network routes", body = Vec<api::IpRoute>))
)]
async fn list_ip_routes(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
) -> ApiResult<Vec<api::IpRoute>> {
    Ok(Json(c.list_ip_routes(account).await?))
}

#[utoipa::path(
    post, path = "/api/v1/ip-routes", tag = "private networks", security(("api_token" = ["routes:write"]), ("session" = ["routes:write"])),
    request_body = api::CreateIpRoute,
    responses(
        (status = CREATED, description = "the new route", body = api::IpRoute),
        (status = CONFLICT, description = "the network is routed already", body = api::ApiError),
    )
)]
async fn create_ip_route(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteRoutes>,
    Body(body): Body<api::CreateIpRoute>,
) -> Result<(StatusCode, Json<api::IpRoute>), ApiError> {
    let route = c
        .create_ip_route(account, &body.tunnel, &body.network, &body.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(route)))
}

/// The route `cidr` is a network, percent-encoded by the caller (`10.0.0.0%2F8`) or its id.
#[utoipa::path(
    delete, path = "/api/v1/ip-routes/{route}", tag = "private networks", security(("api_token" = ["routes:write"]), ("session" = ["routes:write"])),
    params(("route" = String, Path, description = "the route's id, or its network with the `/` written `%2F`")),
    responses((status = NO_CONTENT, description = "removed"))
)]
async fn delete_ip_route(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteRoutes>,
    Path(route): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_ip_route(account, &route).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/ip-routes/match/{ip}", tag = "private networks", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("ip" = String, Path, description = "an IPv4 or IPv6 address")),
    responses(
        (status = OK, description = "the route the address takes (longest prefix)", body = api::IpRoute),
        (status = NOT_FOUND, description = "no route holds the address", body = api::ApiError),
    )
)]
async fn match_ip_route(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
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
#[utoipa::path(
    post, path = "/api/v1/quick-tunnels", tag = "quick tunnels", security(()),
    responses(
        (status = CREATED, description = "a quick tunnel: its token and where it is reachable", body = api::QuickTunnel),
        (status = NOT_FOUND, description = "quick tunnels are off", body = api::ApiError),
        (status = TOO_MANY_REQUESTS, description = "the caller's address holds too many", body = api::ApiError),
    )
)]
async fn create_quick_tunnel(
    State(c): State<Arc<Control>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Result<(StatusCode, Json<api::QuickTunnel>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(c.create_quick_tunnel(peer.ip()).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConnectQuery {
    /// `ip:port`, `[v6]:port` or `name:port` (names are resolved by the connector).
    destination: String,
}

/// A WebSocket carrying one TCP connection to a private-network destination, for
/// `adit access socks`. The route whose network holds the address picks the tunnel; for a
/// name, every tunnel with private routes is asked in turn.
///
/// Only an API token opens one: a WebSocket handshake is a cross-site GET that carries the
/// browser's cookies and no CSRF token, so a page on any sibling host could otherwise open
/// private-network streams as whoever is logged in to the dashboard.
#[utoipa::path(
    get, path = "/api/v1/private/connect", tag = "private networks",
    security(("api_token" = ["read"])),
    params(ConnectQuery),
    responses(
        (status = SWITCHING_PROTOCOLS, description = "a WebSocket carrying the TCP connection's bytes in binary messages (an empty one ends the data)"),
        (status = FORBIDDEN, description = "a dashboard session (only API tokens open private-network streams)", body = api::ApiError),
        (status = NOT_FOUND, description = "no private-network route reaches the destination", body = api::ApiError),
    )
)]
async fn private_connect(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    cookie: Option<axum::Extension<auth::CookieSession>>,
    axum::Extension(edge): axum::Extension<Arc<Edge>>,
    Query(q): Query<ConnectQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    if cookie.is_some() {
        return Err(Error::Forbidden(
            "private-network streams need an API token (Authorization: Bearer); a dashboard session cannot open them".into(),
        )
        .into());
    }
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
    // Private-network streams come through the API, not the public edge's listener: the
    // visitor limits on heads and bodies do not apply, but each stream takes one of the
    // tunnel's slots (`--edge-max-streams-per-tunnel`) as a visitor's does.
    let response = edge
        .private_connect(&tunnels, req, peer, &destination)
        .await;
    Ok(response.map(axum::body::Body::new))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TrafficQuery {
    /// How far back, in minutes (default an hour, at most seven days).
    #[serde(default = "an_hour")]
    minutes: u32,
}

fn an_hour() -> u32 {
    60
}

#[utoipa::path(
    get, path = "/api/v1/tunnels/{tunnel}/traffic", tag = "tunnels", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name"), TrafficQuery),
    responses((status = OK, description = "the tunnel's traffic, minute by minute", body = Vec<api::TrafficPoint>))
)]
async fn traffic(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Path(tunnel): Path<String>,
    Query(q): Query<TrafficQuery>,
) -> ApiResult<Vec<api::TrafficPoint>> {
    let minutes = q.minutes.clamp(1, 7 * 24 * 60);
    Ok(Json(c.traffic(account, &tunnel, minutes).await?))
}

// ---- remotely managed tunnels ----

#[utoipa::path(
    get, path = "/api/v1/tunnels/{tunnel}/configurations", tag = "tunnels", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    responses((status = OK, description = "the tunnel's ingress configuration", body = api::TunnelConfiguration))
)]
async fn tunnel_configuration(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Path(tunnel): Path<String>,
) -> ApiResult<api::TunnelConfiguration> {
    Ok(Json(c.tunnel_configuration(account, &tunnel).await?))
}

/// A new version of the tunnel's ingress rules; its hostnames become the tunnel's routes,
/// hence routes:write.
#[utoipa::path(
    put, path = "/api/v1/tunnels/{tunnel}/configurations", tag = "tunnels", security(("api_token" = ["routes:write"]), ("session" = ["routes:write"])),
    params(("tunnel" = String, Path, description = "the tunnel's UUID or name")),
    request_body = api::PutTunnelConfiguration,
    responses(
        (status = OK, description = "the new version, pushed to the tunnel's connectors", body = api::TunnelConfiguration),
        (status = FORBIDDEN, description = "a hostname lies outside the account's zones", body = api::ApiError),
        (status = CONFLICT, description = "a hostname of another tunnel, or a locally managed tunnel", body = api::ApiError),
    )
)]
async fn put_tunnel_configuration(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<WriteRoutes>,
    Path(tunnel): Path<String>,
    Body(body): Body<api::PutTunnelConfiguration>,
) -> ApiResult<api::TunnelConfiguration> {
    Ok(Json(
        c.put_tunnel_configuration(account, &tunnel, body.config)
            .await?,
    ))
}

// ---- live change notices ----

/// How long one event stream lives. The browser's `EventSource` then reconnects on its
/// own, which authenticates the caller afresh: a revoked token or ended session stops
/// getting notices within this time.
const EVENT_STREAM_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// A comment this often keeps proxies and browsers from timing the stream out.
const EVENT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How soon a browser reconnects after the stream ends.
const EVENT_RETRY: Duration = Duration::from_secs(1);

/// The caller's account's change notices ([`api::ChangeNotice`]) as Server-Sent Events,
/// one `data:` line of JSON each. A page re-reads what it shows when one arrives, and
/// whenever the stream (re)opens, since notices raised while it was away are not replayed.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events", security(("api_token" = ["read"]), ("session" = ["read"])),
    responses((status = OK, description = "Server-Sent Events, each `data:` a `ChangeNotice` as JSON; the stream ends after 5 minutes", content_type = "text/event-stream", body = String))
)]
async fn events(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    let until = tokio::time::Instant::now() + EVENT_STREAM_LIFETIME;
    let notices = c
        .changes
        .subscribe(account, until)
        .map(|notice| Event::default().json_data(notice));
    let hello = futures_util::stream::once(async { Ok(Event::default().retry(EVENT_RETRY)) });
    Sse::new(hello.chain(notices)).keep_alive(KeepAlive::new().interval(EVENT_KEEP_ALIVE))
}

// ---- sessions ----

/// Checks a login and opens a session, writing the attempt to the audit log of the user's
/// account (a failed one to the accounts of each user whose password was tried). Shared by
/// the JSON login and the dashboard's form.
pub(crate) async fn login_and_audit(
    c: &Control,
    request: &api::LoginRequest,
    peer: SocketAddr,
) -> Result<auth::LoggedIn, ApiError> {
    let audit = |account, email: &Email, outcome: &str| AuditRow {
        account_id: account,
        at: now_ms(),
        actor: format!("user:{email}"),
        action: "POST /api/v1/auth/login".into(),
        target: "/api/v1/auth/login".into(),
        source_ip: peer.ip().to_string(),
        outcome: outcome.to_owned(),
    };
    match c.auth.login(request, peer.ip()).await {
        Ok((logged_in, user)) => {
            c.audit(audit(logged_in.session.account_id, &user.email, "200"))
                .await;
            Ok(logged_in)
        }
        Err((e, tried)) => {
            let error = ApiError::from(e);
            for user in tried {
                if let Ok(accounts) = c.storage.memberships_of(user.id).await {
                    for (account, _, _) in accounts {
                        c.audit(audit(account, &user.email, error.status().as_str()))
                            .await;
                    }
                }
            }
            Err(error)
        }
    }
}

/// `Set-Cookie` for a session JWT (`None` clears it).
pub(crate) fn cookie_header(
    c: &Control,
    headers: &HeaderMap,
    jwt: Option<&str>,
) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&auth::session_cookie(jwt, secure_cookies(c, headers)))
        .map_err(|_| Error::Crypto("unusable session cookie".into()).into())
}

/// Logs in with email and password: sets the session cookie and answers the session,
/// whose `csrf_token` must accompany every state-changing request.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = api::LoginRequest,
    responses(
        (status = OK, description = "the session; its cookie is set", body = api::Session,
            headers(("set-cookie" = String, description = "the session cookie"))),
        (status = UNAUTHORIZED, description = "`login_failed`", body = api::ApiError),
        (status = TOO_MANY_REQUESTS, description = "`rate_limited`", body = api::ApiError),
    )
)]
async fn login(
    State(c): State<Arc<Control>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body<api::LoginRequest>,
) -> Result<Response, ApiError> {
    let logged_in = login_and_audit(&c, &body, peer).await?;
    let cookie = cookie_header(&c, &headers, Some(&logged_in.jwt))?;
    Ok(([(header::SET_COOKIE, cookie)], Json(logged_in.session)).into_response())
}

/// `adit login` starts here: a device code for the CLI, a user code for the person.
#[utoipa::path(
    post, path = "/api/v1/auth/device", tag = "auth", security(()),
    request_body = api::StartDeviceLogin,
    responses(
        (status = OK, description = "the codes: the device code for the CLI, the user code for the person", body = api::DeviceLogin),
        (status = TOO_MANY_REQUESTS, description = "too many pending from the caller's address or network", body = api::ApiError),
    )
)]
async fn start_device_login(
    State(c): State<Arc<Control>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<api::StartDeviceLogin>,
) -> ApiResult<api::DeviceLogin> {
    Ok(Json(c.start_device_login(&body, peer.ip()).await?))
}

/// The CLI's poll: `authorization_pending` until the user decides, then the token once.
#[utoipa::path(
    post, path = "/api/v1/auth/device/token", tag = "auth", security(()),
    request_body = api::DeviceTokenRequest,
    responses(
        (status = OK, description = "the approved login's API token, answered once", body = api::DeviceToken),
        (status = BAD_REQUEST, description = "`authorization_pending`, `slow_down`, `access_denied` or `expired_token`", body = api::ApiError),
    )
)]
async fn redeem_device_code(
    State(c): State<Arc<Control>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<api::DeviceTokenRequest>,
) -> ApiResult<api::DeviceToken> {
    Ok(Json(
        c.redeem_device_code(&body.device_code, peer.ip()).await?,
    ))
}

/// The session behind the cookie (its CSRF token included, for pages that load later).
#[utoipa::path(
    get, path = "/api/v1/auth/session", tag = "auth", security(("session" = ["read"])),
    responses((status = OK, description = "the session behind the cookie", body = api::Session))
)]
async fn session(
    State(c): State<Arc<Control>>,
    Can(..): Can<Read>,
    cookie: Option<axum::Extension<auth::CookieSession>>,
) -> ApiResult<api::Session> {
    let axum::Extension(cookie) = cookie.ok_or(Error::Unauthenticated)?;
    Ok(Json(c.auth.describe(&cookie).await?))
}

/// Ends the session and clears its cookie.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth", security(("session" = ["read"])),
    responses((status = NO_CONTENT, description = "the session is ended and its cookie cleared",
        headers(("set-cookie" = String, description = "the cleared session cookie"))))
)]
async fn logout(
    State(c): State<Arc<Control>>,
    Can(..): Can<Read>,
    headers: HeaderMap,
    cookie: Option<axum::Extension<auth::CookieSession>>,
) -> Result<Response, ApiError> {
    let Some(axum::Extension(cookie)) = cookie else {
        return Err(Error::invalid(
            "session",
            "log out ends a cookie session; API tokens are revoked instead",
        )
        .into());
    };
    c.auth.logout(cookie.id).await?;
    let cookie = cookie_header(&c, &headers, None)?;
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}

// ---- users, API tokens, audit log ----

#[utoipa::path(
    get, path = "/api/v1/users", tag = "users", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    responses((status = OK, description = "the account's users and roles", body = Vec<api::User>))
)]
async fn list_users(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
) -> ApiResult<Vec<api::User>> {
    Ok(Json(c.list_users(account).await?))
}

#[utoipa::path(
    post, path = "/api/v1/users", tag = "users", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    request_body = api::CreateUser,
    responses(
        (status = CREATED, description = "the new user, with its password when the server generated it", body = api::CreatedUser),
        (status = CONFLICT, description = "the account has a user with the email", body = api::ApiError),
    )
)]
async fn create_user(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Body(body): Body<api::CreateUser>,
) -> Result<(StatusCode, Json<api::CreatedUser>), ApiError> {
    let user = c
        .create_user(account, &body.email, body.role, body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(
    patch, path = "/api/v1/users/{user}", tag = "users", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("user" = String, Path, description = "the user's id")),
    request_body = api::UpdateUser,
    responses(
        (status = OK, description = "the user with its new role", body = api::User),
        (status = CONFLICT, description = "the account's last admin", body = api::ApiError),
    )
)]
async fn update_user(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(user): Path<String>,
    Body(body): Body<api::UpdateUser>,
) -> ApiResult<api::User> {
    Ok(Json(c.set_user_role(account, &user, body.role).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/users/{user}", tag = "users", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("user" = String, Path, description = "the user's id")),
    responses(
        (status = OK, description = "the removed user", body = api::User),
        (status = CONFLICT, description = "the account's last admin", body = api::ApiError),
    )
)]
async fn remove_user(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(user): Path<String>,
) -> ApiResult<api::User> {
    Ok(Json(c.remove_user(account, &user).await?))
}

#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    responses((status = OK, description = "the account's API tokens (never the tokens themselves)", body = Vec<api::ApiToken>))
)]
async fn list_api_tokens(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
) -> ApiResult<Vec<api::ApiToken>> {
    Ok(Json(c.list_api_tokens(account).await?))
}

#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    request_body = api::CreateApiToken,
    responses(
        (status = CREATED, description = "the new token, shown this once", body = api::CreatedApiToken),
        (status = FORBIDDEN, description = "scopes beyond the caller's", body = api::ApiError),
    )
)]
async fn create_api_token(
    State(c): State<Arc<Control>>,
    Can(_, caller, _): Can<Administer>,
    Body(body): Body<api::CreateApiToken>,
) -> Result<(StatusCode, Json<api::CreatedApiToken>), ApiError> {
    let token = c.create_api_token(&caller, &body.name, body.scopes).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

#[utoipa::path(
    delete, path = "/api/v1/tokens/{token}", tag = "tokens", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("token" = String, Path, description = "the token's id")),
    responses((status = NO_CONTENT, description = "revoked"))
)]
async fn revoke_api_token(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(token): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.revoke_api_token(account, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// How many entries, newest first (100 by default, at most 1000).
    #[serde(default = "audit_page")]
    limit: i64,
}

fn audit_page() -> i64 {
    100
}

#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(AuditQuery),
    responses((status = OK, description = "the audit log, newest first", body = Vec<api::AuditEntry>))
)]
async fn audit_log(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Vec<api::AuditEntry>> {
    Ok(Json(c.list_audit(account, q.limit).await?))
}

// ---- zones ----

#[utoipa::path(
    get, path = "/api/v1/zones", tag = "zones", security(("api_token" = ["read"]), ("session" = ["read"])),
    responses((status = OK, description = "the account's zones", body = Vec<api::Zone>))
)]
async fn list_zones(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
) -> ApiResult<Vec<api::Zone>> {
    Ok(Json(c.list_zones(account).await?))
}

#[utoipa::path(
    post, path = "/api/v1/zones", tag = "zones", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    request_body = api::CreateZone,
    responses(
        (status = CREATED, description = "the new zone", body = api::Zone),
        (status = CONFLICT, description = "it overlaps another account's zone or the quick-tunnel domain", body = api::ApiError),
    )
)]
async fn create_zone(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Body(body): Body<api::CreateZone>,
) -> Result<(StatusCode, Json<api::Zone>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(c.create_zone(account, &body.name).await?),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/zones/{zone}", tag = "zones", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("zone" = String, Path, description = "the zone's id or name")),
    responses((status = NO_CONTENT, description = "removed (routes made in it stay until deleted)"))
)]
async fn delete_zone(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(zone): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_zone(account, &zone).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    patch, path = "/api/v1/zones/{zone}", tag = "zones", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("zone" = String, Path, description = "the zone's id or name")),
    request_body = api::UpdateZone,
    responses((status = OK, description = "the zone with its new settings", body = api::Zone))
)]
async fn update_zone(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(zone): Path<String>,
    Body(body): Body<api::UpdateZone>,
) -> ApiResult<api::Zone> {
    Ok(Json(c.update_zone(account, &zone, &body).await?))
}

#[utoipa::path(
    get, path = "/api/v1/zones/{zone}/certificate", tag = "zones", security(("api_token" = ["read"]), ("session" = ["read"])),
    params(("zone" = String, Path, description = "the zone's id or name")),
    responses(
        (status = OK, description = "what the zone's uploaded certificate says (never its key)", body = api::ZoneCertificate),
        (status = NOT_FOUND, description = "no such zone, or it has no uploaded certificate", body = api::ApiError),
    )
)]
async fn zone_certificate(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
    Path(zone): Path<String>,
) -> ApiResult<api::ZoneCertificate> {
    Ok(Json(c.zone_certificate(account, &zone).await?))
}

#[utoipa::path(
    put, path = "/api/v1/zones/{zone}/certificate", tag = "zones", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("zone" = String, Path, description = "the zone's id or name")),
    request_body = api::UploadCertificate,
    responses(
        (status = OK, description = "kept (the key encrypted) and served at once for the zone's hostnames it covers", body = api::ZoneCertificate),
        (status = BAD_REQUEST, description = "the PEM does not parse, the key is not the certificate's, it names neither the zone nor `*.zone`, or it expired", body = api::ApiError),
    )
)]
async fn put_zone_certificate(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(zone): Path<String>,
    Body(body): Body<api::UploadCertificate>,
) -> ApiResult<api::ZoneCertificate> {
    Ok(Json(
        c.upload_zone_certificate(account, &zone, &body).await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/zones/{zone}/certificate", tag = "zones", security(("api_token" = ["admin"]), ("session" = ["admin"])),
    params(("zone" = String, Path, description = "the zone's id or name")),
    responses((status = NO_CONTENT, description = "removed: its hostnames get an ACME or the private CA's certificate again"))
)]
async fn delete_zone_certificate(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Administer>,
    Path(zone): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_zone_certificate(account, &zone).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- certificates ----

#[utoipa::path(
    get, path = "/api/v1/certificates", tag = "certificates", security(("api_token" = ["read"]), ("session" = ["read"])),
    responses((status = OK, description = "what the HTTPS edge serves for each of the account's routed hostnames, with the last ACME failure", body = Vec<api::CertificateStatus>))
)]
async fn list_certificates(
    State(c): State<Arc<Control>>,
    Can(account, ..): Can<Read>,
) -> ApiResult<Vec<api::CertificateStatus>> {
    Ok(Json(c.list_certificates(account).await?))
}

// ---- nodes ----

/// The nodes of the deployment (every account's callers see the same ones).
#[utoipa::path(
    get, path = "/api/v1/nodes", tag = "nodes", security(("api_token" = ["read"]), ("session" = ["read"])),
    responses((status = OK, description = "the deployment's nodes (any account's callers see the same)", body = Vec<api::Node>))
)]
async fn list_nodes(
    State(c): State<Arc<Control>>,
    Can(..): Can<Read>,
) -> ApiResult<Vec<api::Node>> {
    Ok(Json(c.list_nodes().await?))
}

#[cfg(test)]
mod tests {
    /// Routes are registered only through `routes!`, which carries each handler's
    /// `#[utoipa::path]`: a plain `Router::route` call here would serve a path the
    /// description (and the end-to-end test comparing it with what is served) does not know.
    #[test]
    fn routes_are_registered_only_with_their_descriptions() {
        let plain_route = concat!(".route", "(");
        assert!(
            !include_str!("api.rs").contains(plain_route),
            "register routes with `.routes(routes!(handler))` and a `#[utoipa::path]` on the handler"
        );
    }
}
