//! The opening end of an HTTP/2 data link (to a connector, or to another node), on `h2`
//! directly. hyper's client put a channel, the connection's task, a task spawned per stream
//! and two one-shot channels between a request and its stream; here the request's own
//! task opens the stream and waits for the answer (bench/README.md, issue 14 step 22).

use std::{
    future::{Future, poll_fn},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use adit_transport::h2::{
    CONNECTION_WINDOW, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, MAX_FRAME_SIZE,
    MAX_HEADER_LIST_SIZE, STREAM_WINDOW,
};
use bytes::Bytes;
use h2::{RecvStream, SendStream, client::SendRequest};
use http::{Request, Response};
use http_body::{Body, Frame};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    runtime::Handle,
    sync::oneshot,
};
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tracing::Instrument;

use crate::tunnel::registry::{BoxError, TunnelBody};

/// Streams a link opens before the far end's settings say how many it takes (hyper's
/// default too).
const INITIAL_MAX_SEND_STREAMS: usize = 100;

/// Opens streams on one link; clones share it.
#[derive(Clone)]
pub struct LinkSender {
    streams: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
    /// The runtime the link's driver runs on: request bodies stream from there, so a
    /// byte stream's visitor side and link side keep a thread each (step 6 of
    /// bench/README.md's issue 14 log; hyper's client spawned them there too).
    runtime: Handle,
}

/// Why a stream could not be had, and the request back when it never left.
#[derive(Debug)]
pub struct Unsent {
    pub error: h2::Error,
    pub request: Option<Request<TunnelBody>>,
}

/// Starts HTTP/2 on `io`: the sender, and the driver to run for as long as the link is
/// used, on the runtime this is called on. The driver ends when the link closes, when
/// `close` is cancelled (`Ok`), or when a ping goes unanswered.
pub async fn handshake<IO>(
    io: IO,
    close: CancellationToken,
) -> Result<(LinkSender, impl Future<Output = Result<(), BoxError>>), h2::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (streams, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_concurrent_reset_streams(1024)
        .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await?;
    let closed = Arc::new(AtomicBool::new(false));
    let pings = connection.ping_pong();
    // The pings and `close` are watched from a task of their own: polled beside the
    // connection, their timer and token were polled again at every wake-up of a busy link
    // (~700 instructions per request in the edge). The connection polls a one-shot only.
    let (stop, mut stopped) = oneshot::channel::<Option<BoxError>>();
    let watch = tokio::spawn(
        async move {
            let reason = match pings {
                Some(pings) => tokio::select! {
                    () = close.cancelled() => None,
                    error = keep_alive(pings, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT) => Some(error),
                },
                None => {
                    close.cancelled().await;
                    None
                }
            };
            let _ = stop.send(reason);
        }
        .in_current_span(),
    );
    let ended = ClosedOnDrop(closed.clone());
    let driver = async move {
        let _ended = ended;
        let _watch = AbortOnDropHandle::new(watch);
        tokio::select! {
            biased;
            result = &mut connection => result.map_err(BoxError::from),
            reason = &mut stopped => match reason {
                Ok(Some(error)) => Err(error),
                Ok(None) | Err(_) => Ok(()),
            },
        }
    };
    Ok((
        LinkSender {
            streams,
            closed,
            runtime: Handle::current(),
        },
        driver,
    ))
}

/// Marks the link closed when its driver ends or is dropped.
struct ClosedOnDrop(Arc<AtomicBool>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Pings every `interval`, busy or idle; a ping unanswered for `timeout` ends the link,
/// whose streams then fail rather than wait on a peer that is gone.
async fn keep_alive(mut pings: h2::PingPong, interval: Duration, timeout: Duration) -> BoxError {
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(e)) => return e.into(),
            Err(_) => return format!("no answer to a ping within {timeout:?}").into(),
        }
    }
}

