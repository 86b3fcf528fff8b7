//! The Tunnels page: every tunnel of the account with its health, connectors, routes and
//! uptime, kept live; searched, filtered and sorted in the browser.

use adit_core::api::Tunnel;
use leptos::{either::Either, prelude::*};

use super::tunnel_filter::{Sort, SortKey, StatusFilter, visible};
use crate::{
    components::{copy_id::CopyId, status_badge::StatusBadge, timestamp::Timestamp},
    live,
    time::{unix_ms, uptime},
};

/// The command that creates a tunnel, shown in the empty state.
pub(crate) const CREATE_COMMAND: &str = "adit tunnel create NAME";

/// Where a tunnel is created in the dashboard.
const CREATE_HREF: &str = "/tunnels/new";

/// The page body (inside the layout): a header and either the table or the empty state.
#[component]
pub(crate) fn TunnelsPage(tunnels: Vec<Tunnel>, now_ms: i64) -> impl IntoView {
    let tunnels = live::tunnels(tunnels);
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
fn TunnelTable(tunnels: ReadSignal<Vec<Tunnel>>, now: ReadSignal<i64>) -> impl IntoView {
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
        <div class="table-card">
            <table class="tunnels">
                <thead>
                    <tr>
                        <SortHeader label="Name" key=SortKey::Name sort />
                        <SortHeader label="Status" key=SortKey::Status sort />
                        <th scope="col">"Tunnel ID"</th>
                        <SortHeader label="Connectors" key=SortKey::Connectors sort numeric=true />
                        <th scope="col">"Routes"</th>
                        <SortHeader label="Created" key=SortKey::Created sort />
                        <SortHeader label="Uptime" key=SortKey::Uptime sort />
                    </tr>
                </thead>
                <tbody>
                    // Keyed by the whole tunnel: a row is redrawn exactly when something in
                    // it changed, and the others keep their DOM (and focus) when the list
                    // is re-read or re-sorted.
                    <For each=move || shown.get() key=Tunnel::clone let(tunnel)>
                        <TunnelRow tunnel now />
                    </For>
                </tbody>
            </table>
            <Show when=move || shown.with(Vec::is_empty)>
                <p class="no-match">
                    "No tunnels match. "
                    <button type="button" class="button link" on:click=clear>
                        "Clear the search and filter"
                    </button>
                </p>
            </Show>
        </div>
    }
}

/// A column header that sorts by its column: a button (so it is reachable and usable by
/// keyboard) inside a `<th>` whose `aria-sort` tells the current order.
#[component]
fn SortHeader(
    label: &'static str,
    key: SortKey,
    sort: RwSignal<Sort>,
    #[prop(optional)] numeric: bool,
) -> impl IntoView {
    let arrow = move || match sort.get().aria(key) {
        Some("ascending") => "↑",
        Some(_) => "↓",
        None => "↕",
    };
    view! {
        <th scope="col" class:num=numeric aria-sort=move || sort.get().aria(key)>
            <button
                type="button"
                class="sort"
                class:sorted=move || sort.get().key == key
                on:click=move |_| sort.update(|s| *s = s.toggle(key))
            >
                {label}
                <span class="sort-arrow" aria-hidden="true">{arrow}</span>
            </button>
        </th>
    }
}

#[component]
fn TunnelRow(tunnel: Tunnel, now: ReadSignal<i64>) -> impl IntoView {
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
    let uptime_cell = match connected_since.as_deref().and_then(unix_ms) {
        Some(since) => Either::Left(view! {
            <td class="uptime">{move || uptime(since, now.get())}</td>
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
            <td><CopyId value=id.to_string() what="tunnel ID" /></td>
            <td class="num">{connectors}{connections}</td>
            <td>{routes}</td>
            <td class="created"><Timestamp at=created_at /></td>
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
    fn tunnel_count_pluralises_and_tells_what_is_filtered_out() {
        assert_eq!(tunnel_count(0, 0), "0 tunnels");
        assert_eq!(tunnel_count(1, 1), "1 tunnel");
        assert_eq!(tunnel_count(2, 2), "2 tunnels");
        assert_eq!(tunnel_count(0, 1), "0 of 1 tunnel");
        assert_eq!(tunnel_count(2, 5), "2 of 5 tunnels");
    }
}
