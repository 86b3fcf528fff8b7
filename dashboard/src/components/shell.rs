//! The frame of every page: the side navigation and the main content area.

use adit_core::{api::Session, identity::Role};
use leptos::prelude::*;

/// One entry of the side navigation.
struct NavItem {
    label: &'static str,
    href: &'static str,
    /// Only admins may use the page: others see the entry marked (the page explains).
    admin_only: bool,
}

impl NavItem {
    const fn new(label: &'static str, href: &'static str) -> Self {
        Self {
            label,
            href,
            admin_only: false,
        }
    }

    const fn admin(label: &'static str, href: &'static str) -> Self {
        Self {
            label,
            href,
            admin_only: true,
        }
    }
}

/// The navigation, grouped as in the Zero Trust dashboard. Only pages that exist are listed.
const NAV: &[(&str, &[NavItem])] = &[
    ("Networks", &[NavItem::new("Tunnels", "/tunnels")]),
    (
        "Settings",
        &[
            NavItem::new("Zones", "/settings/zones"),
            NavItem::admin("API tokens", "/settings/tokens"),
            NavItem::admin("Users", "/settings/users"),
            NavItem::admin("Audit log", "/settings/audit"),
            NavItem::new("Nodes", "/settings/nodes"),
            NavItem::new("Log in a device", "/device"),
        ],
    ),
];

/// The body of a page: `title` is the page's name, which marks the active navigation
/// entry. Without a `session` (the log-in page) there is no navigation.
#[component]
pub(crate) fn Layout(
    title: &'static str,
    session: Option<Session>,
    children: Children,
) -> impl IntoView {
    match session {
        Some(session) => view! {
            <div class="layout">
                <SideNav active=title session />
                <main class="content">{children()}</main>
            </div>
        }
        .into_any(),
        None => view! { <main>{children()}</main> }.into_any(),
    }
}

/// The left-hand navigation; the entry labelled `active` is highlighted. At its foot: who
/// is logged in, and the log-out form with the session's CSRF token (a plain form, so it
/// works before and without the bundle).
#[component]
fn SideNav(active: &'static str, session: Session) -> impl IntoView {
    let admin = session.role == Role::Admin;
    let groups = NAV
        .iter()
        .map(|(heading, items)| {
            let links = items
                .iter()
                .map(|item| {
                    let is_active = item.label == active;
                    // Marked in attributes (the stylesheet draws an "Admin" tag from
                    // `data-needs`), so an unmarked entry has no placeholder in it.
                    let needs_admin = item.admin_only && !admin;
                    view! {
                        <li>
                            <a
                                href=item.href
                                class:active=is_active
                                aria-current=is_active.then_some("page")
                                data-needs=needs_admin.then_some("admin")
                                title=needs_admin.then_some("Needs the admin role")
                            >
                                {item.label}
                            </a>
                        </li>
                    }
                })
                .collect_view();
            view! {
                <div class="nav-group">
                    <h2 class="nav-heading">{*heading}</h2>
                    <ul>{links}</ul>
                </div>
            }
        })
        .collect_view();
    let Session {
        email,
        account,
        csrf_token,
        ..
    } = session;
    view! {
        <nav class="sidenav" aria-label="Main">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true"></span>
                "Adit"
            </a>
            {groups}
            <form class="nav-user" method="post" action="/logout">
                <span class="nav-email" title=account>{email.to_string()}</span>
                <input type="hidden" name="csrf_token" value=csrf_token />
                <button class="button link" type="submit">"Log out"</button>
            </form>
        </nav>
    }
}
