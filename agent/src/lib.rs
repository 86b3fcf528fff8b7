//! `adit`: the CLI that manages tunnels through the API, and the connector that runs one
//! (`adit tunnel run`): it registers over gRPC, keeps four outbound data connections to
//! the edge and proxies each stream to the origin its ingress rules name.

pub mod access;
pub mod api_client;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod config_watch;
pub mod connector;
mod error;
pub mod login;
pub mod metrics;
pub mod origin;
pub mod service;

pub use error::Error;

#[cfg(test)]
mod layers;
