//! The answering end of a link (the connector, or a node answering another), on `h2`
//! directly as the opening end is: each stream the far end opens is answered from a task of
//! its own, the keep-alive pings go from another, and on `stop` the link ends gracefully.
//! hyper's server put its own request and response types, and a conversion each way,
//! between a stream and its answer (bench/README.md, issue 14 step 25).

use std::{fmt::Display, future::poll_fn, pin::pin, time::Duration};

use bytes::Bytes;
use h2::{RecvStream, server::SendResponse};
use http::{HeaderValue, Request, Response, header::CONTENT_LENGTH};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::{KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, body::LinkBody, keep_alive, server_builder};
use crate::{h2::body::send_body, relay::BoxError};

/// Answers the streams the far end opens on `io` with `answer`, until the far end closes
/// the link (`Ok`), the link fails or a ping goes unanswered (`Err`), or `stop` resolves:
/// then GOAWAY tells the far end to open no more streams, and those in flight get `grace`
/// to finish. Returns how the link ended, and what `stop` gave if it was stopped.
pub async fn serve_link<IO, A, F, B, S, T>(
    io: IO,
    answer: A,
    stop: S,
    grace: Duration,
) -> (Result<(), BoxError>, Option<T>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
    A: Fn(Request<LinkBody>) -> F,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Display + Send,
    S: Future<Output = T>,
{
    let mut connection = match server_builder().handshake::<_, Bytes>(io).await {
        Ok(connection) => connection,
        Err(e) => return (Err(e.into()), None),
    };
    let pings = connection.ping_pong();
    let mut pinging = AbortOnDropHandle::new(tokio::spawn(
        async move {
            match pings {
                Some(pings) => keep_alive(pings, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT).await,
                None => std::future::pending().await,
            }
        }
        .in_current_span(),
    ));
    let mut stop = pin!(stop);
    let stopped = loop {
        tokio::select! {
            biased;
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => spawn_answer(&answer, request, respond),
                Some(Err(e)) => return (Err(e.into()), None),
                None => return (Ok(()), None),
            },
            dead = &mut pinging => {
                return (Err(dead.unwrap_or_else(BoxError::from)), None);
            }
            stopped = &mut stop => break stopped,
        }
    };
    connection.graceful_shutdown();
    // Streams the far end opened before the GOAWAY reached it are still answered.
    let draining = async {
        while let Some(accepted) = connection.accept().await {
            let (request, respond) = accepted?;
            spawn_answer(&answer, request, respond);
        }
        Ok::<_, BoxError>(())
    };
    let result = tokio::time::timeout(grace, draining)
        .await
        .unwrap_or_else(|_| {
            tracing::warn!("grace period of {grace:?} over; closing with streams in flight");
            Ok(())
        });
    (result, Some(stopped))
}

fn spawn_answer<A, F, B>(answer: &A, request: Request<RecvStream>, respond: SendResponse<Bytes>)
where
    A: Fn(Request<LinkBody>) -> F,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Display + Send,
{
    let answering = answer(request.map(LinkBody::new));
    // Boxed: tokio copies a task's future whole into the task, and the answer's future is
    // large; boxed, the task holds a pointer (bench/README.md, issue 14 step 16).
    tokio::spawn(Box::pin(respond_with(answering, respond).in_current_span()));
}

