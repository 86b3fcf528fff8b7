//! The data each page is drawn from, and the root component that draws it. The server
//! renders [`App`] into the document and writes the same [`PageData`] into it as JSON; the
//! browser bundle reads that JSON back and hydrates the identical view.

use adit_core::{
    api::{Connector, IpRoute, ResultInfo, Session, TrafficPoint, Tunnel, TunnelConfiguration},
    identity::Role,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    components::shell::Layout,
    pages::{
        device::{DevicePage, DeviceView},
        login::LoginPage,
        new_tunnel::NewTunnelPage,
        settings::{Settings, SettingsPage},
        tunnel::TunnelPage,
        tunnels::TunnelsPage,
    },
};

/// How many tunnels a page of the Tunnels page shows.
pub const TUNNELS_PER_PAGE: u32 = 50;

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
    /// The first page of the account's tunnels ([`TUNNELS_PER_PAGE`] by name), and where
    /// it lies in the whole list.
    Tunnels {
        tunnels: Vec<Tunnel>,
        result_info: ResultInfo,
    },
    /// Approving an `adit login`.
    Device { view: DeviceView },
    /// The wizard that creates a tunnel: the names already `taken` in the account, and the
    /// account's `zones` (where public hostnames can be routed).
    NewTunnel {
        taken: Vec<String>,
        zones: Vec<String>,
    },
    /// One tunnel with its routes, connectors and traffic.
    Tunnel(Box<TunnelPageData>),
    /// One of the Settings pages (zones, API tokens, users, audit log).
    Settings(SettingsPage),
}

/// What the tunnel page is drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelPageData {
    pub tunnel: Tunnel,
    pub connectors: Vec<Connector>,
    /// Its ingress rules: stored (remote) or as its connector reported them (local).
    pub configuration: TunnelConfiguration,
    /// The private networks routed to it.
    pub ip_routes: Vec<IpRoute>,
    /// The last hour, minute by minute.
    pub traffic: Vec<TrafficPoint>,
    /// The account's zones, for the hostname form's domain list.
    pub zones: Vec<String>,
}

impl Page {
    /// The page's name: the active navigation entry of the top-level pages, and the
    /// document title.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Login { .. } => "Log in",
            Self::Tunnels { .. } => "Tunnels",
            Self::Device { .. } => "Log in a device",
            Self::NewTunnel { .. } => "Create a tunnel",
            Self::Tunnel(_) => "Tunnel",
            Self::Settings(page) => page.title(),
        }
    }

    /// The document's title: the page's name, and the tunnel's on its page.
    pub fn document_title(&self) -> String {
        match self {
            Self::Tunnel(data) => format!("{} · Tunnels", data.tunnel.name),
            other => other.title().to_owned(),
        }
    }

    /// The navigation entry the page belongs under.
    pub fn section(&self) -> &'static str {
        match self {
            Self::NewTunnel { .. } | Self::Tunnel(_) => "Tunnels",
            other => other.title(),
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
    // What every component reaches through the context: the API client (with the
    // session's CSRF token) and the page's one stream of change notices.
    provide_context(crate::api::Api::new(
        session.as_ref().map(|s| s.csrf_token.clone()),
    ));
    provide_context(crate::live::Live::new());
    let section = page.section();
    let (account, csrf_token) = session
        .as_ref()
        .map(|s| (s.account.clone(), s.csrf_token.clone()))
        .unwrap_or_default();
    // Settings pages always have a session; without one, nothing is offered.
    let role = session.as_ref().map_or(Role::Viewer, |s| s.role);
    let me = session.as_ref().map(|s| s.user_id);
    let content = match page {
        Page::Login { error, email, next } => view! { <LoginPage error email next /> }.into_any(),
        Page::Tunnels {
            tunnels,
            result_info,
        } => view! { <TunnelsPage tunnels result_info now_ms /> }.into_any(),
        Page::Device { view } => view! { <DevicePage view account csrf_token /> }.into_any(),
        Page::NewTunnel { taken, zones } => view! { <NewTunnelPage taken zones /> }.into_any(),
        Page::Tunnel(data) => view! { <TunnelPage data=*data now_ms /> }.into_any(),
        Page::Settings(page) => view! { <Settings page role me /> }.into_any(),
    };
    view! { <Layout title=section session>{content}</Layout> }
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
