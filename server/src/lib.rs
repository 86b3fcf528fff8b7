//! adit-server: the public edge, the tunnel listener connectors dial, the control plane
//! (REST under `/api/v1` and gRPC) and the dashboard, built by [`App::build`].
//!
//! Each folder is one layer, and its `mod.rs` says in one line what it may use; the
//! `layers` unit test (layers.rs) holds every `crate::` path to those rules. From the
//! ground up:
//!
//! * ground (`error`, `clock`, `files`, `net`): used by all, use nothing of the crate;
//! * [`storage`], [`observe`], [`trust`]: the database, the counters, keys and certificates;
//! * [`tunnel`]: connectors' data connections and the route table;
//! * [`edge`]: visitors' requests onto those connections;
//! * [`identity`]: who is calling;
//! * [`control`]: the rules about tunnels, routes, tokens, accounts;
//! * [`web`]: REST, gRPC and the dashboard's pages;
//! * `app`, `config`, `admin`: the process that wires them.

pub mod admin;
mod app;
mod clock;
pub mod config;
pub mod control;
pub mod edge;
mod error;
mod files;
pub mod health;
pub mod identity;
#[cfg(test)]
mod layers;
mod net;
pub mod observe;
pub mod storage;
pub mod trust;
pub mod tunnel;
pub mod web;

pub use app::App;
pub use config::Config;
pub use error::{DeviceLoginWait, Error};
