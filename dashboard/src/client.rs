//! The browser side (feature `hydrate`): `fetch` for [`crate::api::Api`], the account's
//! change notices through `EventSource`, page loads, focus, timers and the clipboard.

use std::{rc::Rc, time::Duration};

use adit_core::api;
use leptos::{prelude::*, task::spawn_local};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use web_sys::{EventSource, Headers, Request, RequestCredentials, RequestInit, Response};

use crate::{Error, components::copy_id::CopyState};

/// The account's change notices ([`api::ChangeNotice`]), as Server-Sent Events.
const EVENTS: &str = "/api/v1/events";
/// How soon a refused event stream is tried again (a dropped one the browser retries
/// itself).
const REOPEN_EVENTS: Duration = Duration::from_secs(5);
/// How often durations on the page move on.
const TICK: Duration = Duration::from_secs(15);
/// How long the copy button says what happened.
const COPY_FEEDBACK: Duration = Duration::from_secs(2);

/// A browser exception as an [`Error`].
pub(crate) fn js_error(value: JsValue) -> Error {
    let message = match value.dyn_into::<js_sys::Error>() {
        Ok(error) => String::from(error.message()),
        Err(value) => value.as_string().unwrap_or_else(|| format!("{value:?}")),
    };
    Error::Browser(message)
}

/// `method path` with an optional JSON body, as the logged-in user: the session cookie
/// goes along (same origin), and requests that change state carry `csrf_token`, as the API
/// demands of cookie callers. The answer's JSON (`null` when it has no body) as `T`, or
/// the API's error. Only [`crate::api::Api`] calls this.
pub(crate) async fn fetch<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    csrf_token: Option<&str>,
) -> Result<T, Error> {
    let headers = Headers::new().map_err(js_error)?;
    headers
        .set("Accept", "application/json")
        .map_err(js_error)?;
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(js_error)?;
        init.set_body(&JsValue::from_str(&body.to_string()));
    }
    if !matches!(method, "GET" | "HEAD")
        && let Some(token) = csrf_token
    {
        headers.set("X-CSRF-Token", token).map_err(js_error)?;
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(path, &init).map_err(js_error)?;
    let response: Response = JsFuture::from(window().fetch_with_request(&request))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?
        .as_string()
        .unwrap_or_default();
    if !response.ok() {
        let (message, field) = match serde_json::from_str::<api::ApiError>(&text) {
            Ok(e) => {
                let field = e
                    .details
                    .get("field")
                    .and_then(|f| f.as_str())
                    .map(str::to_owned);
                (e.message, field)
            }
            Err(_) => (text, None),
        };
        return Err(Error::Api {
            status: response.status(),
            message,
            field,
        });
    }
    Ok(serde_json::from_str(if text.is_empty() {
        "null"
    } else {
        &text
    })?)
}

/// Calls `on_notice` with each of the account's change notices, and with `None` whenever
/// the stream (re)opens or the server says notices were dropped (notices from while it
/// was away are not replayed: everything may have changed).
pub(crate) fn follow_changes(on_notice: Rc<dyn Fn(Option<api::ChangeNotice>)>) {
    let source = match EventSource::new(EVENTS) {
        Ok(source) => source,
        Err(e) => {
            leptos::logging::warn!("no live updates: {}", js_error(e));
            return;
        }
    };
    let on_open = {
        let on_notice = on_notice.clone();
        Closure::<dyn Fn()>::new(move || on_notice(None))
    };
    let on_message = {
        let on_notice = on_notice.clone();
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let notice = event
                .data()
                .as_string()
                .and_then(|data| serde_json::from_str::<api::ChangeNotice>(&data).ok())
                .filter(|n| n.kind != api::ChangeKind::Resync);
            on_notice(notice);
        })
    };
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let on_error = {
        let source = source.clone();
        Closure::<dyn Fn()>::new(move || {
            // A dropped stream is reconnecting by itself; a refused one (the session
            // ended, the server said no) is closed for good. Re-read, which sends an
            // ended session to the log-in page, and try the stream again later.
            if source.ready_state() == EventSource::CLOSED {
                on_notice(None);
                let on_notice = on_notice.clone();
                set_timeout(move || follow_changes(on_notice), REOPEN_EVENTS);
            }
        })
    };
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The handlers live as long as the page: a page is left by loading another.
    on_open.forget();
    on_message.forget();
    on_error.forget();
}

/// The session is over: to the log-in page, which brings the user back here.
pub(crate) fn go_to_login() {
    let location = window().location();
    let here = location.pathname().unwrap_or_default();
    let next = js_sys::encode_uri_component(&here);
    go_to(&format!("/login?next={next}"));
}

/// Moves the focus to the first element in `root` that `selector` matches (after the
/// browser has drawn what just changed).
pub(crate) fn focus_first(root: web_sys::Element, selector: &'static str) {
    request_animation_frame(move || {
        let found = if root.matches(selector).unwrap_or(false) {
            Some(root)
        } else {
            root.query_selector(selector).ok().flatten()
        };
        if let Some(target) = found.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = target.focus();
        }
    });
}

/// Loads another page.
pub(crate) fn go_to(path: &str) {
    if let Err(e) = window().location().assign(path) {
        leptos::logging::warn!("could not go to {path}: {}", js_error(e));
    }
}

/// Scheme, host and port of the page (`http://adit.example:8000`): the server the install
/// commands download the connector from.
pub(crate) fn origin() -> String {
    window().location().origin().unwrap_or_default()
}

/// Moves `now` on with the browser's clock, keeping the offset to the server's clock that
/// the page was drawn with.
pub(crate) fn tick(now: RwSignal<i64>, server_now_ms: i64) {
    // f64 milliseconds since the epoch fit i64 exactly for the next 280,000 years.
    let offset = server_now_ms - js_sys::Date::now() as i64;
    set_interval(move || now.set(js_sys::Date::now() as i64 + offset), TICK);
}

/// Puts `text` on the clipboard. Browsers offer the clipboard only to secure pages
/// (HTTPS, or localhost); elsewhere the text is selected for the user to copy.
pub(crate) fn copy_text(
    text: String,
    code: Option<web_sys::HtmlElement>,
    state: RwSignal<CopyState>,
) {
    spawn_local(async move {
        let navigator = window().navigator();
        // `navigator.clipboard` is missing outside secure contexts; calling it would throw.
        let has_clipboard = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
            .is_ok_and(|c| !c.is_undefined() && !c.is_null());
        let copied = has_clipboard
            && JsFuture::from(navigator.clipboard().write_text(&text))
                .await
                .is_ok();
        if copied {
            state.set(CopyState::Copied);
        } else {
            let selected = code
                .zip(window().get_selection().ok().flatten())
                .is_some_and(|(code, selection)| selection.select_all_children(&code).is_ok());
            state.set(if selected {
                CopyState::Selected
            } else {
                CopyState::Ready
            });
        }
        set_timeout(move || state.set(CopyState::Ready), COPY_FEEDBACK);
    });
}
