//! What the pages' buttons and forms do: calls to the REST API and page loads. Only the
//! browser runs event handlers and effects; in the server's build these do nothing, so a
//! component's handlers read the same on both sides.

use serde::de::DeserializeOwned;

use crate::Error;

/// `method path` with an optional JSON body, as the logged-in user; `done` gets the
/// answer (JSON as `T`) or the API's error.
pub(crate) fn call<T, F>(
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
    done: F,
) where
    T: DeserializeOwned + 'static,
    F: FnOnce(Result<T, Error>) + 'static,
{
    #[cfg(feature = "hydrate")]
    {
        let Some(api) = crate::client::api() else {
            leptos::logging::warn!("no API in context for {method} {path}");
            return;
        };
        leptos::task::spawn_local(async move {
            done(api.request(method, &path, body.as_ref()).await);
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (method, path, body, done);
}

/// Keeps `target` equal to `GET path`, re-read on every change notice of the account.
pub(crate) fn follow<T>(target: leptos::prelude::RwSignal<T>, path: String)
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    #[cfg(feature = "hydrate")]
    if let Some(api) = crate::client::api() {
        crate::client::follow(api, path, target);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (target, path);
}

/// Calls `tick` every `period` while the calling component is shown (the timer stops
/// when it is removed, e.g. when another tab is chosen).
pub(crate) fn every(period: std::time::Duration, tick: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    match leptos::prelude::set_interval_with_handle(tick, period) {
        Ok(handle) => leptos::prelude::on_cleanup(move || handle.clear()),
        Err(e) => leptos::logging::warn!("no timer: {}", crate::client::js_error(e)),
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (period, tick);
}

/// Loads the page at `path`.
pub(crate) fn go_to(path: &str) {
    #[cfg(feature = "hydrate")]
    crate::client::go_to(path);
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

/// Scheme, host and port the dashboard is reached at (empty on the server, which only
/// draws what needs no token: commands appear after the browser fetched one).
pub(crate) fn origin() -> String {
    #[cfg(feature = "hydrate")]
    return crate::client::origin();
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// The message of a failed call, and the input it names (`details.field`).
pub(crate) fn failure(error: &Error) -> (String, Option<String>) {
    match error {
        Error::Api { message, field, .. } => (message.clone(), field.clone()),
        other => (other.to_string(), None),
    }
}
