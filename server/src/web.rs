//! The dashboard's HTML routes: pages for a logged-in session, and the log-in and log-out
//! forms that work without any script. Everything else is the JSON API, which the pages
//! call from the browser once the bundle (`/pkg/*`) has hydrated them.

use std::{net::SocketAddr, sync::Arc};

use adit_core::api;
use adit_dashboard::{Page, PageData};
use axum::{
    Extension, Form, Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    api::{ApiError, cookie_header, login_and_audit},
    auth::{self, SESSION_COOKIE},
    clock::now_ms,
    control::Control,
    ui::{self, Ui},
};

pub(crate) fn router(control: Arc<Control>, ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(tunnels_page))
        .route("/tunnels", get(tunnels_page))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", axum::routing::post(logout_form))
        .route("/pkg/{*path}", get(ui::pkg))
        .layer(Extension(ui))
        .with_state(control)
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

/// The Tunnels page of the session's account; without a live session, the log-in page.
async fn tunnels_page(
    State(c): State<Arc<Control>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
) -> Response {
    let Some(jwt) = session_jwt(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let page = async {
        let cookie = c.auth.session(jwt, None, false).await?;
        let session = c.auth.describe(&cookie).await?;
        let tunnels = c.list_tunnels(cookie.principal.account, "").await?;
        Ok::<_, crate::Error>((cookie.principal, session, tunnels))
    };
    match page.await {
        Ok((principal, session, tunnels)) => {
            let html = match render(&ui, Some(session), Page::Tunnels { tunnels }) {
                Ok(html) => html,
                Err(e) => return e.into_response(),
            };
            match principal
                .renewed
                .as_deref()
                .map(|jwt| cookie_header(&c, &headers, Some(jwt)))
            {
                Some(Ok(cookie)) => ([(header::SET_COOKIE, cookie)], html).into_response(),
                _ => html.into_response(),
            }
        }
        Err(crate::Error::Unauthenticated) => Redirect::to("/login").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn login_page(Extension(ui): Extension<Arc<Ui>>) -> Result<Html<String>, ApiError> {
    let login = Page::Login {
        error: None,
        email: String::new(),
    };
    render(&ui, None, login)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
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
    match outcome {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        Err(e) => {
            let status = e.status();
            let login = Page::Login {
                error: Some(e.message().to_owned()),
                email: request.email,
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
