//! The browser side (feature `hydrate`): the REST API through `fetch`, the account's change
//! notices through `EventSource`, the clipboard. The pages use the same API as scripts do;
//! the session cookie is their credential.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

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
}

/// Makes `api` the page's client: event handlers run outside the component tree, so the
/// client lives beside it rather than in a context.
pub(crate) fn set_api(api: Api) {
    API.with_borrow_mut(|slot| *slot = Some(api));
}

/// The page's API client ([`set_api`]).
pub(crate) fn api() -> Option<Api> {
    API.with_borrow(Clone::clone)
}

/// Keeps `target` equal to `GET path`: re-read whenever the event stream opens (notices
/// from while it was away are not replayed) and on every notice.
pub(crate) fn follow<T: DeserializeOwned + Send + Sync + 'static>(
    api: Api,
    path: String,
    target: RwSignal<T>,
) {
    let reload = Reload::new(api, path, target);
    on_change(Rc::new(move || reload.request()));
}

thread_local! {
    /// The page's API client, set once as the page hydrates ([`set_api`]).
    static API: RefCell<Option<Api>> = const { RefCell::new(None) };
    /// What to re-read on a change notice, for everything the page follows.
    static LISTENERS: RefCell<Vec<Rc<dyn Fn()>>> = RefCell::new(Vec::new());
}

/// Calls `listener` on every change notice of the account. The page opens one event
/// stream, with its first listener, whatever it follows: browsers allow few connections
/// per server.
fn on_change(listener: Rc<dyn Fn()>) {
    let first = LISTENERS.with_borrow_mut(|all| {
        all.push(listener);
        all.len() == 1
    });
    if first {
        follow_changes(Rc::new(|| {
            // Cloned out first: a listener may add another.
            let all = LISTENERS.with_borrow(Clone::clone);
            for listener in all {
                listener();
            }
        }));
    }
}

/// Calls `on_change` whenever the account's change notices say something changed, and
/// whenever the stream (re)opens, since notices from while it was away are not replayed.
fn follow_changes(on_change: Rc<dyn Fn()>) {
    let source = match EventSource::new(EVENTS) {
        Ok(source) => source,
        Err(e) => {
            leptos::logging::warn!("no live updates: {}", js_error(e));
            return;
        }
    };
    let on_notice = {
        let on_change = on_change.clone();
        Closure::<dyn Fn()>::new(move || on_change())
    };
    source.set_onopen(Some(on_notice.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_notice.as_ref().unchecked_ref()));
    let on_error = {
        let source = source.clone();
        Closure::<dyn Fn()>::new(move || {
            // A dropped stream is reconnecting by itself; a refused one (the session
            // ended, the server said no) is closed for good. Re-read, which sends an
            // ended session to the log-in page, and try the stream again later.
            if source.ready_state() == EventSource::CLOSED {
                on_change();
                let on_change = on_change.clone();
                set_timeout(move || follow_changes(on_change), REOPEN_EVENTS);
            }
        })
    };
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The handlers live as long as the page: a page is left by loading another.
    on_notice.forget();
    on_error.forget();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Idle,
    Running,
    /// Asked again while running: read once more when this read is done.
    Again,
}

/// Re-reads one API resource into a signal, one read at a time: requests that arrive
/// during a read cause one more read, not one each.
struct Reload<T: 'static> {
    api: Api,
    path: String,
    target: RwSignal<T>,
    state: Rc<Cell<Fetch>>,
}

impl<T: 'static> Clone for Reload<T> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            path: self.path.clone(),
            target: self.target,
            state: self.state.clone(),
        }
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Reload<T> {
    fn new(api: Api, path: String, target: RwSignal<T>) -> Self {
        Self {
            api,
            path,
            target,
            state: Rc::new(Cell::new(Fetch::Idle)),
        }
    }

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
            match self.api.get::<T>(&self.path).await {
                Ok(value) => self.target.set(value),
                Err(Error::Api { status: 401, .. }) => {
                    self.state.set(Fetch::Idle);
                    // The session is over: the page cannot show anything current.
                    go_to("/login");
                    return;
                }
                Err(e) => leptos::logging::warn!("could not re-read {}: {e}", self.path),
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
