//! The Settings pages: the account's zones, API tokens, users and audit log, and the
//! deployment's nodes. Each is drawn
//! on the server with its data; in the browser its forms call the REST API and re-read
//! the list they changed.

pub(crate) mod audit;
pub(crate) mod nodes;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod zones;

use adit_core::{
    api::{ApiToken, AuditEntry, Node, User, Zone},
    identity::Role,
    ids::UserId,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use self::{
    audit::AuditPage, nodes::NodesPage, tokens::TokensPage, users::UsersPage, zones::ZonesPage,
};
use crate::components::tag::RoleTag;

/// Which Settings page, with its data; the JSON names it in the field `section`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "section", rename_all = "snake_case")]
pub enum SettingsPage {
    /// The account's zones: everyone reads them, admins change them.
    Zones {
        zones: Vec<Zone>,
    },
    /// The admin-only lists are `None` for other roles, whose page says that an admin
    /// role is needed.
    Tokens {
        tokens: Option<Vec<ApiToken>>,
    },
    Users {
        users: Option<Vec<User>>,
    },
    /// The newest audit entries first.
    Audit {
        entries: Option<Vec<AuditEntry>>,
    },
    /// The deployment's nodes, by name: everyone reads them.
    Nodes {
        nodes: Vec<Node>,
    },
}

impl SettingsPage {
    /// The page's name: the document title and the active navigation entry.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Zones { .. } => "Zones",
            Self::Tokens { .. } => "API tokens",
            Self::Users { .. } => "Users",
            Self::Audit { .. } => "Audit log",
            Self::Nodes { .. } => "Nodes",
        }
    }
}

/// The page body for the viewer's `role`; `me` is the viewer (marked in the Users list).
#[component]
pub(crate) fn Settings(page: SettingsPage, role: Role, me: Option<UserId>) -> impl IntoView {
    match page {
        SettingsPage::Zones { zones } => {
            view! { <ZonesPage zones editable=role == Role::Admin /> }.into_any()
        }
        SettingsPage::Tokens { tokens } => view! { <TokensPage tokens role /> }.into_any(),
        SettingsPage::Users { users } => view! { <UsersPage users role me /> }.into_any(),
        SettingsPage::Audit { entries } => view! { <AuditPage entries role /> }.into_any(),
        SettingsPage::Nodes { nodes } => view! { <NodesPage nodes /> }.into_any(),
    }
}

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
