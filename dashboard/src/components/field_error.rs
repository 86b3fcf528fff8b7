//! A form's error message, next to the field that caused it.

use leptos::prelude::*;

use crate::forms::Problem;

/// The message of `problem` when it is about `field` (`None`: the form as a whole), with
/// the `id` its field names in `aria-describedby`. Announced as it appears.
#[component]
pub(crate) fn FieldError(
    problem: RwSignal<Option<Problem>>,
    field: Option<&'static str>,
    id: &'static str,
) -> impl IntoView {
    let message = move || problem.with(|p| Problem::message_for(p.as_ref(), field));
    view! {
        <p id=id class="field-error" role="alert" hidden=move || message().is_none()>
            {message}
        </p>
    }
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
