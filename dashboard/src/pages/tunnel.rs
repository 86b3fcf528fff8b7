//! One tunnel's page: its overview, its public hostnames, private networks, connectors and
//! traffic in tabs, and the actions on it (rename, refresh the token, delete). Status,
//! connectors and routes follow the account's change notices; the charts are re-read
//! every few seconds while the page is open.

use std::{collections::BTreeMap, time::Duration};

use adit_core::api::{
    ConfigSource, Connector, HA_CONNECTIONS, IpRoute, OriginHealth, TrafficPoint, Tunnel,
    TunnelConfiguration, TunnelTokenBody,
};
use leptos::{either::EitherOf4, ev::SubmitEvent, prelude::*};
use serde_json::json;

use super::{
    route_forms::{FieldError, HostnameEditor, NetworkForm, change_configuration},
    routing::{Environment, HostnameForm, name_problem, remove_rule, user_rules},
};
use crate::{
    Error,
    action::{call, every, failure, go_to, origin},
    components::{
        chart::{LineChart, Summary, human_bytes},
        copy_id::{CopyCommand, CopyId},
        status_badge::StatusBadge,
        tabs::Tabs,
    },
    live,
    page::TunnelPageData,
    time::{created_parts, unix_ms, uptime},
};

/// How often the charts are re-read while the Traffic tab is shown: the server includes the
/// minute in progress, so a request shows within this time (the page promises 2 s).
const TRAFFIC_POLL: Duration = Duration::from_secs(1);

/// Connectors with their platform, addresses and connections; a placeholder row while
/// there are none (the table keeps its place when the first one arrives).
#[component]
pub(crate) fn ConnectorTable(connectors: Signal<Vec<Connector>>) -> impl IntoView {
    view! {
        <div class="table-card">
            <table class="data connectors">
                <thead>
                    <tr>
                        <th scope="col">"Connector ID"</th>
                        <th scope="col">"Hostname"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Platform"</th>
                        <th scope="col">"Origin IP"</th>
                        <th scope="col">"Edge"</th>
                        <th scope="col" class="num">"Connections"</th>
                        <th scope="col">"Connected since"</th>
                        <th scope="col">"Origin"</th>
                    </tr>
                </thead>
                <tbody aria-live="polite">
                    // Keyed by everything shown: a row is redrawn when any of it changed.
                    <For each=move || connectors.get() key=|c| format!("{c:?}") let(connector)>
                        <ConnectorRow connector />
                    </For>
                    <Show when=move || connectors.with(Vec::is_empty)>
                        <tr>
                            <td colspan="9" class="no-match">"No connector is running."</td>
                        </tr>
                    </Show>
                </tbody>
            </table>
        </div>
    }
}

