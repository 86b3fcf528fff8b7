//! Server-side rendering of whole HTML documents.

use adit_core::api::{Session, Tunnel};
use leptos::prelude::*;

use crate::components::shell::{Shell, Viewer};
use crate::pages::{login::LoginPage, tunnels::TunnelsPage};

/// Renders the Tunnels page for the logged-in `session` as a complete HTML5 document
/// (`<!DOCTYPE html>` included), with its CSS embedded. Every piece of user-provided text
/// (names, hostnames, dates) is HTML-escaped.
pub fn render_tunnels_page(tunnels: &[Tunnel], session: &Session) -> String {
    let tunnels = tunnels.to_vec();
    let viewer = Viewer {
        email: session.email.to_string(),
        account: session.account.clone(),
        csrf_token: session.csrf_token.clone(),
    };
    render_document(move || {
        view! {
            <Shell title="Tunnels" viewer=Some(viewer)>
                <TunnelsPage tunnels />
            </Shell>
        }
    })
}

/// Renders the log-in page; `error` says why the last attempt failed.
pub fn render_login_page(error: Option<&str>, email: &str) -> String {
    let (error, email) = (error.map(str::to_owned), email.to_owned());
    render_document(move || {
        view! {
            <Shell title="Log in" viewer=None>
                <LoginPage error email />
            </Shell>
        }
    })
}

/// Renders `view` inside a fresh reactive owner and prefixes the doctype, which a view
/// cannot express.
fn render_document<V, F>(view: F) -> String
where
    F: FnOnce() -> V,
    V: IntoView,
{
    let owner = Owner::new();
    let html = owner.with(|| view().into_view().to_html());
    let mut doc = String::with_capacity(html.len() + 16);
    doc.push_str("<!DOCTYPE html>");
    doc.push_str(&html);
    doc
}

#[cfg(test)]
mod tests {
    use adit_core::api::{Tunnel, TunnelStatus};

    use super::*;

    const ACCOUNT: &str = "0b6a3e52-7f4c-4a57-9d0e-3f1f0c8f2a10";

    fn tunnel(id: &str, name: &str, status: TunnelStatus, routes: &[&str]) -> Tunnel {
        Tunnel {
            id: id.parse().unwrap(),
            account_id: ACCOUNT.parse().unwrap(),
            name: name.to_owned(),
            created_at: "2026-11-25T01:33:07Z".to_owned(),
            status,
            connectors: 1,
            connections: 4,
            routes: routes.iter().map(|r| (*r).to_owned()).collect(),
            connected_since: None,
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
            expires_at: "2026-11-25T01:48:07Z".into(),
        }
    }

    #[test]
    fn pages_show_who_is_logged_in_with_a_log_out_form_carrying_the_csrf_token() {
        let html = render_tunnels_page(&sample(), &session());
        assert!(html.contains("ada@example.com"));
        assert!(html.contains(r#"action="/logout""#));
        assert!(
            html.contains(r#"name="csrf_token" value="csrf-&lt;token&gt;""#),
            "{html}"
        );
    }

    #[test]
    fn the_login_page_is_a_plain_form_that_keeps_the_email_and_escapes_the_error() {
        let html = render_login_page(Some("invalid <email> or password"), "ada\"@x");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.contains(r#"<form method="post" action="/login">"#),
            "{html}"
        );
        assert!(html.contains("invalid &lt;email&gt; or password"));
        assert!(html.contains(r#"value="ada&quot;@x""#), "{html}");
        assert!(!html.contains("Log out"), "no navigation before logging in");
        let fresh = render_login_page(None, "");
        assert!(!fresh.contains("role=\"alert\""));
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

    #[test]
    fn is_a_complete_html5_document_with_embedded_css() {
        let html = render_tunnels_page(&sample(), &session());
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{html}"
        );
        assert!(html.trim_end().ends_with("</html>"), "{html}");
        assert!(html.contains("<meta charset=\"utf-8\">"), "{html}");
        assert!(html.contains("<title>Tunnels · Adit</title>"), "{html}");
        assert!(html.contains("<style>"), "{html}");
        // The stylesheet goes in verbatim: `>` in selectors must not turn into `&gt;`.
        assert!(html.contains(crate::components::shell::STYLESHEET));
    }

    #[test]
    fn side_navigation_marks_tunnels_active() {
        let html = render_tunnels_page(&[], &session());
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
    fn lists_every_tunnel_with_name_id_status_and_routes() {
        let tunnels = sample();
        let html = render_tunnels_page(&tunnels, &session());
        let body = table_body(&html);
        assert_eq!(body.matches("<tr>").count(), tunnels.len(), "{body}");
        for t in &tunnels {
            assert!(body.contains(&format!(">{}</th>", t.name)), "{body}");
            assert!(
                body.contains(&format!("<code class=\"id\">{}</code>", t.id)),
                "{body}"
            );
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
        assert!(!html.contains(pages_create_command()), "{html}");
    }

    #[test]
    fn table_has_the_expected_columns_in_order() {
        let html = render_tunnels_page(&sample(), &session());
        let mut from = 0;
        for column in [
            "Name",
            "Status",
            "Tunnel ID",
            "Connectors",
            "Connections",
            "Routes",
            "Created",
        ] {
            let at = html[from..]
                .find(&format!(">{column}</th>"))
                .unwrap_or_else(|| panic!("column {column} missing or out of order"));
            from += at + 1;
        }
    }

    #[test]
    fn counts_are_shown() {
        let mut t = sample().remove(0);
        t.connectors = 3;
        t.connections = 11;
        let html = render_tunnels_page(&[t], &session());
        assert!(html.contains("<td class=\"num\">3</td>"), "{html}");
        assert!(html.contains("<td class=\"num\">11</td>"), "{html}");
        assert!(html.contains("1 tunnel<"), "{html}");
    }

    #[test]
    fn empty_state_invites_to_create_a_tunnel() {
        let html = render_tunnels_page(&[], &session());
        assert!(!html.contains("<table"), "{html}");
        assert!(html.contains("No tunnels yet"), "{html}");
        assert!(
            html.contains("<code>adit tunnel create NAME</code>"),
            "{html}"
        );
        assert!(html.contains("0 tunnels"), "{html}");
    }

    #[test]
    fn user_text_is_escaped() {
        let mut t = sample().remove(0);
        t.name = "<script>alert(1)</script>".to_owned();
        t.routes = vec![
            "<img src=x onerror=alert(2)>.example.com".to_owned(),
            "a&b.example.com".to_owned(),
        ];
        t.created_at = "\"><script>alert(3)</script>".to_owned();
        let html = render_tunnels_page(&[t], &session());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(2)&gt;.example.com"),
            "{html}"
        );
        assert!(html.contains("a&amp;b.example.com"), "{html}");
        // In attributes the quote is escaped too, so the value cannot be closed early.
        assert!(!html.contains("datetime=\"\">"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;alert(3)"), "{html}");
    }

    fn pages_create_command() -> &'static str {
        crate::pages::tunnels::CREATE_COMMAND
    }
}
