//! The bodies of link streams, both ways: [`LinkBody`] reads what arrives on a stream,
//! [`send_body`] streams a body out on one as the peer's flow control allows.

use std::{
    fmt::Display,
    future::poll_fn,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http_body::{Body, Frame};

/// A stream's body as it arrives; each chunk read gives its bytes of window back to the
/// peer.
pub struct LinkBody {
    recv: RecvStream,
    data_done: bool,
}

impl LinkBody {
    pub fn new(recv: RecvStream) -> Self {
        Self {
            recv,
            data_done: false,
        }
    }
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

/// Streams `body` into the stream, as the peer's flow control allows; a body that fails
/// resets the stream, and a peer that resets it stops the sending.
pub async fn send_body<B>(mut body: B, mut to_peer: SendStream<Bytes>)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
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
                tracing::debug!(error = %e, "a body failed; resetting its stream");
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
