//! The page that approves an `adit login`: the CLI printed a URL and a code; the logged-in
//! user checks the code and who asks, then approves or denies. Plain forms, so it works
//! before (and without) any script.

use adit_core::time::Timestamp;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the device page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceView {
    /// Asks for the code the CLI printed; `error` says why the last one was not accepted.
    Enter { code: String, error: Option<String> },
    /// A pending login, waiting for this user's decision.
    Confirm {
        user_code: String,
        client: String,
        source_ip: String,
        requested_at: Timestamp,
        expires_in_minutes: u64,
    },
    /// The user decided.
    Decided { approved: bool },
}

#[component]
pub(crate) fn DevicePage(view: DeviceView, account: String, csrf_token: String) -> impl IntoView {
    let body = match view {
        DeviceView::Enter { code, error } => view! {
            <p>"Enter the code that " <code>"adit login"</code> " printed in your terminal."</p>
            <form method="get" action="/device">
                <label for="code">"Code"</label>
                <input id="code" name="code" autocomplete="off" autocapitalize="characters"
                    spellcheck="false" placeholder="XXXX-XXXX" required value=code
                    aria-invalid=error.is_some().then_some("true") aria-describedby="code-error" />
                {error.map(|e| view! { <p id="code-error" class="field-error" role="alert">{e}</p> })}
                <button class="button primary" type="submit">"Continue"</button>
            </form>
        }
        .into_any(),
        DeviceView::Confirm { user_code, client, source_ip, requested_at, expires_in_minutes } => {
            let (deny_code, deny_csrf) = (user_code.clone(), csrf_token.clone());
            let requested_at = requested_at.to_string();
            let shown_at = requested_at.clone();
            view! {
                <p>
                    <strong>{client}</strong> " asks to act as you in the account "
                    <strong>{account}</strong> ", with the rights of your role."
                </p>
                <p class="device-code" aria-label="Code">{user_code.clone()}</p>
                <p class="muted">
                    "Approve only if your terminal shows this same code. Requested from "
                    {source_ip} " at " <time datetime=requested_at>{shown_at}</time>
                    "; expires in " {expires_in_minutes} " min."
                </p>
                <div class="device-actions">
                    <form method="post" action="/device">
                        <input type="hidden" name="csrf_token" value=csrf_token />
                        <input type="hidden" name="code" value=user_code />
                        <input type="hidden" name="decision" value="approve" />
                        <button class="button primary" type="submit">"Approve"</button>
                    </form>
                    <form method="post" action="/device">
                        <input type="hidden" name="csrf_token" value=deny_csrf />
                        <input type="hidden" name="code" value=deny_code />
                        <input type="hidden" name="decision" value="deny" />
                        <button class="button" type="submit">"Deny"</button>
                    </form>
                </div>
            }
            .into_any()
        }
        DeviceView::Decided { approved: true } => view! {
            <p role="status">
                "Approved. " <code>"adit login"</code>
                " now receives its API token; you can close this page and return to your terminal."
            </p>
        }
        .into_any(),
        DeviceView::Decided { approved: false } => view! {
            <p role="status">"Denied. The command-line client gets no access."</p>
        }
        .into_any(),
    };
    view! {
        <section class="login">
            <div class="login-card">
                <h1 class="login-title">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Log in a device"
                </h1>
                {body}
            </div>
        </section>
    }
}
