//! The dashboard's HTML routes: pages for a logged-in session, and the log-in and log-out
//! forms that work without any script. Everything else is the JSON API.

use std::{net::SocketAddr, sync::Arc};

use adit_core::api;
use axum::{
    Form, Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    api::{ApiError, cookie_header, login_and_audit},
    auth::{self, SESSION_COOKIE},
    control::Control,
};

pub(crate) fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/", get(tunnels_page))
        .route("/tunnels", get(tunnels_page))
        .route("/login", get(login_page).post(login_form))
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
        Ok::<_, crate::Error>((cookie.principal, session, tunnels))
    };
    match page.await {
        Ok((principal, session, tunnels)) => {
            let html = Html(adit_dashboard::render_tunnels_page(&tunnels, &session));
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

async fn login_page() -> Html<String> {
    Html(adit_dashboard::render_login_page(None, ""))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
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
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        Err(e) => {
            let status = e.status();
            let html = adit_dashboard::render_login_page(Some(e.message()), &request.email);
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
