//! A moment from the API (RFC 3339) as the tables show it.

use leptos::{either::Either, prelude::*};

use crate::time::created_parts;

/// Date and time in separate unbreakable pieces, so a narrow column wraps between them;
/// the full RFC 3339 text in `datetime` and the tooltip.
#[component]
pub(crate) fn Timestamp(at: String) -> impl IntoView {
    let label = match created_parts(&at) {
        Some((date, time)) => Either::Left(view! {
            <span class="nowrap">{date.to_owned()}</span>
            " "
            <span class="nowrap">{time}</span>
        }),
        None => Either::Right(at.clone()),
    };
    view! { <time datetime=at.clone() title=at>{label}</time> }
}
