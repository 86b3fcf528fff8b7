//! Tabs: a row of buttons choosing which panel shows.

use leptos::{html, prelude::*};

/// A row of tabs that choose one of `choices` (`role="tablist"`), keyboard-usable as
/// WAI-ARIA describes: Tab reaches the chosen tab only, the arrow keys, Home and End move
/// to and choose another; the chosen one is `aria-selected`.
#[component]
pub(crate) fn Tabs<T>(
    label: &'static str,
    choices: &'static [T],
    selected: RwSignal<T>,
    name: fn(T) -> &'static str,
) -> impl IntoView
where
    T: Copy + PartialEq + Send + Sync + 'static,
{
    let refs: Vec<NodeRef<html::Button>> = choices.iter().map(|_| NodeRef::new()).collect();
    let count = choices.len();
    let tabs = choices
        .iter()
        .copied()
        .enumerate()
        .map(|(i, choice)| {
            let active = move || selected.get() == choice;
            let own = refs[i];
            let refs = refs.clone();
            let keydown = move |ev: leptos::ev::KeyboardEvent| {
                let Some(to) = tab_key(&ev.key(), i, count) else {
                    return;
                };
                ev.prevent_default();
                selected.set(choices[to]);
                if let Some(button) = refs[to].get_untracked() {
                    let _ = button.focus();
                }
            };
            view! {
                <button
                    type="button"
                    role="tab"
                    class="tab"
                    class:active=active
                    node_ref=own
                    tabindex=move || if active() { "0" } else { "-1" }
                    aria-selected=move || if active() { "true" } else { "false" }
                    on:click=move |_| selected.set(choice)
                    on:keydown=keydown
                >
                    {name(choice)}
                </button>
            }
        })
        .collect_view();
    view! { <div class="tabs" role="tablist" aria-label=label>{tabs}</div> }
}

/// The tab a key moves to from tab `at` of `count`: the arrows wrap round, Home and End go
/// to the ends; `None` for any other key.
fn tab_key(key: &str, at: usize, count: usize) -> Option<usize> {
    match key {
        "ArrowRight" | "ArrowDown" => Some((at + 1) % count),
        "ArrowLeft" | "ArrowUp" => Some((at + count - 1) % count),
        "Home" => Some(0),
        "End" => Some(count.checked_sub(1)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_keys_move_between_tabs_and_wrap() {
        assert_eq!(tab_key("ArrowRight", 0, 4), Some(1));
        assert_eq!(tab_key("ArrowRight", 3, 4), Some(0));
        assert_eq!(tab_key("ArrowLeft", 0, 4), Some(3));
        assert_eq!(tab_key("Home", 2, 4), Some(0));
        assert_eq!(tab_key("End", 0, 4), Some(3));
        assert_eq!(tab_key("Enter", 0, 4), None);
    }
}
