//! The document frame: `<html>`, `<head>` with the embedded stylesheet, the side
//! navigation and the main content area.

use leptos::prelude::*;

/// The dashboard's stylesheet. Embedded in every page for now; a later build step can serve
/// the same file as `/pkg/dash.css` instead.
pub(crate) const STYLESHEET: &str = include_str!("../../style/main.css");

/// One entry of the side navigation.
struct NavItem {
    label: &'static str,
    href: &'static str,
}

/// The navigation, grouped as in the Zero Trust dashboard. Only pages that exist are listed.
const NAV: &[(&str, &[NavItem])] = &[(
    "Networks",
    &[NavItem {
        label: "Tunnels",
        href: "/tunnels",
    }],
)];

/// Who is logged in, for the navigation's footer: the email and the CSRF token the
/// log-out form must carry.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) email: String,
    pub(crate) account: String,
    pub(crate) csrf_token: String,
}

/// The whole document around a page: `title` is the page's name, also used to mark the
/// active navigation entry. Without a `viewer` (the log-in page) there is no navigation.
#[component]
pub(crate) fn Shell(
    title: &'static str,
    viewer: Option<Viewer>,
    children: Children,
) -> impl IntoView {
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <title>{format!("{title} · Adit")}</title>
                <style inner_html=STYLESHEET></style>
            </head>
            <body>
                {match viewer {
                    Some(viewer) => view! {
                        <div class="layout">
                            <SideNav active=title viewer />
                            <main class="content">{children()}</main>
                        </div>
                    }
                    .into_any(),
                    None => view! { <main>{children()}</main> }.into_any(),
                }}
            </body>
        </html>
    }
}

/// The left-hand navigation; the entry labelled `active` is highlighted.
#[component]
fn SideNav(active: &'static str, viewer: Viewer) -> impl IntoView {
    let groups = NAV
        .iter()
        .map(|(heading, items)| {
            let links = items
                .iter()
                .map(|item| {
                    let is_active = item.label == active;
                    view! {
                        <li>
                            <a
                                href=item.href
                                class:active=is_active
                                aria-current=is_active.then_some("page")
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
    view! {
        <nav class="sidenav" aria-label="Main">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true"></span>
                "Adit"
            </a>
            {groups}
            <form class="nav-user" method="post" action="/logout">
                <span class="nav-email" title=viewer.account.clone()>{viewer.email}</span>
                <input type="hidden" name="csrf_token" value=viewer.csrf_token />
                <button class="button link" type="submit">"Log out"</button>
            </form>
        </nav>
    }
}
