//! A destructive action behind a second, explicit click.

use leptos::{html, prelude::*};

/// `label` (e.g. "Delete"); clicked, it asks `question` with a confirming button (the
/// same label) and Cancel, and Cancel takes the focus so a stray Enter does nothing
/// harmful. `busy` disables the buttons while the action runs. `what` names the object for
/// screen readers ("Delete zone example.com").
#[component]
pub(crate) fn ConfirmButton(
    label: &'static str,
    what: String,
    question: String,
    busy: Signal<bool>,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let cancel = NodeRef::<html::Button>::new();
    // Effects run only in the browser: the question replaced the button that had focus.
    Effect::new(move || {
        if asking.get()
            && let Some(button) = cancel.get()
        {
            let _ = button.focus();
        }
    });
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                view! {
                    <button type="button" class="button small" on:click=move |_| asking.set(true)>
                        {label}
                        <span class="visually-hidden">" " {what.clone()}</span>
                    </button>
                }
            }
        >
            <span class="confirm" role="group" aria-label=question.clone()>
                <span class="confirm-question">{question.clone()}</span>
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
        </Show>
    }
}