impl LinkSender {
    /// Whether the link has closed (its driver ended).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Sends `request` on a new stream; its body, when it has one, streams from a task of
    /// its own. Dropping the returned future before the answer resets the stream.
    pub async fn send(&self, request: Request<TunnelBody>) -> Result<Response<LinkBody>, Unsent> {
        let mut streams = match self.streams.clone().ready().await {
            Ok(streams) => streams,
            Err(error) => {
                return Err(Unsent {
                    error,
                    request: Some(request),
                });
            }
        };
        let (head, body) = request.into_parts();
        let end = body.is_end_stream();
        let (answer, to_peer) = streams
            .send_request(Request::from_parts(head, ()), end)
            .map_err(|error| Unsent {
                error,
                request: None,
            })?;
        // Dropped before the answer (the caller stopped waiting), it aborts the body's task,
        // and h2 resets the stream once nothing holds it.
        let mut pump = None;
        if !end {
            let mut sending = Box::pin(send_body(body, to_peer));
            // A body already at hand (a short upload) goes out without a task of its own.
            if poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx).is_pending())).await {
                pump = Some(AbortOnDropHandle::new(
                    self.runtime.spawn(sending.in_current_span()),
                ));
            }
        }
        let response = answer.await.map_err(|error| Unsent {
            error,
            request: None,
        })?;
        // Answered: the body goes on streaming whatever the caller does now.
        if let Some(pump) = pump {
            pump.detach();
        }
        Ok(response.map(|recv| LinkBody {
            recv,
            data_done: false,
        }))
    }
}

/// Streams `body` into the stream, as the peer's flow control allows; a body that fails
/// resets the stream, and a peer that resets it stops the sending.
async fn send_body(mut body: TunnelBody, mut to_peer: SendStream<Bytes>) {
    loop {
        let frame = poll_fn(|cx| {
            if to_peer.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Pin::new(&mut body).poll_frame(cx).map(Some)
        })
        .await;
        let Some(frame) = frame else {
            // The peer reset the stream: it wants no more of the body.
            return;
        };
        let (sent, ended) = match frame {
            None => (to_peer.send_data(Bytes::new(), true), true),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "request body failed; resetting its stream");
                to_peer.send_reset(h2::Reason::CANCEL);
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    (send_data(&mut to_peer, data, end).await, end)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => (to_peer.send_trailers(trailers), true),
                    // No other kind of frame exists.
                    Err(_) => (Ok(()), false),
                },
            },
        };
        if sent.is_err() || ended {
            return;
        }
    }
}

/// Sends `data` in as many DATA frames as the peer's window takes at a time.
async fn send_data(
    to_peer: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return if end {
            to_peer.send_data(data, true)
        } else {
            Ok(())
        };
    }
    while !data.is_empty() {
        to_peer.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| to_peer.poll_capacity(cx)).await {
            Some(granted) => granted?,
            None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
        };
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        to_peer.send_data(chunk, end && data.is_empty())?;
    }
    Ok(())
}

/// An answer's body as it arrives on its stream; each chunk read gives its bytes of
/// window back to the peer.
pub struct LinkBody {
    recv: RecvStream,
    data_done: bool,
}

