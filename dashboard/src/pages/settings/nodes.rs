//! Settings › Nodes: the `adit-server` processes of this deployment (one, or a cluster on
//! a shared PostgreSQL database), as their heartbeats left them. Everyone reads them; the
//! Refresh button re-reads the list.

use adit_core::api::Node;
use leptos::prelude::*;

use super::SettingsHeader;
use crate::{
    components::{
        moment::Moment,
        table::{Column, DataTable},
    },
    forms::SettingsList,
    live,
};

const NODES: &str = "/api/v1/nodes";

/// "1 alive of 2 nodes".
pub(crate) fn node_count(nodes: &[Node]) -> String {
    let alive = nodes.iter().filter(|n| n.alive).count();
    let total = nodes.len();
    let noun = if total == 1 { "node" } else { "nodes" };
    format!("{alive} alive of {total} {noun}")
}

/// The page body.
#[component]
pub(crate) fn NodesPage(nodes: Vec<Node>) -> impl IntoView {
    let nodes = SettingsList::new(NODES, nodes);
    let ready = live::hydrated();
    view! {
        <SettingsHeader
            title="Nodes"
            lede="The adit-server processes of this deployment. Each beats every 2 seconds; one that misses three beats, or shuts down, is dead, and its connections are closed."
        />
        <div class="toolbar">
            <span class="count" aria-live="polite">{move || nodes.items.with(|n| node_count(n))}</span>
            <button
                class="button"
                type="button"
                on:click=move |_| nodes.reload()
                disabled=move || !ready.get()
            >
                "Refresh"
            </button>
        </div>
        <DataTable
            class="nodes"
            columns=vec![
                Column::new("Name"),
                Column::new("Addresses (tunnel / edge)"),
                Column::new("Version"),
                Column::new("Up since"),
                Column::numeric("Connections"),
                Column::new("Status"),
            ]
            empty=Signal::derive(move || nodes.items.with(Vec::is_empty))
            empty_text="No node has registered yet.".to_owned()
        >
            // Keyed by what a re-read may change, so a changed row is drawn afresh.
            <For
                each=move || nodes.items.get()
                key=|node| (node.name.clone(), node.last_seen_at, node.alive, node.connections)
                let(node)
            >
                <NodeRow node />
            </For>
        </DataTable>
    }
}

#[component]
fn NodeRow(node: Node) -> impl IntoView {
    let Node {
        name,
        tunnel_addr,
        edge_addr,
        api_addr: _,
        version,
        started_at,
        last_seen_at,
        alive,
        connections,
    } = node;
    let status = if alive { "Alive" } else { "Dead" };
    view! {
        <tr>
            <th scope="row" class="name">{name}</th>
            <td class="addresses">
                <code>{tunnel_addr}</code>
                " / "
                <code>{edge_addr}</code>
            </td>
            <td>{version}</td>
            <td class="created"><Moment at=started_at /></td>
            <td class="num">{connections}</td>
            <td>
                <span
                    class="badge"
                    class:badge-healthy=alive
                    class:badge-down=!alive
                    title=format!("Last seen {last_seen_at}")
                >
                    <span class="badge-dot" aria-hidden="true"></span>
                    {status}
                </span>
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_says_how_many_are_alive() {
        let node = |alive| Node {
            name: "edge-1".into(),
            tunnel_addr: "127.0.0.1:7844".into(),
            edge_addr: "127.0.0.1:8080".into(),
            api_addr: "127.0.0.1:8000".into(),
            version: "0.1.0".into(),
            started_at: "2026-11-25T01:00:00Z".parse().unwrap(),
            last_seen_at: "2026-11-25T02:00:00Z".parse().unwrap(),
            alive,
            connections: 0,
        };
        assert_eq!(node_count(&[]), "0 alive of 0 nodes");
        assert_eq!(node_count(&[node(true)]), "1 alive of 1 node");
        assert_eq!(node_count(&[node(true), node(false)]), "1 alive of 2 nodes");
    }
}
