//! A form's error message, next to the field that caused it.

use leptos::prelude::*;

use crate::forms::Problem;

/// An error line under an input (or above a form's buttons): `message` while there is
/// one, and nothing at all (taking no space) while there is none. `id` is what the field
/// names in `aria-describedby`. Announced as it appears.
#[component]
pub(crate) fn FieldError(
    #[prop(into)] message: Signal<Option<String>>,
    #[prop(optional)] id: Option<&'static str>,
) -> impl IntoView {
    view! {
        <Show when=move || message.with(Option::is_some)>
            <p id=id class="field-error" role="alert">{move || message.get()}</p>
        </Show>
    }
}

/// A [`FieldError`]'s message: `problem`'s when it is about `field` (`None`: the form as a
/// whole).
pub(crate) fn problem_message(
    problem: RwSignal<Option<Problem>>,
    field: Option<&'static str>,
) -> Signal<Option<String>> {
    Signal::derive(move || problem.with(|p| Problem::message_for(p.as_ref(), field)))
}

/// `aria-invalid` for `field`'s input while `problem` is about it.
pub(crate) fn invalid(
    problem: RwSignal<Option<Problem>>,
    field: &'static str,
) -> impl Fn() -> Option<&'static str> + Copy {
    move || {
        problem
            .with(|p| p.as_ref().is_some_and(|p| p.field == Some(field)))
            .then_some("true")
    }
}

/// For `field`'s `on:input`: what is typed next answers the problem about it, so its
/// message goes (the form checks again when sent). Checking as the field is left instead
/// would show or hide a message under the pointer on its way to the button.
pub(crate) fn retyped(
    problem: RwSignal<Option<Problem>>,
    field: &'static str,
) -> impl Fn(leptos::ev::Event) + Copy {
    move |_| {
        if problem.with_untracked(|p| p.as_ref().is_some_and(|p| p.field == Some(field))) {
            problem.set(None);
        }
    }
}
