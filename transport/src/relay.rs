//! Moving a byte stream (an upgraded WebSocket, a TCP stream) between a socket and an HTTP/2
//! stream's bodies, as the edge and the connector both do.
//!
//! A tunnel may hold tens of thousands of idle streams, so nothing here keeps a buffer per
//! stream while it is idle: a quiet stream reads through one scratch buffer per thread and
//! its bytes leave as `Bytes` of exactly the size read; a stream whose reads come back full
//! (a bulk transfer) reads straight into a chunk of its own, which is what is sent on, so its
//! bytes are not copied once more. The bytes of the HTTP/2 stream are handed on as the
//! `Bytes` hyper received them in.

use std::{
    cell::RefCell,
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::mpsc,
};
use tokio_util::sync::PollSender;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most read from a socket at once.
const SCRATCH: usize = 64 * 1024;
/// A read at least this large says the stream is streaming: the next one goes straight into
/// a chunk of its own.
const STREAMING_READ: usize = 16 * 1024;
/// Chunks queued towards the HTTP/2 stream before the reader waits (its flow control
/// bounds the rest).
const QUEUED_CHUNKS: usize = 8;

thread_local! {
    static SCRATCH_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH].into_boxed_slice());
}

/// Reads what `reader` has (at most 64 KiB) without a buffer of its own; an empty chunk means
/// the end of the stream.
pub async fn read_chunk<R: AsyncRead + Unpin + ?Sized>(reader: &mut R) -> io::Result<Bytes> {
    std::future::poll_fn(|cx| {
        SCRATCH_BUFFER.with_borrow_mut(|scratch| {
            let mut buf = ReadBuf::new(scratch);
            ready!(Pin::new(&mut *reader).poll_read(cx, &mut buf))?;
            Poll::Ready(Ok(Bytes::copy_from_slice(buf.filled())))
        })
    })
    .await
}

/// Reads a relay's chunks: through the scratch buffer while the stream is quiet, straight
/// into a chunk of its own while its reads come back large. A read that finds nothing drops
/// the chunk, so a stream that goes quiet holds no buffer.
#[derive(Default)]
struct Chunks {
    streaming: bool,
}

impl Chunks {
    /// The next chunk; an empty one means the end of the stream.
    async fn next<R: AsyncRead + Unpin + ?Sized>(&mut self, reader: &mut R) -> io::Result<Bytes> {
        let chunk = if self.streaming {
            // Made per poll, so a read that waits holds no buffer while it waits.
            std::future::poll_fn(|cx| {
                let mut chunk = BytesMut::with_capacity(SCRATCH);
                ready!(tokio_util::io::poll_read_buf(
                    Pin::new(&mut *reader),
                    cx,
                    &mut chunk
                ))?;
                Poll::Ready(Ok::<_, io::Error>(chunk.freeze()))
            })
            .await?
        } else {
            read_chunk(reader).await?
        };
        self.streaming = chunk.len() >= STREAMING_READ;
        Ok(chunk)
    }
}

/// Sends body frames to the far end of an HTTP/2 stream; dropping it ends that body.
pub type BodySender = mpsc::Sender<Result<Frame<Bytes>, BoxError>>;

/// A body fed through a [`BodySender`].
pub struct ChannelBody {
    frames: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
}

/// A body and the sender that feeds it.
pub fn channel_body() -> (ChannelBody, BodySender) {
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    (ChannelBody { frames: rx }, tx)
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.frames.poll_recv(cx)
    }
}

/// Bytes moved each way by [`splice`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Spliced {
    pub from_socket: u64,
    pub to_socket: u64,
}

