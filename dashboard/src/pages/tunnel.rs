//! One tunnel's page: its overview, its public hostnames, private networks, connectors and
//! traffic in tabs, and the actions on it (add a connector, rename, refresh the token,
//! delete). Status, connectors and routes follow the account's change notices about this
//! tunnel; the charts are re-read every second while their tab is open.

use std::{collections::BTreeMap, time::Duration};

use adit_core::{
    api::{
        ChangeKind, ConfigSource, Connector, IpRoute, OriginHealth, TrafficPoint, Tunnel,
        TunnelConfiguration, TunnelStatus,
    },
    ids::{ConnectorId, RouteId, TunnelId},
    ingress::{IngressConfig, RawIngressRule},
    wire::ConnectorError,
};
use leptos::{
    either::{EitherOf4, EitherOf5},
    ev::SubmitEvent,
    html,
    prelude::*,
};

use super::{
    new_tunnel::InstallCommands,
    route_forms::{HostnameEditor, NetworkForm, Refused, change_configuration},
    routing::{Environment, HostnameForm, name_problem, user_rules},
};
use crate::{
    Error,
    api::{Api, use_api},
    components::{
        chart::{LineChart, Summary, human_bytes},
        copy_id::{CopyCommand, CopyId},
        dialog::Dialog,
        field_error::FieldError,
        moment::Moment,
        status_badge::StatusBadge,
        table::{Column, DataTable},
        tabs::Tabs,
    },
    live::{self, Followed, every, focus_in, go_to, origin, use_live},
    page::TunnelPageData,
    time::{date_and_minute, uptime},
};

/// How often the charts are re-read while the Traffic tab is shown: the server includes the
/// minute in progress, so a request shows within this time (the page promises 2 s).
const TRAFFIC_POLL: Duration = Duration::from_secs(1);

