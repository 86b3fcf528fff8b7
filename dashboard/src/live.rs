//! Values that change after the page is drawn. On the server (and until the bundle runs)
//! they hold what the page was rendered with; in the browser they follow the server.
//!
//! The page has one stream of the account's change notices ([`Live`], in the page's
//! context). A notice says which tunnel changed and how; each value the page follows says
//! which notices concern it ([`follow`]) and re-reads itself — through a `LocalResource`,
//! so an answer that arrives after a newer one, or after the page stored what a change
//! returned ([`Followed::set`]), is dropped instead of drawn.

use std::future::Future;

use adit_core::{
    api::{ChangeKind, ChangeNotice},
    ids::TunnelId,
};
use leptos::prelude::*;

use crate::{Error, api::Api, api::use_api};

/// The latest news from the account's notice stream; `seq` rises with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Notice {
    pub(crate) seq: u64,
    /// What changed; `None` when anything may have: the stream (re)opened, or the server
    /// dropped notices for this reader.
    pub(crate) change: Option<ChangeNotice>,
}

impl Notice {
    /// Whether the notice may concern `tunnel` in one of the ways `kinds` lists.
    pub(crate) fn about(&self, tunnel: TunnelId, kinds: &[ChangeKind]) -> bool {
        match self.change {
            None => true,
            Some(change) => change.tunnel == Some(tunnel) && kinds.contains(&change.kind),
        }
    }

    /// Whether the notice may concern something of `kind` (any tunnel).
    pub(crate) fn of_kind(&self, kind: ChangeKind) -> bool {
        self.change.is_none_or(|c| c.kind == kind)
    }
}

/// The page's notice stream, opened by the first value that follows it (pages that follow
/// nothing open none: browsers allow few connections per server). `paused` stops every
/// re-read, e.g. while the tunnel the page shows is being deleted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    notice: RwSignal<Notice>,
    paused: RwSignal<bool>,
    opened: StoredValue<bool>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self {
            notice: RwSignal::new(Notice::default()),
            paused: RwSignal::new(false),
            opened: StoredValue::new(false),
        }
    }

    /// The latest notice (tracked); opens the stream the first time, in the browser.
    pub(crate) fn notice(self) -> Notice {
        self.open();
        self.notice.get()
    }

    /// Stops re-reading (`true`) or starts again with a read of everything (`false`).
    pub(crate) fn pause(self, paused: bool) {
        self.paused.set(paused);
        if !paused {
            self.notice.update(|n| {
                n.seq += 1;
                n.change = None;
            });
        }
    }

    pub(crate) fn paused(self) -> bool {
        self.paused.get_untracked()
    }

    fn open(self) {
        if self.opened.get_value() {
            return;
        }
        self.opened.set_value(true);
        #[cfg(feature = "hydrate")]
        {
            let notice = self.notice;
            crate::client::follow_changes(std::rc::Rc::new(move |change| {
                notice.update(|n| {
                    n.seq += 1;
                    n.change = change;
                });
            }));
        }
    }
}

/// The page's notice stream, which [`crate::page::App`] provides.
pub(crate) fn use_live() -> Live {
    use_context::<Live>().unwrap_or_else(Live::new)
}

/// A value of the page that follows the server: [`Followed::get`] and friends read it;
/// [`Followed::set`] stores what a change returned.
pub(crate) struct Followed<T: 'static> {
    value: RwSignal<T>,
    reads: LocalResource<Option<T>>,
}

impl<T: 'static> Clone for Followed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for Followed<T> {}

impl<T: Clone + Send + Sync + 'static> Followed<T> {
    /// Stores `value`, which the server just answered a change with; a re-read that
    /// started before is dropped when it ends.
    pub(crate) fn set(self, value: T) {
        self.reads.set(Some(None));
        self.value.set(value);
    }

    pub(crate) fn signal(self) -> Signal<T> {
        self.value.into()
    }

    /// Reads the value (tracked).
    pub(crate) fn with<U>(self, read: impl FnOnce(&T) -> U) -> U {
        self.value.with(read)
    }

    pub(crate) fn with_untracked<U>(self, read: impl FnOnce(&T) -> U) -> U {
        self.value.with_untracked(read)
    }
}

/// A value of the page: first `initial` (what the page was drawn with); in the browser,
/// `read` again whenever a notice `concerns` it (and whenever the stream reopens).
pub(crate) fn follow<T, Fut>(
    initial: T,
    concerns: impl Fn(&Notice) -> bool + Send + Sync + 'static,
    read: impl Fn(Api) -> Fut + 'static,
) -> Followed<T>
where
    T: Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Error>> + 'static,
{
    let live = use_live();
    let api = use_api();
    let value = RwSignal::new(initial);
    // The seq of the latest notice that concerns the value: the read re-runs when it
    // moves. 0 until the stream has opened (the page's data is fresh until then); a value
    // that starts following later is read at once.
    let due = Memo::new(move |before: Option<&u64>| {
        let notice = live.notice();
        match before {
            Some(before) if !concerns(&notice) => *before,
            _ => notice.seq,
        }
    });
    let reads = LocalResource::new(move || {
        let due = due.get();
        let read = (due != 0 && !live.paused()).then(|| read(api.clone()));
        async move {
            match read?.await {
                Ok(fresh) => Some(fresh),
                Err(Error::SessionEnded) => None,
                Err(e) => {
                    leptos::logging::warn!("could not re-read: {e}");
                    None
                }
            }
        }
    });
    Effect::new(move || {
        if let Some(Some(fresh)) = reads.get() {
            value.set(fresh);
        }
    });
    Followed { value, reads }
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

/// Moves the focus, once the browser has drawn the change, to the first element inside
/// `root` that `selector` matches (the element itself when it matches).
pub(crate) fn focus_in(root: Option<leptos::web_sys::Element>, selector: &'static str) {
    #[cfg(feature = "hydrate")]
    if let Some(root) = root {
        crate::client::focus_first(root, selector);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (root, selector);
}
