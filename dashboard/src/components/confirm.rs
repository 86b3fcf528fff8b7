//! A destructive action behind a second, explicit click.

use leptos::{ev::KeyboardEvent, html, prelude::*};

/// `label` (e.g. "Delete"); clicked, it asks `question` with a confirming button (the
/// same label) and Cancel. Cancel takes the focus, so a stray Enter does nothing harmful;
/// Escape cancels too, and the focus returns to the first button. `busy` disables the
/// buttons while the action runs. `what` completes the first button's name for screen
/// readers ("Delete" "zone example.com").
#[component]
pub(crate) fn ConfirmButton(
    label: &'static str,
    what: String,
    question: String,
    busy: Signal<bool>,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let trigger = NodeRef::<html::Button>::new();
    let cancel = NodeRef::<html::Button>::new();
    // Both parts stay in the document (one hidden), so the focus can move between them.
    // Effects run only in the browser, after the change is drawn.
    Effect::new(move |was_asking: Option<bool>| {
        let now = asking.get();
        let to = match (was_asking, now) {
            (_, true) => cancel.get(),
            (Some(true), false) => trigger.get(),
            _ => None,
        };
        if let Some(button) = to {
            let _ = button.focus();
        }
        now
    });
    let escape = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            asking.set(false);
        }
    };
    let group_label = question.clone();
    view! {
        <button
            type="button"
            class="button small"
            node_ref=trigger
            hidden=move || asking.get()
            on:click=move |_| asking.set(true)
        >
            {label}
            <span class="visually-hidden">" " {what}</span>
        </button>
        <span
            class="confirm"
            role="group"
            aria-label=group_label
            hidden=move || !asking.get()
            on:keydown=escape
        >
            <span class="confirm-question">{question}</span>
            <button
                type="button"
                class="button small danger"
                disabled=move || busy.get()
                on:click=move |_| {
                    asking.set(false);
                    on_confirm.run(());
                }
            >
                {label}
            </button>
            <button
                type="button"
                class="button small"
                node_ref=cancel
                disabled=move || busy.get()
                on:click=move |_| asking.set(false)
            >
                "Cancel"
            </button>
        </span>
    }
}
