//! The opening end of an HTTP/2 data link (to a connector, or to another node), on `h2`
//! directly. hyper's client put a channel, the connection's task, a task spawned per stream
//! and two one-shot channels between a request and its stream; here the request's own
//! task opens the stream and waits for the answer (bench/README.md, issue 14 step 22).

use std::{
    future::{Future, poll_fn},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
};

use adit_transport::h2::{
    KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT,
    body::{LinkBody, send_body},
    client_builder, keep_alive,
};
use bytes::Bytes;
use h2::client::SendRequest;
use http::{Request, Response};
use http_body::Body;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    runtime::Handle,
    sync::oneshot,
};
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tracing::Instrument;

use crate::tunnel::registry::{BoxError, TunnelBody};

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
    let (streams, mut connection) = client_builder().handshake::<_, Bytes>(io).await?;
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
        Ok(response.map(LinkBody::new))
    }
}

#[cfg(test)]
mod tests {
    use adit_transport::{h2::STREAM_WINDOW, relay::channel_body};
    use http::HeaderMap;
    use http_body::Frame;
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
