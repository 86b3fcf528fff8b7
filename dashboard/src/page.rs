//! The data each page is drawn from, and the root component that draws it. The server
//! renders [`App`] into the document and writes the same [`PageData`] into it as JSON; the
//! browser bundle reads that JSON back and hydrates the identical view.

use adit_core::{
    api::{ApiToken, AuditEntry, Session, Tunnel, User, Zone},
    identity::Role,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    components::shell::Layout,
    pages::{
        device::{DevicePage, DeviceView},
        login::LoginPage,
        settings::{audit::AuditPage, tokens::TokensPage, users::UsersPage, zones::ZonesPage},
        tunnels::TunnelsPage,
    },
};

/// The `id` of the `<script type="application/json">` element holding the [`PageData`].
pub const PAGE_DATA_ID: &str = "adit-page";

/// Everything a page is drawn from, the same on the server and in the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageData {
    /// Who is logged in (`None` on the log-in page): the navigation shows them, and API
    /// calls that change state carry their CSRF token.
    pub session: Option<Session>,
    /// The server's clock when it rendered the page (ms since the Unix epoch): durations
    /// such as uptimes are drawn against it, so the browser hydrates the very same text
    /// whatever its own clock says.
    pub now_ms: i64,
    #[serde(flatten)]
    pub page: Page,
}

/// Which page, with its own data; the JSON names it in the field `page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "page", rename_all = "snake_case")]
pub enum Page {
    /// The log-in form; `error` says why the last attempt failed, `email` is what was typed,
    /// `next` the page to return to.
    Login {
        error: Option<String>,
        email: String,
        #[serde(default)]
        next: String,
    },
    /// The account's tunnels.
    Tunnels {
        tunnels: Vec<Tunnel>,
    },
    /// Approving an `adit login`.
    Device {
        view: DeviceView,
    },
    /// Settings: the account's zones (everyone reads them; admins change them).
    Zones {
        zones: Vec<Zone>,
    },
    /// Settings, admins only: each list is `None` for other roles, whose page says an
    /// admin role is needed.
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
}

impl Page {
    /// The page's name: the document title and the active navigation entry.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Login { .. } => "Log in",
            Self::Tunnels { .. } => "Tunnels",
            Self::Device { .. } => "Log in a device",
            Self::Zones { .. } => "Zones",
            Self::Tokens { .. } => "API tokens",
            Self::Users { .. } => "Users",
            Self::Audit { .. } => "Audit log",
        }
    }
}

/// The body of every page: the layout around the page that `data` names.
#[component]
pub(crate) fn App(data: PageData) -> impl IntoView {
    let PageData {
        session,
        now_ms,
        page,
    } = data;
    #[cfg(feature = "hydrate")]
    provide_context(crate::client::Api::new(
        session.as_ref().map(|s| s.csrf_token.clone()),
    ));
    let title = page.title();
    let (account, csrf_token) = session
        .as_ref()
        .map(|s| (s.account.clone(), s.csrf_token.clone()))
        .unwrap_or_default();
    // Settings pages always have a session; without one, nothing is offered.
    let role = session.as_ref().map_or(Role::Viewer, |s| s.role);
    let me = session.as_ref().map(|s| s.user_id);
    let content = match page {
        Page::Login { error, email, next } => view! { <LoginPage error email next /> }.into_any(),
        Page::Tunnels { tunnels } => view! { <TunnelsPage tunnels now_ms /> }.into_any(),
        Page::Device { view } => view! { <DevicePage view account csrf_token /> }.into_any(),
        Page::Zones { zones } => {
            view! { <ZonesPage zones editable=role == Role::Admin /> }.into_any()
        }
        Page::Tokens { tokens } => view! { <TokensPage tokens role /> }.into_any(),
        Page::Users { users } => view! { <UsersPage users role me /> }.into_any(),
        Page::Audit { entries } => view! { <AuditPage entries role /> }.into_any(),
    };
    view! { <Layout title session>{content}</Layout> }
}

/// The bundle's entry: reads the page's data from the document, hydrates `<body>` with the
/// same view the server drew, then marks the body `data-hydrated="1"` (tests wait for it).
#[cfg(feature = "hydrate")]
pub fn hydrate() -> Result<(), crate::Error> {
    use crate::Error;

    let document = document();
    let json = document
        .get_element_by_id(PAGE_DATA_ID)
        .and_then(|script| script.text_content())
        .ok_or(Error::MissingPageData(PAGE_DATA_ID))?;
    let data: PageData = serde_json::from_str(&json)?;
    leptos::mount::hydrate_body(move || view! { <App data /> });
    document
        .body()
        .ok_or_else(|| Error::Browser("the document has no body".into()))?
        .set_attribute("data-hydrated", "1")
        .map_err(crate::client::js_error)
}
