//! The Settings pages as the server renders them, for an admin and for other roles.
#![cfg(feature = "ssr")]

use adit_core::{
    api::{ApiToken, AuditEntry, Node, Session, User, Zone},
    identity::{Role, Scope, Scopes},
};

use super::SettingsPage;
use crate::{Page, PageData, render_page};

const ACCOUNT: &str = "0b6a3e52-7f4c-4a57-9d0e-3f1f0c8f2a10";
const ME: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

fn session(role: Role) -> Session {
    Session {
        user_id: ME.parse().unwrap(),
        email: "ada@example.com".parse().unwrap(),
        account_id: ACCOUNT.parse().unwrap(),
        account: "default".into(),
        role,
        csrf_token: "csrf".into(),
        expires_at: "2026-11-25T01:48:07Z".parse().unwrap(),
    }
}

fn render(role: Role, page: SettingsPage) -> String {
    let data = PageData {
        session: Some(session(role)),
        now_ms: 1_795_577_587_000,
        page: Page::Settings(page),
    };
    render_page(&data, true).unwrap()
}

/// The page's main content, without the navigation.
fn content(html: &str) -> &str {
    let start = html.find(r#"<main class="content">"#).unwrap();
    &html[start..html.find("</main>").unwrap()]
}

fn zones() -> Vec<Zone> {
    vec![
        Zone {
            id: "6f1d7a0e-2b1c-4c8e-9a51-7f0b3d2e4c11".parse().unwrap(),
            name: "example.com".into(),
            created_at: "2026-11-25T01:33:07Z".parse().unwrap(),
            https_only: true,
            certificate: Some(adit_core::api::ZoneCertificate {
                zone: "example.com".into(),
                names: vec!["*.example.com".into()],
                issuer: "CN=Zone Test CA".into(),
                not_before: "2026-11-01T00:00:00Z".parse().unwrap(),
                not_after: "2027-02-01T00:00:00Z".parse().unwrap(),
                fingerprint: "ab12".into(),
                uploaded_at: "2026-11-25T01:40:00Z".parse().unwrap(),
            }),
        },
        Zone {
            id: "7a2e8b1f-3c2d-4d9f-8b62-8a1c4e3f5d22".parse().unwrap(),
            name: "lab.example.org".into(),
            created_at: "2026-11-25T02:00:00Z".parse().unwrap(),
            https_only: false,
            certificate: None,
        },
    ]
}

fn tokens() -> Vec<ApiToken> {
    vec![
        ApiToken {
            id: "8b3f9c2a-4d3e-4eaf-9c73-9b2d5f4a6e33".parse().unwrap(),
            name: "ci-deploy".into(),
            scopes: Scopes::from_iter([Scope::Read, Scope::TunnelsWrite]),
            created_at: "2026-11-25T01:33:07Z".parse().unwrap(),
            last_used_at: Some("2026-11-25T03:00:00Z".parse().unwrap()),
            revoked_at: None,
        },
        ApiToken {
            id: "9c4a0d3b-5e4f-4fb0-8d84-ac3e6a5b7f44".parse().unwrap(),
            name: "<old> & gone".into(),
            scopes: Scopes::from_iter([Scope::Admin]),
            created_at: "2026-11-20T01:33:07Z".parse().unwrap(),
            last_used_at: None,
            revoked_at: Some("2026-11-21T08:00:00Z".parse().unwrap()),
        },
    ]
}

fn users() -> Vec<User> {
    vec![
        User {
            id: ME.parse().unwrap(),
            email: "ada@example.com".parse().unwrap(),
            role: Role::Admin,
            created_at: "2026-11-20T01:33:07Z".parse().unwrap(),
        },
        User {
            id: "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60".parse().unwrap(),
            email: "grace@example.com".parse().unwrap(),
            role: Role::Viewer,
            created_at: "2026-11-21T01:33:07Z".parse().unwrap(),
        },
    ]
}

fn audit() -> Vec<AuditEntry> {
    let entry = |at: &str, action: &str, outcome: &str| AuditEntry {
        at: at.parse().unwrap(),
        actor: "user:ada@example.com".into(),
        action: action.into(),
        target: "/api/v1/zones".into(),
        source_ip: "192.0.2.7".into(),
        outcome: outcome.into(),
    };
    vec![
        entry("2026-11-25T03:00:00Z", "DELETE /api/v1/zones/{zone}", "204"),
        entry("2026-11-25T02:00:00Z", "POST /api/v1/zones", "409"),
        entry("2026-11-25T01:00:00Z", "POST /api/v1/zones", "201"),
    ]
}

fn nodes() -> Vec<Node> {
    let node = |name: &str, port: u16, alive, connections| Node {
        name: name.into(),
        tunnel_addr: format!("203.0.113.7:{port}"),
        edge_addr: format!("203.0.113.7:{}", port + 1),
        api_addr: format!("127.0.0.1:{}", port + 2),
        version: "0.1.0".into(),
        started_at: "2026-11-25T01:00:00Z".parse().unwrap(),
        last_seen_at: "2026-11-25T03:00:00Z".parse().unwrap(),
        alive,
        connections,
    };
    vec![
        node("edge-a", 7844, true, 4),
        node("edge-b", 7944, false, 0),
    ]
}

/// The `<a>` of the navigation entry `href`, up to its closing tag.
fn nav_link<'a>(html: &'a str, href: &str) -> &'a str {
    let start = html.find(&format!(r#"<a href="{href}""#)).unwrap();
    &html[start..start + html[start..].find("</a>").unwrap()]
}

#[test]
fn the_navigation_has_a_settings_group_that_marks_admin_pages_for_others() {
    let admin = render(Role::Admin, SettingsPage::Zones { zones: zones() });
    assert!(admin.contains(">Settings</h2>"), "{admin}");
    for href in [
        "/settings/zones",
        "/settings/tokens",
        "/settings/users",
        "/settings/audit",
        "/settings/nodes",
        "/device",
    ] {
        assert!(
            !nav_link(&admin, href).contains("data-needs"),
            "{href}: {admin}"
        );
    }
    assert!(nav_link(&admin, "/settings/zones").contains(r#"aria-current="page""#));
    assert!(nav_link(&admin, "/device").contains("Log in a device"));

    let member = render(Role::Member, SettingsPage::Zones { zones: zones() });
    for href in ["/settings/tokens", "/settings/users", "/settings/audit"] {
        let link = nav_link(&member, href);
        assert!(link.contains(r#"data-needs="admin""#), "{href}: {link}");
        assert!(
            link.contains(r#"title="Needs the admin role""#),
            "{href}: {link}"
        );
    }
    assert!(!nav_link(&member, "/settings/zones").contains("data-needs"));
    assert!(!nav_link(&member, "/settings/nodes").contains("data-needs"));
    assert!(!nav_link(&member, "/device").contains("data-needs"));
}

#[test]
fn zones_show_to_everyone_and_admins_get_the_form_and_delete_buttons() {
    let admin = render(Role::Admin, SettingsPage::Zones { zones: zones() });
    assert!(admin.contains("<title>Zones · Adit</title>"), "{admin}");
    let main = content(&admin);
    assert!(
        main.contains("Add a zone") && main.contains(r#"<label for="zone-name">"#),
        "{main}"
    );
    assert!(
        main.contains(r#"aria-describedby="zone-name-error""#),
        "{main}"
    );
    for zone in zones() {
        assert!(main.contains(&format!(">{}</th>", zone.name)), "{main}");
        assert!(main.contains(&zone.id.to_string()), "{main}");
    }
    assert_eq!(main.matches(">Delete<span").count(), 2, "{main}");
    // The form works through the REST API: its button waits for the bundle.
    let button = &main[..main.find(">Add zone</button>").unwrap()];
    assert!(
        button[button.rfind("<button").unwrap()..].contains("disabled"),
        "{main}"
    );
    assert!(
        main.contains("zone example.com"),
        "screen readers hear which: {main}"
    );
    assert!(!main.contains("only an admin"), "{main}");
    // HTTPS only is a switch per zone; the certificate's metadata shows, with its removal,
    // and the upload form names its fields.
    assert!(
        main.contains(r#"aria-label="HTTPS only for example.com""#),
        "{main}"
    );
    assert_eq!(main.matches(r#"type="checkbox""#).count(), 2, "{main}");
    assert!(
        main.contains("*.example.com") && main.contains("CN=Zone Test CA"),
        "{main}"
    );
    assert!(main.contains("certificate of example.com"), "{main}");
    assert!(
        main.contains("None (ACME or the server&#x27;s CA)")
            || main.contains("None (ACME or the server's CA)"),
        "{main}"
    );
    assert!(
        main.contains("Upload a zone certificate")
            && main.contains(r#"name="certificate""#)
            && main.contains(r#"name="private_key""#),
        "{main}"
    );

    let viewer = render(Role::Viewer, SettingsPage::Zones { zones: zones() });
    let main = content(&viewer);
    assert!(main.contains(">example.com</th>"), "{main}");
    assert!(
        main.contains("only an admin adds or deletes them"),
        "{main}"
    );
    assert!(
        !main.contains("<form") && !main.contains(">Delete<"),
        "{main}"
    );
    assert!(
        main.contains(r#"<td class="https-only">Yes</td>"#),
        "{main}"
    );
    assert!(!main.contains(r#"type="checkbox""#), "{main}");

    let empty = render(Role::Admin, SettingsPage::Zones { zones: vec![] });
    assert!(content(&empty).contains("No zones yet"), "{empty}");
}

#[test]
fn tokens_show_scopes_use_and_state_with_a_create_form_for_admins() {
    let html = render(
        Role::Admin,
        SettingsPage::Tokens {
            tokens: Some(tokens()),
        },
    );
    assert!(html.contains("<title>API tokens · Adit</title>"), "{html}");
    let main = content(&html);
    for scope in ["read", "tunnels:write", "admin"] {
        assert!(
            main.contains(&format!(r#"">{scope}</span>"#)),
            "{scope}: {main}"
        );
    }
    assert!(
        main.contains(r#"<span class="tag tag-admin">admin</span>"#),
        "{main}"
    );
    assert!(main.contains("&lt;old&gt; &amp; gone"), "escaped: {main}");
    assert!(main.contains(">Never<") && main.contains(">Revoked<") && main.contains(">Active<"));
    // Only the active token can be revoked.
    assert_eq!(main.matches(">Revoke<span").count(), 1, "{main}");
    // Its question waits, hidden, for the first click.
    assert!(
        main.contains(
            r#"role="group" aria-label="Revoke ci-deploy? Anything using it stops working." hidden"#
        ),
        "{main}"
    );
    // The form: a name, and a checkbox per scope with `read` ticked.
    assert!(
        main.contains(r#"<label for="token-name">Name</label>"#),
        "{main}"
    );
    assert_eq!(
        main.matches(r#"type="checkbox""#).count(),
        Scope::ALL.len(),
        "{main}"
    );
    let read = &main[main.find(r#"id="scope-read""#).unwrap()..];
    assert!(
        read[..read.find('>').unwrap()].contains("checked"),
        "{main}"
    );
    let admin_box = &main[main.find(r#"id="scope-admin""#).unwrap()..];
    assert!(
        !admin_box[..admin_box.find('>').unwrap()].contains("checked"),
        "{main}"
    );
    // How the CLI gets a token of its own.
    assert!(main.contains("<code>adit login</code>") && main.contains(r#"href="/device""#));
}

#[test]
fn admin_only_pages_tell_other_roles_what_is_needed() {
    for (role, name) in [(Role::Member, "member"), (Role::Viewer, "viewer")] {
        for page in [
            SettingsPage::Tokens { tokens: None },
            SettingsPage::Users { users: None },
            SettingsPage::Audit { entries: None },
        ] {
            let html = render(role, page);
            let main = content(&html);
            assert!(main.contains("An admin role is needed"), "{main}");
            assert!(
                main.contains(&format!(r#"<span class="tag">{name}</span>"#)),
                "{main}"
            );
            assert!(
                !main.contains("<table") && !main.contains("<form"),
                "{main}"
            );
        }
    }
}

#[test]
fn users_show_each_role_selected_and_mark_the_viewer() {
    let html = render(
        Role::Admin,
        SettingsPage::Users {
            users: Some(users()),
        },
    );
    assert!(html.contains("<title>Users · Adit</title>"), "{html}");
    let main = content(&html);
    assert!(
        main.contains(r#"aria-label="Role of grace@example.com""#),
        "{main}"
    );
    // Each menu is drawn with the user's role chosen, before any script runs: the add
    // form's (viewer), ada's (admin), grace's (viewer).
    let selected: Vec<&str> = main
        .match_indices(" selected")
        .map(|(at, _)| {
            let value = &main[main[..at].rfind("value=\"").unwrap() + 7..];
            &value[..value.find('"').unwrap()]
        })
        .collect();
    assert_eq!(selected, ["viewer", "admin", "viewer"], "{main}");
    assert!(main.contains(r#"<span class="tag">you</span>"#), "{main}");
    assert_eq!(main.matches(">you<").count(), 1, "{main}");
    assert_eq!(main.matches(">Remove<span").count(), 2, "{main}");
    assert!(
        main.contains(r#"<label for="user-email">Email</label>"#),
        "{main}"
    );
}

#[test]
fn the_audit_log_lists_entries_in_the_servers_order_with_outcomes_in_words() {
    let html = render(
        Role::Admin,
        SettingsPage::Audit {
            entries: Some(audit()),
        },
    );
    assert!(html.contains("<title>Audit log · Adit</title>"), "{html}");
    let main = content(&html);
    let at = |text: &str| main.find(text).unwrap_or_else(|| panic!("{text}: {main}"));
    assert!(at("2026-11-25T03:00:00Z") < at("2026-11-25T02:00:00Z"));
    assert!(at("2026-11-25T02:00:00Z") < at("2026-11-25T01:00:00Z"));
    assert!(
        main.contains("Succeeded · 204") && main.contains("Failed · 409"),
        "{main}"
    );
    assert!(main.contains("192.0.2.7") && main.contains("user:ada@example.com"));
    assert!(
        main.contains(r#"aria-label="Filter the audit log""#),
        "{main}"
    );
    assert!(main.contains("3 entries"), "{main}");
    let none = render(
        Role::Admin,
        SettingsPage::Audit {
            entries: Some(vec![]),
        },
    );
    assert!(content(&none).contains("Nothing has been recorded yet"));
}

#[test]
fn nodes_show_to_every_role_with_addresses_and_status_in_words() {
    for role in [Role::Admin, Role::Member, Role::Viewer] {
        let html = render(role, SettingsPage::Nodes { nodes: nodes() });
        assert!(html.contains("<title>Nodes · Adit</title>"), "{html}");
        assert!(
            nav_link(&html, "/settings/nodes").contains(r#"aria-current="page""#),
            "{html}"
        );
        let main = content(&html);
        for column in [
            "Name",
            "Addresses (tunnel / edge)",
            "Version",
            "Up since",
            "Connections",
            "Status",
        ] {
            assert!(
                main.contains(&format!(">{column}</th>")),
                "{column}: {main}"
            );
        }
        assert!(
            main.contains(">edge-a</th>") && main.contains(">edge-b</th>"),
            "{main}"
        );
        assert!(main.find(">edge-a<").unwrap() < main.find(">edge-b<").unwrap());
        assert!(
            main.contains("<code>203.0.113.7:7844</code> / <code>203.0.113.7:7845</code>"),
            "{main}"
        );
        assert!(
            main.contains(r#"datetime="2026-11-25T01:00:00Z""#),
            "{main}"
        );
        assert!(main.contains(r#"<td class="num">4</td>"#), "{main}");
        // The status is said in words, not by colour alone.
        assert!(
            main.contains(">Alive</span>") && main.contains(">Dead</span>"),
            "{main}"
        );
        assert!(main.contains("1 alive of 2 nodes"), "{main}");
        assert!(!main.contains("An admin role is needed"), "{main}");
        assert!(!main.contains("<form"), "{main}");
    }
    let none = render(Role::Viewer, SettingsPage::Nodes { nodes: vec![] });
    assert!(
        content(&none).contains("No node has registered yet"),
        "{none}"
    );
}

#[test]
fn settings_pages_carry_their_data_for_hydration() {
    for (page, name) in [
        (SettingsPage::Zones { zones: zones() }, "zones"),
        (
            SettingsPage::Tokens {
                tokens: Some(tokens()),
            },
            "tokens",
        ),
        (SettingsPage::Users { users: None }, "users"),
        (
            SettingsPage::Audit {
                entries: Some(audit()),
            },
            "audit",
        ),
        (SettingsPage::Nodes { nodes: nodes() }, "nodes"),
    ] {
        let data = PageData {
            session: Some(session(Role::Admin)),
            now_ms: 0,
            page: Page::Settings(page),
        };
        let json = serde_json::to_string(&data).unwrap();
        assert!(json.contains(r#""page":"settings""#), "{json}");
        assert!(json.contains(&format!(r#""section":"{name}""#)), "{json}");
        assert_eq!(serde_json::from_str::<PageData>(&json).unwrap(), data);
    }
}
