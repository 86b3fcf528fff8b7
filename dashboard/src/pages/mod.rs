//! One component per dashboard page.

pub(crate) mod device;
pub(crate) mod login;
pub(crate) mod settings;
mod tunnel_filter;
pub(crate) mod tunnels;
