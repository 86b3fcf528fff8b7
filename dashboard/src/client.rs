//! The browser side (feature `hydrate`): the REST API through `fetch`, the account's change
//! notices through `EventSource`, the clipboard. The pages use the same API as scripts do;
//! the session cookie is their credential.

use std::{cell::Cell, rc::Rc, time::Duration};

use adit_core::api::{self, Tunnel};
use leptos::{prelude::*, task::spawn_local};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use web_sys::{EventSource, Headers, Request, RequestCredentials, RequestInit, Response};

use crate::{Error, components::copy_id::CopyState, rest::Failure};

/// The account's change notices ([`api::ChangeNotice`]), as Server-Sent Events.
const EVENTS: &str = "/api/v1/events";
const TUNNELS: &str = "/api/v1/tunnels";
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

/// Calls the REST API as the logged-in user: the session cookie goes along (same origin),
/// and requests that change state carry the session's CSRF token, as the API demands of
/// cookie callers.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    csrf_token: Option<String>,
}

impl Api {
    pub(crate) fn new(csrf_token: Option<String>) -> Self {
        Self { csrf_token }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.request("GET", path, None).await
    }

    /// `method path` with an optional JSON body; the answer's JSON (`null` when it has no
    /// body) as `T`, or the API's error message.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
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
            && let Some(token) = &self.csrf_token
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
                    let field = e.details["field"].as_str().map(str::to_owned);
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
}

/// The session is over, so the page can neither show anything current nor change
/// anything: to the log-in page, which comes back here afterwards.
fn to_login() {
    let location = window().location();
    let here = location.pathname().unwrap_or_default();
    let next = String::from(js_sys::encode_uri_component(&here));
    if let Err(e) = location.assign(&format!("/login?next={next}")) {
        leptos::logging::warn!("could not go to the log-in page: {}", js_error(e));
    }
}

/// Sends `method path` with `body` for an event handler (which runs inside the page's
/// owner, so the [`Api`] is in context) and hands the answer to `done`; see
/// [`crate::rest::send`].
pub(crate) fn send<T: DeserializeOwned + 'static>(
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
    done: impl FnOnce(Result<T, Failure>) + 'static,
) {
    let Some(api) = use_context::<Api>() else {
        done(Err(Failure {
            status: 0,
            field: None,
            message: "the page is not ready yet; try again".into(),
        }));
        return;
    };
    spawn_local(async move {
        let failure = match api.request::<T>(method, &path, body.as_ref()).await {
            Ok(answer) => return done(Ok(answer)),
            Err(Error::Api { status: 401, .. }) => return to_login(),
            Err(Error::Api {
                status,
                message,
                field,
            }) => Failure {
                status,
                field,
                message,
            },
            Err(e) => Failure {
                status: 0,
                field: None,
                message: format!("the server could not be reached ({e}); try again"),
            },
        };
        done(Err(failure));
    });
}

/// Keeps `target` equal to `GET /api/v1/tunnels`: re-read whenever the event stream opens
/// (notices from while it was away are not replayed) and on every notice.
pub(crate) fn follow_tunnels(api: Api, target: RwSignal<Vec<Tunnel>>) {
    follow_events(Refresh {
        api,
        target,
        state: Rc::new(Cell::new(Fetch::Idle)),
    });
}

fn follow_events(refresh: Refresh) {
    let source = match EventSource::new(EVENTS) {
        Ok(source) => source,
        Err(e) => {
            leptos::logging::warn!("no live updates: {}", js_error(e));
            return;
        }
    };
    let on_change = {
        let refresh = refresh.clone();
        Closure::<dyn Fn()>::new(move || refresh.request())
    };
    source.set_onopen(Some(on_change.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_change.as_ref().unchecked_ref()));
    let on_error = {
        let source = source.clone();
        Closure::<dyn Fn()>::new(move || {
            // A dropped stream is reconnecting by itself; a refused one (the session
            // ended, the server said no) is closed for good. Re-read the list, which sends
            // an ended session to the log-in page, and try the stream again later.
            if source.ready_state() == EventSource::CLOSED {
                refresh.request();
                let refresh = refresh.clone();
                set_timeout(move || follow_events(refresh), REOPEN_EVENTS);
            }
        })
    };
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The handlers live as long as the page: a page is left by loading another.
    on_change.forget();
    on_error.forget();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Idle,
    Running,
    /// Asked again while running: read once more when this read is done.
    Again,
}

/// Re-reads the tunnel list, one read at a time: notices that arrive during a read cause
/// one more read, not one each.
#[derive(Clone)]
struct Refresh {
    api: Api,
    target: RwSignal<Vec<Tunnel>>,
    state: Rc<Cell<Fetch>>,
}

impl Refresh {
    fn request(&self) {
        match self.state.get() {
            Fetch::Idle => {
                self.state.set(Fetch::Running);
                spawn_local(self.clone().run());
            }
            Fetch::Running => self.state.set(Fetch::Again),
            Fetch::Again => {}
        }
    }

    async fn run(self) {
        loop {
            match self.api.get::<Vec<Tunnel>>(TUNNELS).await {
                Ok(tunnels) => self.target.set(tunnels),
                Err(Error::Api { status: 401, .. }) => {
                    self.state.set(Fetch::Idle);
                    to_login();
                    return;
                }
                Err(e) => leptos::logging::warn!("could not re-read the tunnels: {e}"),
            }
            if self.state.get() == Fetch::Again {
                self.state.set(Fetch::Running);
            } else {
                self.state.set(Fetch::Idle);
                return;
            }
        }
    }
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
