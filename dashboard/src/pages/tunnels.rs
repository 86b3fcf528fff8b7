//! The Tunnels page: the account's tunnels with their health, connectors, routes and
//! uptime, kept live, a page at a time ([`crate::page::TUNNELS_PER_PAGE`] by name). The
//! search and the pages are asked of the server (`GET /api/v1/tunnels?page=&per_page=&name=`);
//! the status filter and the sort apply to the page shown, in the browser.

use std::collections::{HashMap, HashSet};

use adit_core::{
    api::{ChangeKind, ChangeNotice, ResultInfo, Tunnel, TunnelListQuery},
    ids::TunnelId,
};
use leptos::{either::Either, prelude::*, task::spawn_local};

use super::tunnel_filter::{Sort, SortKey, StatusFilter, visible};
use crate::{
    Error,
    api::use_api,
    components::{
        copy_id::CopyId,
        moment::Moment,
        status_badge::StatusBadge,
        table::{Column, DataTable, Pager},
    },
    live::{self, use_live},
    time::uptime,
};

/// The command that creates a tunnel, shown in the empty state.
pub(crate) const CREATE_COMMAND: &str = "adit tunnel create NAME";

/// Where a tunnel is created in the dashboard.
const CREATE_HREF: &str = "/tunnels/new";

/// The page body (inside the layout): a header and either the table or the empty state.
#[component]
pub(crate) fn TunnelsPage(
    tunnels: Vec<Tunnel>,
    result_info: ResultInfo,
    now_ms: i64,
) -> impl IntoView {
    let listing = Listing {
        search: RwSignal::new(String::new()),
        page: RwSignal::new(result_info.page.max(1)),
        info: RwSignal::new(result_info),
    };
    let tunnels = follow_tunnels(tunnels, listing);
    let now = live::clock(now_ms);
    // A memo, so the table is swapped for the empty state (and back) only when that
    // changes, not on every update of the list: an account without tunnels, not a search
    // that found none.
    let empty = Memo::new(move |_| {
        listing.info.with(|i| i.total_count == 0) && listing.search.with(|q| q.trim().is_empty())
    });
    view! {
        <header class="page-header">
            <div>
                <h1>"Tunnels"</h1>
                <p class="lede">
                    "Tunnels connect your private services to the edge through outbound-only "
                    "connections, without opening inbound ports."
                </p>
            </div>
            <a class="button primary" href=CREATE_HREF>"Create a tunnel"</a>
        </header>
        {move || {
            if empty.get() {
                Either::Left(view! { <EmptyState /> })
            } else {
                Either::Right(view! { <TunnelTable tunnels listing now /> })
            }
        }}
    }
}

/// What the page asks the server for, and where the page shown lies in the whole list.
#[derive(Debug, Clone, Copy)]
struct Listing {
    /// The search box's text.
    search: RwSignal<String>,
    /// The page asked for, from 1.
    page: RwSignal<u32>,
    /// The latest answer's `result_info`.
    info: RwSignal<ResultInfo>,
}

impl Listing {
    /// The query for the page asked for now.
    fn query(self) -> TunnelListQuery {
        TunnelListQuery {
            page: Some(self.page.get_untracked()),
            per_page: Some(self.info.with_untracked(|i| i.per_page)),
            name: Some(self.search.get_untracked()),
        }
    }
}

/// Which reads of the tunnels are under way, to drop an answer that a later read makes
/// stale: reads of one tunnel, and of the whole list, numbered as they start.
#[derive(Debug, Default)]
struct Reads {
    next: u64,
    list: u64,
    one: HashMap<TunnelId, u64>,
}

impl Reads {
    fn start_list(&mut self) -> u64 {
        self.next += 1;
        self.list = self.next;
        self.next
    }

    fn start_one(&mut self, id: TunnelId) -> u64 {
        self.next += 1;
        self.one.insert(id, self.next);
        self.next
    }

    /// Whether read `read` of tunnel `id` is still the latest word on it.
    fn one_is_latest(&self, id: TunnelId, read: u64) -> bool {
        self.one.get(&id) == Some(&read) && self.list < read
    }

