//! The "Create a tunnel" wizard, as in the Zero Trust dashboard: name it, install and run a
//! connector (the page waits, live, until one connects), route traffic to it (a public
//! hostname, a private network, or neither), done. The tunnel is remotely managed: its
//! ingress rules are edited here and pushed to its connectors.

use adit_core::{
    api::{ChangeKind, Connector, IpRoute, Tunnel, TunnelConfiguration},
    ids::TunnelId,
};
use leptos::{either::EitherOf4, ev::SubmitEvent, html, prelude::*};

use super::{
    route_forms::{HostnameEditor, NetworkForm},
    routing::{Environment, HostnameForm, name_problem, user_rules},
    tunnel::ConnectorTable,
};
use crate::{
    Error,
    api::{Api, use_api},
    components::{copy_id::CopyCommand, field_error::FieldError, tabs::Tabs},
    live::{self, focus_in, origin},
};

/// The wizard's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Name,
    Connector,
    Route,
    Done,
}

impl Step {
    const ALL: [Self; 4] = [Self::Name, Self::Connector, Self::Route, Self::Done];

    fn label(self) -> &'static str {
        match self {
            Self::Name => "Name your tunnel",
            Self::Connector => "Install and run a connector",
            Self::Route => "Route traffic",
            Self::Done => "Done",
        }
    }
}

/// Whether any connector has a connection open: the tunnel can serve.
fn connected(connectors: &[Connector]) -> bool {
    connectors.iter().any(|c| !c.connections.is_empty())
}

#[component]
pub(crate) fn NewTunnelPage(taken: Vec<String>, zones: Vec<String>) -> impl IntoView {
    let step = RwSignal::new(Step::Name);
    let tunnel = RwSignal::new(None::<Tunnel>);
    // The account's tunnel names, kept live: a name another tab or the CLI takes while
    // this page is open is refused as it is typed.
    let taken = live::follow(
        taken,
        |n| n.of_kind(ChangeKind::Tunnel),
        move |api: Api| async move {
            let all = api.tunnels().await?;
            Ok(all.into_iter().map(|t| t.name).collect())
        },
    );
    let created = Callback::new(move |created: Tunnel| {
        tunnel.set(Some(created));
        step.set(Step::Connector);
    });
    let steps = Step::ALL
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let current = move || step.get() == s;
            let past = move || (step.get() as usize) > (s as usize);
            view! {
                <li
                    class:current=current
                    class:past=past
                    aria-current=move || current().then_some("step")
                >
                    <span class="step-number" aria-hidden="true">{i + 1}</span>
                    {s.label()}
                </li>
            }
        })
        .collect_view();
    // Each new step takes the focus on its heading, so keyboard and screen-reader users
    // start reading it where it begins (rather than on the page's body).
    let card = NodeRef::<html::Section>::new();
    Effect::new(move |before: Option<Step>| {
        let now = step.get();
        if before.is_some_and(|b| b != now) {
            focus_in(card.get_untracked().map(Into::into), "h2");
        }
        now
    });
    let body = move || {
        let current = tunnel.get();
        match (step.get(), current) {
            (Step::Name, _) | (_, None) => EitherOf4::A(view! {
                <NameStep taken=taken.signal() on_created=created />
            }),
            (Step::Connector, Some(tunnel)) => EitherOf4::B(view! {
                <ConnectorStep tunnel on_next=Callback::new(move |()| step.set(Step::Route)) />
            }),
            (Step::Route, Some(tunnel)) => EitherOf4::C(view! {
                <RouteStep
                    tunnel
                    zones=zones.clone()
                    on_next=Callback::new(move |()| step.set(Step::Done))
                />
            }),
            (Step::Done, Some(tunnel)) => EitherOf4::D(view! { <DoneStep tunnel /> }),
        }
    };
    view! {
        <header class="page-header">
            <div>
                <p class="breadcrumb"><a href="/tunnels">"Tunnels"</a></p>
                <h1>"Create a tunnel"</h1>
            </div>
        </header>
        <ol class="steps">{steps}</ol>
        <section class="card wizard" node_ref=card>{body}</section>
    }
}

