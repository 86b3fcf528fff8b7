//! One component per dashboard page.

pub(crate) mod device;
pub(crate) mod login;
pub(crate) mod tunnels;