/// "1 connector", "4 connections".
fn counted(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// "2× node-a, 2× node-b": the edge nodes of a connector's connections.
pub(crate) fn edges(connector: &Connector) -> String {
    let mut counts = BTreeMap::<&str, usize>::new();
    for connection in &connector.connections {
        *counts.entry(connection.edge.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(edge, n)| format!("{n}× {edge}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[component]
fn ConnectorRow(connector: Connector) -> impl IntoView {
    let origin_ips = {
        let mut ips: Vec<&str> = connector
            .connections
            .iter()
            .map(|c| c.origin_ip.as_str())
            .collect();
        ips.sort_unstable();
        ips.dedup();
        ips.join(", ")
    };
    let since = connector
        .connections
        .iter()
        .map(|c| c.opened_at.clone())
        .min()
        .unwrap_or_else(|| connector.registered_at.clone());
    let since_label = created_parts(&since)
        .map_or_else(|| since.clone(), |(date, time)| format!("{date} {time}"));
    view! {
        <tr>
            <td><CopyId value=connector.id.to_string() what="connector ID" short=true /></td>
            <td>{connector.hostname.clone()}</td>
            <td>{connector.version.clone()}</td>
            <td>{connector.arch.clone()}</td>
            <td>{origin_ips}</td>
            <td class="nowrap">{edges(&connector)}</td>
            <td class="num">{format!("{}/{HA_CONNECTIONS}", connector.connections.len())}</td>
            <td><time datetime=since>{since_label}</time></td>
            <td>{origin_badge(connector.origin_health.as_ref())}</td>
        </tr>
    }
}

/// The connector's origin health as a badge: reachable (green), unreachable with the
/// connector's reason (red), or not yet known (grey) — in words as well as colour.
fn origin_badge(health: Option<&OriginHealth>) -> impl IntoView + use<> {
    let (class, label, title) = match health {
        None => (
            "badge-inactive",
            "No requests yet".to_owned(),
            "No request has gone through this connector yet".to_owned(),
        ),
        Some(h) if h.reachable => (
            "badge-healthy",
            "Reachable".to_owned(),
            format!("The latest request reached an origin ({})", h.checked_at),
        ),
        Some(h) => (
            "badge-down",
            "Unreachable".to_owned(),
            format!(
                "The latest request did not reach an origin: {} ({})",
                h.error.as_deref().unwrap_or("origin_error"),
                h.checked_at
            ),
        ),
    };
    view! {
        <span class=format!("badge {class}") title=title>
            <span class="badge-dot" aria-hidden="true"></span>
            {label}
        </span>
    }
}

/// The tabs of the tunnel page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Hostnames,
    Networks,
    Connectors,
    Traffic,
}

impl Tab {
    const ALL: [Self; 4] = [
        Self::Hostnames,
        Self::Networks,
        Self::Connectors,
        Self::Traffic,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Hostnames => "Public hostnames",
            Self::Networks => "Private networks",
            Self::Connectors => "Connectors",
            Self::Traffic => "Traffic",
        }
    }
}

/// What the action panel under the header shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Panel {
    Closed,
    Rename,
    RefreshToken,
    /// The new token after a refresh.
    NewToken(String),
    Delete,
}

#[component]
pub(crate) fn TunnelPage(data: TunnelPageData, now_ms: i64) -> impl IntoView {
    let TunnelPageData {
        tunnel,
        connectors,
        configuration,
        ip_routes,
        traffic,
        zones,
    } = data;
    let id = tunnel.id;
    let base = format!("/api/v1/tunnels/{id}");
    let tunnel = live::followed(tunnel, base.clone());
    let connectors = live::followed(connectors, format!("{base}/connectors"));
    let configuration = live::followed(configuration, format!("{base}/configurations"));
    // The account's private networks; this page shows its tunnel's.
    let ip_routes = live::followed(ip_routes, "/api/v1/ip-routes".to_owned());
    let now = live::clock(now_ms);
    let tab = RwSignal::new(Tab::Hostnames);
    let panel = RwSignal::new(Panel::Closed);

    let status = move || {
        let status = tunnel.with(|t| t.status);
        view! { <StatusBadge status /> }
    };
    let uptime_text = move || {
        tunnel
            .with(|t| t.connected_since.as_deref().and_then(unix_ms))
            .map_or_else(
                || "Not connected".to_owned(),
                |since| uptime(since, now.get()),
            )
    };
    let created = tunnel.with_untracked(|t| t.created_at.clone());
    let created_label = created_parts(&created)
        .map_or_else(|| created.clone(), |(date, time)| format!("{date} {time}"));
    let source = move || match tunnel.with(|t| t.config_src) {
        ConfigSource::Remote => "Remote (managed here)",
        ConfigSource::Local => "Local (the connector's config.yml)",
    };
    let connections = move || {
        tunnel.with(|t| {
            format!(
                "{}, {}",
                counted(t.connectors, "connector"),
                counted(t.connections, "connection")
            )
        })
    };
    let open = move |which: Panel| move |_| panel.set(which.clone());
    let body = move || match tab.get() {
        Tab::Hostnames => EitherOf4::A(view! {
            <HostnamesTab tunnel configuration zones=zones.clone() />
        }),
        Tab::Networks => EitherOf4::B(view! { <NetworksTab tunnel=id ip_routes /> }),
        Tab::Connectors => EitherOf4::C(view! { <ConnectorTable connectors=connectors.into() /> }),
        Tab::Traffic => {
            EitherOf4::D(view! { <TrafficTab tunnel=id traffic=traffic.clone() now /> })
        }
    };
    view! {
        <header class="page-header">
            <div>
                <p class="breadcrumb"><a href="/tunnels">"Tunnels"</a></p>
                <h1 class="tunnel-title">
                    <span>{move || tunnel.with(|t| t.name.clone())}</span>
                    {status}
                </h1>
            </div>
            <div class="header-actions">
                <button type="button" class="button" on:click=open(Panel::Rename)>"Rename"</button>
                <button type="button" class="button" on:click=open(Panel::RefreshToken)>
                    "Refresh token"
                </button>
                <button type="button" class="button danger" on:click=open(Panel::Delete)>
                    "Delete"
                </button>
            </div>
        </header>
        <ActionPanel panel tunnel connectors=connectors.into() />
        <dl class="overview card">
            <div>
                <dt>"Tunnel ID"</dt>
                <dd><CopyId value=id.to_string() what="tunnel ID" /></dd>
            </div>
            <div>
                <dt>"Created"</dt>
                <dd><time datetime=created>{created_label}</time></dd>
            </div>
            <div>
                <dt>"Configuration"</dt>
                <dd>{source}</dd>
            </div>
            <div>
                <dt>"Uptime"</dt>
                <dd class="uptime">{uptime_text}</dd>
            </div>
            <div>
                <dt>"Connections"</dt>
                <dd>{connections}</dd>
            </div>
        </dl>
        <Tabs label="Tunnel details" choices=&Tab::ALL selected=tab name=Tab::label />
        <div class="tab-panel" role="tabpanel">{body}</div>
    }
}

/// Rename, refresh token and delete, each asking before it acts.
#[component]
fn ActionPanel(
    panel: RwSignal<Panel>,
    tunnel: RwSignal<Tunnel>,
    connectors: Signal<Vec<Connector>>,
) -> impl IntoView {
    let close = move |_| panel.set(Panel::Closed);
    move || match panel.get() {
        Panel::Closed => None,
        Panel::Rename => Some(EitherOf4::A(view! { <RenameForm tunnel panel /> })),
        Panel::RefreshToken => Some(EitherOf4::B(view! {
            <RefreshToken tunnel=tunnel.get_untracked() panel />
        })),
        Panel::NewToken(token) => {
            let command = Environment::Binary.command(&origin(), &token);
            Some(EitherOf4::C(view! {
                <section class="card panel" role="region" aria-label="New token">
                    <h2>"The token is refreshed"</h2>
                    <p>"Restart the tunnel's connectors with the new token:"</p>
                    <CopyCommand command=Signal::derive(move || command.clone()) what="run command" />
                    <div class="form-actions">
                        <button type="button" class="button" on:click=close>"Done"</button>
                    </div>
                </section>
            }))
        }
        Panel::Delete => Some(EitherOf4::D(
            view! { <DeleteTunnel tunnel panel connectors /> },
        )),
    }
}

#[component]
fn RenameForm(tunnel: RwSignal<Tunnel>, panel: RwSignal<Panel>) -> impl IntoView {
    let name = RwSignal::new(tunnel.with_untracked(|t| t.name.clone()));
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let typed = name.get_untracked().trim().to_owned();
        if let Some(problem) = name_problem(&typed, &[]) {
            error.set(Some(problem));
            return;
        }
        let id = tunnel.with_untracked(|t| t.id);
        call(
            "PATCH",
            format!("/api/v1/tunnels/{id}"),
            Some(json!({ "name": typed })),
            move |result: Result<Tunnel, Error>| match result {
                Ok(renamed) => {
                    tunnel.set(renamed);
                    panel.set(Panel::Closed);
                }
                Err(e) => error.set(Some(failure(&e).0)),
            },
        );
    };
    view! {
        <form class="card panel" on:submit=submit novalidate>
            <div class="field">
                <label>
                    <span>"New name"</span>
                    <input type="text" autocomplete="off" bind:value=name />
                </label>
                <FieldError message=error.into() />
            </div>
            <div class="form-actions">
                <button type="submit" class="button primary">"Rename"</button>
                <button type="button" class="button" on:click=move |_| panel.set(Panel::Closed)>
                    "Cancel"
                </button>
            </div>
        </form>
    }
}

#[component]
fn RefreshToken(tunnel: Tunnel, panel: RwSignal<Panel>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let refresh = move |_| {
        call(
            "POST",
            format!("/api/v1/tunnels/{}/rotate-secret", tunnel.id),
            None,
            move |result: Result<TunnelTokenBody, Error>| match result {
                Ok(body) => panel.set(Panel::NewToken(body.token)),
                Err(e) => error.set(Some(failure(&e).0)),
            },
        );
    };
    view! {
        <section class="card panel warning" role="alertdialog" aria-label="Refresh the token">
            <h2>"Refresh the token of " {tunnel.name} "?"</h2>
            <p>
                "The current token stops working at once: running connectors are disconnected "
                "and must be restarted with the new token."
            </p>
            <FieldError message=error.into() />
            <div class="form-actions">
                <button type="button" class="button danger" on:click=refresh>"Refresh token"</button>
                <button type="button" class="button" on:click=move |_| panel.set(Panel::Closed)>
                    "Cancel"
                </button>
            </div>
        </section>
    }
}

#[component]
fn DeleteTunnel(
    tunnel: RwSignal<Tunnel>,
    panel: RwSignal<Panel>,
    connectors: Signal<Vec<Connector>>,
) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    // The server refuses to delete a connected tunnel unless forced: ask once more.
    let live_count = move || connectors.with(Vec::len);
    let refused = RwSignal::new(false);
    let force = move || refused.get() || live_count() > 0;
    let delete = move |_| {
        let id = tunnel.with_untracked(|t| t.id);
        let query = if force() { "?force=true" } else { "" };
        call(
            "DELETE",
            format!("/api/v1/tunnels/{id}{query}"),
            None,
            move |result: Result<serde_json::Value, Error>| match result {
                Ok(_) => go_to("/tunnels"),
                Err(e) => {
                    refused.set(matches!(e, Error::Api { status: 409, .. }));
                    error.set(Some(failure(&e).0));
                }
            },
        );
    };
    view! {
        <section class="card panel warning" role="alertdialog" aria-label="Delete the tunnel">
            <h2>"Delete " {move || tunnel.with(|t| t.name.clone())} "?"</h2>
            <p>"Its public hostnames and private networks are removed with it."</p>
            <Show when=move || { live_count() > 0 }>
                <p class="field-error">
                    {move || match live_count() {
                        1 => "1 connector is connected: deleting disconnects it.".to_owned(),
                        n => format!("{n} connectors are connected: deleting disconnects them."),
                    }}
                </p>
            </Show>
            <FieldError message=error.into() />
            <div class="form-actions">
                <button type="button" class="button danger" on:click=delete>
                    {move || if force() { "Delete anyway" } else { "Delete" }}
                </button>
                <button type="button" class="button" on:click=move |_| panel.set(Panel::Closed)>
                    "Cancel"
                </button>
            </div>
        </section>
    }
}

