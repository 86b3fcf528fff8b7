//! One component per dashboard page.

pub(crate) mod login;
pub(crate) mod tunnels;
