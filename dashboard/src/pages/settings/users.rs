//! Settings › Users (admins only): who belongs to the account and with which role. Adding
//! a user shows their generated password this once; roles change in place; removing asks
//! first. The server keeps at least one admin and says so when asked otherwise.

use adit_core::{
    api::{CreateUser, CreatedUser, UpdateUser, User},
    identity::{Email, Role},
    ids::UserId,
};
use leptos::{either::Either, ev::SubmitEvent, prelude::*};

use super::{AdminNeeded, SettingsHeader};
use crate::{
    Error,
    components::{
        confirm::ConfirmButton,
        field_error::{FieldError, invalid, problem_message, retyped},
        moment::Moment,
        secret::OnceSecret,
        table::{Column, DataTable},
    },
    forms::{Problem, SettingsList},
    live,
};

const USERS: &str = "/api/v1/users";

/// What each role may do, in the role menus.
pub(crate) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin — everything, including users and tokens",
        Role::Member => "Member — tunnels and routes",
        Role::Viewer => "Viewer — reads only",
    }
}

/// The request that adds `email` with `role` (the server generates the password), or
/// what is wrong with the email.
pub(crate) fn user_request(email: &str, role: Role) -> Result<CreateUser, Problem> {
    let email: Email = email.parse().map_err(|e| match e {
        adit_core::Error::InvalidEmail { reason, .. } => {
            Problem::at("email", format!("Not a valid email address: {reason}"))
        }
        other => Problem::at("email", other.to_string()),
    })?;
    Ok(CreateUser {
        email: email.to_string(),
        role,
        password: None,
    })
}

/// A role menu's options with `initial` selected: the attribute draws the right choice
/// before the bundle runs; then the menu's `prop:value` follows its signal.
fn role_options(initial: Role) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|role| {
            view! {
                <option value=role.as_str() selected=role == initial>{role_label(role)}</option>
            }
        })
        .collect_view()
}

/// The page body: the users (`None` when `role` may not see them); `me` is the viewer.
#[component]
pub(crate) fn UsersPage(users: Option<Vec<User>>, role: Role, me: Option<UserId>) -> impl IntoView {
    view! {
        <SettingsHeader
            title="Users"
            lede="The people who can log in to this account, and what their role lets them do."
        />
        {match users {
            Some(users) => Either::Left(view! { <Users users me /> }),
            None => Either::Right(view! { <AdminNeeded role /> }),
        }}
    }
}

#[component]
fn Users(users: Vec<User>, me: Option<UserId>) -> impl IntoView {
    let users = SettingsList::new(USERS, users);
    let created = RwSignal::new(None::<CreatedUser>);
    view! {
        {move || {
            created.get().and_then(|c| {
                let title = format!("Password for {}", c.user.email);
                c.password.map(|password| view! {
                    <OnceSecret
                        title
                        value=password.expose().to_owned()
                        what="password"
                        on_done=Callback::new(move |()| created.set(None))
                    />
                })
            })
        }}
        <AddUser users created />
        <DataTable
            columns=vec![
                Column::new("Email"),
                Column::new("Role"),
                Column::new("Added"),
                Column::actions(),
            ]
            empty=Signal::derive(move || users.items.with(Vec::is_empty))
            empty_text="No users.".to_owned()
        >
            // Keyed by id: a row keeps its role menu (and focus) across re-reads.
            <For each=move || users.items.get() key=|u| u.id let(user)>
                <UserRow user me users />
            </For>
        </DataTable>
    }
}

