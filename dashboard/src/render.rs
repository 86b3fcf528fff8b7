//! Server-side rendering of whole HTML documents.

use leptos::prelude::*;

use crate::{
    Error,
    page::{App, PAGE_DATA_ID, PageData},
};

/// The dashboard's stylesheet, embedded in every page: it arrives with the HTML, so nothing
/// moves when the bundle loads, and pages look right without the bundle.
const STYLESHEET: &str = include_str!("../style/main.css");

/// Loads the bundle and hydrates the page (the glue names no default wasm path, so `init`
/// is told where the wasm is).
const BOOT: &str = r#"import init, { hydrate } from "/pkg/dash.js"; init({ module_or_path: "/pkg/dash_bg.wasm" }).then(() => hydrate());"#;

/// The text of every inline `<script>` and `<style>` element a page has, for the server's
/// Content-Security-Policy, which allows these exact texts (by hash) and nothing else
/// inline. The page-data JSON is not listed: a browser never runs it.
pub const INLINE_SCRIPTS: &[&str] = &[BOOT];
pub const INLINE_STYLES: &[&str] = &[STYLESHEET];

/// Renders the page `data` names as a complete HTML5 document (`<!DOCTYPE html>` included)
/// with its CSS embedded and `data` as JSON for the bundle. The body carries the markers
/// hydration needs; with `bundle` the document loads the bundle from `/pkg` (without it,
/// the page is complete but has no client behaviour). Every piece of user-provided text is
/// escaped.
pub fn render_page(data: &PageData, bundle: bool) -> Result<String, Error> {
    let json = script_json(data)?;
    let body = render(|| {
        let data = data.clone();
        view! { <App data /> }
    });
    let title = format!("{} · Adit", data.page.document_title());
    let document = render(move || {
        let scripts = bundle.then(|| {
            view! {
                <link rel="modulepreload" href="/pkg/dash.js" />
                <link
                    rel="preload"
                    href="/pkg/dash_bg.wasm"
                    r#as="fetch"
                    r#type="application/wasm"
                    crossorigin=""
                />
                <script type="module" inner_html=BOOT></script>
            }
        });
        view! {
            <html lang="en">
                <head>
                    <meta charset="utf-8" />
                    <meta name="viewport" content="width=device-width, initial-scale=1" />
                    <title>{title}</title>
                    // No favicon: without this the browser asks the API for /favicon.ico.
                    <link rel="icon" href="data:," />
                    <style inner_html=STYLESHEET></style>
                    <script type="application/json" id=PAGE_DATA_ID inner_html=json></script>
                    {scripts}
                </head>
                <body inner_html=body></body>
            </html>
        }
    });
    Ok(format!("<!DOCTYPE html>{document}"))
}