/// Which hostname form is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Editor {
    Closed,
    New,
    Edit(usize),
}

#[component]
fn HostnamesTab(
    tunnel: RwSignal<Tunnel>,
    configuration: RwSignal<TunnelConfiguration>,
    zones: Vec<String>,
) -> impl IntoView {
    let id = tunnel.with_untracked(|t| t.id);
    let remote = move || tunnel.with(|t| t.config_src == ConfigSource::Remote);
    let editor = RwSignal::new(Editor::Closed);
    let error = RwSignal::new(None::<String>);
    let saved = Callback::new(move |saved: TunnelConfiguration| {
        configuration.set(saved);
        editor.set(Editor::Closed);
    });
    let rules = move || configuration.with(|c| user_rules(c.config.as_ref()).to_vec());
    let delete = move |index: usize| {
        error.set(None);
        change_configuration(
            id,
            move |config| remove_rule(config, index),
            move |result| match result {
                Ok(saved) => configuration.set(saved),
                Err(e) => error.set(Some(failure(&e).0)),
            },
        );
    };
    let rows = move || {
        rules()
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                let hostname = rule.hostname.clone().unwrap_or_else(|| "*".to_owned());
                let actions = remote().then(|| {
                    view! {
                        <td class="row-actions">
                            <button
                                type="button"
                                class="button link"
                                aria-label=format!("Edit {hostname}")
                                on:click=move |_| editor.set(Editor::Edit(index))
                            >
                                "Edit"
                            </button>
                            <button
                                type="button"
                                class="button link danger"
                                aria-label=format!("Delete {hostname}")
                                on:click=move |_| delete(index)
                            >
                                "Delete"
                            </button>
                        </td>
                    }
                });
                view! {
                    <tr>
                        <th scope="row">{hostname.clone()}</th>
                        <td>{rule.path.clone().unwrap_or_default()}</td>
                        <td><code>{rule.service}</code></td>
                        {actions}
                    </tr>
                }
            })
            .collect_view()
    };
    let form = move || {
        let zones = zones.clone();
        match editor.get() {
            Editor::Closed => None,
            Editor::New => Some(view! {
                <HostnameEditor
                    tunnel=id
                    initial=HostnameForm::new(&zones)
                    zones
                    index=None
                    on_saved=saved
                    on_cancel=Callback::new(move |()| editor.set(Editor::Closed))
                />
            }),
            Editor::Edit(index) => {
                let initial = rules()
                    .get(index)
                    .map(|rule| HostnameForm::from_rule(rule, &zones))
                    .unwrap_or_else(|| HostnameForm::new(&zones));
                Some(view! {
                    <HostnameEditor
                        tunnel=id
                        initial
                        zones
                        index=Some(index)
                        on_saved=saved
                        on_cancel=Callback::new(move |()| editor.set(Editor::Closed))
                    />
                })
            }
        }
    };
    view! {
        <Show when=move || !remote()>
            <p class="note">
                "This tunnel is managed locally: its rules come from its connector's config.yml "
                "and are shown as the connector reported them. Edit them there."
            </p>
        </Show>
        <div class="table-card">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Public hostname"</th>
                        <th scope="col">"Path"</th>
                        <th scope="col">"Service"</th>
                        <Show when=remote>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </Show>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            <Show when=move || rules().is_empty()>
                <p class="no-match">"No public hostnames yet."</p>
            </Show>
        </div>
        <FieldError message=error.into() />
        <Show when=move || remote() && editor.get() == Editor::Closed>
            <div class="form-actions">
                <button type="button" class="button primary" on:click=move |_| editor.set(Editor::New)>
                    "Add a public hostname"
                </button>
            </div>
        </Show>
        {form}
    }
}

