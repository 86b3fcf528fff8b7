//! A tunnel's status as a coloured badge that also says the status in words.

use adit_core::api::TunnelStatus;
use leptos::prelude::*;

/// The label shown to people ("Healthy", …); the CSS class uses [`TunnelStatus::as_str`].
pub(crate) fn status_label(status: TunnelStatus) -> &'static str {
    match status {
        TunnelStatus::Healthy => "Healthy",
        TunnelStatus::Degraded => "Degraded",
        TunnelStatus::Down => "Down",
        TunnelStatus::Inactive => "Inactive",
    }
}

/// Healthy is green, Degraded amber, Down red, Inactive grey; the text carries the same
/// meaning for anyone who cannot tell the colours apart.
#[component]
pub(crate) fn StatusBadge(status: TunnelStatus) -> impl IntoView {
    view! {
        <span class=format!("badge badge-{}", status.as_str())>
            <span class="badge-dot" aria-hidden="true"></span>
            {status_label(status)}
        </span>
    }
}
