//! The dashboard's HTML routes: pages for a logged-in session, and the log-in, log-out and
//! device-approval forms that work without any script. Everything else is the JSON API,
//! which the pages call from the browser once the bundle (`/pkg/*`) has hydrated them.

use std::{net::SocketAddr, sync::Arc};

use adit_core::{api, identity::Scope};
use adit_dashboard::{DeviceView, Page, PageData, SettingsPage, TunnelPageData};
use axum::{
    Extension, Form, Router,
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, HeaderValue, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    clock::now_ms,
    control::Control,
    identity::auth::{self, CookieSession, SESSION_COOKIE},
    web::ui::{self, Ui},
    web::{
        api::{cookie_header, login_and_audit},
        error::ApiError,
    },
};

pub(crate) fn router(control: Arc<Control>, ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(tunnels_page))
        .route("/tunnels", get(tunnels_page))
        .route("/tunnels/new", get(new_tunnel_page))
        .route("/tunnels/{tunnel}", get(tunnel_page))
        .route("/download/adit", get(crate::web::download::adit))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", axum::routing::post(logout_form))
        .route("/device", get(device_page).post(device_form))
        .route(
            "/settings",
            get(|| async { Redirect::to("/settings/zones") }),
        )
        .route("/settings/{section}", get(settings_page))
        .route("/pkg/{*path}", get(ui::pkg))
        .layer(Extension(ui))
        .layer(axum::middleware::map_response(page_security_headers))
        .with_state(control)
}

