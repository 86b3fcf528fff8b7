//! Settings › API tokens (admins only): the account's tokens with their scopes and use;
//! creating one shows the token this once, revoking one asks first.

use adit_core::{
    api::{API_TOKEN_NAME_MAX as NAME_MAX, ApiToken, CreateApiToken, CreatedApiToken},
    identity::{Role, Scope, Scopes},
};
use leptos::{either::Either, ev::SubmitEvent, prelude::*};

use super::{AdminNeeded, SettingsHeader};
use crate::{
    components::{
        confirm::ConfirmButton,
        field_error::{FieldError, invalid, problem_message, retyped},
        moment::Moment,
        secret::OnceSecret,
        table::{Column, DataTable},
        tag::ScopeTag,
    },
    forms::{Problem, SettingsList},
    live,
};

const TOKENS: &str = "/api/v1/tokens";

/// What each scope lets a token do, beside its checkbox.
pub(crate) fn scope_help(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "Read tunnels, routes, connectors and zones",
        Scope::TunnelsWrite => "Create, change and delete tunnels; read their tokens",
        Scope::RoutesWrite => "Add and remove public hostnames and private networks",
        Scope::Admin => "Everything, including users, API tokens and the audit log",
    }
}

/// `scopes` with `scope` ticked (`on`) or not.
pub(crate) fn with_scope(scopes: Scopes, scope: Scope, on: bool) -> Scopes {
    scopes
        .iter()
        .filter(|s| *s != scope)
        .chain(on.then_some(scope))
        .collect()
}

/// The request that creates a token named `name` with the ticked `scopes`, or what is
/// wrong with the form (the server checks the same).
pub(crate) fn token_request(name: &str, scopes: Scopes) -> Result<CreateApiToken, Problem> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Problem::at(
            "name",
            "Give the token a name, such as ci-deploy",
        ));
    }
    if name.chars().count() > NAME_MAX {
        return Err(Problem::at(
            "name",
            format!("A name has at most {NAME_MAX} characters"),
        ));
    }
    if scopes.is_empty() {
        return Err(Problem::at("scopes", "Tick at least one scope"));
    }
    Ok(CreateApiToken {
        name: name.to_owned(),
        scopes,
    })
}

/// The page body: the tokens (`None` when `role` may not see them).
#[component]
pub(crate) fn TokensPage(tokens: Option<Vec<ApiToken>>, role: Role) -> impl IntoView {
    view! {
        <SettingsHeader
            title="API tokens"
            lede="Tokens let scripts and the adit CLI call the API as this account, with only the scopes they were given."
        />
        <p class="notice-line">
            "To give the CLI on your machine a token of its own, run "
            <code>"adit login"</code> " there and approve it on "
            <a href="/device">"Log in a device"</a> "."
        </p>
        {match tokens {
            Some(tokens) => Either::Left(view! { <Tokens tokens /> }),
            None => Either::Right(view! { <AdminNeeded role /> }),
        }}
    }
}

#[component]
fn Tokens(tokens: Vec<ApiToken>) -> impl IntoView {
    let tokens = SettingsList::new(TOKENS, tokens);
    let created = RwSignal::new(None::<CreatedApiToken>);
    view! {
        {move || {
            created.get().map(|c| view! {
                <OnceSecret
                    title=format!("API token “{}” created", c.info.name)
                    value=c.token
                    what="API token"
                    on_done=Callback::new(move |()| created.set(None))
                />
            })
        }}
        <CreateToken tokens created />
        <DataTable
            columns=vec![
                Column::new("Name"),
                Column::new("Scopes"),
                Column::new("Created"),
                Column::new("Last used"),
                Column::new("Status"),
                Column::actions(),
            ]
            empty=Signal::derive(move || tokens.items.with(Vec::is_empty))
            empty_text="No API tokens yet.".to_owned()
        >
            // Keyed by id; a row follows its token (revoked, newly used) and keeps its
            // DOM (and focus) when the list is re-read.
            <For each=move || tokens.items.get() key=|t| t.id let(token)>
                <TokenRow token tokens />
            </For>
        </DataTable>
    }
}

