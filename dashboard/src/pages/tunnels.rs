//! The Tunnels page: every tunnel of the account with its health, connectors and routes.

use adit_core::api::Tunnel;
use leptos::prelude::*;

use crate::components::status_badge::StatusBadge;

/// The command that creates a tunnel, shown in the empty state.
pub(crate) const CREATE_COMMAND: &str = "adit tunnel create NAME";

/// The page body (inside the shell): a header and either the table or the empty state.
#[component]
pub(crate) fn TunnelsPage(tunnels: Vec<Tunnel>) -> impl IntoView {
    let count = tunnels.len();
    let body = if tunnels.is_empty() {
        view! { <EmptyState /> }.into_any()
    } else {
        view! { <TunnelTable tunnels /> }.into_any()
    };
    view! {
        <header class="page-header">
            <div>
                <h1>"Tunnels"</h1>
                <p class="lede">
                    "Tunnels connect your private services to the edge through outbound-only "
                    "connections, without opening inbound ports."
                </p>
            </div>
            <span class="count">{tunnel_count(count)}</span>
        </header>
        {body}
    }
}

/// "1 tunnel", "3 tunnels".
fn tunnel_count(count: usize) -> String {
    if count == 1 {
        "1 tunnel".to_owned()
    } else {
        format!("{count} tunnels")
    }
}

#[component]
fn TunnelTable(tunnels: Vec<Tunnel>) -> impl IntoView {
    let rows = tunnels
        .into_iter()
        .map(|tunnel| view! { <TunnelRow tunnel /> })
        .collect_view();
    view! {
        <div class="table-card">
            <table class="tunnels">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Tunnel ID"</th>
                        <th scope="col" class="num">"Connectors"</th>
                        <th scope="col" class="num">"Connections"</th>
                        <th scope="col">"Routes"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[component]
fn TunnelRow(tunnel: Tunnel) -> impl IntoView {
    let Tunnel {
        id,
        name,
        created_at,
        status,
        connectors,
        connections,
        routes,
        ..
    } = tunnel;
    let routes = if routes.is_empty() {
        view! { <span class="muted">"No routes"</span> }.into_any()
    } else {
        view! { <span class="routes">{routes.join(", ")}</span> }.into_any()
    };
    // Date and time in separate unbreakable pieces, so a narrow column wraps between them.
    let created_label = match created_parts(&created_at) {
        Some((date, time)) => view! {
            <span class="nowrap">{date}</span>
            " "
            <span class="nowrap">{time}</span>
        }
        .into_any(),
        None => view! { {created_at.clone()} }.into_any(),
    };
    view! {
        <tr>
            <th scope="row" class="name">{name}</th>
            <td><StatusBadge status /></td>
            <td><code class="id">{id.to_string()}</code></td>
            <td class="num">{connectors}</td>
            <td class="num">{connections}</td>
            <td>{routes}</td>
            <td class="created">
                <time datetime=created_at.clone() title=created_at>{created_label}</time>
            </td>
        </tr>
    }
}

/// Splits an RFC 3339 time into `YYYY-MM-DD` and `HH:MM` (with ` UTC` when the offset is
/// `Z`); `None` for anything that does not look like RFC 3339, which is then shown as is.
fn created_parts(rfc3339: &str) -> Option<(&str, String)> {
    let bytes = rfc3339.as_bytes();
    let looks_rfc3339 = bytes.len() >= 16
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':';
    if !looks_rfc3339 {
        return None;
    }
    let date = rfc3339.get(..10)?;
    let time = rfc3339.get(11..16)?;
    let utc = if rfc3339.ends_with(['Z', 'z']) {
        " UTC"
    } else {
        ""
    };
    Some((date, format!("{time}{utc}")))
}

#[component]
fn EmptyState() -> impl IntoView {
    view! {
        <section class="empty">
            <h2>"No tunnels yet"</h2>
            <p>
                "A tunnel links a service on your network to the edge. "
                "Create your first one with the CLI:"
            </p>
            <pre class="command"><code>{CREATE_COMMAND}</code></pre>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_parts_shortens_rfc3339() {
        assert_eq!(
            created_parts("2026-11-25T01:33:07Z"),
            Some(("2026-11-25", "01:33 UTC".to_owned()))
        );
        assert_eq!(
            created_parts("2026-11-25T01:33:07.123+01:00"),
            Some(("2026-11-25", "01:33".to_owned()))
        );
    }

    #[test]
    fn created_parts_rejects_anything_else() {
        assert_eq!(created_parts(""), None);
        assert_eq!(created_parts("yesterday"), None);
        assert_eq!(created_parts("2026-11-25é1:33:07Z"), None);
        assert_eq!(created_parts("2026-11-25T0é:33:07Z"), None);
    }

    #[test]
    fn tunnel_count_pluralises() {
        assert_eq!(tunnel_count(0), "0 tunnels");
        assert_eq!(tunnel_count(1), "1 tunnel");
        assert_eq!(tunnel_count(2), "2 tunnels");
    }
}