/// Step 1: the name, checked as it is typed; saving creates the tunnel.
#[component]
fn NameStep(taken: Signal<Vec<String>>, on_created: Callback<Tunnel>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    // Nothing is said about an empty field until the user has typed or tried to save.
    let touched = RwSignal::new(false);
    let server_error = RwSignal::new(None::<String>);
    let problem = Memo::new(move |_| name.with(|n| taken.with(|t| name_problem(n.trim(), t))));
    let shown = Signal::derive(move || {
        server_error
            .get()
            .or_else(|| touched.get().then(|| problem.get()).flatten())
    });
    let api = use_api();
    let create = Action::new_local(move |name: &String| {
        let (api, name) = (api.clone(), name.clone());
        async move { api.create_tunnel(&name).await }
    });
    let saving = create.pending();
    Effect::new(move || match create.value().get() {
        None | Some(Err(Error::SessionEnded)) => {}
        Some(Ok(tunnel)) => on_created.run(tunnel),
        Some(Err(e)) => server_error.set(Some(e.message())),
    });
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        if problem.get_untracked().is_some() {
            return;
        }
        create.dispatch_local(name.get_untracked().trim().to_owned());
    };
    view! {
        <form class="name-form" on:submit=submit novalidate>
            <h2 tabindex="-1">"Name your tunnel"</h2>
            <p class="muted">
                "Letters, digits, '.', '_' and '-'; unique in the account. "
                "Its public hostnames are added in step 3."
            </p>
            <div class="field">
                <label>
                    <span>"Tunnel name"</span>
                    <input
                        type="text"
                        placeholder="home-lab"
                        autocomplete="off"
                        aria-invalid=move || shown.with(Option::is_some).then_some("true")
                        prop:value=move || name.get()
                        on:input=move |ev| {
                            server_error.set(None);
                            touched.set(true);
                            name.set(event_target_value(&ev));
                        }
                    />
                </label>
                <FieldError message=shown />
            </div>
            <div class="form-actions">
                <button
                    type="submit"
                    class="button primary"
                    disabled=move || saving.get() || (touched.get() && problem.with(Option::is_some))
                >
                    "Save tunnel"
                </button>
                <a class="button" href="/tunnels">"Cancel"</a>
            </div>
        </form>
    }
}

/// A command per environment with the tunnel's token in it (read, not refreshed: a
/// connector added later uses the same token as those running).
#[component]
pub(crate) fn InstallCommands(tunnel: TunnelId) -> impl IntoView {
    let token = LocalResource::new({
        let api = use_api();
        move || {
            let api = api.clone();
            async move { api.tunnel_token(tunnel).await.ok() }
        }
    });
    let environment = RwSignal::new(Environment::Linux);
    let here = origin();
    let command = Signal::derive(move || match token.get().flatten() {
        None => "Reading the tunnel's token…".to_owned(),
        Some(token) => environment.get().command(&here, &token),
    });
    view! {
        <Tabs
            label="Environment"
            choices=&Environment::ALL
            selected=environment
            name=Environment::label
        />
        <div class="tab-panel" role="tabpanel">
            <p class="muted">{move || environment.get().note()}</p>
            <CopyCommand command what="install command" />
        </div>
    }
}

/// Step 2: a command per environment with the tunnel's token in it, and the connectors
/// as they register; Next once one is connected.
#[component]
fn ConnectorStep(tunnel: Tunnel, on_next: Callback<()>) -> impl IntoView {
    let id = tunnel.id;
    // The new tunnel's connectors, read now and again on each notice about them.
    let connectors = live::follow(
        Vec::<Connector>::new(),
        move |n| n.about(id, &[ChangeKind::Connector, ChangeKind::Connection]),
        move |api: Api| async move { api.connectors(id).await },
    )
    .signal();
    let ready = move || connectors.with(|c| connected(c));
    view! {
        <h2 tabindex="-1">"Install and run a connector for " {tunnel.name}</h2>
        <p class="muted">
            "Choose where the connector runs and paste the command into a terminal there. "
            "The command holds the tunnel's token: keep it secret."
        </p>
        <InstallCommands tunnel=id />
        <h3>"Connectors"</h3>
        <ConnectorTable connectors />
        <div class="form-actions">
            <button
                type="button"
                class="button primary"
                disabled=move || !ready()
                on:click=move |_| on_next.run(())
            >
                "Next"
            </button>
            <span class="muted" aria-live="polite">
                {move || (!ready()).then_some("Waiting for a connector to connect…")}
            </span>
        </div>
    }
}