#[component]
fn CreateToken(
    tokens: SettingsList<ApiToken>,
    created: RwSignal<Option<CreatedApiToken>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    // Reading is the least a token can do, and what most scripts need.
    let initial = Scopes::from_iter([Scope::Read]);
    let scopes = RwSignal::new(initial);
    let problem = RwSignal::new(None::<Problem>);
    let create =
        tokens.create_action::<CreateApiToken, CreatedApiToken>(move |answer| match answer {
            Ok(token) => {
                created.set(Some(token));
                name.set(String::new());
                scopes.set(initial);
            }
            Err(e) => problem.set(Some(Problem::from_error(&e, &["name", "scopes"], "name"))),
        });
    let busy = create.pending();
    let ready = live::hydrated();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        match token_request(&name.get_untracked(), scopes.get_untracked()) {
            Ok(body) => {
                problem.set(None);
                create.dispatch_local(body);
            }
            Err(p) => problem.set(Some(p)),
        }
    };
    let boxes = Scope::ALL
        .into_iter()
        .map(|scope| {
            let id = format!("scope-{}", scope.as_str().replace(':', "-"));
            view! {
                <div class="check">
                    <input
                        type="checkbox"
                        id=id.clone()
                        name="scopes"
                        value=scope.as_str()
                        // The attribute for the page before the bundle runs; then the
                        // property follows the signal (reset after each token).
                        checked=initial.iter().any(|s| s == scope)
                        prop:checked=move || scopes.get().iter().any(|s| s == scope)
                        on:change=move |ev| {
                            scopes.update(|s| *s = with_scope(*s, scope, event_target_checked(&ev)));
                        }
                    />
                    <label for=id>
                        <code>{scope.as_str()}</code>
                        <span class="muted">{scope_help(scope)}</span>
                    </label>
                </div>
            }
        })
        .collect_view();
    view! {
        <form class="card settings-form" on:submit=submit novalidate>
            <h2>"Create an API token"</h2>
            <div class="field">
                <label for="token-name">"Name"</label>
                <input
                    id="token-name"
                    name="name"
                    type="text"
                    placeholder="ci-deploy"
                    autocomplete="off"
                    maxlength=NAME_MAX
                    required
                    bind:value=name
                    aria-invalid=invalid(problem, "name")
                    aria-describedby="token-name-error"
                    on:input=retyped(problem, "name")
                />
                <FieldError message=problem_message(problem, Some("name")) id="token-name-error" />
            </div>
            <fieldset class="field" aria-describedby="token-scopes-error">
                <legend>"Scopes"</legend>
                {boxes}
                <FieldError message=problem_message(problem, Some("scopes")) id="token-scopes-error" />
            </fieldset>
            <div class="form-actions">
                <button class="button primary" type="submit" disabled=move || busy.get() || !ready.get()>
                    "Create token"
                </button>
                <FieldError message=problem_message(problem, None) id="token-form-error" />
            </div>
        </form>
    }
}

#[component]
fn TokenRow(token: ApiToken, tokens: SettingsList<ApiToken>) -> impl IntoView {
    let id = token.id;
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let revoke = tokens.remove_action(id, busy, error);
    // The row follows its token in the list (revoked, used since).
    let current = Memo::new(move |_| {
        tokens
            .items
            .with(|all| all.iter().find(|t| t.id == id).cloned())
    });
    move || {
        current
            .get()
            .map(|token| token_cells(token, busy, error, revoke))
    }
}

fn token_cells(
    token: ApiToken,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    revoke: Callback<()>,
) -> impl IntoView + use<> {
    let ApiToken {
        name,
        scopes,
        created_at,
        last_used_at,
        revoked_at,
        ..
    } = token;
    let scope_tags = scopes
        .iter()
        .map(|scope| view! { <ScopeTag scope /> })
        .collect_view();
    let last_used = match last_used_at {
        Some(at) => Either::Left(view! { <Moment at /> }),
        None => Either::Right(view! { <span class="muted">"Never"</span> }),
    };
    let (status, actions) = match revoked_at {
        Some(at) => (
            Either::Left(view! {
                <span class="badge badge-inactive">"Revoked"</span>
                <span class="sub"><Moment at /></span>
            }),
            None,
        ),
        None => (
            Either::Right(view! { <span class="badge badge-healthy">"Active"</span> }),
            Some(view! {
                <ConfirmButton
                    label="Revoke"
                    what=format!("API token {name}")
                    question=format!("Revoke {name}? Anything using it stops working.")
                    busy=busy.into()
                    on_confirm=revoke
                />
            }),
        ),
    };
    view! {
        <tr>
            <th scope="row" class="name">{name}</th>
            <td><span class="tags">{scope_tags}</span></td>
            <td class="created"><Moment at=created_at /></td>
            <td class="created">{last_used}</td>
            <td>{status}</td>
            <td class="row-actions">
                {actions}
                <FieldError message=error />
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticking_and_unticking_scopes() {
        let none = Scopes::default();
        let read = with_scope(none, Scope::Read, true);
        assert_eq!(read, Scopes::from_iter([Scope::Read]));
        let both = with_scope(read, Scope::RoutesWrite, true);
        assert_eq!(both, Scopes::from_iter([Scope::Read, Scope::RoutesWrite]));
        assert_eq!(
            with_scope(both, Scope::RoutesWrite, true),
            both,
            "idempotent"
        );
        assert_eq!(
            with_scope(both, Scope::Read, false),
            Scopes::from_iter([Scope::RoutesWrite])
        );
        assert_eq!(with_scope(none, Scope::Admin, false), none);
    }

    #[test]
    fn the_form_becomes_the_request_body() {
        let scopes = Scopes::from_iter([Scope::Read, Scope::TunnelsWrite]);
        let body = token_request("  ci-deploy ", scopes).unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"name": "ci-deploy", "scopes": ["read", "tunnels:write"]})
        );
        assert_eq!(token_request("", scopes).unwrap_err().field, Some("name"));
        assert_eq!(
            token_request(&"x".repeat(NAME_MAX + 1), scopes)
                .unwrap_err()
                .field,
            Some("name")
        );
        assert!(
            token_request(&"é".repeat(NAME_MAX), scopes).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            token_request("ci", Scopes::default()).unwrap_err().field,
            Some("scopes")
        );
    }

    #[test]
    fn every_scope_is_explained() {
        for scope in Scope::ALL {
            assert!(!scope_help(scope).is_empty());
        }
    }
}
