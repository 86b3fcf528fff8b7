//! HTTP/2 on the reversed data connection, both ends on `h2` directly: the settings, the
//! keep-alive pings, the bodies of link streams ([`body`]) and the answering end
//! ([`serve_link`]). Large windows let one stream fill a loopback link (the 64 KiB default caps
//! a stream at window/RTT); a high stream limit lets thousands of idle WebSockets share one
//! connection; pings find dead links.

pub mod body;
mod serve;

pub use serve::serve_link;

use std::time::Duration;

use crate::relay::BoxError;

pub const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
pub const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
pub const MAX_FRAME_SIZE: u32 = 256 * 1024;
pub const MAX_CONCURRENT_STREAMS: u32 = 100_000;
/// Above the edge's own 64 KiB limit on a visitor's head, so what it admits always fits.
pub const MAX_HEADER_LIST_SIZE: u32 = 256 * 1024;
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Streams a link opens before the far end's settings say how many it takes (hyper's
/// default too).
const INITIAL_MAX_SEND_STREAMS: usize = 100;

/// The opening end's settings (the edge, or a node forwarding to another).
pub fn client_builder() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_concurrent_reset_streams(1024)
        .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .enable_push(false);
    builder
}

/// The answering end's settings (the connector, or a node answering another).
pub fn server_builder() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE);
    builder
}

/// Pings every `interval`; returns why the link is dead when a pong does not come back
/// within `timeout` or the connection fails. Run from a task of its own, beside the
/// connection: polled beside it, its timer would be polled at every wake-up of a busy link
/// (bench/README.md, issue 14 step 22).
pub async fn keep_alive(
    mut pings: h2::PingPong,
    interval: Duration,
    timeout: Duration,
) -> BoxError {
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(e)) => return e.into(),
            Err(_) => return format!("no answer to a ping within {timeout:?}").into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unanswered_ping_ends_the_keep_alive() {
        // The far end takes the bytes and never answers: no settings, no pong.
        let (near, _silent) = tokio::io::duplex(64 * 1024);
        let (_streams, mut connection) = h2::client::handshake(near).await.unwrap();
        let pings = connection.ping_pong().unwrap();
        let keep_alive = keep_alive(pings, Duration::from_millis(10), Duration::from_millis(50));
        let error = tokio::select! {
            error = keep_alive => error,
            _ = connection => panic!("the connection ended before the keep-alive"),
        };
        assert!(error.to_string().contains("no answer to a ping"), "{error}");
    }
}
