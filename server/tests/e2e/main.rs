//! End-to-end tests: one binary, real server, real connectors, real origins and clients.

#![allow(unreachable_pub)] // test-kit items are shared between this binary's modules only
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod api;
mod at_rest;
mod browser;
mod bursts;
mod cluster;
mod config_reload;
mod dashboard;
mod data_plane;
mod hardening;
mod identity;
mod kit;
mod lifecycle;
mod listing;
mod nodes;
mod origins;
mod probe;
mod protocols;
mod public_tls;
mod remote_config;
mod replicas;
mod settings;
