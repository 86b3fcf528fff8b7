//! Settings › Audit log (admins only): who did what, from where, and how it ended — newest
//! first, narrowed by a text filter in the browser.

use adit_core::{api::AuditEntry, identity::Role};
use leptos::{either::Either, prelude::*};

use super::{AdminNeeded, SettingsHeader};
use crate::components::{
    moment::Moment,
    table::{Column, DataTable},
};

/// The entries any of whose columns contains `query` (ignoring case), in their order.
pub(crate) fn matching(entries: &[AuditEntry], query: &str) -> Vec<AuditEntry> {
    let query = query.trim().to_lowercase();
    entries
        .iter()
        .filter(|e| {
            query.is_empty()
                || [
                    &e.at.to_string(),
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.source_ip,
                    &e.outcome,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&query))
        })
        .cloned()
        .collect()
}

/// Whether an outcome (an HTTP status, or a gRPC code's name) says the action succeeded.
pub(crate) fn succeeded(outcome: &str) -> bool {
    match outcome.parse::<u16>() {
        Ok(status) => (200..400).contains(&status),
        Err(_) => outcome.eq_ignore_ascii_case("ok"),
    }
}

/// "3 entries", "1 of 3 entries" while filtered.
fn entry_count(shown: usize, total: usize) -> String {
    let noun = if total == 1 { "entry" } else { "entries" };
    if shown == total {
        format!("{total} {noun}")
    } else {
        format!("{shown} of {total} {noun}")
    }
}

/// The page body: the newest entries (`None` when `role` may not see them).
#[component]
pub(crate) fn AuditPage(entries: Option<Vec<AuditEntry>>, role: Role) -> impl IntoView {
    view! {
        <SettingsHeader
            title="Audit log"
            lede="Every change made to this account and every login: who, from where, and how it ended. Newest first."
        />
        {match entries {
            Some(entries) => Either::Left(view! { <AuditTable entries /> }),
            None => Either::Right(view! { <AdminNeeded role /> }),
        }}
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    let total = entries.len();
    let query = RwSignal::new(String::new());
    let shown = Memo::new(move |_| query.with(|q| matching(&entries, q)));
    view! {
        <div class="toolbar">
            <input
                type="search"
                class="search"
                placeholder="Filter by user, action, target, IP…"
                aria-label="Filter the audit log"
                bind:value=query
            />
            <span class="count" aria-live="polite">
                {move || entry_count(shown.with(Vec::len), total)}
            </span>
        </div>
        <DataTable
            class="audit"
            columns=vec![
                Column::new("When"),
                Column::new("Who"),
                Column::new("Action"),
                Column::new("Target"),
                Column::new("Source IP"),
                Column::new("Outcome"),
            ]
            empty=Signal::derive(move || shown.with(Vec::is_empty))
            empty_text=if total == 0 {
                "Nothing has been recorded yet."
            } else {
                "No entries match the filter."
            }
                .to_owned()
        >
            // Entries never change and have no id: the filtered list is drawn afresh.
            {move || shown.get().into_iter().map(|entry| view! { <AuditRow entry /> }).collect_view()}
        </DataTable>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let AuditEntry {
        at,
        actor,
        action,
        target,
        source_ip,
        outcome,
    } = entry;
    let ok = succeeded(&outcome);
    let label = if ok { "Succeeded" } else { "Failed" };
    view! {
        <tr>
            <td class="created"><Moment at /></td>
            <td class="actor">{actor}</td>
            <td><code class="action">{action}</code></td>
            <td class="target">{target}</td>
            <td class="ip">{source_ip}</td>
            <td>
                <span class="badge" class:badge-healthy=ok class:badge-down=!ok>
                    {format!("{label} · {outcome}")}
                </span>
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str, action: &str, outcome: &str) -> AuditEntry {
        AuditEntry {
            at: "2026-11-25T10:00:00Z".parse().unwrap(),
            actor: actor.into(),
            action: action.into(),
            target: "/api/v1/zones".into(),
            source_ip: "127.0.0.1".into(),
            outcome: outcome.into(),
        }
    }

    #[test]
    fn the_filter_looks_in_every_column_ignoring_case() {
        let entries = [
            entry("user:ada@example.com", "POST /api/v1/zones", "201"),
            entry("token:ci (1234)", "DELETE /api/v1/tokens/{token}", "204"),
            entry("user:bob@example.com", "login.failed", "401"),
        ];
        let actors = |q: &str| -> Vec<String> {
            matching(&entries, q).into_iter().map(|e| e.actor).collect()
        };
        assert_eq!(actors("").len(), 3);
        assert_eq!(actors(" ADA "), ["user:ada@example.com"]);
        assert_eq!(actors("tokens"), ["token:ci (1234)"]);
        assert_eq!(actors("401"), ["user:bob@example.com"]);
        assert_eq!(actors("127.0.0"), actors(""), "source IP");
        assert!(actors("nothing-like-it").is_empty());
    }

    #[test]
    fn outcomes_succeed_with_2xx_3xx_or_ok() {
        for ok in ["200", "201", "204", "302", "OK", "ok"] {
            assert!(succeeded(ok), "{ok}");
        }
        for failed in ["400", "401", "403", "409", "500", "PermissionDenied", ""] {
            assert!(!succeeded(failed), "{failed}");
        }
    }

    #[test]
    fn entry_count_pluralises() {
        assert_eq!(entry_count(0, 0), "0 entries");
        assert_eq!(entry_count(1, 1), "1 entry");
        assert_eq!(entry_count(2, 7), "2 of 7 entries");
    }
}
