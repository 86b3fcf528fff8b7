//! A moment from the API as the tables show it.

use adit_core::time::Timestamp;
use leptos::prelude::*;

use crate::time::date_and_minute;

/// Date and time in separate unbreakable pieces, so a narrow column wraps between them;
/// the full RFC 3339 text in `datetime` and the tooltip.
#[component]
pub(crate) fn Moment(at: Timestamp) -> impl IntoView {
    let (date, time) = date_and_minute(at);
    let text = at.to_string();
    view! {
        <time datetime=text.clone() title=text>
            <span class="nowrap">{date}</span>
            " "
            <span class="nowrap">{time}</span>
        </time>
    }
}
