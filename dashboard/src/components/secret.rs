//! A secret shown the one time the server gives it out.

use leptos::{html, prelude::*};

use super::copy_id::CopyId;

/// `value` (an API token, a generated password) in a copyable box under `title`, with the
/// plain warning that it will not be shown again, until the user clicks Done.
#[component]
pub(crate) fn OnceSecret(
    title: String,
    value: String,
    what: &'static str,
    on_done: Callback<()>,
) -> impl IntoView {
    let label = title.clone();
    // It appears after a click on the form's button: the focus moves to it, so keyboard
    // and screen-reader users land on the secret and its Copy button.
    let section = NodeRef::<html::Section>::new();
    Effect::new(move || {
        if let Some(section) = section.get() {
            let _ = section.focus();
        }
    });
    view! {
        <section class="secret" role="status" aria-label=label tabindex="-1" node_ref=section>
            <h2>{title}</h2>
            <p>
                <strong>"Copy it now: you will not see it again."</strong>
                " Adit keeps only a hash of it."
            </p>
            <div class="secret-value">
                <CopyId value what />
            </div>
            <button type="button" class="button" on:click=move |_| on_done.run(())>
                "Done"
            </button>
        </section>
    }
}
