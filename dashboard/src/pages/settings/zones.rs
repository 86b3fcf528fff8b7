//! Settings › Zones: the domains the account serves. Everyone reads them; admins add one
//! (checked here first, then by the server, whose refusal — an overlap with another zone,
//! say — shows next to the field) and delete one after confirming. Admins also turn a
//! zone's "HTTPS only" on and off, and upload or remove its certificate (the server checks
//! it and names the field at fault; the key is never shown again).

use adit_core::{
    api::{CreateZone, UpdateZone, UploadCertificate, Zone, ZoneCertificate},
    hostname::HostPattern,
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

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
        Column::new("Certificate"),
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
            view! {
                <AddZone zones />
                <UploadZoneCertificate zones />
            }
            .into_any()
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

/// `PUT /api/v1/zones/{zone}/certificate`: a zone's own certificate.
#[component]
fn UploadZoneCertificate(zones: SettingsList<Zone>) -> impl IntoView {
    let zone = RwSignal::new(String::new());
    let certificate = RwSignal::new(String::new());
    let private_key = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let busy = RwSignal::new(false);
    let ready = live::hydrated();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let name = zone.get_untracked().trim().to_ascii_lowercase();
        if name.is_empty() {
            problem.set(Some(Problem::at(
                "zone",
                "Name the zone the certificate is for.",
            )));
            return;
        }
        let body = UploadCertificate {
            certificate: certificate.get_untracked(),
            private_key: private_key.get_untracked(),
        };
        problem.set(None);
        busy.set(true);
        let api = zones.api();
        spawn_local(async move {
            let path = format!("{ZONES}/{name}/certificate");
            let answer = api.send::<ZoneCertificate>("PUT", &path, &body).await;
            busy.set(false);
            match answer {
                Ok(_) => {
                    certificate.set(String::new());
                    private_key.set(String::new());
                    zones.reload();
                }
                Err(crate::Error::SessionEnded) => {}
                Err(e) => problem.set(Some(Problem::from_error(
                    &e,
                    &["certificate", "private_key"],
                    "zone",
                ))),
            }
        });
    };
    view! {
        <form class="card settings-form" on:submit=submit novalidate>
            <h2>"Upload a zone certificate"</h2>
            <p class="muted">
                "Served for the zone's hostnames it covers, before ACME and the server's own CA. It must name the zone or *.zone. The key is stored encrypted and never shown again."
            </p>
            <div class="field">
                <label for="cert-zone">"Zone"</label>
                <input
                    id="cert-zone"
                    name="zone"
                    type="text"
                    placeholder="example.com"
                    autocomplete="off"
                    spellcheck="false"
                    bind:value=zone
                    on:input=retyped(problem, "zone")
                    aria-invalid=invalid(problem, "zone")
                    aria-describedby="cert-zone-error"
                />
                <FieldError message=problem_message(problem, Some("zone")) id="cert-zone-error" />
            </div>
            <div class="field">
                <label for="cert-chain">"Certificate chain (PEM)"</label>
                <textarea
                    id="cert-chain"
                    name="certificate"
                    rows="4"
                    spellcheck="false"
                    bind:value=certificate
                    on:input=retyped(problem, "certificate")
                    aria-invalid=invalid(problem, "certificate")
                    aria-describedby="cert-chain-error"
                ></textarea>
                <FieldError message=problem_message(problem, Some("certificate")) id="cert-chain-error" />
            </div>
            <div class="field">
                <label for="cert-key">"Private key (PEM)"</label>
                <textarea
                    id="cert-key"
                    name="private_key"
                    rows="4"
                    spellcheck="false"
                    autocomplete="off"
                    bind:value=private_key
                    on:input=retyped(problem, "private_key")
                    aria-invalid=invalid(problem, "private_key")
                    aria-describedby="cert-key-error"
                ></textarea>
                <FieldError message=problem_message(problem, Some("private_key")) id="cert-key-error" />
            </div>
            <div class="form-actions">
                <button class="button primary" type="submit" disabled=move || busy.get() || !ready.get()>
                    "Upload certificate"
                </button>
                <FieldError message=problem_message(problem, None) id="cert-form-error" />
            </div>
        </form>
    }
}

/// The certificate cell: what the uploaded one says, or that the zone has none.
fn certificate_summary(certificate: Option<&ZoneCertificate>) -> AnyView {
    match certificate {
        Some(cert) => view! {
            <span class="zone-certificate" title=format!("SHA-256 {}", cert.fingerprint)>
                {cert.names.join(", ")}
                <span class="muted">" · " {cert.issuer.clone()} " · expires "</span>
                <Moment at=cert.not_after />
            </span>
        }
        .into_any(),
        None => view! { <span class="muted">"None (ACME or the server's CA)"</span> }.into_any(),
    }
}

#[component]
fn ZoneRow(zone: Zone, editable: bool, zones: SettingsList<Zone>) -> impl IntoView {
    let Zone {
        id,
        name,
        created_at,
        https_only,
        certificate,
    } = zone;
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let delete = zones.remove_action(id, busy, error);
    let change = move |path: String, method: &'static str, body: Option<UpdateZone>| {
        error.set(None);
        busy.set(true);
        let api = zones.api();
        spawn_local(async move {
            let answer = match body {
                Some(body) => api.send::<Zone>(method, &path, &body).await.map(|_| ()),
                None => api.delete(&path).await,
            };
            busy.set(false);
            match answer {
                Ok(()) => zones.reload(),
                Err(crate::Error::SessionEnded) => {}
                Err(e) => error.set(Some(e.message())),
            }
        });
    };
    let https_cell = if editable {
        let path = format!("{ZONES}/{id}");
        view! {
            <td class="https-only">
                <input
                    type="checkbox"
                    aria-label=format!("HTTPS only for {name}")
                    checked=https_only
                    disabled=move || busy.get()
                    on:change=move |ev| {
                        let body = UpdateZone { https_only: Some(event_target_checked(&ev)) };
                        change(path.clone(), "PATCH", Some(body));
                    }
                />
            </td>
        }
        .into_any()
    } else {
        view! { <td class="https-only">{if https_only { "Yes" } else { "No" }}</td> }.into_any()
    };
    let remove_certificate = (editable && certificate.is_some()).then(|| {
        let path = format!("{ZONES}/{id}/certificate");
        view! {
            <ConfirmButton
                label="Remove"
                what=format!("certificate of {name}")
                question=format!("Remove the certificate of {name}?")
                busy=busy.into()
                on_confirm=Callback::new(move |()| change(path.clone(), "DELETE", None))
            />
        }
    });
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
            <td><CopyId value=id.to_string() what="zone ID" short=true /></td>
            {https_cell}
            <td class="certificate">{certificate_summary(certificate.as_ref())} {remove_certificate}</td>
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