/// What a browser may do with the dashboard's pages: never frame them (the device page is
/// a one-click Approve), run only our bundle and our one inline boot script, apply only our
/// stylesheet, and talk only to this server.
async fn page_security_headers(mut response: Response) -> Response {
    static POLICY: std::sync::LazyLock<Option<HeaderValue>> = std::sync::LazyLock::new(|| {
        HeaderValue::from_str(&content_security_policy(
            adit_dashboard::INLINE_SCRIPTS,
            adit_dashboard::INLINE_STYLES,
        ))
        .ok()
    });
    let headers = response.headers_mut();
    if let Some(policy) = POLICY.as_ref() {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// A policy allowing exactly `scripts` and `styles` inline (by SHA-256), the bundle from
/// `/pkg` (`'wasm-unsafe-eval'` lets it compile its WebAssembly) and fetches to this origin.
fn content_security_policy(scripts: &[&str], styles: &[&str]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hashes = |texts: &[&str]| {
        texts
            .iter()
            .map(|text| {
                let digest = sha2::Sha256::digest(text.as_bytes());
                format!(
                    " 'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            })
            .collect::<String>()
    };
    format!(
        "default-src 'none'; script-src 'self'{} 'wasm-unsafe-eval'; style-src{}; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        hashes(scripts),
        hashes(styles)
    )
}

/// A whole page, loading the browser bundle when there is one.
fn render(ui: &Ui, session: Option<api::Session>, page: Page) -> Result<Html<String>, ApiError> {
    let data = PageData {
        session,
        now_ms: now_ms(),
        page,
    };
    adit_dashboard::render_page(&data, ui.has_bundle())
        .map(Html)
        .map_err(|e| crate::Error::from(e).into())
}

fn session_jwt(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| auth::cookie(v, SESSION_COOKIE))
}

/// Where a request without a live session goes: the log-in page, coming back to `here`
/// when there is somewhere to come back to.
fn to_login(here: Option<&str>) -> Response {
    match here {
        Some(here) => login_then(here),
        None => Redirect::to("/login").into_response(),
    }
}

/// A page for a logged-in session, its cookie renewed when due. Without a live session the
/// log-in page, coming back to `here`; a form passes its CSRF token as `csrf`, a page
/// `None`. `build` reads the page's data as the session's caller.
async fn logged_in_page(
    c: &Control,
    ui: &Ui,
    headers: &HeaderMap,
    here: Option<&str>,
    csrf: Option<&str>,
    build: impl AsyncFnOnce(&CookieSession) -> Result<Page, crate::Error>,
) -> Response {
    let Some(jwt) = session_jwt(headers) else {
        return to_login(here);
    };
    let found = async {
        let cookie = c.auth.session(jwt, csrf, csrf.is_some()).await?;
        let session = c.auth.describe(&cookie).await?;
        let page = build(&cookie).await?;
        Ok::<_, crate::Error>((cookie, session, page))
    };
    let (cookie, session, page) = match found.await {
        Ok(found) => found,
        Err(crate::Error::Unauthenticated) => return to_login(here),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let html = match render(ui, Some(session), page) {
        Ok(html) => html,
        Err(e) => return e.into_response(),
    };
    match cookie
        .principal
        .renewed
        .as_deref()
        .map(|jwt| cookie_header(c, headers, Some(jwt)))
    {
        Some(Ok(set_cookie)) => ([(header::SET_COOKIE, set_cookie)], html).into_response(),
        _ => html.into_response(),
    }
}

/// Where to go after logging in: only a path on this server, never another site
/// (`//evil.example` and `/\evil.example` are other sites to a browser).
fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control);
    ok.then_some(next)
}

/// `/login?next=…` for a page that needs a session.
fn login_then(path_and_query: &str) -> Response {
    let next: String = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// The Tunnels page of the session's account (its first page); without a live session,
/// the log-in page.
async fn tunnels_page(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
) -> Response {
    logged_in_page(&c, &ui, &headers, None, None, async |cookie| {
        let query = adit_core::api::TunnelListQuery {
            per_page: Some(adit_dashboard::TUNNELS_PER_PAGE),
            ..Default::default()
        };
        let first = c
            .list_tunnels_page(cookie.principal.account, &query)
            .await?;
        Ok(Page::Tunnels {
            tunnels: first.result,
            result_info: first.result_info,
        })
    })
    .await
}

/// The wizard that creates a tunnel: the account's tunnel names (a new name must differ)
/// and its zones (where hostnames can be routed).
async fn new_tunnel_page(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
) -> Response {
    logged_in_page(
        &c,
        &ui,
        &headers,
        Some("/tunnels/new"),
        None,
        async |cookie| {
            let account = cookie.principal.account;
            let taken = c.tunnel_names(account).await?;
            let zones = c.list_zones(account).await?;
            Ok(Page::NewTunnel {
                taken,
                zones: zones.into_iter().map(|z| z.name).collect(),
            })
        },
    )
    .await
}

/// One tunnel (by id or name) with everything its page shows: connectors, ingress
/// configuration, private networks, the last hour of traffic and the account's zones.
async fn tunnel_page(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    Path(tunnel): Path<String>,
) -> Response {
    let here = format!(
        "/tunnels/{}",
        url::form_urlencoded::byte_serialize(tunnel.as_bytes()).collect::<String>()
    );
    logged_in_page(&c, &ui, &headers, Some(&here), None, async |cookie| {
        let account = cookie.principal.account;
        let tunnel = c.get_tunnel(account, &tunnel).await?;
        let id = tunnel.id.to_string();
        Ok(Page::Tunnel(Box::new(TunnelPageData {
            connectors: c.list_connectors(account, &id).await?,
            configuration: c.tunnel_configuration(account, &id).await?,
            ip_routes: c
                .list_ip_routes(account)
                .await?
                .into_iter()
                .filter(|r| r.tunnel_id == tunnel.id)
                .collect(),
            traffic: c.traffic(account, &id, 60).await?,
            zones: c
                .list_zones(account)
                .await?
                .into_iter()
                .map(|z| z.name)
                .collect(),
            tunnel,
        })))
    })
    .await
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

async fn login_page(
    Extension(ui): Extension<Arc<Ui>>,
    Query(q): Query<LoginQuery>,
) -> Result<Html<String>, ApiError> {
    let login = Page::Login {
        error: None,
        email: String::new(),
        next: local_path(&q.next).unwrap_or_default().to_owned(),
    };
    render(&ui, None, login)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: adit_core::secret::Secret,
    #[serde(default)]
    next: String,
}

async fn login_form(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let request = api::LoginRequest {
        email: form.email,
        password: form.password,
        account: None,
    };
    let outcome = match login_and_audit(&c, &request, peer).await {
        Ok(logged_in) => cookie_header(&c, &headers, Some(&logged_in.jwt)),
        Err(e) => Err(e),
    };
    let next = local_path(&form.next);
    match outcome {
        Ok(cookie) => (
            [(header::SET_COOKIE, cookie)],
            Redirect::to(next.unwrap_or("/")),
        )
            .into_response(),
        Err(e) => {
            let status = e.status();
            let login = Page::Login {
                error: Some(e.message().to_owned()),
                email: request.email,
                next: next.unwrap_or_default().to_owned(),
            };
            match render(&ui, None, login) {
                Ok(html) => (status, html).into_response(),
                Err(e) => e.into_response(),
            }
        }
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf_token: String,
}

/// Ends the session (the form must carry its CSRF token) and clears the cookie.
async fn logout_form(
    State(c): State<Arc<Control>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(jwt) = session_jwt(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let ended = async {
        let cookie = c.auth.session(jwt, Some(&form.csrf_token), true).await?;
        c.auth.logout(cookie.id).await
    };
    if let Err(e) = ended.await {
        return match e {
            crate::Error::Unauthenticated => Redirect::to("/login").into_response(),
            e => ApiError::from(e).into_response(),
        };
    }
    match cookie_header(&c, &headers, None) {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct DeviceQuery {
    code: Option<String>,
}

/// Approving an `adit login`: with `?code=` (the link the CLI printed) the pending login
/// and its Approve / Deny buttons, else a box to type the code. Logging in comes first.
async fn device_page(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<DeviceQuery>,
) -> Response {
    let here = match &q.code {
        Some(code) => format!(
            "/device?code={}",
            url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
        ),
        None => "/device".to_owned(),
    };
    logged_in_page(&c, &ui, &headers, Some(&here), None, async |_| {
        let view = match q.code.as_deref().map(str::trim) {
            None | Some("") => DeviceView::Enter {
                code: String::new(),
                error: None,
            },
            Some(code) => match c.pending_device_login(code).await {
                Ok(pending) => DeviceView::Confirm {
                    user_code: pending.user_code,
                    client: pending.client,
                    source_ip: pending.source_ip,
                    requested_at: pending.requested_at,
                    expires_in_minutes: pending.expires_in.as_secs().div_ceil(60),
                },
                Err(crate::Error::NotFound { .. }) => unknown_code(code),
                Err(e) => return Err(e),
            },
        };
        Ok(Page::Device { view })
    })
    .await
}

fn unknown_code(code: &str) -> DeviceView {
    DeviceView::Enter {
        code: code.to_owned(),
        error: Some(
            "No login is waiting with this code: check it, or run adit login again (codes expire after 10 minutes)."
                .into(),
        ),
    }
}

#[derive(Deserialize)]
struct DeviceForm {
    csrf_token: String,
    code: String,
    decision: String,
}

/// Records the user's Approve or Deny (the form must carry the session's CSRF token).
async fn device_form(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Response {
    let csrf = Some(form.csrf_token.as_str());
    logged_in_page(&c, &ui, &headers, Some("/device"), csrf, async |cookie| {
        let approve = match form.decision.as_str() {
            "approve" => true,
            "deny" => false,
            _ => return Err(crate::Error::invalid("decision", "must be approve or deny")),
        };
        let view = match c
            .decide_device_login(&cookie.principal, &form.code, approve, peer.ip())
            .await
        {
            Ok(()) => DeviceView::Decided { approved: approve },
            Err(crate::Error::NotFound { .. }) => unknown_code(&form.code),
            Err(e) => return Err(e),
        };
        Ok(Page::Device { view })
    })
    .await
}

/// How many audit entries (the newest) the Audit log page shows.
const AUDIT_PAGE: i64 = 200;

/// The pages under `/settings/`.
#[derive(Clone, Copy)]
enum Settings {
    Zones,
    Tokens,
    Users,
    Audit,
    Nodes,
}

/// A Settings page (`/settings/zones`, `tokens`, `users`, `audit`, `nodes`) with the
/// account's data (the deployment's, for nodes). Zones and nodes are for everyone to read;
/// the other lists are read for admins only, and other roles get the page without them,
/// saying that an admin role is needed.
async fn settings_page(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    Path(section): Path<String>,
) -> Response {
    let which = match section.as_str() {
        "zones" => Settings::Zones,
        "tokens" => Settings::Tokens,
        "users" => Settings::Users,
        "audit" => Settings::Audit,
        "nodes" => Settings::Nodes,
        _ => return crate::web::error::not_found().await.into_response(),
    };
    let here = format!("/settings/{section}");
    logged_in_page(&c, &ui, &headers, Some(&here), None, async |cookie| {
        let account = cookie.principal.require(Scope::Read)?;
        let admin = cookie.principal.require(Scope::Admin).ok();
        let page = match (which, admin) {
            (Settings::Zones, _) => SettingsPage::Zones {
                zones: c.list_zones(account).await?,
            },
            (Settings::Nodes, _) => SettingsPage::Nodes {
                nodes: c.list_nodes().await?,
            },
            (Settings::Tokens, Some(account)) => SettingsPage::Tokens {
                tokens: Some(c.list_api_tokens(account).await?),
            },
            (Settings::Users, Some(account)) => SettingsPage::Users {
                users: Some(c.list_users(account).await?),
            },
            (Settings::Audit, Some(account)) => SettingsPage::Audit {
                entries: Some(c.list_audit(account, AUDIT_PAGE).await?),
            },
            (Settings::Tokens, None) => SettingsPage::Tokens { tokens: None },
            (Settings::Users, None) => SettingsPage::Users { users: None },
            (Settings::Audit, None) => SettingsPage::Audit { entries: None },
        };
        Ok(Page::Settings(page))
    })
    .await
}
