//! The log-in page: a plain form, so it works before (and without) any script.

use leptos::prelude::*;

/// Email and password, posted to `/login`; `error` is the last attempt's answer and
/// `email` what was typed, kept so only the password must be typed again; `next` is the
/// page to return to afterwards (the server accepts only its own paths).
#[component]
pub(crate) fn LoginPage(error: Option<String>, email: String, next: String) -> impl IntoView {
    view! {
        <section class="login">
            <div class="login-card">
                <h1 class="login-title">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Log in to Adit"
                </h1>
                <form method="post" action="/login">
                    {(!next.is_empty()).then(|| view! { <input type="hidden" name="next" value=next /> })}
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required value=email />
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required />
                    {error.map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
                    <button class="button primary" type="submit">"Log in"</button>
                </form>
            </div>
        </section>
    }
}
