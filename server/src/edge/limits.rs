//! What the public edge allows one visitor, connection or tunnel.

use std::time::Duration;

/// What the public edge allows one visitor, connection or tunnel (see the `edge_*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    pub max_header_bytes: u32,
    pub max_headers: u32,
    pub max_uri_bytes: u32,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_streams_per_connection: u32,
    pub max_streams_per_tunnel: u32,
}

impl EdgeLimits {
    /// Generous for browsers and APIs (64 KiB of headers is more than any browser sends,
    /// 8 KiB of URI is what most servers allow), small enough that one visitor cannot hold
    /// much of the edge.
    pub const DEFAULT: Self = Self {
        max_header_bytes: 64 * 1024,
        max_headers: 100,
        max_uri_bytes: 8 * 1024,
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        max_streams_per_connection: 100,
        max_streams_per_tunnel: 10_000,
    };
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