#[component]
fn NetworksTab(
    tunnel: adit_core::ids::TunnelId,
    ip_routes: RwSignal<Vec<IpRoute>>,
) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let mine = move || {
        ip_routes.with(|all| {
            all.iter()
                .filter(|r| r.tunnel_id == tunnel)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let delete = move |route: adit_core::ids::RouteId| {
        call(
            "DELETE",
            format!("/api/v1/ip-routes/{route}"),
            None,
            move |result: Result<serde_json::Value, Error>| match result {
                Ok(_) => ip_routes.update(|all| all.retain(|r| r.id != route)),
                Err(e) => error.set(Some(failure(&e).0)),
            },
        );
    };
    view! {
        <div class="table-card">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Network"</th>
                        <th scope="col">"Comment"</th>
                        <th scope="col">"Added"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For each=mine key=|r| r.id let(route)>
                        <tr>
                            <th scope="row"><code>{route.network.clone()}</code></th>
                            <td>{route.comment.clone()}</td>
                            <td>{route.created_at.clone()}</td>
                            <td class="row-actions">
                                <button
                                    type="button"
                                    class="button link danger"
                                    aria-label=format!("Delete {}", route.network)
                                    on:click=move |_| delete(route.id)
                                >
                                    "Delete"
                                </button>
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
            <Show when=move || mine().is_empty()>
                <p class="no-match">"No private networks yet."</p>
            </Show>
        </div>
        <FieldError message=error.into() />
        <h3>"Add a private network"</h3>
        <NetworkForm
            tunnel
            on_added=Callback::new(move |route: IpRoute| ip_routes.update(|all| all.push(route)))
        />
    }
}

/// The ranges the charts offer, in minutes.
const RANGES: [(u32, &str); 2] = [(60, "Last hour"), (24 * 60, "Last day")];

/// One value per minute of the `minutes` up to `now_ms` (oldest first), picked from the
/// points the API returned; minutes without a point (no traffic) are 0, so the chart's
/// width is time.
fn series(
    points: &[TrafficPoint],
    minutes: u32,
    now_ms: i64,
    pick: fn(&TrafficPoint) -> f64,
) -> Vec<f64> {
    let minutes = usize::try_from(minutes)
        .unwrap_or(usize::MAX)
        .min(7 * 24 * 60);
    let mut out = vec![0.0; minutes];
    for point in points {
        let Some(at) = unix_ms(&point.at) else {
            continue;
        };
        let ago = usize::try_from(now_ms.saturating_sub(at) / 60_000).unwrap_or(usize::MAX);
        if ago < minutes {
            out[minutes - 1 - ago] = pick(point);
        }
    }
    out
}

#[component]
fn TrafficTab(
    tunnel: adit_core::ids::TunnelId,
    traffic: Vec<TrafficPoint>,
    now: ReadSignal<i64>,
) -> impl IntoView {
    let points = RwSignal::new(traffic);
    let minutes = RwSignal::new(60u32);
    let load = move || {
        call(
            "GET",
            format!(
                "/api/v1/tunnels/{tunnel}/traffic?minutes={}",
                minutes.get_untracked()
            ),
            None,
            move |result: Result<Vec<TrafficPoint>, Error>| match result {
                Ok(read) => points.set(read),
                Err(e) => leptos::logging::warn!("could not read the traffic: {e}"),
            },
        );
    };
    // The page's data may be old by the time the tab is opened: read now, then poll.
    load();
    every(TRAFFIC_POLL, load);
    let chart = |pick: fn(&TrafficPoint) -> f64| {
        Signal::derive(move || points.with(|p| series(p, minutes.get(), now.get(), pick)))
    };
    let options = RANGES
        .into_iter()
        .map(|(value, label)| view! { <option value=value.to_string()>{label}</option> })
        .collect_view();
    let count = |v: f64| format!("{v:.0}");
    let millis = |v: f64| format!("{v:.0} ms");
    let empty = move || points.with(|p| p.iter().all(|p| p.requests == 0));
    view! {
        <div class="toolbar">
            <label class="filter">
                <span>"Range"</span>
                <select
                    prop:value=move || minutes.get().to_string()
                    on:change=move |ev| {
                        minutes.set(event_target_value(&ev).parse().unwrap_or(60));
                        load();
                    }
                >
                    {options}
                </select>
            </label>
            <span class="muted" aria-live="polite">
                {move || if empty() { "No requests in this range." } else { "Per minute." }}
            </span>
        </div>
        <div class="charts">
            <LineChart
                title="Requests"
                values=chart(|p| p.requests as f64)
                format=count
                summary=Summary::Total
            />
            <LineChart
                title="Errors"
                values=chart(|p| p.errors as f64)
                format=count
                summary=Summary::Total
            />
            <LineChart
                title="Bytes (in + out)"
                values=chart(|p| (p.bytes_in + p.bytes_out) as f64)
                format=human_bytes
                summary=Summary::Total
            />
            <LineChart
                title="p99 latency"
                values=chart(|p| p.p99_ms)
                format=millis
                summary=Summary::Peak
            />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn the_connectors_table_says_whether_each_connectors_origin_answered() {
        let connector = |n: u8, health: serde_json::Value| -> Connector {
            serde_json::from_value(json!({
                "id": format!("00000000-0000-4000-8000-0000000000{n:02}"),
                "tunnel_id": "6f1d7a0e-2b1c-4c8e-9a51-7f0b3d2e4c11",
                "version": "0.1.0", "arch": "linux_amd64", "hostname": "box",
                "registered_at": "2026-11-25T01:33:07Z", "connections": [],
                "origin_health": health,
            }))
            .unwrap()
        };
        let connectors = vec![
            connector(
                1,
                json!({"reachable": true, "checked_at": "2026-11-25T03:30:00Z"}),
            ),
            connector(
                2,
                json!({"reachable": false, "checked_at": "2026-11-25T03:31:00Z", "error": "origin_refused"}),
            ),
            connector(3, serde_json::Value::Null),
        ];
        let html = Owner::new()
            .with(|| view! { <ConnectorTable connectors=Signal::stored(connectors) /> }.to_html());
        assert!(html.contains(">Origin</th>"), "{html}");
        assert!(
            html.contains("badge badge-healthy") && html.contains("Reachable"),
            "{html}"
        );
        assert!(
            html.contains("badge badge-down") && html.contains("origin_refused"),
            "{html}"
        );
        assert!(html.contains("No requests yet"), "{html}");
    }

    #[test]
    fn traffic_is_spread_over_every_minute_of_the_range() {
        let point = |at: &str, requests: u64| TrafficPoint {
            at: at.to_owned(),
            requests,
            errors: 0,
            bytes_in: 0,
            bytes_out: 0,
            p50_ms: 0.0,
            p99_ms: 0.0,
        };
        // 2026-11-25T03:33:07Z.
        let now = 1_795_577_587_000;
        let points = [
            point("2026-11-25T03:33:00Z", 7),
            point("2026-11-25T03:30:00Z", 4),
            point("2026-11-25T01:00:00Z", 9),
            point("not a time", 1),
        ];
        let values = series(&points, 5, now, |p| p.requests as f64);
        // The five minutes 03:29 … 03:33.
        assert_eq!(values, [0.0, 4.0, 0.0, 0.0, 7.0]);
        assert_eq!(series(&[], 60, now, |p| p.requests as f64).len(), 60);
    }

    #[test]
    fn edges_are_counted_per_node() {
        let connector: Connector = serde_json::from_value(json!({
            "id": "6f1d7a0e-2b1c-4c8e-9a51-7f0b3d2e4c11",
            "tunnel_id": "7a2e8b1f-3c2d-4d9f-8b62-8a1c4e3f5d22",
            "version": "0.1.0", "arch": "linux_amd64", "hostname": "box",
            "registered_at": "2026-11-25T01:33:07Z",
            "connections": (["b", "a", "b"].iter().enumerate().map(|(i, edge)| json!({
                "id": format!("8b3f9c2a-4d3e-4eaf-9c73-9b2d5f4a6e3{i}"),
                "index": i, "edge": edge, "opened_at": "2026-11-25T01:33:08Z",
                "origin_ip": "127.0.0.1"
            })).collect::<Vec<_>>()),
        }))
        .unwrap();
        assert_eq!(edges(&connector), "1× a, 2× b");
    }
}