impl Body for LinkBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Fails only once the stream is gone, and then nothing is owed.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use adit_transport::relay::channel_body;
    use http::HeaderMap;
    use http_body_util::BodyExt;

    use super::*;

    /// A link whose far end is `h2` on the other half of an in-memory pipe; the far end's
    /// connection is returned to accept streams on.
    async fn link() -> (
        LinkSender,
        h2::server::Connection<tokio::io::DuplexStream, Bytes>,
    ) {
        let (edge_end, far_end) = tokio::io::duplex(1024 * 1024);
        let far = tokio::spawn(async move {
            h2::server::Builder::new()
                .initial_window_size(STREAM_WINDOW)
                .handshake::<_, Bytes>(far_end)
                .await
                .unwrap()
        });
        let (sender, driver) = handshake(edge_end, CancellationToken::new()).await.unwrap();
        tokio::spawn(driver);
        (sender, far.await.unwrap())
    }

    fn request(body: TunnelBody) -> Request<TunnelBody> {
        Request::post("http://app.example.com/upload")
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn a_streamed_body_larger_than_the_window_arrives_whole_with_its_trailers() {
        let (sender, mut far) = link().await;
        let (body, feed) = channel_body();
        let chunk = Bytes::from(vec![7u8; 1024 * 1024]);
        let chunks = 12; // 12 MiB: more than one stream window (8 MiB)
        let feeding = tokio::spawn(async move {
            for _ in 0..chunks {
                feed.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
            }
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", "done".parse().unwrap());
            feed.send(Ok(Frame::trailers(trailers))).await.unwrap();
        });
        let answering = tokio::spawn(async move {
            let (request, mut respond) = far.accept().await.unwrap().unwrap();
            // The far connection must go on being polled for the body's frames to arrive.
            let serving = tokio::spawn(async move {
                std::future::poll_fn(|cx| far.poll_closed(cx)).await.ok();
            });
            let mut body = request.into_body();
            let mut received = 0;
            while let Some(data) = body.data().await {
                let data = data.unwrap();
                received += data.len();
                body.flow_control().release_capacity(data.len()).unwrap();
            }
            let trailers = body.trailers().await.unwrap().unwrap();
            assert_eq!(trailers["x-checksum"], "done");
            let mut to_edge = respond.send_response(Response::new(()), false).unwrap();
            to_edge
                .send_data(Bytes::from(received.to_string()), true)
                .unwrap();
            serving.abort_handle()
        });
        let response = sender.send(request(body.boxed_unsync())).await.unwrap();
        let answer = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(answer, (12 * 1024 * 1024).to_string());
        feeding.await.unwrap();
        answering.await.unwrap().abort();
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_resets_the_stream() {
        let (sender, mut far) = link().await;
        // A body that never ends: only the reset can end the stream.
        let (body, _feed) = channel_body();
        let waiting = tokio::spawn(async move { sender.send(request(body.boxed_unsync())).await });
        let (request, _respond) = far.accept().await.unwrap().unwrap();
        let serving = tokio::spawn(async move {
            std::future::poll_fn(|cx| far.poll_closed(cx)).await.ok();
        });
        waiting.abort();
        let mut body = request.into_body();
        let ended = body.data().await;
        assert!(
            matches!(&ended, Some(Err(e)) if e.reason() == Some(h2::Reason::CANCEL)),
            "{ended:?}"
        );
        serving.abort();
    }

    #[tokio::test]
    async fn an_unanswered_ping_ends_the_keep_alive() {
        // The far end takes the bytes and never answers: no settings, no pong.
        let (edge_end, _silent) = tokio::io::duplex(64 * 1024);
        let (_streams, mut connection) = h2::client::handshake(edge_end).await.unwrap();
        let pings = connection.ping_pong().unwrap();
        let keep_alive = keep_alive(pings, Duration::from_millis(10), Duration::from_millis(50));
        let error = tokio::select! {
            error = keep_alive => error,
            _ = connection => panic!("the connection ended before the keep-alive"),
        };
        assert!(error.to_string().contains("no answer to a ping"), "{error}");
    }

    #[tokio::test]
    async fn a_link_whose_driver_is_gone_is_closed() {
        let (edge_end, _silent) = tokio::io::duplex(64 * 1024);
        let (sender, driver) = handshake(edge_end, CancellationToken::new()).await.unwrap();
        assert!(!sender.is_closed());
        drop(driver);
        assert!(sender.is_closed());
    }

    #[tokio::test]
    async fn a_cancelled_close_ends_the_driver_without_an_error() {
        let (edge_end, _silent) = tokio::io::duplex(64 * 1024);
        let close = CancellationToken::new();
        let (sender, driver) = handshake(edge_end, close.clone()).await.unwrap();
        close.cancel();
        assert!(driver.await.is_ok());
        assert!(sender.is_closed());
    }
}
