//! The one table the pages draw lists with: a card around a `<table>`, its header row,
//! the rows a page passes as children, and a line that says when there are none.

use leptos::prelude::*;

/// A column of a [`DataTable`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    label: &'static str,
    /// Right-aligned numbers.
    numeric: bool,
    /// The row actions' column: its name is for screen readers only.
    actions: bool,
}

impl Column {
    pub(crate) const fn new(label: &'static str) -> Self {
        Self {
            label,
            numeric: false,
            actions: false,
        }
    }

    pub(crate) const fn numeric(label: &'static str) -> Self {
        Self {
            numeric: true,
            ..Self::new(label)
        }
    }

    /// The last column, with each row's buttons.
    pub(crate) const fn actions() -> Self {
        Self {
            actions: true,
            ..Self::new("Actions")
        }
    }
}

/// `columns` over the rows in `children` (`<tr>`s, keyed by id by the caller's `<For>`);
/// `empty_text` shows under the header while `empty`. `class` is added to the table's
/// (`data connectors`, …); `live` announces changed rows to screen readers.
#[component]
pub(crate) fn DataTable(
    #[prop(optional)] class: &'static str,
    columns: Vec<Column>,
    #[prop(into)] empty: Signal<bool>,
    #[prop(into)] empty_text: Signal<String>,
    #[prop(optional)] live: bool,
    children: Children,
) -> impl IntoView {
    let headers = columns
        .into_iter()
        .map(|column| {
            let label = if column.actions {
                view! { <span class="visually-hidden">{column.label}</span> }.into_any()
            } else {
                column.label.into_any()
            };
            view! {
                <th scope="col" class:num=column.numeric class:row-actions=column.actions>
                    {label}
                </th>
            }
        })
        .collect_view();
    view! {
        <div class="table-card">
            <table class=format!("data {class}")>
                <thead>
                    <tr>{headers}</tr>
                </thead>
                <tbody aria-live=live.then_some("polite")>{children()}</tbody>
            </table>
            <Show when=move || empty.get()>
                <p class="no-match">{move || empty_text.get()}</p>
            </Show>
        </div>
    }
}
