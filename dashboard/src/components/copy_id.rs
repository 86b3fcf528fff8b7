//! An identifier with a button that copies it.

use leptos::{html, prelude::*};

/// What the copy button says.
#[cfg_attr(
    not(feature = "hydrate"),
    allow(dead_code, reason = "only the browser copies")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyState {
    Ready,
    /// On the clipboard.
    Copied,
    /// The browser would not write the clipboard (plain HTTP to a remote host): the text is
    /// selected instead, for Ctrl+C.
    Selected,
}

impl CopyState {
    fn label(self) -> &'static str {
        match self {
            Self::Ready => "Copy",
            Self::Copied => "Copied",
            Self::Selected => "Press Ctrl+C",
        }
    }
}

/// `value` in monospace, and a button that puts it on the clipboard and says so for a
/// moment. `what` names the value for screen readers ("tunnel ID"). With `short`, the CSS
/// shows only its start, for narrow tables: the whole value stays in the page (its
/// tooltip, what is copied, what the copy fallback selects).
#[component]
pub(crate) fn CopyId(
    value: String,
    what: &'static str,
    #[prop(optional)] short: bool,
) -> impl IntoView {
    let state = RwSignal::new(CopyState::Ready);
    let code = NodeRef::<html::Code>::new();
    let title = short.then(|| value.clone());
    let copy = {
        let value = value.clone();
        move |_| copy_to_clipboard(&value, code, state)
    };
    view! {
        <span class="copy-id">
            <code class="id" class:short=short node_ref=code title=title>
                {value}
            </code>
            <button
                type="button"
                class="copy"
                class:copied=move || state.get() != CopyState::Ready
                aria-label=format!("Copy {what}")
                on:click=copy
            >
                <span aria-live="polite">{move || state.get().label()}</span>
            </button>
        </span>
    }
}

/// A command to paste into a terminal, in a block, with a button that copies it. `what`
/// names it for screen readers ("install command").
#[component]
pub(crate) fn CopyCommand(command: Signal<String>, what: &'static str) -> impl IntoView {
    let state = RwSignal::new(CopyState::Ready);
    let code = NodeRef::<html::Code>::new();
    view! {
        <div class="copy-command">
            <pre class="command"><code node_ref=code>{move || command.get()}</code></pre>
            <button
                type="button"
                class="copy"
                class:copied=move || state.get() != CopyState::Ready
                aria-label=format!("Copy {what}")
                on:click=move |_| copy_to_clipboard(&command.get_untracked(), code, state)
            >
                <span aria-live="polite">{move || state.get().label()}</span>
            </button>
        </div>
    }
}

/// Event handlers run only in the browser; the server build has nothing to do here.
fn copy_to_clipboard(value: &str, code: NodeRef<html::Code>, state: RwSignal<CopyState>) {
    #[cfg(feature = "hydrate")]
    crate::client::copy_text(value.to_owned(), code.get_untracked(), state);
    #[cfg(not(feature = "hydrate"))]
    let _ = (value, code, state);
}