/// Joins `socket` to an HTTP/2 stream until both directions end: what the socket sends goes
/// out through `to_peer`, the data of `from_peer` is written to the socket. The end of either
/// side is passed on as a half-close (the sender dropped, the socket shut down for writing).
pub async fn splice<S, B>(socket: S, from_peer: B, to_peer: BodySender) -> Spliced
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Body<Data = Bytes> + Unpin,
{
    let (mut socket_read, mut socket_write) = tokio::io::split(socket);
    let mut moved = Spliced::default();
    let up = async {
        let mut chunks = Chunks::default();
        loop {
            match chunks.next(&mut socket_read).await {
                Ok(chunk) if !chunk.is_empty() => {
                    moved.from_socket += chunk.len() as u64;
                    if to_peer.send(Ok(Frame::data(chunk))).await.is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        drop(to_peer);
    };
    let down = async {
        let mut from_peer = from_peer;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut from_peer).poll_frame(cx)).await
        {
            if let Ok(data) = frame.into_data() {
                let len = data.len() as u64;
                if socket_write.write_all(&data).await.is_err() {
                    break;
                }
                moved.to_socket += len;
            }
        }
        let _ = socket_write.shutdown().await;
    };
    tokio::join!(up, down);
    moved
}

/// An HTTP/2 stream as a byte stream: reads yield the data of `from_peer`, writes become
/// frames of the body fed by the sender. For a protocol codec (WebSocket) that runs over it.
pub struct BodyIo<B> {
    from_peer: B,
    pending: Bytes,
    to_peer: PollSender<Result<Frame<Bytes>, BoxError>>,
}

impl<B> BodyIo<B> {
    pub fn new(from_peer: B, to_peer: BodySender) -> Self {
        Self {
            from_peer,
            pending: Bytes::new(),
            to_peer: PollSender::new(to_peer),
        }
    }
}

impl<B> AsyncRead for BodyIo<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(Pin::new(&mut self.from_peer).poll_frame(cx)) {
                // The peer's half-close, or its end by error: either way no more bytes.
                None | Some(Err(_)) => return Poll::Ready(Ok(())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<B: Unpin> AsyncWrite for BodyIo<B> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.to_peer.poll_reserve(cx)).map_err(|_| io::ErrorKind::BrokenPipe)?;
        self.to_peer
            .send_item(Ok(Frame::data(Bytes::copy_from_slice(buf))))
            .map_err(|_| io::ErrorKind::BrokenPipe)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.to_peer.close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;

    use super::*;

    /// Bytes cross both ways through `splice`, and each side's end reaches the other as a
    /// half-close while the other direction keeps flowing.
    #[tokio::test]
    async fn splice_carries_bytes_and_half_closes() {
        let (near, far) = tokio::io::duplex(1024);
        let (from_peer, to_socket) = channel_body();
        let (mut out_body, to_peer) = channel_body();
        let spliced = tokio::spawn(splice(near, from_peer, to_peer));

        let (mut far_read, mut far_write) = tokio::io::split(far);
        // Written while the body is read: the relay holds only a few chunks in flight.
        let writer = tokio::spawn(async move {
            far_write.write_all(&[1u8; 200_000]).await.unwrap();
            far_write.shutdown().await.unwrap();
        });
        let mut got = 0;
        while let Some(frame) = out_body.frame().await {
            got += frame.unwrap().into_data().unwrap().len();
        }
        assert_eq!(got, 200_000, "the socket's bytes, then the end of the body");
        writer.await.unwrap();

        to_socket
            .send(Ok(Frame::data(Bytes::from_static(b"reply"))))
            .await
            .unwrap();
        drop(to_socket);
        let mut reply = Vec::new();
        far_read.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"reply");
        assert_eq!(
            spliced.await.unwrap(),
            Spliced {
                from_socket: 200_000,
                to_socket: 5
            }
        );
    }

    /// A read that comes back large makes the next one go straight into a chunk of its own;
    /// a small one sends the stream back to the scratch buffer. The bytes stay whole and in
    /// order either way.
    #[tokio::test]
    async fn chunks_switch_between_scratch_and_own_buffers_and_keep_the_bytes() {
        let (mut near, mut far) = tokio::io::duplex(256 * 1024);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut chunks = Chunks::default();
        // (bytes written, reads through its own chunk before the read, after it)
        let steps = [
            (&data[..SCRATCH], false, true),
            (&data[SCRATCH..2 * SCRATCH], true, true),
            (&data[2 * SCRATCH..2 * SCRATCH + 100], true, false),
            (&data[2 * SCRATCH + 100..2 * SCRATCH + 200], false, false),
        ];
        for (written, before, after) in steps {
            far.write_all(written).await.unwrap();
            assert_eq!(chunks.streaming, before);
            let chunk = chunks.next(&mut near).await.unwrap();
            assert_eq!(&chunk[..], written, "the bytes as written");
            assert_eq!(chunks.streaming, after);
        }
        drop(far);
        assert!(chunks.next(&mut near).await.unwrap().is_empty(), "the end");
    }

    /// `BodyIo` reads the body's frames across read calls of any size and turns writes into
    /// frames; shutting it down ends the body it feeds.
    #[tokio::test]
    async fn body_io_reads_frames_and_writes_frames() {
        let (from_peer, feed) = channel_body();
        let (out_body, to_peer) = channel_body();
        let mut io = BodyIo::new(from_peer, to_peer);
        feed.send(Ok(Frame::data(Bytes::from_static(b"hello "))))
            .await
            .unwrap();
        feed.send(Ok(Frame::data(Bytes::from_static(b"world"))))
            .await
            .unwrap();
        drop(feed);
        let mut small = [0u8; 4];
        io.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"hell");
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"o world");

        io.write_all(b"ping").await.unwrap();
        io.shutdown().await.unwrap();
        let collected = out_body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"ping");
    }
}
