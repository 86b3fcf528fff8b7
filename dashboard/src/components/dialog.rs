//! A panel that asks before a change (or offers its result) and holds the focus while it
//! is open: it takes the focus when it opens and closes on Escape.

use leptos::{ev::KeyboardEvent, html, prelude::*};

use crate::live::focus_in;

/// `children` in a `<section>` named `label`, of `role` (`alertdialog` unless given).
/// When it appears the focus moves to what `focus` selects inside it — by default its
/// `.dialog-cancel` button, so a stray Enter changes nothing; Escape calls `close`.
#[component]
pub(crate) fn Dialog(
    label: &'static str,
    class: &'static str,
    close: Callback<()>,
    #[prop(optional)] role: Option<&'static str>,
    #[prop(optional)] focus: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    let root = NodeRef::<html::Section>::new();
    // Effects run only in the browser, once the section is in the document.
    Effect::new(move || {
        if let Some(section) = root.get() {
            focus_in(Some(section.into()), focus.unwrap_or(".dialog-cancel"));
        }
    });
    let escape = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            close.run(());
        }
    };
    view! {
        <section
            class=class
            role=role.unwrap_or("alertdialog")
            aria-label=label
            tabindex="-1"
            node_ref=root
            on:keydown=escape
        >
            {children()}
        </section>
    }
}