    /// The tunnels read alone since list read `read` started, which its answer must leave
    /// as they are; `None` when a later list read makes the answer stale.
    fn list_keeps(&self, read: u64) -> Option<HashSet<TunnelId>> {
        (self.list == read).then(|| {
            self.one
                .iter()
                .filter(|(_, started)| **started > read)
                .map(|(id, _)| *id)
                .collect()
        })
    }
}

/// `fresh` (a list read), except the tunnels in `keep`, which stay as `current` has them.
fn merge_list(current: &[Tunnel], fresh: Vec<Tunnel>, keep: &HashSet<TunnelId>) -> Vec<Tunnel> {
    fresh
        .into_iter()
        .map(|t| match keep.contains(&t.id) {
            true => current.iter().find(|c| c.id == t.id).cloned().unwrap_or(t),
            false => t,
        })
        .collect()
}

/// The page of tunnels shown: first the page's own; in the browser, kept live and read
/// again when the search or the page changes. A notice about the connectors, connections
/// or routes of a tunnel shown re-reads that tunnel only; one that may concern the list (a
/// tunnel created, renamed or deleted, or the stream reopened) re-reads the page.
fn follow_tunnels(initial: Vec<Tunnel>, listing: Listing) -> RwSignal<Vec<Tunnel>> {
    let list = RwSignal::new(initial);
    let live = use_live();
    let api = use_api();
    let reads = StoredValue::new(Reads::default());
    let read_page = {
        let api = api.clone();
        move || {
            let read = reads.try_update_value(Reads::start_list).unwrap_or(0);
            let (api, query) = (api.clone(), listing.query());
            spawn_local(async move {
                match api.tunnel_page(&query).await {
                    Ok(fresh) => {
                        let Some(keep) = reads.with_value(|r| r.list_keeps(read)) else {
                            return;
                        };
                        let info = fresh.result_info;
                        // Past the last page (tunnels were deleted): show the last one.
                        if fresh.result.is_empty() && info.page > 1 && info.total_count > 0 {
                            listing.page.set(info.total_pages());
                            return;
                        }
                        list.update(|all| *all = merge_list(all, fresh.result, &keep));
                        listing.info.set(info);
                    }
                    Err(Error::SessionEnded) => {}
                    Err(e) => leptos::logging::warn!("could not read the tunnels: {e}"),
                }
            });
        }
    };
    // The search or the page changed: read the page (not on the first run, which is the
    // page the server drew).
    let reread = read_page.clone();
    Effect::new(move |ran: Option<()>| {
        listing.search.track();
        listing.page.track();
        if ran.is_some() {
            reread();
        }
    });
    Effect::new(move || {
        let notice = live.notice();
        if notice.seq == 0 {
            return;
        }
        let api = api.clone();
        match notice.change {
            Some(ChangeNotice {
                kind: ChangeKind::Connector | ChangeKind::Connection | ChangeKind::Route,
                tunnel: Some(id),
            }) => {
                // A tunnel on another page: nothing shown changes.
                if !list.with_untracked(|all| all.iter().any(|t| t.id == id)) {
                    return;
                }
                let read = reads.try_update_value(|r| r.start_one(id)).unwrap_or(0);
                spawn_local(async move {
                    let answer = api.tunnel(id).await;
                    if !reads.with_value(|r| r.one_is_latest(id, read)) {
                        return;
                    }
                    match answer {
                        Ok(fresh) => list.update(|all| {
                            if let Some(old) = all.iter_mut().find(|t| t.id == id) {
                                *old = fresh;
                            }
                        }),
                        Err(e) if e.status() == Some(404) => {
                            list.update(|all| all.retain(|t| t.id != id));
                        }
                        Err(Error::SessionEnded) => {}
                        Err(e) => leptos::logging::warn!("could not re-read tunnel {id}: {e}"),
                    }
                });
            }
            _ => read_page(),
        }
    });
    list
}

