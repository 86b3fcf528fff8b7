//! Roles and scopes as small labelled tags: the text says it all, the colour only marks
//! what grants everything.

use adit_core::identity::{Role, Scope};
use leptos::prelude::*;

#[component]
pub(crate) fn RoleTag(role: Role) -> impl IntoView {
    view! { <span class="tag" class:tag-admin=role == Role::Admin>{role.as_str()}</span> }
}

#[component]
pub(crate) fn ScopeTag(scope: Scope) -> impl IntoView {
    view! { <span class="tag" class:tag-admin=scope == Scope::Admin>{scope.as_str()}</span> }
}