/// Connectors with their platform, addresses and connections; a line says when there are
/// none (the table keeps its place when the first one arrives).
#[component]
pub(crate) fn ConnectorTable(connectors: Signal<Vec<Connector>>) -> impl IntoView {
    view! {
        <DataTable
            class="connectors"
            columns=vec![
                Column::new("Connector ID"),
                Column::new("Host"),
                Column::new("Version"),
                Column::new("Edge"),
                Column::numeric("Connections"),
                Column::new("Connected since"),
                Column::new("Origin"),
            ]
            empty=Signal::derive(move || connectors.with(Vec::is_empty))
            empty_text="No connector is running.".to_owned()
            live=true
        >
            // Keyed by id: a row keeps its DOM (and a focused Copy button) while the
            // connector's connections change; its cells follow it.
            <For each=move || connectors.get() key=|c| c.id let(connector)>
                <ConnectorRow id=connector.id connectors />
            </For>
        </DataTable>
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
fn ConnectorRow(id: ConnectorId, connectors: Signal<Vec<Connector>>) -> impl IntoView {
    let current =
        Memo::new(move |_| connectors.with(|all| all.iter().find(|c| c.id == id).cloned()));
    move || current.with(|c| c.as_ref().map(connector_cells))
}

fn connector_cells(connector: &Connector) -> impl IntoView + use<> {
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
        .map(|c| c.opened_at)
        .min()
        .unwrap_or(connector.registered_at);
    // Each edge node on its own unbreakable piece: the column wraps between them.
    let edges = edges(connector)
        .split(", ")
        .map(|edge| view! { <span class="nowrap">{edge.to_owned()}</span> " " })
        .collect_view();
    view! {
        <tr>
            <td><CopyId value=connector.id.to_string() what="connector ID" short=true /></td>
            <td>
                {connector.hostname.clone()}
                <span class="sub">{origin_ips}</span>
            </td>
            <td>
                {connector.version.clone()}
                <span class="sub">{connector.arch.clone()}</span>
            </td>
            <td>{edges}</td>
            <td class="num">{format!("{}/{}", connector.connections.len(), connector.ha_connections)}</td>
            <td class="created"><Moment at=since /></td>
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
                h.error.unwrap_or(ConnectorError::OriginError),
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
    /// How to install and run one more connector (open from the start while the tunnel has
    /// never run).
    AddConnector,
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
    // Each value is re-read only on the notices about this tunnel that can change it.
    use ChangeKind::{Connection, Connector as Registered, Route, Tunnel as Changed};
    let tunnel = live::follow(
        tunnel,
        move |n| n.about(id, &[Changed, Registered, Connection, Route]),
        move |api: Api| async move { api.tunnel(id).await },
    );
    let connectors = live::follow(
        connectors,
        move |n| n.about(id, &[Changed, Registered, Connection]),
        move |api: Api| async move { api.connectors(id).await },
    );
    let configuration = live::follow(
        configuration,
        move |n| n.about(id, &[Route]),
        move |api: Api| async move { api.configuration(id).await },
    );
    // The account's private networks; this page shows its tunnel's.
    let ip_routes = live::follow(
        ip_routes,
        move |n| n.about(id, &[Route]),
        move |api: Api| async move { api.ip_routes().await },
    );
    let now = live::clock(now_ms);
    let tab = RwSignal::new(Tab::Hostnames);
    let inactive = move || tunnel.with(|t| t.status == TunnelStatus::Inactive);
    let panel = RwSignal::new(if inactive() {
        Panel::AddConnector
    } else {
        Panel::Closed
    });

    let status = move || {
        let status = tunnel.with(|t| t.status);
        view! { <StatusBadge status /> }
    };
    let uptime_text = move || {
        tunnel.with(|t| t.connected_since).map_or_else(
            || "Not connected".to_owned(),
            |since| uptime(since.unix_ms(), now.get()),
        )
    };
    let created = tunnel.with_untracked(|t| t.created_at);
    let created_label = {
        let (date, time) = date_and_minute(created);
        format!("{date} {time}")
    };
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
    // A closed panel gives the focus back to the button that opened it.
    let actions = NodeRef::<html::Div>::new();
    Effect::new(move |before: Option<Panel>| {
        let now = panel.get();
        let opener = match (&before, &now) {
            (Some(Panel::Rename), Panel::Closed) => Some(".rename"),
            (Some(Panel::RefreshToken | Panel::NewToken(_)), Panel::Closed) => Some(".refresh"),
            (Some(Panel::Delete), Panel::Closed) => Some(".delete"),
            (Some(Panel::AddConnector), Panel::Closed) => Some(".add-connector"),
            _ => None,
        };
        if let Some(opener) = opener {
            focus_in(actions.get_untracked().map(Into::into), opener);
        }
        now
    });
    let open = move |which: Panel| move |_| panel.set(which.clone());
    let body = move || match tab.get() {
        Tab::Hostnames => EitherOf4::A(view! {
            <HostnamesTab tunnel configuration zones=zones.clone() />
        }),
        Tab::Networks => EitherOf4::B(view! { <NetworksTab tunnel=id ip_routes /> }),
        Tab::Connectors => {
            EitherOf4::C(view! { <ConnectorTable connectors=connectors.signal() /> })
        }
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
            <div class="header-actions" node_ref=actions>
                <button
                    type="button"
                    class=move || {
                        if inactive() {
                            "button primary add-connector"
                        } else {
                            "button add-connector"
                        }
                    }
                    on:click=open(Panel::AddConnector)
                >
                    "Add a connector"
                </button>
                <button type="button" class="button rename" on:click=open(Panel::Rename)>
                    "Rename"
                </button>
                <button type="button" class="button refresh" on:click=open(Panel::RefreshToken)>
                    "Refresh token"
                </button>
                <button type="button" class="button danger delete" on:click=open(Panel::Delete)>
                    "Delete"
                </button>
            </div>
        </header>
        <ActionPanel panel tunnel connectors=connectors.signal() />
        <dl class="overview card">
            <div>
                <dt>"Tunnel ID"</dt>
                <dd><CopyId value=id.to_string() what="tunnel ID" /></dd>
            </div>
            <div>
                <dt>"Created"</dt>
                <dd><time datetime=created.to_string()>{created_label}</time></dd>
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
    tunnel: Followed<Tunnel>,
    connectors: Signal<Vec<Connector>>,
) -> impl IntoView {
    let close = Callback::new(move |()| panel.set(Panel::Closed));
    move || match panel.get() {
        Panel::Closed => None,
        Panel::Rename => Some(EitherOf5::A(view! { <RenameForm tunnel close /> })),
        Panel::RefreshToken => Some(EitherOf5::B(view! {
            <RefreshToken tunnel=tunnel.with_untracked(Clone::clone) panel />
        })),
        Panel::NewToken(token) => {
            let command = Environment::Binary.command(&origin(), &token);
            Some(EitherOf5::C(view! {
                <Dialog label="New token" role="region" class="card panel" close>
                    <h2>"The token is refreshed"</h2>
                    <p>"Restart the tunnel's connectors with the new token:"</p>
                    <CopyCommand command=Signal::derive(move || command.clone()) what="run command" />
                    <div class="form-actions">
                        <button type="button" class="button dialog-cancel" on:click=move |_| close.run(())>
                            "Done"
                        </button>
                    </div>
                </Dialog>
            }))
        }
        Panel::Delete => Some(EitherOf5::D(
            view! { <DeleteTunnel tunnel close connectors /> },
        )),
        Panel::AddConnector => {
            let id = tunnel.with_untracked(|t| t.id);
            Some(EitherOf5::E(view! {
                <Dialog label="Add a connector" role="region" class="card panel add-connector-panel" close>
                    <h2>"Add a connector"</h2>
                    <p class="muted">
                        "Run it on the host that reaches your services; more than one connector "
                        "keeps the tunnel up when a host goes down. The command holds the "
                        "tunnel's token: keep it secret."
                    </p>
                    <InstallCommands tunnel=id />
                    <div class="form-actions">
                        <button type="button" class="button dialog-cancel" on:click=move |_| close.run(())>
                            "Close"
                        </button>
                    </div>
                </Dialog>
            }))
        }
    }
}

#[component]
fn RenameForm(tunnel: Followed<Tunnel>, close: Callback<()>) -> impl IntoView {
    let id = tunnel.with_untracked(|t| t.id);
    let name = RwSignal::new(tunnel.with_untracked(|t| t.name.clone()));
    let api = use_api();
    // The account's other names, read as the form opens: a taken name is said as it is
    // typed, not after Rename.
    let others = LocalResource::new({
        let api = api.clone();
        move || {
            let api = api.clone();
            async move {
                api.tunnels()
                    .await
                    .map(|all| {
                        all.into_iter()
                            .filter(|t| t.id != id)
                            .map(|t| t.name)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            }
        }
    });
    let rename = Action::new_local(move |name: &String| {
        let (api, name) = (api.clone(), name.clone());
        async move { api.rename_tunnel(id, name).await }
    });
    let server_error = RwSignal::new(None::<String>);
    Effect::new(move || match rename.value().get() {
        None | Some(Err(Error::SessionEnded)) => {}
        Some(Ok(renamed)) => {
            tunnel.set(renamed);
            close.run(());
        }
        Some(Err(e)) => server_error.set(Some(e.message())),
    });
    let problem = Signal::derive(move || {
        let taken = others.get().unwrap_or_default();
        server_error
            .get()
            .or_else(|| name.with(|n| name_problem(n.trim(), &taken)))
    });
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if problem.with_untracked(Option::is_none) {
            rename.dispatch_local(name.get_untracked().trim().to_owned());
        }
    };
    view! {
        <Dialog label="Rename the tunnel" role="form" class="card panel" close focus="input">
            <form on:submit=submit novalidate>
                <div class="field">
                    <label>
                        <span>"New name"</span>
                        <input
                            type="text"
                            autocomplete="off"
                            aria-invalid=move || problem.with(Option::is_some).then_some("true")
                            prop:value=move || name.get()
                            on:input=move |ev| {
                                server_error.set(None);
                                name.set(event_target_value(&ev));
                            }
                        />
                    </label>
                    <FieldError message=problem />
                </div>
                <div class="form-actions">
                    <button
                        type="submit"
                        class="button primary"
                        disabled=move || rename.pending().get() || problem.with(Option::is_some)
                    >
                        "Rename"
                    </button>
                    <button type="button" class="button dialog-cancel" on:click=move |_| close.run(())>
                        "Cancel"
                    </button>
                </div>
            </form>
        </Dialog>
    }
}

#[component]
fn RefreshToken(tunnel: Tunnel, panel: RwSignal<Panel>) -> impl IntoView {
    let api = use_api();
    let id = tunnel.id;
    let refresh = Action::new_local(move |(): &()| {
        let api = api.clone();
        async move { api.rotate_secret(id).await }
    });
    let error = RwSignal::new(None::<String>);
    Effect::new(move || match refresh.value().get() {
        None | Some(Err(Error::SessionEnded)) => {}
        Some(Ok(token)) => panel.set(Panel::NewToken(token)),
        Some(Err(e)) => error.set(Some(e.message())),
    });
    let close = Callback::new(move |()| panel.set(Panel::Closed));
    view! {
        <Dialog label="Refresh the token" class="card panel warning" close>
            <h2>"Refresh the token of " {tunnel.name} "?"</h2>
            <p>
                "The current token stops working at once: running connectors are disconnected "
                "and must be restarted with the new token."
            </p>
            <FieldError message=error />
            <div class="form-actions">
                <button
                    type="button"
                    class="button danger"
                    disabled=move || refresh.pending().get()
                    on:click=move |_| {
                        refresh.dispatch_local(());
                    }
                >
                    "Refresh token"
                </button>
                <button type="button" class="button dialog-cancel" on:click=move |_| close.run(())>
                    "Cancel"
                </button>
            </div>
        </Dialog>
    }
}

#[component]
fn DeleteTunnel(
    tunnel: Followed<Tunnel>,
    close: Callback<()>,
    connectors: Signal<Vec<Connector>>,
) -> impl IntoView {
    let api = use_api();
    let live = use_live();
    let id = tunnel.with_untracked(|t| t.id);
    // The server refuses to delete a connected tunnel unless forced: ask once more.
    let live_count = move || connectors.with(Vec::len);
    let refused = RwSignal::new(false);
    let force = move || refused.get() || live_count() > 0;
    let delete = Action::new_local(move |force: &bool| {
        let (api, force) = (api.clone(), *force);
        async move { api.delete_tunnel(id, force).await }
    });
    let error = RwSignal::new(None::<String>);
    Effect::new(move || match delete.value().get() {
        None | Some(Err(Error::SessionEnded)) => {}
        // The page stays paused: nothing of the tunnel is left to read.
        Some(Ok(())) => go_to("/tunnels"),
        Some(Err(e)) => {
            live.pause(false);
            refused.set(e.status() == Some(409));
            error.set(Some(e.message()));
        }
    });
    let confirm = move |_| {
        // No re-reads of what is being deleted: its notice would make them 404s.
        live.pause(true);
        delete.dispatch_local(force());
    };
    view! {
        <Dialog label="Delete the tunnel" class="card panel warning" close>
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
            <FieldError message=error />
            <div class="form-actions">
                <button
                    type="button"
                    class="button danger"
                    disabled=move || delete.pending().get()
                    on:click=confirm
                >
                    {move || if force() { "Delete anyway" } else { "Delete" }}
                </button>
                <button type="button" class="button dialog-cancel" on:click=move |_| close.run(())>
                    "Cancel"
                </button>
            </div>
        </Dialog>
    }
}

/// Which hostname form is open; a rule is named by its hostname and path, which no two
/// rules share.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Editor {
    Closed,
    New,
    Edit(RuleKey),
}

/// A rule's hostname and path: what tells the rules apart.
type RuleKey = (Option<String>, Option<String>);

fn rule_key(rule: &RawIngressRule) -> RuleKey {
    (rule.hostname.clone(), rule.path.clone())
}

/// `config` without the user's rule `key`; the catch-all stays last.
fn without_rule(config: Option<&IngressConfig>, key: &RuleKey) -> (IngressConfig, usize) {
    let index = user_rules(config)
        .iter()
        .position(|r| rule_key(r) == *key)
        .unwrap_or(usize::MAX);
    (super::routing::remove_rule(config, index), index)
}

#[component]
fn HostnamesTab(
    tunnel: Followed<Tunnel>,
    configuration: Followed<TunnelConfiguration>,
    zones: Vec<String>,
) -> impl IntoView {
    let id = tunnel.with_untracked(|t| t.id);
    let remote = tunnel.with_untracked(|t| t.config_src == ConfigSource::Remote);
    let editor = RwSignal::new(Editor::Closed);
    let error = RwSignal::new(None::<String>);
    let saved = Callback::new(move |saved: TunnelConfiguration| {
        configuration.set(saved);
        editor.set(Editor::Closed);
    });
    let rules = Memo::new(move |_| configuration.with(|c| user_rules(c.config.as_ref()).to_vec()));
    let api = use_api();
    let delete = Action::new_local(move |key: &RuleKey| {
        let (api, key) = (api.clone(), key.clone());
        async move { change_configuration(&api, id, move |config| Ok(without_rule(config, &key))).await }
    });
    Effect::new(move || match delete.value().get() {
        None
        | Some(Err(Refused::Call {
            error: Error::SessionEnded,
            ..
        })) => {}
        Some(Ok(saved)) => configuration.set(saved),
        Some(Err(Refused::Form(_, message))) => error.set(Some(message)),
        Some(Err(Refused::Call { error: e, .. })) => error.set(Some(e.message())),
    });
    let row = move |key: RuleKey| {
        let rule = Memo::new({
            let key = key.clone();
            move |_| rules.with(|all| all.iter().find(|r| rule_key(r) == key).cloned())
        });
        let hostname = key.0.clone().unwrap_or_else(|| "*".to_owned());
        let actions = remote.then(|| {
            let (edit_key, delete_key) = (key.clone(), key.clone());
            view! {
                <td class="row-actions">
                    <button
                        type="button"
                        class="button link"
                        aria-label=format!("Edit {hostname}")
                        on:click=move |_| editor.set(Editor::Edit(edit_key.clone()))
                    >
                        "Edit"
                    </button>
                    <button
                        type="button"
                        class="button link danger"
                        aria-label=format!("Delete {hostname}")
                        disabled=move || delete.pending().get()
                        on:click=move |_| {
                            error.set(None);
                            delete.dispatch_local(delete_key.clone());
                        }
                    >
                        "Delete"
                    </button>
                </td>
            }
        });
        view! {
            <tr>
                <th scope="row">{hostname.clone()}</th>
                <td>{key.1.clone().unwrap_or_default()}</td>
                <td><code>{move || rule.with(|r| r.as_ref().map(|r| r.service.clone()))}</code></td>
                {actions}
            </tr>
        }
    };
    let form = move || {
        let zones = zones.clone();
        let cancel = Callback::new(move |()| editor.set(Editor::Closed));
        match editor.get() {
            Editor::Closed => None,
            Editor::New => Some(view! {
                <HostnameEditor
                    tunnel=id
                    initial=HostnameForm::new(&zones)
                    zones
                    index=None
                    on_saved=saved
                    on_cancel=cancel
                />
            }),
            Editor::Edit(key) => {
                let current = rules.with_untracked(|all| {
                    all.iter()
                        .position(|r| rule_key(r) == key)
                        .map(|i| (i, all[i].clone()))
                });
                let (index, initial) = match current {
                    Some((i, rule)) => (Some(i), HostnameForm::from_rule(&rule, &zones)),
                    None => (None, HostnameForm::new(&zones)),
                };
                Some(view! {
                    <HostnameEditor tunnel=id initial zones index on_saved=saved on_cancel=cancel />
                })
            }
        }
    };
    let mut columns = vec![
        Column::new("Public hostname"),
        Column::new("Path"),
        Column::new("Service"),
    ];
    if remote {
        columns.push(Column::actions());
    }
    view! {
        <Show when=move || !remote>
            <p class="note">
                "This tunnel is managed locally: its rules come from its connector's config.yml "
                "and are shown as the connector reported them. Edit them there."
            </p>
        </Show>
        <DataTable
            columns
            empty=Signal::derive(move || rules.with(Vec::is_empty))
            empty_text="No public hostnames yet.".to_owned()
        >
            <For each=move || rules.with(|all| all.iter().map(rule_key).collect::<Vec<_>>()) key=Clone::clone let(key)>
                {row(key)}
            </For>
        </DataTable>
        <FieldError message=error />
        <Show when=move || remote && editor.with(|e| *e == Editor::Closed)>
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
fn NetworksTab(tunnel: TunnelId, ip_routes: Followed<Vec<IpRoute>>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let mine = Memo::new(move |_| {
        ip_routes.with(|all| {
            all.iter()
                .filter(|r| r.tunnel_id == tunnel)
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let api = use_api();
    let delete = Action::new_local(move |route: &RouteId| {
        let (api, route) = (api.clone(), *route);
        async move { api.delete_ip_route(route).await.map(|()| route) }
    });
    Effect::new(move || match delete.value().get() {
        None | Some(Err(Error::SessionEnded)) => {}
        Some(Ok(route)) => {
            ip_routes.set(
                ip_routes
                    .with_untracked(|all| all.iter().filter(|r| r.id != route).cloned().collect()),
            );
        }
        Some(Err(e)) => error.set(Some(e.message())),
    });
    view! {
        <DataTable
            columns=vec![
                Column::new("Network"),
                Column::new("Comment"),
                Column::new("Added"),
                Column::actions(),
            ]
            empty=Signal::derive(move || mine.with(Vec::is_empty))
            empty_text="No private networks yet.".to_owned()
        >
            <For each=move || mine.get() key=|r| r.id let(route)>
                <tr>
                    <th scope="row"><code>{route.network.clone()}</code></th>
                    <td>{route.comment.clone()}</td>
                    <td class="created"><Moment at=route.created_at /></td>
                    <td class="row-actions">
                        <button
                            type="button"
                            class="button link danger"
                            aria-label=format!("Delete {}", route.network)
                            on:click=move |_| {
                                error.set(None);
                                delete.dispatch_local(route.id);
                            }
                        >
                            "Delete"
                        </button>
                    </td>
                </tr>
            </For>
        </DataTable>
        <FieldError message=error />
        <h3>"Add a private network"</h3>
        <NetworkForm
            tunnel
            on_added=Callback::new(move |route: IpRoute| {
                let mut all = ip_routes.with_untracked(Clone::clone);
                all.push(route);
                ip_routes.set(all);
            })
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
        let at = point.at.unix_ms();
        let ago = usize::try_from(now_ms.saturating_sub(at) / 60_000).unwrap_or(usize::MAX);
        if ago < minutes {
            out[minutes - 1 - ago] = pick(point);
        }
    }
    out
}

#[component]
fn TrafficTab(tunnel: TunnelId, traffic: Vec<TrafficPoint>, now: ReadSignal<i64>) -> impl IntoView {
    let points = RwSignal::new(traffic);
    let minutes = RwSignal::new(60u32);
    let live = use_live();
    let api = use_api();
    // Re-read every second while the tab is shown, and at once when the range changes
    // (the page's data may be old by the time the tab is opened: the first read is now).
    let tick = RwSignal::new(0u64);
    every(TRAFFIC_POLL, move || tick.update(|t| *t += 1));
    let reads = LocalResource::new(move || {
        tick.track();
        let minutes = minutes.get();
        let api = api.clone();
        let paused = live.paused();
        async move {
            if paused {
                return None;
            }
            match api.traffic(tunnel, minutes).await {
                Ok(read) => Some(read),
                Err(e) => {
                    leptos::logging::warn!("could not read the traffic: {e}");
                    None
                }
            }
        }
    });
    Effect::new(move || {
        if let Some(Some(read)) = reads.get() {
            points.set(read);
        }
    });
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
                    on:change=move |ev| minutes.set(event_target_value(&ev).parse().unwrap_or(60))
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
    use serde_json::json;

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
            at: at.parse().unwrap(),
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
            // From a clock ahead of the page's: not drawn.
            point("2026-11-25T03:35:00Z", 1),
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