/// "1 tunnel", "3 tunnels", and "2 of 3 tunnels" while the status filter hides some of
/// the `on_page` tunnels of a list that fits one page; "51–100 of 230 tunnels" (and "2
/// shown of …") over several pages.
fn tunnel_count(shown: usize, on_page: usize, info: &ResultInfo) -> String {
    let total = info.total_count;
    let noun = if total == 1 { "tunnel" } else { "tunnels" };
    if info.total_pages() <= 1 {
        return if shown == on_page {
            format!("{total} {noun}")
        } else {
            format!("{shown} of {total} {noun}")
        };
    }
    let first = u64::from(info.page.saturating_sub(1)) * u64::from(info.per_page) + 1;
    let last = (first + on_page as u64).saturating_sub(1).max(first);
    let range = format!("{first}–{last} of {total} {noun}");
    if shown == on_page {
        range
    } else {
        format!("{shown} shown of {range}")
    }
}

#[component]
fn TunnelTable(
    tunnels: RwSignal<Vec<Tunnel>>,
    listing: Listing,
    now: ReadSignal<i64>,
) -> impl IntoView {
    let query = listing.search;
    let status = RwSignal::new(StatusFilter::All);
    let sort = RwSignal::new(Sort::default());
    // The server searched already; searching the page shown again narrows it at once,
    // while the next page is on its way.
    let shown = Memo::new(move |_| {
        tunnels.with(|all| query.with(|q| visible(all, q, status.get(), sort.get())))
    });
    let count = move || {
        listing
            .info
            .with(|info| tunnel_count(shown.with(Vec::len), tunnels.with(Vec::len), info))
    };
    let pages = Signal::derive(move || listing.info.with(ResultInfo::total_pages));
    let to_page = Callback::new(move |page: u32| listing.page.set(page));
    let options = StatusFilter::CHOICES
        .into_iter()
        .map(|choice| view! { <option value=choice.value()>{choice.label()}</option> })
        .collect_view();
    let clear = move |_| {
        query.set(String::new());
        listing.page.set(1);
        status.set(StatusFilter::All);
    };
    // A header that sorts by `key`, and flips the order when it already does.
    let sortable = |column: Column, key: SortKey| {
        column.sortable(
            move || sort.get().aria(key),
            move || sort.update(|s| *s = s.toggle(key)),
        )
    };
    view! {
        <div class="toolbar">
            <input
                type="search"
                class="search"
                placeholder="Search by name or ID"
                aria-label="Search tunnels by name or ID"
                prop:value=move || query.get()
                on:input=move |ev| {
                    query.set(event_target_value(&ev));
                    listing.page.set(1);
                }
            />
            <label class="filter">
                <span>"Status"</span>
                <select
                    prop:value=move || status.get().value()
                    on:change=move |ev| status.set(StatusFilter::from_value(&event_target_value(&ev)))
                >
                    {options}
                </select>
            </label>
            <span class="count" aria-live="polite">{count}</span>
        </div>
        <DataTable
            class="tunnels"
            columns=vec![
                sortable(Column::new("Name"), SortKey::Name),
                sortable(Column::new("Status"), SortKey::Status),
                Column::new("Tunnel ID"),
                sortable(Column::numeric("Connectors"), SortKey::Connectors),
                Column::new("Routes"),
                sortable(Column::new("Created"), SortKey::Created),
                sortable(Column::new("Uptime"), SortKey::Uptime),
            ]
            empty=Signal::derive(move || shown.with(Vec::is_empty))
            empty_text="No tunnels match. ".to_owned()
            empty_action=move || {
                view! {
                    <button type="button" class="button link" on:click=clear>
                        "Clear the search and filter"
                    </button>
                }
            }
        >
            // Keyed by id: rows keep their DOM (and focus) when the list is re-read or
            // re-sorted, and a row's cells follow its tunnel.
            <For each=move || shown.get() key=|t| t.id let(tunnel)>
                <TunnelRow id=tunnel.id tunnels now />
            </For>
        </DataTable>
        <Show when=move || { pages.get() > 1 }>
            <Pager page=listing.page pages on_page=to_page />
        </Show>
    }
}

#[component]
fn TunnelRow(id: TunnelId, tunnels: RwSignal<Vec<Tunnel>>, now: ReadSignal<i64>) -> impl IntoView {
    let current = Memo::new(move |_| tunnels.with(|all| all.iter().find(|t| t.id == id).cloned()));
    move || current.get().map(|tunnel| tunnel_cells(tunnel, now))
}

