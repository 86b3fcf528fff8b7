//! One component per dashboard page.

pub(crate) mod device;
pub(crate) mod login;
pub(crate) mod new_tunnel;
mod route_forms;
pub(crate) mod routing;
pub(crate) mod settings;
pub(crate) mod tunnel;
mod tunnel_filter;
pub(crate) mod tunnels;
