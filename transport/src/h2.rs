//! HTTP/2 settings for the reversed data connection. Large windows let one stream fill a
//! loopback link (the 64 KiB default caps a stream at window/RTT); a high stream limit lets
//! thousands of idle WebSockets share one connection; pings find dead links.

use std::{future::Future, time::Duration};

use hyper_util::rt::TokioTimer;

pub const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
pub const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
pub const MAX_FRAME_SIZE: u32 = 256 * 1024;
pub const MAX_CONCURRENT_STREAMS: u32 = 100_000;
/// Above the edge's own 64 KiB limit on a visitor's head, so what it admits always fits.
pub const MAX_HEADER_LIST_SIZE: u32 = 256 * 1024;
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Spawns hyper's per-stream tasks on tokio, each future boxed first. hyper hands over
/// one enum for all of its tasks, the size of its largest variant (the whole
/// connection), and tokio copies a task's future whole into the task and writes the whole
/// slot again when it finishes: boxed, the task holds a pointer, and the one large copy
/// left per request is into the box (bench/README.md, issue 14 step 16).
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamExecutor;

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Box::pin(future));
    }
}

/// The connector's side: it answers streams (the edge opens them with `h2` directly,
/// `adit_server::tunnel::link`, with these settings).
pub fn server_builder() -> hyper::server::conn::http2::Builder<StreamExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(StreamExecutor);
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    builder
}
