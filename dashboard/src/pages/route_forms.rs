//! The forms that route traffic to a tunnel, shared by the wizard's last step and the
//! tunnel page: a public hostname (an ingress rule of a remotely managed tunnel) and a
//! private network (a CIDR).

use adit_core::{
    api::{CreateIpRoute, IpRoute, TunnelConfiguration},
    ids::TunnelId,
    ingress::{IngressConfig, RawIngressRule},
};
use leptos::{ev::SubmitEvent, prelude::*};

use super::routing::{
    Field, HostnameForm, ServiceType, error_field, put_rule, rule_problem, user_rules,
};
use crate::{
    Error,
    api::{Api, use_api},
    components::field_error::FieldError,
};

/// Why a change of the configuration was not saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The edit itself was refused (the form's own check), before anything was sent.
    Form(Field, String),
    /// The server refused, or could not be asked; `rule` is the index of the edited rule
    /// in what was sent, to place the server's complaint.
    Call { error: Error, rule: usize },
}

/// Reads the tunnel's configuration afresh (another tab may have changed it), applies
/// `edit` (which may refuse) and writes the result back: the new version, or why not.
pub(crate) async fn change_configuration(
    api: &Api,
    tunnel: TunnelId,
    edit: impl FnOnce(Option<&IngressConfig>) -> Result<(IngressConfig, usize), (Field, String)>,
) -> Result<TunnelConfiguration, Refused> {
    let current = api
        .configuration(tunnel)
        .await
        .map_err(|error| Refused::Call { error, rule: 0 })?;
    let (config, rule) =
        edit(current.config.as_ref()).map_err(|(field, message)| Refused::Form(field, message))?;
    api.put_configuration(tunnel, &config)
        .await
        .map_err(|error| Refused::Call { error, rule })
}

/// Saves `rule` at `index` of the tunnel's rules (a new rule when `None`).
async fn save_rule(
    api: Api,
    tunnel: TunnelId,
    index: Option<usize>,
    rule: RawIngressRule,
) -> Result<TunnelConfiguration, Refused> {
    change_configuration(&api, tunnel, move |config| {
        let at = index.unwrap_or_else(|| user_rules(config).len());
        put_rule(config, index, rule).map(|config| (config, at))
    })
    .await
}

/// A problem to show next to one input of the hostname form.
type FieldProblem = Option<(Field, String)>;

/// The message for `field`, if the problem is about it.
fn problem_at(problem: RwSignal<FieldProblem>, field: Field) -> impl Fn() -> Option<String> {
    move || {
        problem.with(|p| {
            p.as_ref()
                .filter(|(at, _)| *at == field)
                .map(|(_, message)| message.clone())
        })
    }
}

