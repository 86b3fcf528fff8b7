//! Values that change after the page is drawn. On the server (and until the bundle runs)
//! they hold what the page was rendered with; in the browser they follow the server.

use adit_core::api::Tunnel;
use leptos::prelude::*;

/// The account's tunnels: first the page's own list; in the browser, re-read from
/// `GET /api/v1/tunnels` whenever the account's change notices say something changed.
pub(crate) fn tunnels(initial: Vec<Tunnel>) -> ReadSignal<Vec<Tunnel>> {
    followed(initial, "/api/v1/tunnels".to_owned()).read_only()
}

/// A value of the page: first what the page was drawn with; in the browser, re-read from
/// `GET path` whenever the account's change notices say something changed.
pub(crate) fn followed<T>(initial: T, path: String) -> RwSignal<T>
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let value = RwSignal::new(initial);
    // Effects run only in the browser, after hydration.
    Effect::new(move || crate::action::follow(value, path.clone()));
    value
}

/// The time durations are drawn against: the server's clock at rendering (so hydration
/// sees the same text), then in the browser that clock carried forward every 15 seconds.
pub(crate) fn clock(server_now_ms: i64) -> ReadSignal<i64> {
    let now = RwSignal::new(server_now_ms);
    #[cfg(feature = "hydrate")]
    Effect::new(move || crate::client::tick(now, server_now_ms));
    now.read_only()
}

/// Whether the page's script runs: false on the server and until hydration, then true.
/// Forms that only work through the REST API keep their buttons disabled until then, so
/// a click before the bundle has loaded (or without one) does nothing misleading.
pub(crate) fn hydrated() -> ReadSignal<bool> {
    let ready = RwSignal::new(false);
    Effect::new(move || ready.set(true));
    ready.read_only()
}
