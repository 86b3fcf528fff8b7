//! The dashboard's HTML routes: pages for a logged-in session, and the log-in and log-out
//! forms that work without any script. Everything else is the JSON API.

use std::{net::SocketAddr, sync::Arc};

use adit_core::api;
use adit_dashboard::DeviceView;
use axum::{
    Form, Router,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    api::{ApiError, cookie_header, login_and_audit},
    auth::{self, CookieSession, SESSION_COOKIE},
    control::Control,
};

pub(crate) fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/", get(tunnels_page))
        .route("/tunnels", get(tunnels_page))
        .route("/login", get(login_page).post(login_form))
        .route("/device", get(device_page).post(device_form))
        .route("/logout", axum::routing::post(logout_form))
        .with_state(control)
}

fn session_jwt(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| auth::cookie(v, SESSION_COOKIE))
}

/// The Tunnels page of the session's account; without a live session, the log-in page.
async fn tunnels_page(State(c): State<Arc<Control>>, headers: HeaderMap) -> Response {
    let Some(jwt) = session_jwt(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let page = async {
        let cookie = c.auth.session(jwt, None, false).await?;
        let session = c.auth.describe(&cookie).await?;
        let tunnels = c.list_tunnels(cookie.principal.account, "").await?;
        Ok::<_, crate::Error>((
            cookie,
            adit_dashboard::render_tunnels_page(&tunnels, &session),
        ))
    };
    match page.await {
        Ok((cookie, html)) => page_response(&c, &headers, &cookie, html),
        Err(crate::Error::Unauthenticated) => Redirect::to("/login").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A rendered page, renewing the session cookie when due.
fn page_response(
    c: &Control,
    headers: &HeaderMap,
    cookie: &CookieSession,
    html: String,
) -> Response {
    let html = Html(html);
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
/// (`//evil.example` and `/\\evil.example` are other sites to a browser).
fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

/// `/login?next=…` for a page that needs a session.
fn login_then(path_and_query: &str) -> Response {
    let next: String = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Html<String> {
    let next = local_path(&q.next).unwrap_or_default();
    Html(adit_dashboard::render_login_page(None, "", next))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_form(
    State(c): State<Arc<Control>>,
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
    match outcome {
        Ok(cookie) => {
            let next = local_path(&form.next).unwrap_or("/");
            ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response()
        }
        Err(e) => {
            let status = e.status();
            let next = local_path(&form.next).unwrap_or_default();
            let html = adit_dashboard::render_login_page(Some(e.message()), &request.email, next);
            (status, Html(html)).into_response()
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
    let Some(jwt) = session_jwt(&headers) else {
        return login_then(&here);
    };
    let page = async {
        let cookie = c.auth.session(jwt, None, false).await?;
        let session = c.auth.describe(&cookie).await?;
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
        Ok((cookie, adit_dashboard::render_device_page(view, &session)))
    };
    match page.await {
        Ok((cookie, html)) => page_response(&c, &headers, &cookie, html),
        Err(crate::Error::Unauthenticated) => login_then(&here),
        Err(e) => ApiError::from(e).into_response(),
    }
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Response {
    let Some(jwt) = session_jwt(&headers) else {
        return login_then("/device");
    };
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return ApiError::from(crate::Error::invalid("decision", "must be approve or deny"))
                .into_response();
        }
    };
    let decided = async {
        let cookie = c.auth.session(jwt, Some(&form.csrf_token), true).await?;
        let session = c.auth.describe(&cookie).await?;
        let view = match c
            .decide_device_login(&cookie.principal, &form.code, approve, peer.ip())
            .await
        {
            Ok(()) => DeviceView::Decided { approved: approve },
            Err(crate::Error::NotFound { .. }) => unknown_code(&form.code),
            Err(e) => return Err(e),
        };
        Ok((cookie, adit_dashboard::render_device_page(view, &session)))
    };
    match decided.await {
        Ok((cookie, html)) => page_response(&c, &headers, &cookie, html),
        Err(crate::Error::Unauthenticated) => login_then("/device"),
        Err(e) => ApiError::from(e).into_response(),
    }
}
