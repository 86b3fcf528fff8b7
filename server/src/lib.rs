//! adit-server: the public edge, the tunnel listener connectors dial, the control plane
//! (REST under `/api/v1` and gRPC) and the dashboard, built by [`App::build`].

mod accounts;
pub mod admin;
pub mod api;
mod app;
pub mod auth;
pub mod changes;
mod clock;
pub mod config;
pub mod control;
pub mod device;
mod download;
pub mod edge;
mod edge_tls;
mod error;
mod files;
mod grpc;
pub mod metrics;
mod net;
mod pki;
pub mod quick;
pub mod registry;
mod remote_config;
pub mod routes;
mod secrets;
pub mod storage;
pub mod tunnel_listener;
mod ui;
mod visitor_io;
mod web;

pub use app::App;
pub use config::Config;
pub use error::Error;