/// Step 3: a public hostname and a private network, each optional.
#[component]
fn RouteStep(tunnel: Tunnel, zones: Vec<String>, on_next: Callback<()>) -> impl IntoView {
    let configuration = RwSignal::new(None::<TunnelConfiguration>);
    let networks = RwSignal::new(Vec::<IpRoute>::new());
    let hostnames = move || {
        configuration.with(|c| {
            user_rules(c.as_ref().and_then(|c| c.config.as_ref()))
                .iter()
                .map(|rule| {
                    format!(
                        "{}{} → {}",
                        rule.hostname.clone().unwrap_or_default(),
                        rule.path.clone().unwrap_or_default(),
                        rule.service
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let added = move || {
        let mut lines = hostnames();
        lines.extend(networks.with(|n| {
            n.iter()
                .map(|r| format!("{} (private network)", r.network))
                .collect::<Vec<_>>()
        }));
        lines
    };
    // A fresh form after each save, for the next hostname.
    let form_key = RwSignal::new(0u32);
    let initial = HostnameForm::new(&zones);
    let id = tunnel.id;
    view! {
        <h2 tabindex="-1">"Route traffic"</h2>
        <p class="muted">"Both are optional: skip what you do not need."</p>
        <h3>"Public hostname"</h3>
        {move || {
            form_key.track();
            view! {
                <HostnameEditor
                    tunnel=id
                    zones=zones.clone()
                    initial=initial.clone()
                    index=None
                    on_saved=Callback::new(move |saved| {
                        configuration.set(Some(saved));
                        form_key.update(|k| *k += 1);
                    })
                />
            }
        }}
        <h3>"Private network"</h3>
        <NetworkForm tunnel=id on_added=Callback::new(move |route| networks.update(|n| n.push(route))) />
        <Show when=move || !added().is_empty()>
            <h3>"Routed so far"</h3>
            <ul class="added" aria-live="polite">
                {move || added().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
            </ul>
        </Show>
        <div class="form-actions">
            <button type="button" class="button primary" on:click=move |_| on_next.run(())>
                {move || if added().is_empty() { "Skip" } else { "Next" }}
            </button>
        </div>
    }
}

/// Step 4: where to go next.
#[component]
fn DoneStep(tunnel: Tunnel) -> impl IntoView {
    let href = format!("/tunnels/{}", tunnel.id);
    view! {
        <h2 tabindex="-1">"Your tunnel is ready"</h2>
        <p>
            <strong>{tunnel.name.clone()}</strong>
            " is created. Its page shows its status, connectors, routes and traffic."
        </p>
        <div class="form-actions">
            <a class="button primary" href=href>{format!("Go to {}", tunnel.name)}</a>
            <a class="button" href="/tunnels">"Back to Tunnels"</a>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn next_waits_for_an_open_connection() {
        let connector = |connections: usize| -> Connector {
            serde_json::from_value(json!({
                "id": "6f1d7a0e-2b1c-4c8e-9a51-7f0b3d2e4c11",
                "tunnel_id": "7a2e8b1f-3c2d-4d9f-8b62-8a1c4e3f5d22",
                "version": "0.1.0", "arch": "linux_amd64", "hostname": "box",
                "registered_at": "2026-11-25T01:33:07Z",
                "connections": (0..connections).map(|i| json!({
                    "id": format!("8b3f9c2a-4d3e-4eaf-9c73-9b2d5f4a6e3{i}"),
                    "index": i, "edge": "node-a", "opened_at": "2026-11-25T01:33:08Z",
                    "origin_ip": "127.0.0.1"
                })).collect::<Vec<_>>(),
            }))
            .unwrap()
        };
        assert!(!connected(&[]));
        assert!(!connected(&[connector(0)]));
        assert!(connected(&[connector(0), connector(1)]));
    }
}
