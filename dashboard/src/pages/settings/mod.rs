//! The Settings pages: the account's zones, API tokens, users and audit log. Each is drawn
//! on the server with its data; in the browser its forms call the REST API and re-read
//! the list they changed.

pub(crate) mod audit;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod zones;

use adit_core::identity::Role;
use leptos::prelude::*;

use crate::components::tag::RoleTag;

/// A settings page's title and what it is for.
#[component]
fn SettingsHeader(title: &'static str, lede: &'static str) -> impl IntoView {
    view! {
        <header class="page-header">
            <div>
                <h1>{title}</h1>
                <p class="lede">{lede}</p>
            </div>
        </header>
    }
}

/// In place of a page only admins may use: what is needed, rather than an error.
#[component]
fn AdminNeeded(role: Role) -> impl IntoView {
    view! {
        <section class="empty notice">
            <h2>"An admin role is needed"</h2>
            <p>
                "Your role in this account is " <RoleTag role />
                ". Ask an admin of the account if you need to see this page."
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests;