fn tunnel_cells(tunnel: Tunnel, now: ReadSignal<i64>) -> impl IntoView {
    let Tunnel {
        id,
        name,
        created_at,
        status,
        connectors,
        connections,
        routes,
        connected_since,
        ..
    } = tunnel;
    let routes = if routes.is_empty() {
        Either::Left(view! { <span class="muted">"No routes"</span> })
    } else {
        Either::Right(view! { <span class="routes">{routes.join(", ")}</span> })
    };
    // Connections only while there are some: "0 connections" under a 0 says nothing.
    let connections = match connections {
        0 => None,
        1 => Some("1 connection".to_owned()),
        n => Some(format!("{n} connections")),
    }
    .map(|text| view! { <span class="sub">{text}</span> });
    let uptime_cell = match connected_since {
        Some(since) => Either::Left(view! {
            <td class="uptime">{move || uptime(since.unix_ms(), now.get())}</td>
        }),
        None => Either::Right(view! {
            <td class="uptime muted">
                <span aria-hidden="true">"—"</span>
                <span class="visually-hidden">"Not connected"</span>
            </td>
        }),
    };
    view! {
        <tr>
            <th scope="row" class="name"><a href=format!("/tunnels/{id}")>{name}</a></th>
            <td><StatusBadge status /></td>
            <td><CopyId value=id.to_string() what="tunnel ID" short=true /></td>
            <td class="num">{connectors}{connections}</td>
            <td>{routes}</td>
            <td class="created"><Moment at=created_at /></td>
            {uptime_cell}
        </tr>
    }
}

#[component]
fn EmptyState() -> impl IntoView {
    view! {
        <section class="empty">
            <h2>"No tunnels yet"</h2>
            <p>
                "A tunnel links a service on your network to the edge without opening "
                "inbound ports."
            </p>
            <a class="button primary" href=CREATE_HREF>"Create a tunnel"</a>
            <p class="empty-cli">"Or with the CLI:"</p>
            <pre class="command"><code>{CREATE_COMMAND}</code></pre>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_a_later_one_overtook_is_dropped() {
        let (a, b) = (TunnelId::random(), TunnelId::random());
        let mut reads = Reads::default();
        let first_a = reads.start_one(a);
        let second_a = reads.start_one(a);
        assert!(!reads.one_is_latest(a, first_a));
        assert!(reads.one_is_latest(a, second_a));
        // A list read started later is fresher than every single read before it.
        let list = reads.start_list();
        assert!(!reads.one_is_latest(a, second_a));
        // A single read started after the list read: the list leaves that tunnel alone.
        let b_read = reads.start_one(b);
        assert!(reads.one_is_latest(b, b_read));
        assert_eq!(reads.list_keeps(list), Some(HashSet::from([b])));
        let newer_list = reads.start_list();
        assert_eq!(reads.list_keeps(list), None);
        assert_eq!(reads.list_keeps(newer_list), Some(HashSet::new()));
    }

    fn info(page: u32, per_page: u32, count: u32, total_count: u64) -> ResultInfo {
        ResultInfo {
            page,
            per_page,
            count,
            total_count,
        }
    }

    #[test]
    fn tunnel_count_pluralises_and_tells_what_is_filtered_out() {
        assert_eq!(tunnel_count(0, 0, &info(1, 50, 0, 0)), "0 tunnels");
        assert_eq!(tunnel_count(1, 1, &info(1, 50, 1, 1)), "1 tunnel");
        assert_eq!(tunnel_count(2, 2, &info(1, 50, 2, 2)), "2 tunnels");
        assert_eq!(tunnel_count(0, 1, &info(1, 50, 1, 1)), "0 of 1 tunnel");
        assert_eq!(tunnel_count(2, 5, &info(1, 50, 5, 5)), "2 of 5 tunnels");
    }

    #[test]
    fn tunnel_count_over_several_pages_says_which_part_is_shown() {
        assert_eq!(
            tunnel_count(50, 50, &info(2, 50, 50, 230)),
            "51–100 of 230 tunnels"
        );
        assert_eq!(
            tunnel_count(30, 30, &info(5, 50, 30, 230)),
            "201–230 of 230 tunnels"
        );
        assert_eq!(
            tunnel_count(2, 50, &info(1, 50, 50, 230)),
            "2 shown of 1–50 of 230 tunnels"
        );
    }
}