#[component]
fn AddUser(users: SettingsList<User>, created: RwSignal<Option<CreatedUser>>) -> impl IntoView {
    let email = RwSignal::new(String::new());
    // The least a new user may need: raising it is a deliberate choice.
    let role = RwSignal::new(Role::Viewer);
    let problem = RwSignal::new(None::<Problem>);
    let add = users.create_action::<CreateUser, CreatedUser>(move |answer| match answer {
        Ok(user) => {
            created.set(Some(user));
            email.set(String::new());
        }
        Err(e) => problem.set(Some(Problem::from_error(&e, &["email", "role"], "email"))),
    });
    let busy = add.pending();
    let ready = live::hydrated();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        match user_request(&email.get_untracked(), role.get_untracked()) {
            Ok(body) => {
                problem.set(None);
                add.dispatch_local(body);
            }
            Err(p) => problem.set(Some(p)),
        }
    };
    view! {
        <form class="card settings-form" on:submit=submit novalidate>
            <h2>"Add a user"</h2>
            <div class="field-row">
                <div class="field">
                    <label for="user-email">"Email"</label>
                    <input
                        id="user-email"
                        name="email"
                        type="email"
                        placeholder="name@example.com"
                        autocomplete="off"
                        required
                        bind:value=email
                        aria-invalid=invalid(problem, "email")
                        aria-describedby="user-email-error"
                    on:input=retyped(problem, "email")
                    />
                    <FieldError message=problem_message(problem, Some("email")) id="user-email-error" />
                </div>
                <div class="field">
                    <label for="user-role">"Role"</label>
                    <select
                        id="user-role"
                        name="role"
                        prop:value=move || role.get().as_str()
                        on:change=move |ev| {
                            if let Ok(r) = event_target_value(&ev).parse() {
                                role.set(r);
                            }
                        }
                        aria-describedby="user-role-error"
                    >
                        {role_options(role.get_untracked())}
                    </select>
                    <FieldError message=problem_message(problem, Some("role")) id="user-role-error" />
                </div>
            </div>
            <div class="form-actions">
                <button class="button primary" type="submit" disabled=move || busy.get() || !ready.get()>
                    "Add user"
                </button>
                <FieldError message=problem_message(problem, None) id="user-form-error" />
            </div>
        </form>
    }
}

#[component]
fn UserRow(user: User, me: Option<UserId>, users: SettingsList<User>) -> impl IntoView {
    let User {
        id,
        email,
        role: stored,
        created_at,
    } = user;
    // What the menu shows: changed at once, put back if the server refuses.
    let role = RwSignal::new(stored);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // The role as the server has it, and the one it was asked for.
    let change_role = Action::new_local(move |wanted: &Role| {
        let (api, body) = (users.api(), UpdateUser { role: *wanted });
        async move { api.update::<User>(USERS, id, &body).await }
    });
    let before = StoredValue::new(stored);
    Effect::new(move || match change_role.value().get() {
        None => {}
        Some(Ok(user)) => before.set_value(user.role),
        Some(Err(e)) => {
            role.set(before.get_value());
            if e != Error::SessionEnded {
                error.set(Some(e.message()));
            }
        }
    });
    let change = move |ev| {
        let Ok(wanted) = event_target_value(&ev).parse::<Role>() else {
            return;
        };
        role.set(wanted);
        error.set(None);
        change_role.dispatch_local(wanted);
    };
    let remove = users.remove_action(id, busy, error);
    let error_id = format!("user-{id}-error");
    let you = (me == Some(id)).then(|| view! { <span class="tag">"you"</span> });
    view! {
        <tr>
            <th scope="row" class="name">{email.to_string()} " " {you}</th>
            <td>
                <select
                    class="role-select"
                    aria-label=format!("Role of {email}")
                    aria-describedby=error_id.clone()
                    prop:value=move || role.get().as_str()
                    disabled=move || busy.get() || change_role.pending().get()
                    on:change=change
                >
                    {role_options(stored)}
                </select>
            </td>
            <td class="created"><Moment at=created_at /></td>
            <td class="row-actions">
                <ConfirmButton
                    label="Remove"
                    what=format!("user {email}")
                    question=format!("Remove {email} from the account?")
                    busy=busy.into()
                    on_confirm=remove
                />
            </td>
        </tr>
        <tr class="row-error" hidden=move || error.with(Option::is_none)>
            <td colspan="4">
                <p id=error_id class="field-error" role="alert">{move || error.get()}</p>
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_request_body() {
        let body = user_request(" Grace@Example.com ", Role::Viewer).unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"email": "grace@example.com", "role": "viewer", "password": null})
        );
        for bad in ["", "grace", "grace@", "a b@example.com"] {
            let problem = user_request(bad, Role::Member).unwrap_err();
            assert_eq!(problem.field, Some("email"), "{bad}");
            assert!(problem.message.starts_with("Not a valid email"), "{bad}");
        }
    }

    #[test]
    fn every_role_is_explained() {
        for role in Role::ALL {
            assert!(role_label(role).starts_with(&role.as_str()[..1].to_uppercase()));
        }
    }
}