/// The public hostname form: subdomain, domain (one of the account's `zones`), path and
/// service, with the origin settings folded away. Saving puts the rule at `index` of the
/// tunnel's rules (a new rule when `None`) and hands the new configuration to `on_saved`.
#[component]
pub(crate) fn HostnameEditor(
    tunnel: TunnelId,
    zones: Vec<String>,
    initial: HostnameForm,
    index: Option<usize>,
    on_saved: Callback<TunnelConfiguration>,
    #[prop(optional)] on_cancel: Option<Callback<()>>,
) -> impl IntoView {
    let form = RwSignal::new(initial);
    let problem = RwSignal::new(FieldProblem::None);
    let general = RwSignal::new(None::<String>);
    let api = use_api();
    let save = Action::new_local(move |rule: &RawIngressRule| {
        save_rule(api.clone(), tunnel, index, rule.clone())
    });
    let saving = save.pending();
    Effect::new(move || match save.value().get() {
        None => {}
        Some(Ok(saved)) => on_saved.run(saved),
        Some(Err(Refused::Form(field, message))) => problem.set(Some((field, message))),
        Some(Err(Refused::Call {
            error: Error::SessionEnded,
            ..
        })) => {}
        Some(Err(Refused::Call { error, rule })) => {
            let message = error.message();
            match error_field(error.field(), &message) {
                Some((i, field, short)) if i == rule => problem.set(Some((field, short))),
                _ => general.set(Some(message)),
            }
        }
    });
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        general.set(None);
        // What is plainly wrong is said at once, in words, next to its field.
        let rule = match form.with_untracked(HostnameForm::to_rule) {
            Ok(rule) => rule,
            Err(problem_here) => return problem.set(Some(problem_here)),
        };
        if let Some(problem_here) = rule_problem(&rule) {
            return problem.set(Some(problem_here));
        }
        problem.set(None);
        save.dispatch_local(rule);
    };
    let domains = zones
        .into_iter()
        .map(|zone| {
            let label = zone.clone();
            view! { <option value=zone>{label}</option> }
        })
        .collect_view();
    let kinds = ServiceType::ALL
        .into_iter()
        .map(|kind| view! { <option value=kind.label()>{kind.label()}</option> })
        .collect_view();
    let kind = move || form.with(|f| f.kind.unwrap_or(ServiceType::Http));
    let text = move |get: fn(&HostnameForm) -> &String| move || form.with(|f| get(f).clone());
    let cancel = on_cancel.map(|cancel| {
        view! {
            <button type="button" class="button" on:click=move |_| cancel.run(())>"Cancel"</button>
        }
    });
    view! {
        <form class="route-form" on:submit=submit novalidate>
            <div class="field-row">
                <div class="field">
                    <label>
                        <span>"Subdomain"</span>
                        <input
                            type="text"
                            placeholder="app"
                            autocomplete="off"
                            prop:value=text(|f| &f.subdomain)
                            on:input=move |ev| form.update(|f| f.subdomain = event_target_value(&ev))
                        />
                    </label>
                </div>
                <div class="field">
                    <label>
                        <span>"Domain"</span>
                        <select
                            prop:value=text(|f| &f.domain)
                            on:change=move |ev| form.update(|f| f.domain = event_target_value(&ev))
                        >
                            {domains}
                        </select>
                    </label>
                    <FieldError message=Signal::derive(problem_at(problem, Field::Hostname)) />
                </div>
                <div class="field">
                    <label>
                        <span>"Path (optional)"</span>
                        <input
                            type="text"
                            placeholder="^/blog"
                            autocomplete="off"
                            prop:value=text(|f| &f.path)
                            on:input=move |ev| form.update(|f| f.path = event_target_value(&ev))
                        />
                    </label>
                    <FieldError message=Signal::derive(problem_at(problem, Field::Path)) />
                </div>
            </div>
            <div class="field-row">
                <div class="field narrow">
                    <label>
                        <span>"Service type"</span>
                        <select
                            prop:value=move || kind().label()
                            on:change=move |ev| {
                                let chosen = ServiceType::from_label(&event_target_value(&ev));
                                form.update(|f| f.kind = Some(chosen));
                            }
                        >
                            {kinds}
                        </select>
                    </label>
                </div>
                <div class="field wide">
                    <label>
                        <span>"URL"</span>
                        <input
                            type="text"
                            autocomplete="off"
                            placeholder=move || kind().placeholder()
                            prop:value=text(|f| &f.url)
                            on:input=move |ev| form.update(|f| f.url = event_target_value(&ev))
                        />
                    </label>
                    <FieldError message=Signal::derive(problem_at(problem, Field::Service)) />
                </div>
            </div>
            <details class="origin-settings">
                <summary>"Additional origin settings"</summary>
                <div class="field-row">
                    <div class="field">
                        <label>
                            <span>"HTTP Host header"</span>
                            <input
                                type="text"
                                autocomplete="off"
                                prop:value=text(|f| &f.http_host_header)
                                on:input=move |ev| {
                                    form.update(|f| f.http_host_header = event_target_value(&ev))
                                }
                            />
                        </label>
                    </div>
                    <div class="field">
                        <label>
                            <span>"Connect timeout"</span>
                            <input
                                type="text"
                                placeholder="30s"
                                autocomplete="off"
                                prop:value=text(|f| &f.connect_timeout)
                                on:input=move |ev| {
                                    form.update(|f| f.connect_timeout = event_target_value(&ev))
                                }
                            />
                        </label>
                        <FieldError message=Signal::derive(problem_at(problem, Field::Origin)) />
                    </div>
                    <div class="field check">
                        <label>
                            <input
                                type="checkbox"
                                prop:checked=move || form.with(|f| f.no_tls_verify)
                                on:change=move |ev| {
                                    form.update(|f| f.no_tls_verify = event_target_checked(&ev))
                                }
                            />
                            <span>"No TLS verify"</span>
                        </label>
                    </div>
                </div>
            </details>
            <FieldError message=general />
            <div class="form-actions">
                <button type="submit" class="button primary" disabled=move || saving.get()>
                    "Save hostname"
                </button>
                {cancel}
            </div>
        </form>
    }
}

/// Adds a private network (CIDR) routed to `tunnel`; `on_added` gets the new route.
#[component]
pub(crate) fn NetworkForm(tunnel: TunnelId, on_added: Callback<IpRoute>) -> impl IntoView {
    let network = RwSignal::new(String::new());
    let comment = RwSignal::new(String::new());
    let network_error = RwSignal::new(None::<String>);
    let general = RwSignal::new(None::<String>);
    let api = use_api();
    let add = Action::new_local(move |route: &CreateIpRoute| {
        let (api, route) = (api.clone(), route.clone());
        async move { api.add_ip_route(&route).await }
    });
    let saving = add.pending();
    Effect::new(move || match add.value().get() {
        None | Some(Err(Error::SessionEnded)) => {}
        Some(Ok(route)) => {
            network.set(String::new());
            comment.set(String::new());
            on_added.run(route);
        }
        Some(Err(e)) if e.field() == Some("network") => network_error.set(Some(e.message())),
        Some(Err(e)) => general.set(Some(e.message())),
    });
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        network_error.set(None);
        general.set(None);
        let typed = network.get_untracked().trim().to_owned();
        if typed.is_empty() {
            network_error.set(Some("Enter a network, e.g. 10.0.0.0/24".to_owned()));
            return;
        }
        add.dispatch_local(CreateIpRoute {
            tunnel: tunnel.to_string(),
            network: typed,
            comment: comment.get_untracked().trim().to_owned(),
        });
    };
    view! {
        <form class="route-form" on:submit=submit novalidate>
            <div class="field-row">
                <div class="field">
                    <label>
                        <span>"CIDR"</span>
                        <input
                            type="text"
                            placeholder="10.0.0.0/24"
                            autocomplete="off"
                            bind:value=network
                        />
                    </label>
                    <FieldError message=network_error />
                </div>
                <div class="field wide">
                    <label>
                        <span>"Comment (optional)"</span>
                        <input type="text" autocomplete="off" bind:value=comment />
                    </label>
                </div>
            </div>
            <FieldError message=general />
            <div class="form-actions">
                <button type="submit" class="button primary" disabled=move || saving.get()>
                    "Add network"
                </button>
            </div>
        </form>
    }
}
