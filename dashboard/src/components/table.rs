//! The one table the pages draw lists with: a card around a `<table>`, its header row
//! (with headers that sort it, where a page asks for them), the rows a page passes as
//! children, and a line that says when there are none; and the pager under a list read
//! in pages.

use leptos::prelude::*;

/// A column of a [`DataTable`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    label: &'static str,
    /// Right-aligned numbers.
    numeric: bool,
    /// The row actions' column: its name is for screen readers only.
    actions: bool,
    /// Set when the table can be sorted by this column.
    sort: Option<ColumnSort>,
}

/// What a sortable column's header knows of the table's order.
#[derive(Debug, Clone, Copy)]
struct ColumnSort {
    /// `aria-sort`: `ascending` or `descending` while the table is sorted by this column,
    /// `None` while it is sorted by another.
    order: Signal<Option<&'static str>>,
    /// What a click on the header does: sort by this column, or flip its order.
    toggle: Callback<()>,
}

impl Column {
    pub(crate) const fn new(label: &'static str) -> Self {
        Self {
            label,
            numeric: false,
            actions: false,
            sort: None,
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

    /// The same column with a header that sorts the table: a button (so it is reachable
    /// and usable by keyboard) inside a `<th>` whose `aria-sort` tells the current order.
    /// `order` gives `ascending` or `descending` while the table is sorted by this column,
    /// `None` otherwise; `toggle` runs on a click.
    pub(crate) fn sortable(
        self,
        order: impl Fn() -> Option<&'static str> + Send + Sync + 'static,
        toggle: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            sort: Some(ColumnSort {
                order: Signal::derive(order),
                toggle: Callback::new(move |()| toggle()),
            }),
            ..self
        }
    }
}

/// `columns` over the rows in `children` (`<tr>`s, keyed by id by the caller's `<For>`);
/// `empty_text`, followed by `empty_action` if given (a button that clears a filter, say),
/// shows under the header while `empty`. `class` is added to the table's
/// (`data connectors`, …); `live` announces changed rows to screen readers.
#[component]
pub(crate) fn DataTable(
    #[prop(optional)] class: &'static str,
    columns: Vec<Column>,
    #[prop(into)] empty: Signal<bool>,
    #[prop(into)] empty_text: Signal<String>,
    #[prop(optional, into)] empty_action: Option<ViewFn>,
    #[prop(optional)] live: bool,
    children: Children,
) -> impl IntoView {
    let headers = columns.into_iter().map(header).collect_view();
    view! {
        <div class="table-card">
            <table class=format!("data {class}")>
                <thead>
                    <tr>{headers}</tr>
                </thead>
                <tbody aria-live=live.then_some("polite")>{children()}</tbody>
            </table>
            <Show when=move || empty.get()>
                <p class="no-match">
                    {move || empty_text.get()}
                    {empty_action.as_ref().map(ViewFn::run)}
                </p>
            </Show>
        </div>
    }
}

/// "Previous", "Page 2 of 9", "Next" under a list read in pages; `page` counts from 1 and
/// `on_page` is asked for another.
#[component]
pub(crate) fn Pager(
    #[prop(into)] page: Signal<u32>,
    #[prop(into)] pages: Signal<u32>,
    on_page: Callback<u32>,
) -> impl IntoView {
    view! {
        <nav class="pager" aria-label="Pages">
            <button
                type="button"
                class="button"
                disabled=move || page.get() <= 1
                on:click=move |_| on_page.run(page.get_untracked().saturating_sub(1).max(1))
            >
                "Previous"
            </button>
            <span class="page-of">{move || format!("Page {} of {}", page.get(), pages.get())}</span>
            <button
                type="button"
                class="button"
                disabled=move || page.get() >= pages.get()
                on:click=move |_| on_page.run(page.get_untracked().saturating_add(1))
            >
                "Next"
            </button>
        </nav>
    }
}

fn header(column: Column) -> AnyView {
    let Column {
        label,
        numeric,
        actions,
        sort,
    } = column;
    match sort {
        Some(ColumnSort { order, toggle }) => {
            let arrow = move || match order.get() {
                Some("ascending") => "↑",
                Some(_) => "↓",
                None => "↕",
            };
            view! {
                <th scope="col" class:num=numeric aria-sort=move || order.get()>
                    <button
                        type="button"
                        class="sort"
                        class:sorted=move || order.get().is_some()
                        on:click=move |_| toggle.run(())
                    >
                        {label}
                        <span class="sort-arrow" aria-hidden="true">{arrow}</span>
                    </button>
                </th>
            }
            .into_any()
        }
        None => {
            let label = if actions {
                view! { <span class="visually-hidden">{label}</span> }.into_any()
            } else {
                label.into_any()
            };
            view! {
                <th scope="col" class:num=numeric class:row-actions=actions>
                    {label}
                </th>
            }
            .into_any()
        }
    }
}