/// Sends the answer once it is ready, head then body. A far end that resets the stream
/// first (its visitor went away) drops the answer's future unfinished.
async fn respond_with<F, B>(answering: F, mut respond: SendResponse<Bytes>)
where
    F: Future<Output = Response<B>>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    let response = {
        let answering = pin!(answering);
        tokio::select! {
            biased;
            response = answering => response,
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return,
        }
    };
    let (mut head, body) = response.into_parts();
    // As hyper's server did: a body of known length says so.
    if let Some(length) = body.size_hint().exact() {
        head.headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(length));
    }
    let end = body.is_end_stream();
    match respond.send_response(Response::from_parts(head, ()), end) {
        Ok(to_peer) if !end => send_body(body, to_peer).await,
        Ok(_) => {}
        Err(e) => {
            // A head h2 refuses (a per-hop header left in it): the far end sees a reset.
            tracing::debug!(error = %e, "could not send an answer's head");
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        pin::Pin,
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
    };

    use http_body_util::Full;
    use tokio::sync::oneshot;

    use super::*;
    use crate::relay::channel_body;

    type Serving = tokio::task::JoinHandle<(Result<(), BoxError>, Option<&'static str>)>;

    /// A far end (`h2` client) on one half of a pipe, `serve_link` with `answer` on the
    /// other until `stop` says why: the far end's stream opener and `serve_link`'s task.
    async fn linked<A, F, B>(
        answer: A,
        stop: oneshot::Receiver<&'static str>,
        grace: Duration,
    ) -> (h2::client::SendRequest<Bytes>, Serving)
    where
        A: Fn(Request<LinkBody>) -> F + Send + Sync + 'static,
        F: Future<Output = Response<B>> + Send + 'static,
        B: Body<Data = Bytes> + Unpin + Send + 'static,
        B::Error: Display + Send,
    {
        let (far_end, near_end) = tokio::io::duplex(1024 * 1024);
        let serving = tokio::spawn(async move {
            let stop = async move { stop.await.unwrap_or("dropped") };
            serve_link(near_end, answer, stop, grace).await
        });
        let (streams, connection) = h2::client::handshake(far_end).await.unwrap();
        tokio::spawn(connection);
        (streams.ready().await.unwrap(), serving)
    }

    fn get() -> Request<()> {
        Request::get("http://app.example.com/").body(()).unwrap()
    }

    async fn read_all(mut body: RecvStream) -> Vec<u8> {
        let mut read = Vec::new();
        while let Some(data) = body.data().await {
            let data = data.unwrap();
            body.flow_control().release_capacity(data.len()).unwrap();
            read.extend_from_slice(&data);
        }
        read
    }

    #[tokio::test]
    async fn answers_a_stream_with_the_body_it_was_sent() {
        let answer = |request: Request<LinkBody>| async move {
            let (body, feed) = channel_body();
            let mut sent = request.into_body();
            tokio::spawn(async move {
                while let Some(frame) = poll_fn(|cx| Pin::new(&mut sent).poll_frame(cx)).await {
                    if feed.send(frame.map_err(BoxError::from)).await.is_err() {
                        return;
                    }
                }
            });
            Response::new(body)
        };
        let (_stop, stop) = oneshot::channel();
        let (mut streams, _serving) = linked(answer, stop, Duration::ZERO).await;
        let request = Request::post("http://app.example.com/echo")
            .body(())
            .unwrap();
        let (answered, mut to_near) = streams.send_request(request, false).unwrap();
        to_near
            .send_data(Bytes::from_static(b"hello, "), false)
            .unwrap();
        to_near
            .send_data(Bytes::from_static(b"link"), true)
            .unwrap();
        let answered = answered.await.unwrap();
        assert_eq!(answered.status(), 200);
        assert_eq!(read_all(answered.into_body()).await, b"hello, link");
    }

    #[tokio::test]
    async fn a_body_of_known_length_says_so() {
        let answer = |_| async { Response::new(Full::new(Bytes::from_static(b"twelve bytes"))) };
        let (_stop, stop) = oneshot::channel();
        let (mut streams, _serving) = linked(answer, stop, Duration::ZERO).await;
        let (answered, _) = streams.send_request(get(), true).unwrap();
        let answered = answered.await.unwrap();
        assert_eq!(answered.headers()[CONTENT_LENGTH], "12");
        assert_eq!(read_all(answered.into_body()).await, b"twelve bytes");
    }

    #[tokio::test]
    async fn a_far_end_that_resets_the_stream_drops_its_answer_unfinished() {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let (started_tx, started) = oneshot::channel::<()>();
        let started_tx = std::sync::Mutex::new(Some(started_tx));
        let answer = {
            let dropped = dropped.clone();
            move |_| {
                let guard = SetOnDrop(dropped.clone());
                let started = started_tx.lock().unwrap().take();
                async move {
                    let _guard = guard;
                    if let Some(started) = started {
                        let _ = started.send(());
                    }
                    std::future::pending::<Response<Full<Bytes>>>().await
                }
            }
        };
        let (_stop, stop) = oneshot::channel();
        let (mut streams, _serving) = linked(answer, stop, Duration::ZERO).await;
        let (answered, mut to_near) = streams.send_request(get(), false).unwrap();
        started.await.unwrap();
        to_near.send_reset(h2::Reason::CANCEL);
        drop(answered);
        // The answer's task sees the reset and drops the future: wait for the flag.
        for _ in 0..1000 {
            if dropped.load(Ordering::SeqCst) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the answer outlived its reset stream");
    }

    #[tokio::test]
    async fn a_stop_lets_the_streams_in_flight_finish_and_says_why() {
        let (started_tx, started) = oneshot::channel::<()>();
        let (release_tx, release) = oneshot::channel::<()>();
        let first = std::sync::Mutex::new(Some((started_tx, release)));
        let answer = move |_| {
            let first = first.lock().unwrap().take();
            async move {
                if let Some((started, release)) = first {
                    started.send(()).unwrap();
                    release.await.unwrap();
                }
                Response::new(Full::new(Bytes::from_static(b"finished")))
            }
        };
        let (stop_tx, stop) = oneshot::channel();
        let (mut streams, serving) = linked(answer, stop, Duration::from_secs(30)).await;
        let (in_flight, _) = streams.send_request(get(), true).unwrap();
        let mut streams = streams.ready().await.unwrap();
        // Stopped while the stream is being answered.
        started.await.unwrap();
        stop_tx.send("moving").unwrap();
        release_tx.send(()).unwrap();
        let answered = in_flight.await.unwrap();
        assert_eq!(read_all(answered.into_body()).await, b"finished");
        let (result, stopped) = serving.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(stopped, Some("moving"));
        // GOAWAY came: the far end opens no more streams on this link.
        let refused = match streams.send_request(get(), true) {
            Ok((answer, _)) => answer.await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(refused.is_err(), "a stream after the GOAWAY was answered");
    }

    #[tokio::test]
    async fn a_far_end_that_goes_away_ends_the_link() {
        let answer = |_| async { Response::new(Full::new(Bytes::new())) };
        let (_stop, stop) = oneshot::channel();
        let (streams, serving) = linked(answer, stop, Duration::ZERO).await;
        drop(streams);
        // With its last handle gone the far end says GOAWAY and closes: the link ends,
        // unstopped (with an error or not, as the last write went).
        let (_result, stopped) = serving.await.unwrap();
        assert!(stopped.is_none());
    }
}
