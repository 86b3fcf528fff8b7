//! Settings › Zones: the domains the account serves. Everyone reads them; admins add one
//! (checked here first, then by the server, whose refusal — an overlap with another zone,
//! say — shows next to the field) and delete one after confirming.

use adit_core::{
    api::{CreateZone, Zone},
    hostname::HostPattern,
};
use leptos::{ev::SubmitEvent, prelude::*};

use super::SettingsHeader;
use crate::{
    components::{
        confirm::ConfirmButton,
        copy_id::CopyId,
        field_error::{FieldError, invalid, problem_message, retyped},
        moment::Moment,
        table::{Column, DataTable},
    },
    forms::{Problem, SettingsList},
    live,
};

const ZONES: &str = "/api/v1/zones";

/// The request that adds `name`, or what is wrong with it (as the server would say): a
/// zone is a domain such as `example.com` (no wildcard), stored lowercase without a
/// trailing dot.
pub(crate) fn zone_request(name: &str) -> Result<CreateZone, Problem> {
    let zone = HostPattern::parse_zone(name).map_err(|e| Problem::at("name", reason(&e)))?;
    Ok(CreateZone {
        name: zone.to_string(),
    })
}

/// The reason alone: the field already shows the name.
fn reason(error: &adit_core::Error) -> String {
    match error {
        adit_core::Error::InvalidHostname { reason, .. } => {
            format!("Not a valid domain: {reason}")
        }
        other => other.to_string(),
    }
}

/// The page body; `editable` for admins, who may add and delete.
#[component]
pub(crate) fn ZonesPage(zones: Vec<Zone>, editable: bool) -> impl IntoView {
    let zones = SettingsList::new(ZONES, zones);
    let mut columns = vec![
        Column::new("Zone"),
        Column::new("Zone ID"),
        Column::new("HTTPS only"),
        Column::new("Added"),
    ];
    if editable {
        columns.push(Column::actions());
    }
    view! {
        <SettingsHeader
            title="Zones"
            lede="The domains this account serves: a public hostname can be routed to a tunnel only inside one of its zones."
        />
        {if editable {
            view! { <AddZone zones /> }.into_any()
        } else {
            view! {
                <p class="notice-line">"You can see the zones; only an admin adds or deletes them."</p>
            }
            .into_any()
        }}
        <DataTable
            columns
            empty=Signal::derive(move || zones.items.with(Vec::is_empty))
            empty_text="No zones yet: routes need one. Add the domain you will serve, such as example.com."
                .to_owned()
        >
            <For each=move || zones.items.get() key=|zone| zone.id let(zone)>
                <ZoneRow zone editable zones />
            </For>
        </DataTable>
    }
}

#[component]
fn AddZone(zones: SettingsList<Zone>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let add = zones.create_action::<CreateZone, Zone>(move |answer| match answer {
        Ok(_) => name.set(String::new()),
        Err(e) => problem.set(Some(Problem::from_error(&e, &["name"], "name"))),
    });
    let busy = add.pending();
    let ready = live::hydrated();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        match zone_request(&name.get_untracked()) {
            Ok(body) => {
                problem.set(None);
                add.dispatch_local(body);
            }
            Err(p) => problem.set(Some(p)),
        }
    };
    view! {
        <form class="card settings-form" on:submit=submit novalidate>
            <h2>"Add a zone"</h2>
            <div class="field">
                <label for="zone-name">"Domain"</label>
                <input
                    id="zone-name"
                    name="name"
                    type="text"
                    placeholder="example.com"
                    autocomplete="off"
                    spellcheck="false"
                    required
                    bind:value=name
                    on:input=retyped(problem, "name")
                    aria-invalid=invalid(problem, "name")
                    aria-describedby="zone-name-error"
                />
                <FieldError message=problem_message(problem, Some("name")) id="zone-name-error" />
            </div>
            <div class="form-actions">
                <button class="button primary" type="submit" disabled=move || busy.get() || !ready.get()>
                    "Add zone"
                </button>
                <FieldError message=problem_message(problem, None) id="zone-form-error" />
            </div>
        </form>
    }
}

#[component]
fn ZoneRow(zone: Zone, editable: bool, zones: SettingsList<Zone>) -> impl IntoView {
    let Zone {
        id,
        name,
        created_at,
        https_only,
    } = zone;
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let delete = zones.remove_action(id, busy, error);
    let actions = editable.then(|| {
        view! {
            <td class="row-actions">
                <ConfirmButton
                    label="Delete"
                    what=format!("zone {name}")
                    question=format!("Delete {name}?")
                    busy=busy.into()
                    on_confirm=delete
                />
                <FieldError message=error />
            </td>
        }
    });
    view! {
        <tr>
            <th scope="row" class="name">{name.clone()}</th>
            <td><CopyId value=id.to_string() what="zone ID" /></td>
            <td class="https-only">{if https_only { "Yes" } else { "No" }}</td>
            <td class="created"><Moment at=created_at /></td>
            {actions}
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_is_a_plain_domain_normalised() {
        assert_eq!(
            zone_request(" Example.COM. ").map(|z| z.name),
            Ok("example.com".to_owned())
        );
        assert_eq!(
            zone_request("lab.example.org").map(|z| z.name),
            Ok("lab.example.org".to_owned())
        );
        for (bad, says) in [
            ("", "empty"),
            ("*.example.com", "not a wildcard"),
            ("example.com:443", "port"),
            ("bad name.com", "only letters"),
            ("a..b", "empty label"),
        ] {
            let problem = zone_request(bad).unwrap_err();
            assert_eq!(problem.field, Some("name"), "{bad}");
            assert!(problem.message.contains(says), "{bad}: {}", problem.message);
        }
    }
}
