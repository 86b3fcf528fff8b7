//! The Tunnels page: every tunnel of the account with its health, connectors, routes and
//! uptime, kept live; searched, filtered and sorted in the browser.

use std::collections::{HashMap, HashSet};

use adit_core::{
    api::{ChangeKind, ChangeNotice, Tunnel},
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
        table::{Column, DataTable},
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
pub(crate) fn TunnelsPage(tunnels: Vec<Tunnel>, now_ms: i64) -> impl IntoView {
    let tunnels = follow_tunnels(tunnels);
    let now = live::clock(now_ms);
    // A memo, so the table is swapped for the empty state (and back) only when that
    // changes, not on every update of the list.
    let empty = Memo::new(move |_| tunnels.with(Vec::is_empty));
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
                Either::Right(view! { <TunnelTable tunnels now /> })
            }
        }}
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

/// The account's tunnels: first the page's own list; in the browser, kept live. A notice
/// about one tunnel's connectors, connections or routes re-reads that tunnel only; one
/// that may concern the list (a tunnel created, renamed or deleted, or the stream
/// reopened) re-reads the list.
fn follow_tunnels(initial: Vec<Tunnel>) -> RwSignal<Vec<Tunnel>> {
    let list = RwSignal::new(initial);
    let live = use_live();
    let api = use_api();
    let reads = StoredValue::new(Reads::default());
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
            _ => {
                let read = reads.try_update_value(Reads::start_list).unwrap_or(0);
                spawn_local(async move {
                    match api.tunnels().await {
                        Ok(fresh) => {
                            if let Some(keep) = reads.with_value(|r| r.list_keeps(read)) {
                                list.update(|all| *all = merge_list(all, fresh, &keep));
                            }
                        }
                        Err(Error::SessionEnded) => {}
                        Err(e) => leptos::logging::warn!("could not re-read the tunnels: {e}"),
                    }
                });
            }
        }
    });
    list
}

/// "1 tunnel", "3 tunnels", and "2 of 3 tunnels" while some are filtered out.
fn tunnel_count(shown: usize, total: usize) -> String {
    let noun = if total == 1 { "tunnel" } else { "tunnels" };
    if shown == total {
        format!("{total} {noun}")
    } else {
        format!("{shown} of {total} {noun}")
    }
}

#[component]
fn TunnelTable(tunnels: RwSignal<Vec<Tunnel>>, now: ReadSignal<i64>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let status = RwSignal::new(StatusFilter::All);
    let sort = RwSignal::new(Sort::default());
    let shown = Memo::new(move |_| {
        tunnels.with(|all| query.with(|q| visible(all, q, status.get(), sort.get())))
    });
    let count = move || tunnel_count(shown.with(Vec::len), tunnels.with(Vec::len));
    let options = StatusFilter::CHOICES
        .into_iter()
        .map(|choice| view! { <option value=choice.value()>{choice.label()}</option> })
        .collect_view();
    let clear = move |_| {
        query.set(String::new());
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
                bind:value=query
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

    #[test]
    fn tunnel_count_pluralises_and_tells_what_is_filtered_out() {
        assert_eq!(tunnel_count(0, 0), "0 tunnels");
        assert_eq!(tunnel_count(1, 1), "1 tunnel");
        assert_eq!(tunnel_count(2, 2), "2 tunnels");
        assert_eq!(tunnel_count(0, 1), "0 of 1 tunnel");
        assert_eq!(tunnel_count(2, 5), "2 of 5 tunnels");
    }
}
