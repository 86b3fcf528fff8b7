//! One component per dashboard page.

pub(crate) mod tunnels;