/// `data` as JSON that can sit inside `<script>`: `<`, `>` and `&` become `\u003c`, … (the
/// same string to a JSON parser), so no text in it can close the element or open a
/// comment; U+2028/U+2029 are escaped for old JavaScript parsers.
fn script_json(data: &PageData) -> Result<String, Error> {
    let json = serde_json::to_string(data)?;
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Renders `view` to HTML inside a fresh reactive owner.
fn render<V, F>(view: F) -> String
where
    F: FnOnce() -> V,
    V: IntoView,
{
    let owner = Owner::new();
    owner.with(|| view().into_view().to_html())
}

#[cfg(test)]
mod tests {
    use adit_core::api::{ConfigSource, Session, Tunnel, TunnelConfiguration, TunnelStatus};

    use super::*;
    use crate::page::{Page, TunnelPageData};

    const ACCOUNT: &str = "0b6a3e52-7f4c-4a57-9d0e-3f1f0c8f2a10";
    /// 2026-11-25T03:33:07Z: two hours after the sample tunnels were created.
    const NOW_MS: i64 = 1_795_577_587_000;

    fn tunnel(id: &str, name: &str, status: TunnelStatus, routes: &[&str]) -> Tunnel {
        Tunnel {
            id: id.parse().unwrap(),
            account_id: ACCOUNT.parse().unwrap(),
            name: name.to_owned(),
            created_at: "2026-11-25T01:33:07Z".parse().unwrap(),
            status,
            connectors: 1,
            connections: 4,
            routes: routes.iter().map(|r| (*r).to_owned()).collect(),
            config_src: Default::default(),
            connected_since: matches!(status, TunnelStatus::Healthy | TunnelStatus::Degraded)
                .then(|| "2026-11-25T01:28:07Z".parse().unwrap()),
        }
    }

    fn session() -> Session {
        Session {
            user_id: "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f".parse().unwrap(),
            email: "ada@example.com".parse().unwrap(),
            account_id: ACCOUNT.parse().unwrap(),
            account: "default".into(),
            role: adit_core::identity::Role::Admin,
            csrf_token: "csrf-<token>".into(),
            expires_at: "2026-11-25T01:48:07Z".parse().unwrap(),
        }
    }

    fn tunnels_data(tunnels: &[Tunnel]) -> PageData {
        PageData {
            session: Some(session()),
            now_ms: NOW_MS,
            page: Page::Tunnels {
                tunnels: tunnels.to_vec(),
                result_info: adit_core::api::ResultInfo {
                    page: 1,
                    per_page: crate::TUNNELS_PER_PAGE,
                    count: u32::try_from(tunnels.len()).unwrap(),
                    total_count: tunnels.len() as u64,
                },
            },
        }
    }

    fn tunnels_page(tunnels: &[Tunnel]) -> String {
        render_page(&tunnels_data(tunnels), true).unwrap()
    }

    fn login_page(error: Option<&str>, email: &str, next: &str) -> String {
        let data = PageData {
            session: None,
            now_ms: NOW_MS,
            page: Page::Login {
                error: error.map(str::to_owned),
                email: email.to_owned(),
                next: next.to_owned(),
            },
        };
        render_page(&data, true).unwrap()
    }

    fn sample() -> Vec<Tunnel> {
        vec![
            tunnel(
                "6f1d7a0e-2b1c-4c8e-9a51-7f0b3d2e4c11",
                "home-lab",
                TunnelStatus::Healthy,
                &["app.example.com", "ssh.example.com"],
            ),
            tunnel(
                "7a2e8b1f-3c2d-4d9f-8b62-8a1c4e3f5d22",
                "office",
                TunnelStatus::Degraded,
                &["intranet.example.org"],
            ),
            tunnel(
                "8b3f9c2a-4d3e-4eaf-9c73-9b2d5f4a6e33",
                "old-box",
                TunnelStatus::Down,
                &[],
            ),
            tunnel(
                "9c4a0d3b-5e4f-4fb0-8d84-ac3e6a5b7f44",
                "spare",
                TunnelStatus::Inactive,
                &[],
            ),
        ]
    }

    /// The `<tbody>` of the tunnel table.
    fn table_body(html: &str) -> &str {
        let start = html.find("<tbody>").unwrap();
        let end = html.find("</tbody>").unwrap();
        &html[start..end]
    }

    /// The text of the page-data script element.
    fn page_json(html: &str) -> &str {
        let open = format!(r#"<script type="application/json" id="{PAGE_DATA_ID}">"#);
        let start = html.find(&open).unwrap() + open.len();
        let end = start + html[start..].find("</script>").unwrap();
        &html[start..end]
    }

    #[test]
    fn is_a_complete_html5_document_with_embedded_css() {
        let html = tunnels_page(&sample());
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{html}"
        );
        assert!(html.trim_end().ends_with("</html>"), "{html}");
        assert!(html.contains("<meta charset=\"utf-8\">"), "{html}");
        assert!(html.contains("<title>Tunnels · Adit</title>"), "{html}");
        assert!(html.contains("<style>"), "{html}");
        // The stylesheet goes in verbatim: `>` in selectors must not turn into `&gt;`.
        assert!(html.contains(STYLESHEET));
    }

    #[test]
    fn loads_the_bundle_only_when_there_is_one() {
        let html = tunnels_page(&sample());
        assert!(
            html.contains(r#"<link rel="modulepreload" href="/pkg/dash.js">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/pkg/dash_bg.wasm" as="fetch""#),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"<script type="module">{BOOT}</script>"#)),
            "{html}"
        );
        let bare = render_page(&tunnels_data(&sample()), false).unwrap();
        assert!(!bare.contains("/pkg/"), "{bare}");
        // Without the bundle the page is as complete: same data, same body.
        assert_eq!(page_json(&bare), page_json(&html));
        assert_eq!(table_body(&bare), table_body(&html));
    }

    #[test]
    fn the_page_data_is_escaped_json_that_reads_back_identically() {
        let mut tunnels = sample();
        tunnels[0].name = "</script><script>alert(1)</script><!--".to_owned();
        tunnels[1].routes = vec!["a&b\u{2028}.example.com".to_owned()];
        let data = tunnels_data(&tunnels);
        let html = render_page(&data, true).unwrap();
        let json = page_json(&html);
        for raw in ['<', '>', '&', '\u{2028}'] {
            assert!(!json.contains(raw), "{raw:?} in {json}");
        }
        assert!(json.contains(r#""page":"tunnels""#), "{json}");
        assert!(json.contains(r"\u003c/script\u003e"), "{json}");
        let back: PageData = serde_json::from_str(json).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn the_body_has_hydration_markers() {
        let html = tunnels_page(&sample());
        let body = &html[html.find("<body>").unwrap()..];
        // Leptos marks where reactive text and lists sit (`<!>` placeholders), which
        // hydration walks; a plain `to_html` of static markup has none.
        assert!(body.contains("<!>"), "{body}");
        assert!(body.starts_with(r#"<body><div class="layout">"#), "{body}");
    }

    #[test]
    fn pages_show_who_is_logged_in_with_a_log_out_form_carrying_the_csrf_token() {
        let html = tunnels_page(&sample());
        assert!(html.contains("ada@example.com"));
        assert!(html.contains(r#"action="/logout""#));
        assert!(
            html.contains(r#"name="csrf_token" value="csrf-&lt;token&gt;""#),
            "{html}"
        );
    }

    #[test]
    fn the_login_page_is_a_plain_form_that_keeps_the_email_and_escapes_the_error() {
        let html = login_page(Some("invalid <email> or password"), "ada\"@x", "");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>Log in · Adit</title>"), "{html}");
        assert!(
            html.contains(r#"<form method="post" action="/login">"#),
            "{html}"
        );
        assert!(html.contains("invalid &lt;email&gt; or password"));
        assert!(html.contains(r#"value="ada&quot;@x""#), "{html}");
        assert!(!html.contains("Log out"), "no navigation before logging in");
        assert!(page_json(&html).contains(r#""page":"login""#), "{html}");
        let fresh = login_page(None, "", "/device?code=BCDF-GHJK");
        assert!(!fresh.contains("role=\"alert\""));
        assert!(
            fresh.contains(r#"name="next" value="/device?code=BCDF-GHJK""#),
            "{fresh}"
        );
    }

    fn device_page(view: crate::DeviceView) -> String {
        let data = PageData {
            session: Some(session()),
            now_ms: NOW_MS,
            page: Page::Device { view },
        };
        render_page(&data, true).unwrap()
    }

    #[test]
    fn the_device_page_shows_who_asks_escaped_with_csrf_bound_approve_and_deny_forms() {
        let html = device_page(crate::DeviceView::Confirm {
            user_code: "BCDF-GHJK".into(),
            client: "adit on <script>".into(),
            source_ip: "192.0.2.7".into(),
            requested_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            expires_in_minutes: 9,
        });
        assert!(html.contains("adit on &lt;script&gt;"), "{html}");
        assert!(html.contains("BCDF-GHJK") && html.contains("192.0.2.7"));
        assert_eq!(html.matches(r#"action="/device""#).count(), 2);
        // Both decisions, plus the log-out form, carry the session's CSRF token.
        assert_eq!(html.matches(r#"value="csrf-&lt;token&gt;""#).count(), 3);
        let asked = device_page(crate::DeviceView::Enter {
            code: "nope".into(),
            error: Some("No login is waiting".into()),
        });
        assert!(asked.contains(r#"aria-invalid="true""#) && asked.contains("No login is waiting"));
    }

    #[test]
    fn side_navigation_marks_tunnels_active() {
        let html = tunnels_page(&[]);
        assert!(
            html.contains("<nav aria-label=\"Main\" class=\"sidenav\">"),
            "{html}"
        );
        let start = html.find("<a href=\"/tunnels\"").unwrap();
        let tag = &html[start..start + html[start..].find('>').unwrap()];
        assert!(tag.contains("class=\"active\""), "{tag}");
        assert!(tag.contains("aria-current=\"page\""), "{tag}");
        assert!(
            html[start..].starts_with(&format!("{tag}>Tunnels</a>")),
            "{html}"
        );
    }

    #[test]
    fn lists_every_tunnel_with_name_id_status_routes_and_uptime() {
        let tunnels = sample();
        let html = tunnels_page(&tunnels);
        let body = table_body(&html);
        assert_eq!(body.matches("<tr").count(), tunnels.len(), "{body}");
        for t in &tunnels {
            // Each name links to the tunnel's page.
            assert!(
                body.contains(&format!(
                    "<a href=\"/tunnels/{}\">{}</a></th>",
                    t.id, t.name
                )),
                "{body}"
            );
            assert!(body.contains(&format!(">{}</code>", t.id)), "{body}");
        }
        for (status, label) in [
            ("healthy", "Healthy"),
            ("degraded", "Degraded"),
            ("down", "Down"),
            ("inactive", "Inactive"),
        ] {
            let badge = format!(
                "<span class=\"badge badge-{status}\"><span class=\"badge-dot\" \
                 aria-hidden=\"true\"></span>{label}</span>"
            );
            assert!(body.contains(&badge), "missing {badge} in {body}");
        }
        assert!(body.contains("app.example.com, ssh.example.com"), "{body}");
        assert!(body.contains("intranet.example.org"), "{body}");
        assert_eq!(body.matches("No routes").count(), 2, "{body}");
        assert!(
            body.contains(
                "<time datetime=\"2026-11-25T01:33:07Z\" title=\"2026-11-25T01:33:07Z\">\
                 <span class=\"nowrap\">2026-11-25</span> <span class=\"nowrap\">01:33 UTC</span>\
                 </time>"
            ),
            "{body}"
        );
        // Connected five minutes before creation + two hours: 2 h 5 min at NOW_MS.
        assert_eq!(body.matches("2 h 5 min").count(), 2, "{body}");
        assert_eq!(body.matches("Not connected").count(), 2, "{body}");
        assert_eq!(body.matches(">Copy<").count(), tunnels.len(), "{body}");
    }

    #[test]
    fn rows_are_sorted_by_name_at_first() {
        let mut tunnels = sample();
        tunnels.reverse();
        let html = tunnels_page(&tunnels);
        let body = table_body(&html);
        let at = |name: &str| body.find(&format!(">{name}</a></th>")).unwrap();
        assert!(at("home-lab") < at("office"), "{body}");
        assert!(at("office") < at("old-box"), "{body}");
        assert!(at("old-box") < at("spare"), "{body}");
        let name_header = html.find("aria-sort=\"ascending\"").unwrap();
        assert!(html[name_header..].contains("Name"), "{html}");
    }

    #[test]
    fn table_has_the_expected_columns_in_order() {
        let html = tunnels_page(&sample());
        let mut from = 0;
        for column in [
            "Name",
            "Status",
            "Tunnel ID",
            "Connectors",
            "Routes",
            "Created",
            "Uptime",
        ] {
            let at = html[from..]
                .find(&format!(">{column}<"))
                .unwrap_or_else(|| panic!("column {column} missing or out of order"));
            from += at + 1;
        }
        // The shared table, with a sorting button in five of its headers.
        assert!(html.contains(r#"<table class="data tunnels">"#), "{html}");
        assert_eq!(html.matches(r#"class="sort-arrow""#).count(), 5, "{html}");
    }

    #[test]
    fn the_toolbar_searches_and_filters_by_status() {
        let html = tunnels_page(&sample());
        assert!(html.contains(r#"type="search""#), "{html}");
        for option in ["All statuses", "Healthy", "Degraded", "Down", "Inactive"] {
            assert!(html.contains(&format!(">{option}</option>")), "{html}");
        }
        assert!(html.contains("4 tunnels"), "{html}");
    }

    #[test]
    fn counts_are_shown() {
        let mut t = sample().remove(0);
        t.connectors = 3;
        t.connections = 11;
        let html = tunnels_page(&[t]);
        let body = table_body(&html);
        assert!(body.contains(">3<"), "{body}");
        assert!(body.contains("11 connections"), "{body}");
        assert!(html.contains("1 tunnel<"), "{html}");
    }

    #[test]
    fn empty_state_invites_to_create_a_tunnel() {
        let html = tunnels_page(&[]);
        assert!(!html.contains("<table"), "{html}");
        let empty = &html[html.find(r#"<section class="empty">"#).unwrap()..];
        assert!(empty.contains("No tunnels yet"), "{empty}");
        assert!(
            empty.contains(r#"<a href="/tunnels/new" class="button primary">Create a tunnel</a>"#),
            "{empty}"
        );
        assert!(
            html.contains("<code>adit tunnel create NAME</code>"),
            "{html}"
        );
    }

    #[test]
    fn user_text_is_escaped() {
        let mut t = sample().remove(0);
        t.name = "<script>alert(1)</script>".to_owned();
        t.routes = vec![
            "<img src=x onerror=alert(2)>.example.com".to_owned(),
            "a&b.example.com".to_owned(),
        ];
        let html = tunnels_page(&[t]);
        let body = &html[html.find("<body>").unwrap()..];
        assert!(!body.contains("<script"), "{body}");
        assert!(!body.contains("<img"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{body}"
        );
        assert!(
            body.contains("&lt;img src=x onerror=alert(2)&gt;.example.com"),
            "{body}"
        );
        assert!(body.contains("a&amp;b.example.com"), "{body}");

        // In attributes the quote is escaped too, so the value cannot be closed early: a
        // rule's hostname (stored as written) names its Edit and Delete buttons.
        let html = tunnel_page_with(
            ConfigSource::Remote,
            serde_json::json!({
                "ingress": [
                    {"hostname": "\"><script>alert(3)</script>", "service": "http://localhost:8080"},
                    {"service": "http_status:404"}
                ]
            }),
        );
        let body = &html[html.find("<body>").unwrap()..];
        assert!(!body.contains("<script"), "{body}");
        assert!(!body.contains("aria-label=\"Edit \">"), "{body}");
        assert!(body.contains("&quot;&gt;&lt;script&gt;alert(3)"), "{body}");
    }

    fn tunnel_page(source: ConfigSource) -> String {
        tunnel_page_with(
            source,
            serde_json::json!({
                "ingress": [
                    {"hostname": "app.example.com", "service": "http://localhost:8080"},
                    {"hostname": "ssh.example.com", "path": "^/x", "service": "ssh://localhost:22"},
                    {"service": "http_status:404"}
                ]
            }),
        )
    }

    fn tunnel_page_with(source: ConfigSource, config: serde_json::Value) -> String {
        use adit_core::ingress::IngressConfig;
        let mut tunnel = sample().remove(0);
        tunnel.config_src = source;
        let config: IngressConfig = serde_json::from_value(config).unwrap();
        let data = PageData {
            session: Some(session()),
            now_ms: NOW_MS,
            page: Page::Tunnel(Box::new(TunnelPageData {
                configuration: TunnelConfiguration {
                    tunnel_id: tunnel.id,
                    version: 3,
                    config: Some(config),
                    source,
                    created_at: Some("2026-11-25T01:40:00Z".parse().unwrap()),
                },
                tunnel,
                connectors: vec![],
                ip_routes: vec![],
                traffic: vec![],
                zones: vec!["example.com".into()],
            })),
        };
        render_page(&data, true).unwrap()
    }

    #[test]
    fn the_wizard_starts_with_the_name_and_lists_its_steps() {
        let data = PageData {
            session: Some(session()),
            now_ms: NOW_MS,
            page: Page::NewTunnel {
                taken: vec!["web".into()],
                zones: vec!["example.com".into()],
            },
        };
        let html = render_page(&data, true).unwrap();
        assert!(
            html.contains("<title>Create a tunnel · Adit</title>"),
            "{html}"
        );
        let mut from = 0;
        for step in [
            "Name your tunnel",
            "Install and run a connector",
            "Route traffic",
            "Done",
        ] {
            from += html[from..]
                .find(step)
                .unwrap_or_else(|| panic!("step {step} missing or out of order"));
        }
        assert!(html.contains(r#"aria-current="step""#), "{html}");
        assert!(html.contains("<span>Tunnel name</span>"), "{html}");
        assert!(html.contains(">Save tunnel</button>"), "{html}");
        // No error is shown before anything was typed.
        let body = &html[html.find("<body>").unwrap()..];
        assert!(!body.contains("field-error"), "{body}");
        // The wizard is under Tunnels in the navigation.
        let nav = html.find(r#"<a href="/tunnels""#).unwrap();
        assert!(
            html[nav..].starts_with(r#"<a href="/tunnels" aria-current="page""#),
            "{html}"
        );
    }

    #[test]
    fn the_tunnel_page_shows_its_overview_tabs_and_hostnames() {
        let html = tunnel_page(ConfigSource::Remote);
        assert!(
            html.contains("<title>home-lab · Tunnels · Adit</title>"),
            "{html}"
        );
        assert!(html.contains("badge badge-healthy"), "{html}");
        assert!(
            html.contains(">6f1d7a0e-2b1c-4c8e-9a51-7f0b3d2e4c11</code>"),
            "{html}"
        );
        assert!(html.contains("Remote (managed here)"), "{html}");
        assert!(html.contains("2 h 5 min"), "{html}");
        for tab in [
            "Public hostnames",
            "Private networks",
            "Connectors",
            "Traffic",
        ] {
            assert!(html.contains(&format!(">{tab}</button>")), "{tab}: {html}");
        }
        assert!(html.contains(r#"role="tab""#) && html.contains(r#"aria-selected="true""#));
        // The user's rules, not the catch-all, with their actions.
        assert!(html.contains(">app.example.com</th>"), "{html}");
        assert!(html.contains("<code>ssh://localhost:22</code>"), "{html}");
        let body = &html[html.find("<body>").unwrap()..];
        assert!(!body.contains("http_status:404"), "{body}");
        assert!(body.contains("1 connector, 4 connections"), "{body}");
        assert!(
            html.contains(r#"aria-label="Edit app.example.com""#),
            "{html}"
        );
        assert!(html.contains(">Add a public hostname</button>"), "{html}");
        for action in ["Rename", "Refresh token", "Delete"] {
            assert!(
                html.contains(&format!(">{action}</button>")),
                "{action}: {html}"
            );
        }
    }

    #[test]
    fn a_local_tunnels_rules_are_read_only() {
        let html = tunnel_page(ConfigSource::Local);
        assert!(html.contains("managed locally"), "{html}");
        assert!(html.contains(">app.example.com</th>"), "{html}");
        assert!(!html.contains("Edit app.example.com"), "{html}");
        assert!(!html.contains("Add a public hostname"), "{html}");
    }
}
